"""Customer-facing texts the actions compose: Jinja2 message templates and catalog replies."""
