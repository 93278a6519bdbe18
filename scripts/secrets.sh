# Sourced by scripts and make targets that start Rasa or the action server: exports the secrets the
# Rasa server needs (it cannot import bot/). Each comes from the environment, or in development is
# generated once under var/ (bot/core/keys.py); with CLOSER_ENVIRONMENT=production a missing one stops here.
# Also the business's paths (scripts/business.sh): its model and tracker store.
. scripts/business.sh || return 1
CLOSER_ACTION_SERVER_TOKEN=$(.venv/bin/python -m bot.core.keys action-server) || return 1
CLOSER_RASA_JWT_SECRET=$(.venv/bin/python -m bot.core.keys rasa-jwt) || return 1
# keys the conversation pseudonyms in the Rasa server's logs (connectors/logs.py)
CLOSER_PII_INDEX_KEY=$(.venv/bin/python -m bot.core.keys pii-index) || return 1
export CLOSER_ACTION_SERVER_TOKEN CLOSER_RASA_JWT_SECRET CLOSER_PII_INDEX_KEY
