"""The Rasa server's metrics (connectors.metrics): Rasa's event broker counting turns by channel and intent and
timing them from Rasa's event timestamps, served on CLOSER_METRICS_PORT."""

import asyncio
import socket
import urllib.request

import pytest
from prometheus_client import REGISTRY
from rasa.utils.endpoints import EndpointConfig

from connectors.metrics import MetricsEventBroker


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0


@pytest.fixture(scope="module")
def metrics_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_turns_are_counted_by_channel_and_intent_and_timed(
    metrics_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLOSER_METRICS_PORT", str(metrics_port))
    broker = await MetricsEventBroker.from_endpoint_config(EndpointConfig(type="x", domain="domain.yml"))
    greets, others = (
        sample("closer_turns_total", channel="telegram", intent="greet"),
        sample("closer_turns_total", channel="telegram", intent="other"),
    )
    seconds = sample("closer_turn_seconds_sum", channel="telegram")
    count = sample("closer_turn_seconds_count", channel="telegram")

    def user(sender: str, intent: str, at: float) -> dict:
        return {"sender_id": sender, "event": "user", "timestamp": at, "input_channel": "telegram",
                "text": "hello", "parse_data": {"intent": {"name": intent, "confidence": 0.9}}}  # fmt: skip

    for event in [
        user("a", "greet", 100.0),
        user("b", "/made_up_by_a_customer", 100.2),  # not in the domain: no series of its own
        {"sender_id": "a", "event": "action", "name": "utter_greet", "timestamp": 100.3},
        {"sender_id": "a", "event": "action", "name": "action_listen", "timestamp": 100.5},
        {"sender_id": "b", "event": "action", "name": "action_listen", "timestamp": 101.2},
        {"sender_id": "c", "event": "action", "name": "action_listen", "timestamp": 102.0},  # no user message: none
    ]:
        broker.publish(event)

    assert sample("closer_turns_total", channel="telegram", intent="greet") - greets == 1
    assert sample("closer_turns_total", channel="telegram", intent="other") - others == 1
    assert sample("closer_turn_seconds_count", channel="telegram") - count == 2
    assert sample("closer_turn_seconds_sum", channel="telegram") - seconds == pytest.approx(0.5 + 1.0)
    url = f"http://127.0.0.1:{metrics_port}/metrics"
    page = (await asyncio.to_thread(lambda: urllib.request.urlopen(url, timeout=5).read())).decode()
    assert 'closer_turns_total{channel="telegram",intent="greet"}' in page
    assert "made_up" not in page
