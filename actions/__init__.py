"""rasa-sdk actions: read the tracker, call ``bot``, return events. No business logic here."""

import logging

from bot import embeddings
from bot.business import get_company

# Read knowledge/company.yml and load the embedding model (about 5 s) when the action server
# starts: a broken file stops start-up, and the first customer question does not wait for either.
get_company()
embeddings.load()

logging.getLogger("httpx").setLevel(logging.WARNING)  # its INFO lines carry URLs with the Telegram bot token
