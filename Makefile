# Closer — `make help` lists the targets.
.DEFAULT_GOAL := help
.PHONY: help install run run-prod test test-postgresql lint train validate shell translations translations-extract test-stories nlu-eval bench bench-retrieval bench-quote load-knowledge index console actions rasa telegram-poll bench-webhooks bench-console bench-grounding bench-nlu bench-language bench-follow-ups bench-load llm

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-15s %s\n", $$1, $$2}'

install:  ## create .venv-rasa and .venv, load knowledge/ into the DB, train if needed
	scripts/setup.sh

run:  ## start Rasa :5005, actions :5055 and the chat at http://localhost:8000/ (Ctrl-C stops all)
	scripts/run.sh

run-prod:  ## the production topology without Docker: PostgreSQL, Redis, Chroma, 2 Rasa + 2 action servers, HAProxy, console (data in var/prod)
	scripts/setup.sh --prod
	.venv/bin/python scripts/run_prod.py

test:  ## every test: lint, validate, pytest (unit, e2e, browser), rasa test stories, NLU held-out F1
	scripts/test.sh

test-postgresql:  ## the whole pytest suite on a PostgreSQL server of its own (CLOSER_TEST_DB=postgresql; ≈ 20 min)
	CLOSER_TEST_DB=postgresql .venv/bin/python -m pytest -q
	CLOSER_TEST_DB=postgresql .venv-rasa/bin/python -m pytest -q -c tests/channels/pytest.ini --confcutdir tests/channels \
	  --rootdir . tests/channels

lint:  ## ruff (lint and format check) on the tree and mypy on the bot/ packages pyproject.toml lists
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/mypy

train:  ## train the Rasa model (only if domain, config or data changed)
	. scripts/business.sh && .venv-rasa/bin/rasa train --domain "$$CLOSER_BUSINESS_DIR/domain.yml" \
	  --config "$$CLOSER_BUSINESS_DIR/config.yml" --data "$$CLOSER_BUSINESS_DIR/data" --out models --fixed-model-name "$$CLOSER_BUSINESS_NAME"

validate:  ## rasa data validate
	. scripts/business.sh && .venv-rasa/bin/rasa data validate --fail-on-warnings --domain "$$CLOSER_BUSINESS_DIR/domain.yml" \
	  --config "$$CLOSER_BUSINESS_DIR/config.yml" --data "$$CLOSER_BUSINESS_DIR/data"

shell:  ## chat in the terminal (start `make actions` in another terminal first)
	. scripts/secrets.sh && .venv-rasa/bin/rasa shell --model "$$CLOSER_MODEL"

test-stories:  ## rasa test core on tests/stories/ (test stories, also those saved from the console)
	. scripts/business.sh && .venv-rasa/bin/rasa test core --stories "$$CLOSER_BUSINESS_DIR/tests/stories" --model "$$CLOSER_MODEL" \
	  --fail-on-prediction-errors --out results/core

nlu-eval:  ## NLU intent F1 on a held-out 20% split
	scripts/nlu_heldout.sh

translations:  ## compile the gettext catalogs bot/texts/locale/*/LC_MESSAGES/closer.po (setup does it too)
	.venv/bin/pybabel compile -d bot/texts/locale -D closer --statistics

translations-extract:  ## collect the texts to translate into closer.pot and merge them into every language's .po
	.venv/bin/pybabel extract -F babel.cfg --no-location --sort-by-file -o bot/texts/locale/closer.pot .
	.venv/bin/pybabel update -i bot/texts/locale/closer.pot -d bot/texts/locale -D closer --no-fuzzy-matching

load-knowledge:  ## migrate the DB and import knowledge/catalog.csv and stock.csv
	.venv/bin/python -m bot load-knowledge

index:  ## re-index knowledge/*.md and the catalog in Chroma (only what changed; log in var/index-logs/)
	.venv/bin/python -m bot index

llm:  ## a real local LLM (llama.cpp + Qwen2.5-Coder-1.5B, hash-pinned packages) on :8081 for development and tests
	scripts/llm.sh serve

actions:  ## run only the action server (:5055)
	. scripts/secrets.sh && .venv/bin/python -m bot.action_server --actions actions --port 5055

rasa:  ## run only the Rasa server (:5005; CLOSER_CREDENTIALS picks the channels file, CLOSER_ENDPOINTS the endpoints)
	. scripts/secrets.sh && .venv-rasa/bin/python -m rasa run --enable-api --jwt-secret "$$CLOSER_RASA_JWT_SECRET" --port 5005 \
	  --model "$$CLOSER_MODEL" --endpoints $${CLOSER_ENDPOINTS:-endpoints.yml} --credentials $${CLOSER_CREDENTIALS:-credentials.yml} \
	  --logging-config-file logging.yml

telegram-poll:  ## Telegram without a public URL: relay getUpdates to the local Rasa webhook (README)
	.venv-rasa/bin/python -m connectors.telegram_polling --credentials $${CLOSER_CREDENTIALS:-credentials.channels.yml} --rasa-url http://localhost:5005

console:  ## run only the console with the web chat (:8000)
	.venv/bin/python -m bot console

bench:  ## REST turn latency and throughput vs Rasa's init bot, train time, RSS (takes minutes)
	.venv/bin/python -m bench.turn_latency

bench-load:  ## Locust: 200 web chat + 50 Telegram/WhatsApp customers, 1 process on SQLite vs make run-prod (replicas killed mid-run)
	.venv/bin/python -m bench.load

bench-retrieval:  ## hit@k/MRR of BM25, dense, hybrid; query latency; IKEA catalog indexing; WANDS top 5
	.venv/bin/python -m bench.retrieval

bench-webhooks:  ## Telegram/WhatsApp webhook ack latency (50 senders, 1,000 deliveries, 20% replays), alone and during web chat traffic
	.venv/bin/python -m bench.webhooks

bench-follow-ups:  ## 10,000 follow-ups scheduled, 1,000 firing in one minute: drain time, DB growth, live turn latency ratio
	.venv/bin/python -m bench.follow_ups

bench-console:  ## the console's conversation list with 10,000 conversations (≈ 200,000 events), with and without its indexes
	.venv/bin/python -m bench.console_list

bench-nlu:  ## held-out and HWU64 intent/entity F1 of the sparse pipeline alone, + e5-small (ours), + all-MiniLM-L6-v2
	.venv/bin/python -m bench.nlu

bench-language:  ## language detection on 200+ labelled short chat messages: Closer's rule vs lingua and py3langid alone
	.venv/bin/python -m bench.language_detection

bench-quote:  ## quote PDF render time and size for 1 and 50 line items
	.venv/bin/python -m bench.quote_pdf

bench-grounding:  ## LLM post-check (old vs new: correct kept, wrong stopped) and rephraser on the local model at CLOSER_LLM_API_BASE
	.venv/bin/python -m bench.grounding
