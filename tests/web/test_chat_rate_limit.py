"""The web chat's rate limit (``POST /api/chat`` in bot.web.chat): per sender and per client IP address,
429 with ``Retry-After`` and a polite message, on a clock the tests move, against a local server standing
in for Rasa's REST channel."""

import logging
from dataclasses import dataclass, field

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from cryptography.fernet import Fernet

from bot.core.settings import Settings
from bot.web.app import create_app
from bot.web.chat import ip_limiter_key, sender_limiter_key
from connectors.ratelimit import SLOW_DOWN_REPLY, RateLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class FakeRest:
    """Rasa's REST channel answering "You said: …", or 429 with Retry-After 7 while ``refuse``; and the
    tracker the console asks for ``paused``. ``said``: the (sender, message) pairs it answered."""

    said: list[tuple[str, str]] = field(default_factory=list)
    refuse: bool = False
    url: str = ""

    async def webhook(self, request: web.Request) -> web.Response:
        body = await request.json()
        if self.refuse:
            return web.json_response(
                [{"recipient_id": body["sender"], "text": "slow down"}], status=429, headers={"Retry-After": "7"}
            )
        self.said.append((body["sender"], body["message"]))
        return web.json_response([{"recipient_id": body["sender"], "text": f"You said: {body['message']}"}])

    async def tracker(self, _: web.Request) -> web.Response:
        return web.json_response({"paused": False})


@pytest.fixture
async def chat(db_url, rasa):
    """A console client whose limits are 2 messages per sender and 3 per IP address per 60 s; yields
    (client, clock)."""
    clock = Clock()
    settings = Settings(
        database_url=db_url, rasa_url=rasa.url, rasa_timeout=5, console_secret_key=Fernet.generate_key().decode()
    )
    app = create_app(settings)
    app[sender_limiter_key] = RateLimiter(2, 60, clock)
    app[ip_limiter_key] = RateLimiter(3, 60, clock)
    async with TestClient(TestServer(app)) as client:
        yield client, clock


async def say(client: TestClient, sender: str, message: str):
    return await client.post("/api/chat", json={"sender": sender, "message": message})


async def test_a_sender_over_the_limit_gets_429_with_retry_after_and_a_polite_message(chat, rasa, caplog):
    client, clock = chat
    with caplog.at_level(logging.DEBUG, logger="bot.web.chat"):
        allowed = [await say(client, "customer-one", f"secret {n}") for n in range(2)]
        refused = await say(client, "customer-one", "secret 2")
    assert [r.status for r in allowed] == [200, 200]
    assert refused.status == 429 and refused.headers["Retry-After"] == "30"
    assert await refused.json() == {"messages": [{"text": SLOW_DOWN_REPLY}]}
    assert rasa.said == [("web-customer-one", "secret 0"), ("web-customer-one", "secret 1")]
    [warning] = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and r.name == "bot.web.chat"]
    assert "conversation web-customer-one is over the rate limit of 2 messages per 60 s" in warning
    assert not any("secret" in r.getMessage() for r in caplog.records)
    clock.now += 60
    assert (await say(client, "customer-one", "back again")).status == 200


async def test_one_ip_address_is_limited_across_senders(chat, rasa):
    client, clock = chat
    statuses = [(await say(client, sender, "hi")).status for sender in ("sender-aaaa", "sender-bbbb", "sender-cccc")]
    refused = await say(client, "sender-dddd", "hi")  # a new sender id, the same address
    assert statuses == [200, 200, 200]
    assert refused.status == 429 and refused.headers["Retry-After"] == "20"
    assert (await refused.json())["messages"] == [{"text": SLOW_DOWN_REPLY}]
    assert len(rasa.said) == 3
    clock.now += 21
    assert (await say(client, "sender-dddd", "hi")).status == 200


async def test_malformed_messages_do_not_count(chat):
    client, _ = chat
    for _ in range(5):
        assert (await say(client, "customer-two", "   ")).status == 400
    assert (await say(client, "customer-two", "hello")).status == 200


async def test_a_429_from_rasas_rest_channel_is_passed_on(chat, rasa):
    client, _ = chat
    rasa.refuse = True
    refused = await say(client, "customer-three", "hello")
    assert refused.status == 429 and refused.headers["Retry-After"] == "7"
    assert await refused.json() == {"messages": [{"text": SLOW_DOWN_REPLY}]}
