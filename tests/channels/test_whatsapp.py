"""The WhatsApp channel (connectors/whatsapp.py) in a real Sanic server, registered the way Rasa
registers channels, against a local server speaking Meta's Graph API (tests/fakes/graph_server.py), with
a migrated business DB. Webhook bodies follow Meta's documented payloads. ``Bot`` stands in for
Rasa's agent: it records each UserMessage and answers through the message's output channel."""

import asyncio
import hashlib
import hmac
import itertools
import json
import logging
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from aiohttp import web
from aiohttp.test_utils import TestServer
from rasa.core.channels.channel import UserMessage, register
from sanic import Sanic

from connectors.config import ChannelConfigError
from connectors.logs import ref
from connectors.ratelimit import SLOW_DOWN_REPLY
from connectors.webhook import LOCATION_REPLY, RATE_LIMITED, UNSUPPORTED_REPLY
from connectors.whatsapp import WhatsAppInput
from tests import postgres
from tests.fakes.graph_server import FakeGraph

APP_SECRET = "test-app-secret"
VERIFY_TOKEN = "test-verify-token"
TEMPLATE = "closer_follow_up"
WABA_ID = "102290129340398"
CUSTOMER = "971501112233"
OTHER = "971504445566"
PDF = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n" + bytes(range(256)) * 40 + b"\n%%EOF\n"
_wamids = itertools.count(1)
# Several Sanic apps in one process: Sanic rewrites its HTTP protocol methods at each app's start-up
# ("touchup"), which fails the second time unless test mode keeps the originals (as sanic-testing does).
# Set at import, before any test starts an app.
Sanic.test_mode = True


def wamid() -> str:
    return f"wamid.HBgLOTcxNTAxMTEyMjMzFQIAEhgU{next(_wamids):08d}{uuid.uuid4().hex[:8]}"


def message(wa_id: str, kind: str, content: Any, at: float | None = None, **extra: Any) -> dict[str, Any]:
    """One entry of ``value.messages`` as Meta documents it."""
    content = {} if content is None else {kind: content}
    return {"from": wa_id, "id": wamid(), "timestamp": str(int(at or time.time())), "type": kind, **content, **extra}


def text(wa_id: str, body: str, at: float | None = None) -> dict[str, Any]:
    return message(wa_id, "text", {"body": body}, at)


def pressed(wa_id: str, reply_type: str, button_id: str, title: str, context_id: str) -> dict[str, Any]:
    return message(
        wa_id,
        "interactive",
        {"type": reply_type, reply_type: {"id": button_id, "title": title}},
        context={"from": "15550783881", "id": context_id},
    )


def status(message_id: str, wa_id: str, state: str, at: int, **extra: Any) -> dict[str, Any]:
    return {"id": message_id, "status": state, "timestamp": str(at), "recipient_id": wa_id, **extra}


def change(
    messages=(), statuses=(), names: dict[str, str] | None = None, phone_number_id: str = FakeGraph.phone_number_id
) -> dict[str, Any]:
    value: dict[str, Any] = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550783881", "phone_number_id": phone_number_id},
    }
    if names:
        value["contacts"] = [{"profile": {"name": name}, "wa_id": wa_id} for wa_id, name in names.items()]
    if messages:
        value["messages"] = list(messages)
    if statuses:
        value["statuses"] = list(statuses)
    return {"value": value, "field": "messages"}


def webhook(*entries: list[dict[str, Any]]) -> dict[str, Any]:
    """``entries``: each a list of changes."""
    return {
        "object": "whatsapp_business_account",
        "entry": [{"id": WABA_ID, "changes": changes} for changes in entries],
    }


def incoming(*messages: dict[str, Any], name: str = "Amira Haddad") -> dict[str, Any]:
    return webhook([change(messages, names={m["from"]: name for m in messages})])


def sign(raw: bytes, secret: str = APP_SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()


class Bot:
    """Stands in for Rasa's agent (``on_new_message``): records each message, then sends the replies
    ``answer(message)`` returns (Rasa message dicts) through the message's output channel."""

    def __init__(self, answer: Callable[[UserMessage], list[dict[str, Any]]] | None = None) -> None:
        self.messages: list[UserMessage] = []
        self.answer = answer or (lambda m: [{"text": f"You said: {m.text}"}])
        self.release = threading.Event()  # a turn runs on the connectors' turn thread, not the test's loop
        self.release.set()

    async def __call__(self, user_message: UserMessage) -> None:
        await asyncio.to_thread(self.release.wait)
        self.messages.append(user_message)
        for reply in self.answer(user_message):
            await user_message.output_channel.send_response(user_message.sender_id, reply)

    def texts(self, sender_id: str | None = None) -> list[str]:
        return [m.text for m in self.messages if sender_id is None or m.sender_id == sender_id]


@dataclass
class Channel:
    connector: WhatsAppInput
    bot: Bot
    server: Any
    base_url: str
    stopped: bool = field(default=False)

    @property
    def url(self) -> str:
        return f"{self.base_url}/webhooks/whatsapp/webhook"

    async def post(
        self, update: Any, signature: str | None = None, client: httpx.AsyncClient | None = None
    ) -> httpx.Response:
        """POST a webhook body (a dict, or raw bytes), signed with the app secret unless
        ``signature`` is given ("" sends no signature header)."""
        raw = update if isinstance(update, bytes) else json.dumps(update).encode()
        headers = {"Content-Type": "application/json"}
        signature = sign(raw) if signature is None else signature
        if signature:
            headers["X-Hub-Signature-256"] = signature
        if client is not None:
            return await client.post(self.url, content=raw, headers=headers)
        async with httpx.AsyncClient() as new_client:
            return await new_client.post(self.url, content=raw, headers=headers)

    async def settle(self) -> None:
        """Wait until every accepted message has been processed."""
        await self.connector.queues.drain()

    async def stop(self) -> None:
        if not self.stopped:
            self.stopped = True
            await self.server.before_stop()
            self.server.close()
            await self.server.wait_closed()
            await self.server.after_stop()


def credentials(graph: FakeGraph, **overrides: Any) -> dict[str, Any]:
    return {
        "access_token": graph.token,
        "app_secret": APP_SECRET,
        "verify_token": VERIFY_TOKEN,
        "phone_number_id": graph.phone_number_id,
        "template_name": TEMPLATE,
        "template_language": "en",
        "api_base": graph.api_base,
        "api_version": graph.version,
        "timeout_s": 5,
        **overrides,
    }


@pytest.fixture
async def graph() -> FakeGraph:
    server = await FakeGraph().start()
    yield server
    await server.close()


@pytest.fixture
async def files() -> str:
    """A local HTTP server with the quote PDF, an HTML page and nothing else; its base URL."""
    app = web.Application()
    app.router.add_get("/quotes/Q-2026-0007.pdf", lambda _: web.Response(body=PDF, content_type="application/pdf"))
    app.router.add_get("/quotes/preview", lambda _: web.Response(text="<html>quote</html>", content_type="text/html"))
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield str(server.make_url("")).rstrip("/")
    await server.close()


@pytest.fixture
async def start(database_url, graph):
    """Starts the channel in a Sanic server on a free loopback port: ``await start(bot, **credentials)``."""
    running: list[Channel] = []

    async def start_channel(bot: Bot | None = None, **overrides: Any) -> Channel:
        connector = WhatsAppInput.from_credentials(credentials(graph, **overrides))
        bot = bot or Bot()
        app = Sanic(f"whatsapp_test_{uuid.uuid4().hex}")
        app.ctx.agent = SimpleNamespace(handle_message=bot)  # what Rasa's register() hands messages to
        register([connector], app, route="/webhooks/")
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sock.listen(128)
        server = await app.create_server(sock=sock, return_asyncio_server=True, access_log=False)
        await server.startup()
        await server.before_start()
        await server.after_start()
        await server.start_serving()
        channel = Channel(connector, bot, server, f"http://127.0.0.1:{sock.getsockname()[1]}")
        running.append(channel)
        return channel

    yield start_channel
    for channel in reversed(running):
        await channel.stop()


def rows(database_url: str, table: str, **where: Any) -> list[Any]:
    engine = sa.create_engine(database_url)
    try:
        with engine.connect() as connection:
            selected = sa.Table(table, sa.MetaData(), autoload_with=connection)
            query = sa.select(selected).where(*(selected.c[k] == v for k, v in where.items()))
            return connection.execute(query.order_by(*selected.primary_key)).all()
    finally:
        engine.dispose()


def utc(at: float) -> datetime:
    """How the database gives back a UTC time stored by the channel: naive from SQLite, aware from PostgreSQL."""
    stored = datetime.fromtimestamp(int(at), timezone.utc)
    return stored if postgres.enabled() else stored.replace(tzinfo=None)


def bodies(graph: FakeGraph, wa_id: str) -> list[str]:
    """What the customer saw, in order: text and interactive bodies, ``template:<name>``, ``document:<filename>``."""
    seen = []
    for sent in graph.sent(wa_id):
        kind = sent["type"]
        seen.append(
            sent["text"]["body"]
            if kind == "text"
            else sent["interactive"]["body"]["text"]
            if kind == "interactive"
            else f"template:{sent['template']['name']}"
            if kind == "template"
            else f"{kind}:{sent[kind].get('filename') or sent[kind].get('link')}"
        )
    return seen


# --- webhook verification and authentication ---------------------------------------------------


async def test_verification_answers_the_challenge_for_the_verify_token(start) -> None:
    channel = await start()
    params = {"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "1158201444"}
    async with httpx.AsyncClient() as client:
        response = await client.get(channel.url, params=params)
        wrong_token = await client.get(channel.url, params={**params, "hub.verify_token": "guess"})
        wrong_mode = await client.get(channel.url, params={**params, "hub.mode": "unsubscribe"})
        no_token = await client.get(channel.url, params={"hub.mode": "subscribe", "hub.challenge": "1"})
    assert response.status_code == 200 and response.text == "1158201444"
    assert [r.status_code for r in (wrong_token, wrong_mode, no_token)] == [403, 403, 403]
    assert "1158201444" not in wrong_token.text


@pytest.mark.parametrize("signature", ["", sign(b"another body"), None], ids=["missing", "other-body", "other-secret"])
async def test_forged_or_missing_signature_is_refused_and_nothing_stored(
    start, graph, database_url, signature, caplog
) -> None:
    channel = await start()
    update = incoming(text(CUSTOMER, "hello"))
    raw = json.dumps(update).encode()
    with caplog.at_level(logging.WARNING, logger="connectors.whatsapp"):
        forged = sign(raw, "not-the-app-secret") if signature is None else signature
        response = await channel.post(raw, signature=forged)
    await channel.settle()
    assert response.status_code == 401
    assert "127.0.0.1" in caplog.text
    assert rows(database_url, "channel_deliveries") == [] and rows(database_url, "channel_customers") == []
    assert channel.bot.messages == [] and graph.requests == []


async def test_body_over_the_limit_gets_413_and_malformed_json_400(start, database_url) -> None:
    channel = await start(max_body_bytes=2048)
    too_big = await channel.post(incoming(text(CUSTOMER, "x" * 3000)))
    malformed = await channel.post(b'{"object": "whatsapp_business_account", "entry": [')
    not_an_object = await channel.post(b'["whatsapp_business_account"]')
    assert (too_big.status_code, malformed.status_code, not_an_object.status_code) == (413, 400, 400)
    assert rows(database_url, "channel_deliveries") == [] and channel.bot.messages == []


async def test_another_object_or_phone_number_is_acknowledged_and_ignored(start, database_url) -> None:
    channel = await start()
    page = await channel.post({"object": "page", "entry": [{"id": "1", "changes": []}]})
    other_number = await channel.post(webhook([change([text(CUSTOMER, "hi")], phone_number_id="999999999999")]))
    await channel.settle()
    assert page.status_code == other_number.status_code == 200
    assert rows(database_url, "channel_deliveries") == [] and channel.bot.messages == []


# --- inbound messages ---------------------------------------------------------------------------


async def test_a_text_reaches_rasa_with_metadata_and_the_reply_reaches_the_customer(start, graph, database_url) -> None:
    channel = await start()
    graph.customer_wrote(CUSTOMER)
    sent_at = int(time.time()) - 5
    inbound = text(CUSTOMER, "Do you deliver to Sharjah?", at=sent_at)
    response = await channel.post(incoming(inbound, name="Amira Haddad"))
    await channel.settle()

    assert response.status_code == 200
    [user_message] = channel.bot.messages
    assert (user_message.text, user_message.sender_id, user_message.input_channel, user_message.message_id) == (
        "Do you deliver to Sharjah?",
        f"whatsapp-{CUSTOMER}",
        "whatsapp",
        inbound["id"],
    )
    assert user_message.metadata == {
        "channel": "whatsapp",
        "whatsapp": {
            "wa_id": CUSTOMER,
            "name": "Amira Haddad",
            "message_id": inbound["id"],
            "message_type": "text",
            "timestamp": str(sent_at),
            "phone_number_id": graph.phone_number_id,
        },
    }
    [reply] = graph.sent(CUSTOMER)
    assert reply["text"] == {"preview_url": False, "body": "You said: Do you deliver to Sharjah?"}
    assert reply["messaging_product"] == "whatsapp" and reply["to"] == CUSTOMER
    request = graph.requests[-1]
    assert request.path == f"/{graph.version}/{graph.phone_number_id}/messages"
    assert request.authorization == f"Bearer {graph.token}"
    [customer] = rows(database_url, "channel_customers")
    assert (customer.user_id, customer.name, customer.last_inbound_at) == (CUSTOMER, "Amira Haddad", utc(sent_at))
    [delivery] = rows(database_url, "channel_deliveries")
    assert (delivery.delivery_id, delivery.sender_id, delivery.error) == (inbound["id"], f"whatsapp-{CUSTOMER}", None)
    assert delivery.processed_at is not None
    [sent] = rows(database_url, "channel_messages")
    assert (sent.message_id, sent.recipient_id, sent.kind, sent.status) == (reply["id"], CUSTOMER, "text", "sent")


async def test_a_batch_of_entries_changes_messages_and_statuses_is_processed_once_in_order(
    start, graph, database_url
) -> None:
    channel = await start()
    for wa_id in (CUSTOMER, OTHER):
        graph.customer_wrote(wa_id)
    await channel.connector.store.saw_customer("whatsapp", CUSTOMER, "Amira Haddad")
    await channel.connector.get_output_channel().send_response(f"whatsapp-{CUSTOMER}", {"text": "Earlier"})
    [earlier] = [m["id"] for m in graph.sent(CUSTOMER)]
    now = int(time.time())
    names = {CUSTOMER: "Amira Haddad", OTHER: "Omar Khan"}
    a1, a2, a3 = (text(CUSTOMER, f"A{i}", now - 10 + i) for i in (1, 2, 3))
    b1, b2, b3 = (text(OTHER, f"B{i}", now - 10 + i) for i in (1, 2, 3))
    batch = webhook(
        [
            change([a1, a2], names={CUSTOMER: names[CUSTOMER]}),
            change([b1], [status(earlier, CUSTOMER, "delivered", now - 8)], names={OTHER: names[OTHER]}),
        ],
        [
            change([a3, b2, b3], names=names),
            change(statuses=[status(earlier, CUSTOMER, "read", now - 7)]),
            {"value": {"messaging_product": "whatsapp"}, "field": "account_update"},
        ],
    )

    first = await channel.post(batch)
    await channel.settle()
    again = await channel.post(batch)
    await channel.settle()

    assert first.status_code == again.status_code == 200
    assert channel.bot.texts(f"whatsapp-{CUSTOMER}") == ["A1", "A2", "A3"]
    assert channel.bot.texts(f"whatsapp-{OTHER}") == ["B1", "B2", "B3"]
    assert bodies(graph, CUSTOMER) == ["Earlier", "You said: A1", "You said: A2", "You said: A3"]
    assert bodies(graph, OTHER) == ["You said: B1", "You said: B2", "You said: B3"]
    deliveries = rows(database_url, "channel_deliveries")
    assert sorted(d.delivery_id for d in deliveries) == sorted(m["id"] for m in (a1, a2, a3, b1, b2, b3))
    assert all(d.processed_at is not None and d.error is None for d in deliveries)
    assert {c.user_id: c.name for c in rows(database_url, "channel_customers")} == names
    [tracked] = rows(database_url, "channel_messages", message_id=earlier)
    assert (tracked.status, tracked.delivered_at, tracked.read_at) == ("read", utc(now - 8), utc(now - 7))


async def test_the_same_delivery_100_times_at_once_is_processed_once(start, graph, database_url) -> None:
    channel = await start()
    graph.customer_wrote(CUSTOMER)
    raw = json.dumps(incoming(text(CUSTOMER, "Price of oak flooring?"))).encode()
    async with httpx.AsyncClient(limits=httpx.Limits(max_connections=100)) as client:
        responses = await asyncio.gather(*(channel.post(raw, client=client) for _ in range(100)))
    await channel.settle()
    assert [r.status_code for r in responses] == [200] * 100
    assert channel.bot.texts() == ["Price of oak flooring?"]
    assert bodies(graph, CUSTOMER) == ["You said: Price of oak flooring?"]
    assert len(rows(database_url, "channel_deliveries")) == 1


async def test_quick_messages_from_one_customer_are_all_processed_in_order(start, graph) -> None:
    channel = await start()
    graph.customer_wrote(CUSTOMER)
    words = [f"message {i}" for i in range(12)]
    async with httpx.AsyncClient() as client:
        for word in words:
            assert (await channel.post(incoming(text(CUSTOMER, word)), client=client)).status_code == 200
    await channel.settle()
    assert channel.bot.texts() == words
    assert bodies(graph, CUSTOMER) == [f"You said: {word}" for word in words]


async def test_a_customer_over_the_rate_limit_is_acknowledged_without_a_turn_and_told_once(
    start, graph, database_url, caplog
) -> None:
    channel = await start(rate_limit_messages=2, rate_limit_window_s=30)
    now = [1000.0]
    channel.connector.limiter.clock = lambda: now[0]
    graph.customer_wrote(CUSTOMER)
    graph.customer_wrote(OTHER)
    burst = [text(CUSTOMER, f"secret {i}") for i in range(4)]
    with caplog.at_level(logging.DEBUG, logger="connectors"):
        one_delivery = await channel.post(incoming(*burst[:3]))  # one webhook, three messages
        last = await channel.post(incoming(burst[3]))
        again = await channel.post(incoming(burst[3]))  # Meta's redelivery of a refused message
        other = await channel.post(incoming(text(OTHER, "hello")))
        await channel.settle()
    assert [r.status_code for r in (one_delivery, last, again, other)] == [200] * 4
    assert channel.bot.texts(f"whatsapp-{CUSTOMER}") == ["secret 0", "secret 1"]
    assert bodies(graph, CUSTOMER) == ["You said: secret 0", "You said: secret 1", SLOW_DOWN_REPLY]
    assert bodies(graph, OTHER) == ["You said: hello"]
    deliveries = rows(database_url, "channel_deliveries", sender_id=f"whatsapp-{CUSTOMER}")
    assert [d.error for d in deliveries] == [None, None, RATE_LIMITED, RATE_LIMITED]
    assert all(d.processed_at is not None for d in deliveries)
    warnings = [
        r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and r.name.startswith("connectors")
    ]
    over = f"{ref(f'whatsapp-{CUSTOMER}')} is over the rate limit of 2 messages per 30 s"  # a pseudonym, not the number
    assert len(warnings) == 1 and over in warnings[0]
    assert not any("secret" in r.getMessage() for r in caplog.records)

    now[0] += 30
    assert (await channel.post(incoming(text(CUSTOMER, "back again")))).status_code == 200
    await channel.settle()
    assert channel.bot.texts(f"whatsapp-{CUSTOMER}")[-1] == "back again"


async def test_unreadable_messages_get_a_polite_reply_without_rasa(start, graph, database_url) -> None:
    channel = await start()
    graph.customer_wrote(CUSTOMER)
    media = {"mime_type": "image/jpeg", "sha256": "mVy3W4I8rB9iL3Oa1E4JbZ5q9dGNB1cS", "id": "1003383421387256"}
    shared = [
        {
            "name": {"formatted_name": "Omar Khan", "first_name": "Omar", "last_name": "Khan"},
            "phones": [{"phone": "+971 50 123 4567", "wa_id": "971501234567", "type": "CELL"}],
        }
    ]
    messages = [
        message(CUSTOMER, "sticker", {"mime_type": "image/webp", "sha256": "x", "id": "1", "animated": False}),
        message(CUSTOMER, "location", {"latitude": 25.1972, "longitude": 55.2744, "name": "Dubai Mall"}),
        message(CUSTOMER, "reaction", {"message_id": wamid(), "emoji": "\U0001f44d"}),
        message(CUSTOMER, "audio", {"mime_type": "audio/ogg; codecs=opus", "sha256": "y", "id": "2", "voice": True}),
        message(CUSTOMER, "image", media),
        message(CUSTOMER, "image", {**media, "caption": "Do you have this tile in 60x60?"}),
        message(CUSTOMER, "contacts", shared),
        message(CUSTOMER, "unsupported", None, errors=[{"code": 131051, "title": "Message type unknown"}]),
    ]
    assert (await channel.post(incoming(*messages))).status_code == 200
    await channel.settle()

    assert channel.bot.texts() == ["Do you have this tile in 60x60?", "+971 50 123 4567"]
    assert bodies(graph, CUSTOMER) == [
        UNSUPPORTED_REPLY,
        LOCATION_REPLY,
        UNSUPPORTED_REPLY,
        UNSUPPORTED_REPLY,
        UNSUPPORTED_REPLY,
        "You said: Do you have this tile in 60x60?",
        "You said: +971 50 123 4567",
        UNSUPPORTED_REPLY,
    ]
    assert len(rows(database_url, "channel_deliveries")) == len(messages)
    assert (await channel.post(incoming(*messages))).status_code == 200  # redelivered: no second round of replies
    await channel.settle()
    assert len(graph.sent(CUSTOMER)) == len(messages)


async def test_button_presses_and_template_quick_replies_carry_their_payload(start, graph) -> None:
    long_payload = '/ask_knowledge{"topic": "policies/delivery.md#delivery-charges-' + "and-zones-" * 30 + '"}'
    row_payload = '/ask_knowledge{"topic": "' + "policies/returns.md#" + "r" * 190 + '"}'  # > 200, <= 256
    topics = [
        {"title": "Delivery charges", "payload": long_payload},
        {"title": "Talk to a person", "payload": "/request_human"},
    ]
    rows_ = [{"title": f"Topic {i}", "payload": f'/ask_knowledge{{"topic": "{i}"}}'} for i in range(4)]
    rows_.append({"title": "Returns and refunds policy", "payload": row_payload})

    def answer(m: UserMessage) -> list[dict[str, Any]]:
        if m.text == "help":
            return [{"text": "Which topic?", "buttons": topics}, {"text": "Or pick one:", "buttons": rows_}]
        return [{"text": f"You said: {m.text}"}]

    channel = await start(Bot(answer))
    graph.customer_wrote(CUSTOMER)
    await channel.post(incoming(text(CUSTOMER, "help")))
    await channel.settle()
    button_message, list_message = graph.sent(CUSTOMER)
    [long_button, short_button] = button_message["interactive"]["action"]["buttons"]
    assert long_button["reply"]["id"].startswith("#") and len(long_button["reply"]["id"]) == 33
    assert short_button["reply"] == {"id": "/request_human", "title": "Talk to a person"}
    list_rows = list_message["interactive"]["action"]["sections"][0]["rows"]
    assert list_rows[4]["id"].startswith("#") and list_rows[0]["id"] == '/ask_knowledge{"topic": "0"}'

    await channel.post(
        incoming(
            pressed(CUSTOMER, "button_reply", long_button["reply"]["id"], "Delivery charges", button_message["id"]),
            pressed(CUSTOMER, "button_reply", "/request_human", "Talk to a person", button_message["id"]),
            pressed(CUSTOMER, "list_reply", list_rows[4]["id"], list_rows[4]["title"], list_message["id"]),
            message(
                CUSTOMER,
                "button",
                {"payload": "/affirm", "text": "Yes, call me"},
                context={"from": "15550783881", "id": wamid()},
            ),
            pressed(CUSTOMER, "button_reply", "#" + "0" * 32, "Old button", button_message["id"]),
        )
    )
    await channel.settle()
    assert channel.bot.texts()[1:] == [long_payload, "/request_human", row_payload, "/affirm", "Old button"]
    assert channel.bot.messages[1].metadata["whatsapp"]["context_message_id"] == button_message["id"]


async def test_rasa_failing_on_a_message_is_recorded_and_the_next_one_still_processed(
    start, graph, database_url
) -> None:
    def answer(m: UserMessage) -> list[dict[str, Any]]:
        if m.text == "boom":
            raise RuntimeError("the NLU pipeline fell over")
        return [{"text": f"You said: {m.text}"}]

    channel = await start(Bot(answer))
    graph.customer_wrote(CUSTOMER)
    response = await channel.post(incoming(text(CUSTOMER, "boom"), text(CUSTOMER, "hello")))
    await channel.settle()
    assert response.status_code == 200
    failed, ok = rows(database_url, "channel_deliveries")
    assert "the NLU pipeline fell over" in failed.error and failed.processed_at is not None
    assert ok.error is None and bodies(graph, CUSTOMER) == ["You said: hello"]


# --- statuses -----------------------------------------------------------------------------------


async def test_statuses_arriving_out_of_order_end_in_the_right_state(start, graph, database_url) -> None:
    channel = await start()
    graph.customer_wrote(CUSTOMER)
    await channel.connector.store.saw_customer("whatsapp", CUSTOMER, None)
    await channel.connector.get_output_channel().send_response(f"whatsapp-{CUSTOMER}", {"text": "Your quote is ready"})
    await channel.connector.get_output_channel().send_response(f"whatsapp-{CUSTOMER}", {"text": "Second"})
    first, second = (m["id"] for m in graph.sent(CUSTOMER))
    sent_at = int(time.time()) - 60
    for state, at in (("read", sent_at + 20), ("delivered", sent_at + 10), ("sent", sent_at)):
        assert (await channel.post(webhook([change(statuses=[status(first, CUSTOMER, state, at)])]))).status_code == 200
    failure = {
        "errors": [
            {
                "code": 131026,
                "title": "Message undeliverable",
                "message": "Message undeliverable",
                "error_data": {"details": "Message Undeliverable."},
            }
        ]
    }
    await channel.post(
        webhook(
            [
                change(
                    statuses=[
                        status(second, CUSTOMER, "failed", sent_at + 5, **failure),
                        status(second, CUSTOMER, "deleted", sent_at + 6),
                    ]
                )
            ]
        )
    )

    [read] = rows(database_url, "channel_messages", message_id=first)
    assert (read.status, read.sent_at, read.delivered_at, read.read_at) == (
        "read",
        utc(sent_at),
        utc(sent_at + 10),
        utc(sent_at + 20),
    )
    [failed] = rows(database_url, "channel_messages", message_id=second)
    assert (failed.status, failed.error, failed.failed_at) == (
        "failed",
        "131026 Message undeliverable",
        utc(sent_at + 5),
    )


# --- outbound -----------------------------------------------------------------------------------


async def test_buttons_become_reply_buttons_or_a_list(start, graph, caplog) -> None:
    three = [
        {"title": "Request a callback from sales", "payload": "/request_callback"},
        {"title": "Yes", "payload": "/affirm"},
        {"title": "No", "payload": "/deny"},
    ]
    five = [
        {"title": f"Engineered oak flooring grade {i}", "payload": f'/choose{{"sku": "OAK-{i}"}}'} for i in range(5)
    ]
    twelve = [{"title": f"Size {i}", "payload": f'/size{{"n": {i}}}'} for i in range(12)]
    channel = await start(
        Bot(
            lambda m: [
                {"text": "Shall we call you?", "buttons": three},
                {"text": "Which grade?", "buttons": five},
                {"text": "Which size?", "buttons": twelve},
            ]
        )
    )
    graph.customer_wrote(CUSTOMER)
    with caplog.at_level(logging.WARNING, logger="connectors.whatsapp"):
        await channel.post(incoming(text(CUSTOMER, "show me")))
        await channel.settle()

    buttons, grades, sizes = (m["interactive"] for m in graph.sent(CUSTOMER))
    assert buttons == {
        "type": "button",
        "body": {"text": "Shall we call you?"},
        "action": {
            "buttons": [
                {"type": "reply", "reply": {"id": "/request_callback", "title": "Request a callback…"}},
                {"type": "reply", "reply": {"id": "/affirm", "title": "Yes"}},
                {"type": "reply", "reply": {"id": "/deny", "title": "No"}},
            ]
        },
    }
    assert grades["type"] == "list" and grades["body"] == {"text": "Which grade?"}
    assert grades["action"]["button"] == "Choose"
    assert grades["action"]["sections"][0]["rows"][2] == {
        "id": '/choose{"sku": "OAK-2"}',
        "title": "Engineered oak flooring…",
        "description": "Engineered oak flooring grade 2",
    }
    size_rows = sizes["action"]["sections"][0]["rows"]
    assert [r["title"] for r in size_rows] == [f"Size {i}" for i in range(10)]
    assert "12 buttons" in caplog.text
    assert len(graph.requests) == 3  # the fake accepted each shape


async def test_quote_pdf_is_downloaded_uploaded_and_sent_as_a_document(start, graph, files, database_url) -> None:
    url = f"{files}/quotes/Q-2026-0007.pdf"
    channel = await start(
        Bot(
            lambda m: [
                {
                    "text": "Here is your quote.",
                    "custom": {"document": {"url": url, "filename": "Q-2026-0007.pdf", "caption": "Quote Q-2026-0007"}},
                },
                {"custom": {"answer_id": 12, "sources": ["policies/delivery.md"], "feedback": True}},
                {"custom": {"document": {"url": f"{files}/quotes/preview", "filename": "preview.pdf"}}},
                {"text": "Anything else?"},
            ]
        )
    )
    graph.customer_wrote(CUSTOMER)
    await channel.post(incoming(text(CUSTOMER, "send the quote")))
    await channel.settle()

    [(media_id, media)] = graph.media.items()
    assert (media.data, media.filename, media.mime_type) == (PDF, "Q-2026-0007.pdf", "application/pdf")
    upload = graph.requests[1]
    assert upload.path == f"/{graph.version}/{graph.phone_number_id}/media"
    assert upload.authorization == f"Bearer {graph.token}"
    assert upload.body["messaging_product"] == "whatsapp" and upload.body["type"] == "application/pdf"
    assert bodies(graph, CUSTOMER) == ["Here is your quote.", "document:Q-2026-0007.pdf", "Anything else?"]
    assert graph.sent(CUSTOMER)[1]["document"] == {
        "id": media_id,
        "filename": "Q-2026-0007.pdf",
        "caption": "Quote Q-2026-0007",
    }
    assert [m.kind for m in rows(database_url, "channel_messages")] == ["text", "document", "text"]


async def test_output_channel_sends_outside_a_request(start, graph) -> None:
    channel = await start()
    graph.customer_wrote(CUSTOMER)
    await channel.connector.store.saw_customer("whatsapp", CUSTOMER, "Amira Haddad")
    output = channel.connector.get_output_channel()
    long_text = " ".join(f"word{i}" for i in range(1500))  # about 11,000 characters
    await output.send_response(f"whatsapp-{CUSTOMER}", {"text": "A manager will call you at 4 pm."})
    await output.send_response(f"whatsapp-{CUSTOMER}", {"image": "https://cdn.example.com/tiles/oak.jpg"})
    await output.send_response(f"whatsapp-{CUSTOMER}", {"attachment": "https://cdn.example.com/catalogue.pdf"})
    await output.send_response(f"whatsapp-{CUSTOMER}", {"text": long_text})

    sent = graph.sent(CUSTOMER)
    assert sent[0]["text"]["body"] == "A manager will call you at 4 pm."
    assert sent[1]["image"] == {"link": "https://cdn.example.com/tiles/oak.jpg"}
    assert sent[2]["document"] == {"link": "https://cdn.example.com/catalogue.pdf", "filename": "catalogue.pdf"}
    parts = [m["text"]["body"] for m in sent[3:]]
    assert " ".join(parts) == long_text and len(parts) > 1
    assert all(4000 < len(p) <= 4096 for p in parts[:-1])  # cut at the last space before the limit


async def test_a_refused_send_is_logged_and_the_rest_of_the_turn_still_sent(start, graph, database_url, caplog) -> None:
    channel = await start(Bot(lambda m: [{"text": "First"}, {"text": "Second"}]), access_token="EAAG-revoked")
    graph.customer_wrote(CUSTOMER)
    with caplog.at_level(logging.ERROR, logger="connectors.whatsapp"):
        assert (await channel.post(incoming(text(CUSTOMER, "hi")))).status_code == 200
        await channel.settle()
    assert [r.body["text"]["body"] for r in graph.requests] == ["First", "Second"]
    assert graph.messages == [] and rows(database_url, "channel_messages") == []
    assert caplog.text.count(f"text message to {ref('whatsapp-' + CUSTOMER)} refused with HTTP 401") == 2
    assert CUSTOMER not in caplog.text  # a phone number: logged as its conversation's pseudonym
    assert "EAAG-revoked" not in caplog.text
    [delivery] = rows(database_url, "channel_deliveries")
    assert delivery.processed_at is not None and delivery.error is None


async def test_a_slow_api_times_out_and_the_turn_goes_on(start, graph, caplog) -> None:
    channel = await start(timeout_s=0.2)
    graph.customer_wrote(CUSTOMER)
    await channel.connector.store.saw_customer("whatsapp", CUSTOMER, None)
    graph.delay_s = 1
    with caplog.at_level(logging.ERROR, logger="connectors.whatsapp"):
        await channel.connector.get_output_channel().send_response(f"whatsapp-{CUSTOMER}", {"text": "Hello"})
    assert f"text message to {ref('whatsapp-' + CUSTOMER)} failed" in caplog.text and "TimeoutError" in caplog.text


# --- the 24-hour customer-service window --------------------------------------------------------


async def test_closed_window_sends_the_template_once_and_holds_messages_until_the_customer_writes(
    start, graph, database_url
) -> None:
    channel = await start()
    async with httpx.AsyncClient() as client:  # the fake refuses free-form messages outside the window
        refused = await client.post(
            f"{graph.api_base}/{graph.version}/{graph.phone_number_id}/messages",
            headers={"Authorization": f"Bearer {graph.token}"},
            json={"messaging_product": "whatsapp", "to": CUSTOMER, "type": "text", "text": {"body": "Hello again"}},
        )
    assert refused.status_code == 400 and refused.json()["error"]["code"] == 131047
    graph.requests.clear()
    wrote_at = time.time() - 25 * 3600
    graph.customer_wrote(CUSTOMER, wrote_at)
    await channel.connector.store.saw_customer(
        "whatsapp", CUSTOMER, "Amira Haddad", at=datetime.fromtimestamp(wrote_at, timezone.utc)
    )
    output = channel.connector.get_output_channel()
    await output.send_response(f"whatsapp-{CUSTOMER}", {"text": "Your quote Q-2026-0007 is ready."})
    await output.send_response(
        f"whatsapp-{CUSTOMER}",
        {
            "text": "Shall we deliver?",
            "buttons": [{"title": "Yes", "payload": "/affirm"}, {"title": "No", "payload": "/deny"}],
        },
    )
    await output.send_response(f"whatsapp-{OTHER}", {"text": "Never wrote to us"})

    assert [m["template"] for m in graph.messages] == [{"name": TEMPLATE, "language": {"code": "en"}}] * 2
    assert [m["to"] for m in graph.messages] == [CUSTOMER, OTHER]
    held = rows(database_url, "channel_messages", status="held")
    assert [(h.recipient_id, h.body.get("text")) for h in held] == [
        (CUSTOMER, "Your quote Q-2026-0007 is ready."),
        (CUSTOMER, "Shall we deliver?"),
        (OTHER, "Never wrote to us"),
    ]
    [template] = rows(database_url, "channel_messages", kind="template", recipient_id=CUSTOMER)
    assert (template.template, template.status) == (TEMPLATE, "sent")

    graph.customer_wrote(CUSTOMER)
    await channel.post(incoming(text(CUSTOMER, "Hi, I'm back")))
    await channel.settle()
    assert bodies(graph, CUSTOMER) == [
        f"template:{TEMPLATE}",
        "Your quote Q-2026-0007 is ready.",
        "Shall we deliver?",
        "You said: Hi, I'm back",
    ]
    assert [h.recipient_id for h in rows(database_url, "channel_messages", status="held")] == [OTHER]
    assert len(graph.requests) == len(graph.messages)  # the fake refused nothing


async def test_a_follow_up_sent_as_a_template_goes_out_at_once_outside_the_window(start, graph, database_url) -> None:
    graph.templates = {TEMPLATE: {"en"}, "quote_reminder": {"ar"}}
    channel = await start()
    wrote_at = time.time() - 30 * 3600
    graph.customer_wrote(CUSTOMER, wrote_at)
    await channel.connector.store.saw_customer(
        "whatsapp", CUSTOMER, None, at=datetime.fromtimestamp(wrote_at, timezone.utc)
    )
    follow_up = {
        "text": "[WhatsApp template quote_reminder (ar)]",
        "custom": {"whatsapp_template": {"name": "quote_reminder", "language": "ar"}},
    }
    await channel.connector.get_output_channel().send_response(f"whatsapp-{CUSTOMER}", follow_up)

    assert [m["template"] for m in graph.messages] == [{"name": "quote_reminder", "language": {"code": "ar"}}]
    assert not rows(database_url, "channel_messages", status="held")  # nothing held, no re-engagement template
    [sent] = rows(database_url, "channel_messages", kind="template")
    assert (sent.template, sent.status) == ("quote_reminder", "sent")
    assert len(graph.requests) == len(graph.messages)


ARABIC_TEMPLATE = {"name": "closer_follow_up_ar", "language": {"code": "ar"}}
RUSSIAN_TEMPLATE = {"name": "closer_follow_up_ru", "language": {"code": "ru"}}
DEFAULT_TEMPLATE = {"name": TEMPLATE, "language": {"code": "en_US"}}
TEMPLATES = {
    "ar": {"name": "closer_follow_up_ar", "language": "ar"},
    "ru": {"name": "closer_follow_up_ru", "language": "ru"},
}


@pytest.mark.parametrize(
    ("templates", "held", "sent"),
    [
        (TEMPLATES, "عرض السعر Q-2026-0007 جاهز: \u200f6,450.00 درهم", ARABIC_TEMPLATE),
        (TEMPLATES, "Ваше предложение Q-2026-0007 готово: 6 450,00 AED", RUSSIAN_TEMPLATE),
        (TEMPLATES, "Your quote Q-2026-0007 is ready: AED 6,450.00", DEFAULT_TEMPLATE),
        (None, "عرض السعر Q-2026-0007 جاهز: \u200f6,450.00 درهم", DEFAULT_TEMPLATE),
    ],
    ids=["arabic", "russian", "english", "arabic-without-templates"],
)
async def test_the_template_is_the_one_of_the_held_messages_language(start, graph, database_url, templates, held, sent):
    graph.templates = {TEMPLATE: {"en_US"}, "closer_follow_up_ar": {"ar"}, "closer_follow_up_ru": {"ru"}}
    channel = await start(template_language="en_US", **({"templates": templates} if templates else {}))
    wrote_at = time.time() - 25 * 3600
    graph.customer_wrote(CUSTOMER, wrote_at)
    await channel.connector.store.saw_customer(
        "whatsapp", CUSTOMER, None, at=datetime.fromtimestamp(wrote_at, timezone.utc)
    )
    output = channel.connector.get_output_channel()
    await output.send_response(f"whatsapp-{CUSTOMER}", {"text": held})
    await output.send_response(f"whatsapp-{CUSTOMER}", {"text": "Shall we deliver?"})  # already reopening

    assert [m["template"] for m in graph.messages] == [sent]
    [template] = rows(database_url, "channel_messages", kind="template")
    assert (template.template, template.status) == (sent["name"], "sent")
    assert [h.body["text"] for h in rows(database_url, "channel_messages", status="held")] == [
        held,
        "Shall we deliver?",
    ]
    assert len(graph.requests) == len(graph.messages)  # the fake has each template in its language


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("مرحبا، أريد كراسي مكتب مريحة", "ar"),
        ("كرسي OC-1001: \u200f1,290.00 درهم", "ar"),  # SKUs and prices do not count
        ("Здравствуйте, нужны офисные кресла", "ru"),
        ("OC-1001 кресло", "ru"),
        ("Привет, مرحبا", None),  # no script has most of the letters: the default language's template
        ("Your quote is ready.", None),  # English is the default language: no `templates` entry
        ("١٢ 12 👍", None),  # digits and emoji are no letters
        ("", None),
    ],
)
def test_the_template_follows_the_language_of_the_held_message(text, language) -> None:
    graph = SimpleNamespace(token="t", phone_number_id="1", api_base="http://127.0.0.1:9", version="v21.0")
    templates = {code: {"name": f"closer_follow_up_{code}", "language": code} for code in ("ar", "ru")}
    config = WhatsAppInput.from_credentials({**credentials(graph), "templates": templates}).config
    assert config.template(text).name == (f"closer_follow_up_{language}" if language else config.template_name)


# --- start-up and configuration -----------------------------------------------------------------


async def test_a_restart_processes_what_was_acknowledged_but_never_processed(start, graph, database_url) -> None:
    stuck = Bot()
    stuck.release.clear()  # this process hangs in Rasa and is replaced
    first = await start(stuck)
    graph.customer_wrote(CUSTOMER)
    inbound = text(CUSTOMER, "Is the oak flooring in stock?")
    assert (await first.post(incoming(inbound))).status_code == 200
    [delivery] = rows(database_url, "channel_deliveries")
    assert delivery.processed_at is None

    second = await start()
    await second.settle()
    assert second.bot.texts() == ["Is the oak flooring in stock?"]
    assert second.bot.messages[0].message_id == inbound["id"]
    assert bodies(graph, CUSTOMER) == ["You said: Is the oak flooring in stock?"]
    assert rows(database_url, "channel_deliveries")[0].processed_at is not None
    stuck.release.set()
    await first.settle()


@pytest.mark.parametrize("key", ["access_token", "app_secret", "verify_token", "phone_number_id", "template_name"])
def test_a_missing_credential_names_the_key(key) -> None:
    graph = SimpleNamespace(token="t", phone_number_id="1", api_base="http://127.0.0.1:9", version="v21.0")
    with pytest.raises(ChannelConfigError, match=f"'{key}'"):
        WhatsAppInput.from_credentials({**credentials(graph), key: ""})
    with pytest.raises(ChannelConfigError, match=f"'{key}'"):
        WhatsAppInput.from_credentials({k: v for k, v in credentials(graph).items() if k != key})


def test_defaults_and_a_bad_number(database_url) -> None:
    required = {
        "access_token": "t",
        "app_secret": "s",
        "verify_token": "v",
        "phone_number_id": "1",
        "template_name": TEMPLATE,
    }
    config = WhatsAppInput.from_credentials(required).config
    assert (
        config.template_language,
        config.templates,
        config.api_base,
        config.api_version,
        config.timeout_s,
        config.max_body_bytes,
    ) == (
        "en",
        {},
        "https://graph.facebook.com",
        "v21.0",
        10.0,
        1024 * 1024,
    )
    with pytest.raises(ChannelConfigError, match="'timeout_s'"):
        WhatsAppInput.from_credentials({**required, "timeout_s": "soon"})


@pytest.mark.parametrize(
    ("templates", "key"),
    [
        ("closer_follow_up_ar", "'templates'"),
        ({"xx": {"name": "closer_follow_up_xx", "language": "xx"}}, "'templates.xx'"),
        ({"ar": {"name": "closer_follow_up_ar"}}, "'templates.ar'"),
        ({"ru": "closer_follow_up_ru"}, "'templates.ru'"),
    ],
)
def test_a_bad_templates_entry_names_the_key(templates, key) -> None:
    graph = SimpleNamespace(token="t", phone_number_id="1", api_base="http://127.0.0.1:9", version="v21.0")
    with pytest.raises(ChannelConfigError, match=key):
        WhatsAppInput.from_credentials({**credentials(graph), "templates": templates})
