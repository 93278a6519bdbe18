#!/usr/bin/env bash
# Start Closer with embedded defaults: action server :5055, Rasa server :5005, console :8000, for the business
# CLOSER_BUSINESS names (unset: the default one; README: "Another business").
# Ctrl-C stops every process this script started.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh

pids=()
stop() {
  trap - INT TERM EXIT
  echo; echo "stopping Closer…"
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap stop INT TERM EXIT

# Rasa's HTTP API needs a token signed with CLOSER_RASA_JWT_SECRET; Rasa calls the action server with
# CLOSER_ACTION_SERVER_TOKEN (endpoints.yml). Both are generated under var/ when not set (README: Security). It also
# exports the business's CLOSER_MODEL and CLOSER_TRACKER_DB (scripts/business.sh).
. scripts/secrets.sh
.venv/bin/python -m bot.action_server --actions actions --port 5055 & pids+=($!)
.venv-rasa/bin/python -m rasa run --enable-api --jwt-secret "$CLOSER_RASA_JWT_SECRET" --port 5005 --model "$CLOSER_MODEL" \
  --endpoints endpoints.yml --credentials "${CLOSER_CREDENTIALS:-credentials.yml}" --logging-config-file logging.yml &
pids+=($!)
.venv/bin/python -m bot console & pids+=($!)
# An external CRM (CLOSER_CRM_PROVIDER=hubspot, in the environment or .env) gets the outbox worker.
if [ "$(.venv/bin/python -c 'from bot.core.settings import get_settings; print(get_settings().crm_provider)')" != sql ]; then
  .venv/bin/python -m bot crm-worker & pids+=($!)
fi

echo "Closer is starting: chat at http://localhost:8000/ (Rasa :5005, actions :5055). Ctrl-C stops it."
wait -n "${pids[@]}"
echo "a Closer process exited; stopping the others" >&2
