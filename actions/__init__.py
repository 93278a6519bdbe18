"""rasa-sdk actions: read the tracker, call ``bot``, return events. No business logic here."""

import logging

from bot.answering import embeddings
from bot.core.business import get_company
from bot.privacy.encryption import get_keyring
from bot.commerce.pricing import load_pricing

# Read knowledge/company.yml and pricing.yml, the PII keys, and load the embedding model (about 5 s) when
# the action server starts: a broken file or a missing key stops start-up, and no customer waits for any of them.
get_company()
get_keyring()
load_pricing()
embeddings.load()

logging.getLogger("httpx").setLevel(logging.WARNING)  # its INFO lines carry URLs with the Telegram bot token
