#!/usr/bin/env bash
# Every test: setup (installs what it needs), lint (ruff, mypy: fails fast), rasa data validate, pytest
# (unit, integration, end-to-end, browser), rasa test on the test stories, and NLU F1 on a held-out split.
set -euo pipefail
cd "$(dirname "$0")/.."
say() { printf '\033[1m==> %s\033[0m\n' "$*"; }

scripts/setup.sh --dev

say "lint: ruff and mypy (make lint)"
make lint

say "rasa data validate"
.venv-rasa/bin/rasa data validate --fail-on-warnings --quiet

say "the example business examples/ai-studio: rasa data validate, its model (tests/e2e/test_business_pack.py runs it)"
CLOSER_BUSINESS=examples/ai-studio make --no-print-directory validate train

say "pytest: channels and NLU components (connectors/, nlu/: in the Rasa server's environment)"
.venv-rasa/bin/python -m pytest -q -c tests/channels/pytest.ini --confcutdir tests/channels --rootdir . \
  tests/channels tests/nlu

say "pytest"
# The end-to-end stack (tests/e2e) runs once, below, on PostgreSQL as in production; SQLite, make run's database,
# carries every other test here.
.venv/bin/python -m pytest -q --ignore=tests/e2e

say "pytest on PostgreSQL: the end-to-end stack, the schema and migrations, payments and bookings, the scheduler's lease, the channels' store (make test-postgresql: all)"
# A PostgreSQL server of the session's own (tests/postgres.py); every other test ran on it too when this was written
# (742 passed, 1 skipped: a SQLite pragma), left out here to keep CI under 40 minutes.
CLOSER_TEST_DB=postgresql .venv/bin/python -m pytest -q tests/e2e tests/core tests/contracts tests/scheduling \
  tests/payments tests/booking
CLOSER_TEST_DB=postgresql .venv-rasa/bin/python -m pytest -q -c tests/channels/pytest.ini --confcutdir tests/channels \
  --rootdir . tests/channels

say "rasa test core: tests/stories/, and the example business's"
.venv-rasa/bin/rasa test core --stories tests/stories --model models/closer.tar.gz \
  --fail-on-prediction-errors --out results/core --quiet
CLOSER_BUSINESS=examples/ai-studio .venv-rasa/bin/rasa test core --stories examples/ai-studio/tests/stories \
  --model models/ai-studio.tar.gz --fail-on-prediction-errors --out results/core-ai-studio --quiet

say "NLU intent F1 on a held-out split"
# The targets are the script's defaults (`make nlu-eval`): intent F1 macro >= 0.90, each intent >= 0.75, entity F1
# >= 0.85 for budget, quantity and category (issue 14), intent F1 macro >= 0.85 per language (issue 15). Training is
# seeded (the SVM) or deterministic (the CRF's L-BFGS), so the split and the scores repeat. Measured: intent macro
# 0.919, weakest intent objection_delivery 0.842, en 0.944, ar 0.890, ru 0.901; entities budget 0.970, quantity 0.917,
# category 0.917.
scripts/nlu_heldout.sh
