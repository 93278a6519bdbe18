"""rasa-sdk actions: read the tracker, call ``bot``, return events. No business logic here."""
