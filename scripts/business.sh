# Sourced by the scripts and make targets that train, validate, test or run Rasa (scripts/secrets.sh sources it):
# the business CLOSER_BUSINESS names (unset: the default business at the project root; bot/contracts/business.py).
# Exports CLOSER_BUSINESS_DIR (its domain.yml, config.yml, data/, tests/stories/, knowledge/), CLOSER_BUSINESS_NAME,
# CLOSER_MODEL (models/<name>.tar.gz), CLOSER_VAR (its runtime data) and CLOSER_TRACKER_DB (endpoints.yml).
_closer_exports=$(.venv/bin/python -m bot.contracts.business) || return 1
eval "$_closer_exports"
unset _closer_exports
