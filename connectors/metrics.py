"""Prometheus metrics of the Rasa server (prometheus-client), served on ``GET /metrics`` at ``CLOSER_METRICS_PORT``
when it is set (unset: counted, not served). The action server's and the console's are bot.observability.metrics's.

- ``closer_turns_total{channel, intent}``: user messages, by input channel (``rest``, ``telegram``, ``whatsapp``,
  …) and the intent NLU gave them (an intent the domain does not list counts as ``other``, so a customer typing
  ``/anything`` adds no series);
- ``closer_turn_seconds{channel}``: from the user message to the bot listening again (Rasa's event timestamps: NLU,
  every action and its calls to the action server);
- ``closer_webhook_deliveries_total{channel, outcome}``: the durable webhooks' deliveries (connectors.webhook):
  ``accepted``, ``duplicate`` (a platform's retry, acknowledged and dropped), ``over_limit`` (acknowledged, no turn),
  ``not_stored`` (answered 503: the platform retries), and webhook calls ``refused`` (bad signature or body).

Turns are counted by :class:`MetricsEventBroker`, Rasa's event broker (``event_broker`` in the endpoints files),
which sees each event once, when the tracker store saves it.
"""

import logging
import os
from asyncio import AbstractEventLoop
from typing import Any

from prometheus_client import Counter, Histogram, start_http_server
from rasa.core.brokers.broker import EventBroker
from rasa.shared.core.domain import Domain
from rasa.utils.endpoints import EndpointConfig

from bot.contracts.business import business_dir

log = logging.getLogger(__name__)

TURNS = Counter("closer_turns", "User messages, by input channel and intent.", ["channel", "intent"])
TURN_SECONDS = Histogram(
    "closer_turn_seconds",
    "Seconds from a user message to the bot listening again, by input channel.",
    ["channel"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 16, 32),
)
WEBHOOK_DELIVERIES = Counter(
    "closer_webhook_deliveries",
    "Webhook deliveries, by channel and outcome (accepted, duplicate, over_limit, not_stored, refused).",
    ["channel", "outcome"],
)
OTHER_INTENT = "other"
OPEN_TURNS_KEPT = 10_000  # senders whose last message has not been answered yet (a paused conversation's stay)


class MetricsEventBroker(EventBroker):
    """Rasa's event broker that counts turns into the metrics above (``event_broker: {type:
    connectors.metrics.MetricsEventBroker}``); it forwards nothing elsewhere."""

    def __init__(self, intents: set[str]) -> None:
        self.intents = intents
        self._started: dict[str, tuple[str, float]] = {}  # sender id → channel, timestamp of its last user message

    @classmethod
    async def from_endpoint_config(
        cls, broker_config: EndpointConfig, event_loop: AbstractEventLoop | None = None
    ) -> "MetricsEventBroker":
        """The broker with the intents of the domain file ``domain`` (default: the business's ``domain.yml``,
        :func:`bot.contracts.business.business_dir`); serves the metrics on ``CLOSER_METRICS_PORT`` when set.
        Raises OSError when the port is taken, rasa's InvalidDomain for a broken domain file."""
        domain = Domain.load(broker_config.kwargs.get("domain") or business_dir() / "domain.yml")
        port = os.environ.get("CLOSER_METRICS_PORT")
        if port:
            start_http_server(int(port))
            log.info("Prometheus metrics on port %s", port)
        return cls(set(domain.intents))

    def publish(self, event: dict[str, Any]) -> None:
        """Count a user message, or observe a turn's seconds when the bot listens again after one."""
        sender_id = event.get("sender_id", "")
        if event.get("event") == "user":
            channel = event.get("input_channel") or "unknown"
            intent = ((event.get("parse_data") or {}).get("intent") or {}).get("name")
            TURNS.labels(channel, intent if intent in self.intents else OTHER_INTENT).inc()
            self._started.pop(sender_id, None)
            self._started[sender_id] = (channel, float(event.get("timestamp") or 0))
            if len(self._started) > OPEN_TURNS_KEPT:
                del self._started[next(iter(self._started))]  # the oldest
        elif event.get("event") == "action" and event.get("name") == "action_listen":
            started = self._started.pop(sender_id, None)
            if started is not None:
                channel, at = started
                TURN_SECONDS.labels(channel).observe(max(0.0, float(event.get("timestamp") or at) - at))
