"""Prometheus metrics of the action server and the console (prometheus-client), served by each process on its own
port when ``CLOSER_METRICS_PORT`` is set (:func:`serve`; unset, the default: nothing listens). Names follow
Prometheus' conventions: seconds and totals in the name, labels of bounded cardinality (action and job names,
outcomes, retrieval modes; never a conversation id or a customer's words).

Action server: ``closer_action_seconds{action, outcome}`` (a custom action's run, ``ok`` or ``error``),
``closer_retrieval_seconds{mode}`` (one knowledge search by its mode, or ``rank``: products ranked by meaning),
``closer_llm_calls_total{outcome}``, ``closer_llm_seconds`` (an answered call), ``closer_llm_tokens_total{kind}``
(``prompt``, ``completion``), ``closer_llm_cost_usd_total`` (litellm's price; nothing for a model without one).
Console: ``closer_scheduler_job_runs_total{job, outcome}``, ``closer_scheduler_job_seconds{job}``, and
``closer_escalations_open{status}`` (``pending``, ``in_progress``: counted in the business DB every
:data:`ESCALATIONS_REFRESH_S` seconds by :func:`bot.handoff.escalation.report_open`; every console replica reports
the same numbers, so a dashboard takes their ``max``). The Rasa server's metrics are connectors.metrics's.
"""

import logging

from prometheus_client import Counter, Gauge, Histogram, start_http_server

log = logging.getLogger(__name__)

ACTION_SECONDS = Histogram(
    "closer_action_seconds", "Seconds a custom action took, by action and outcome.", ["action", "outcome"]
)
RETRIEVAL_SECONDS = Histogram("closer_retrieval_seconds", "Seconds one retrieval took, by mode.", ["mode"])
LLM_CALLS = Counter("closer_llm_calls", "LLM calls, by outcome (ok, error).", ["outcome"])
LLM_SECONDS = Histogram(
    "closer_llm_seconds", "Seconds an answered LLM call took.", buckets=(0.25, 0.5, 1, 2, 4, 8, 16, 32, 64)
)
LLM_TOKENS = Counter("closer_llm_tokens", "LLM tokens, by kind (prompt, completion).", ["kind"])
LLM_COST = Counter("closer_llm_cost_usd", "LLM cost in US dollars, as litellm prices the calls.")
JOB_RUNS = Counter(
    "closer_scheduler_job_runs", "Scheduled job runs, by job and outcome (ok, failed).", ["job", "outcome"]
)
JOB_SECONDS = Histogram(
    "closer_scheduler_job_seconds", "Seconds a scheduled job run took.", ["job"], buckets=(0.1, 1, 10, 60, 300, 1800)
)

ESCALATIONS_OPEN = Gauge("closer_escalations_open", "Escalations not handed back yet, by status.", ["status"])
ESCALATIONS_REFRESH_S = 30.0


def serve(port: int | None) -> None:
    """Serve the process's metrics on ``GET /metrics`` at ``port`` (all interfaces; a thread of prometheus-client's),
    or nothing for None. Raises OSError when the port is taken."""
    if port is None:
        return
    start_http_server(port)
    log.info("Prometheus metrics on port %d", port)
