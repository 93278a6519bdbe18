"""rasa-sdk actions: read the tracker, call ``bot``, return events. No business logic here."""

from bot.business import get_company

# Read knowledge/company.yml when the action server starts: a broken file stops start-up, and no
# action reads it on the event loop.
get_company()
