"""The Telegram channel (connectors/telegram.py) in a real Sanic server registered the way Rasa
registers channels, with a migrated business DB, against a local server speaking the Bot API
(tests/fakes/telegram_server.py) and a local file server for the quote PDF and images. Updates are shaped
like the examples of https://core.telegram.org/bots/api and https://core.telegram.org/bots/webhooks.
``Rasa`` stands in for Rasa's agent: it records each UserMessage and may answer it."""

import asyncio
import gc
import inspect
import logging
import socket
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from aiohttp import web
from aiohttp.test_utils import TestServer
from prometheus_client import REGISTRY
from rasa.core.channels.channel import UserMessage, register
from rasa.core.tracker_store import InMemoryTrackerStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import UserUttered
from rasa.shared.core.trackers import DialogueStateTracker
from sanic import Sanic

from bot.contracts.channel_tables import TABLES
from connectors import turns
from connectors.config import ChannelConfigError
from connectors.logs import ref
from connectors.ratelimit import SLOW_DOWN_REPLY, RateLimiter
from connectors.store import ChannelStore, Claim
from connectors.telegram import (
    EXPIRED_NOTICE,
    EXPIRED_REPLY,
    SECRET_HEADER,
    DocumentError,
    TelegramConfig,
    TelegramInput,
    fetch_pdf,
)
from connectors.text import split_text
from connectors.webhook import LOCATION_REPLY, RATE_LIMITED, UNSUPPORTED_REPLY
from tests.fakes.telegram_server import FakeTelegram, Upload

SECRET = "closer-test_Secret-0123456789"
CHAT_ID = 1111111
USER = {
    "id": CHAT_ID,
    "is_bot": False,
    "first_name": "Aisha",
    "last_name": "Rahman",
    "username": "aisha_r",
    "language_code": "en",
}
CHAT = {"id": CHAT_ID, "first_name": "Aisha", "last_name": "Rahman", "username": "aisha_r", "type": "private"}
DATE = 1767225600
# Bytes of every value, so that any re-encoding of the upload shows.
PDF = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n" + bytes(range(256)) * 64 + b"\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(64)
LONG_PAYLOAD = '/ask_knowledge{"topic": "policies/delivery.md#delivery-charges-and-assembly-outside-dubai"}'


# --- updates as Telegram sends them -------------------------------------------------------------


def message(message_id: int = 101, chat: dict | None = None, **content: Any) -> dict:
    return {"message_id": message_id, "from": USER, "chat": chat or CHAT, "date": DATE, **content}


def update(update_id: int, **message_content: Any) -> dict:
    return {"update_id": update_id, "message": message(message_id=update_id + 100, **message_content)}


def text_update(update_id: int, text: str) -> dict:
    entities = [{"offset": 0, "length": len(text.split()[0]), "type": "bot_command"}] if text.startswith("/") else []
    return update(update_id, text=text, **({"entities": entities} if entities else {}))


def callback_update(update_id: int, data: str) -> dict:
    bot_message = {
        "message_id": 55,
        "from": {"id": 123456789, "is_bot": True, "first_name": "Closer", "username": "closer_test_bot"},
        "chat": CHAT,
        "date": DATE,
        "text": "How can I help?",
        "reply_markup": {"inline_keyboard": [[{"text": "Talk to a person", "callback_data": data}]]},
    }
    return {
        "update_id": update_id,
        "callback_query": {
            "id": f"43829{update_id}",
            "from": USER,
            "message": bot_message,
            "chat_instance": "-5017212315581463817",
            "data": data,
        },
    }


PHOTO = [
    {"file_id": "AgACAgIAAxkBAAIBY2X", "file_unique_id": "AQADq7sxG0", "file_size": 1297, "width": 90, "height": 67},
    {"file_id": "AgACAgIAAxkBAAIBY2Y", "file_unique_id": "AQADq7sxG1", "file_size": 20403, "width": 320, "height": 240},
]
STICKER = {
    "file_id": "CAACAgIAAxkBAAIBZGX",
    "file_unique_id": "AgADGwADwDZPEw",
    "type": "regular",
    "width": 512,
    "height": 512,
    "is_animated": False,
    "is_video": False,
    "emoji": "👍",
    "set_name": "HotCherry",
    "file_size": 19534,
}
VOICE = {
    "file_id": "AwACAgIAAxkBAAIBZWX",
    "file_unique_id": "AgADmAADWXQ",
    "duration": 3,
    "mime_type": "audio/ogg",
    "file_size": 9421,
}
DOCUMENT = {
    "file_id": "BQACAgIAAxkBAAIBZmX",
    "file_unique_id": "AgADnAADWXQ",
    "file_name": "floor-plan.pdf",
    "mime_type": "application/pdf",
    "file_size": 88211,
}
LOCATION = {"latitude": 25.197197, "longitude": 55.274376}
BOT_MEMBER = {"id": 123456789, "is_bot": True, "first_name": "Closer", "username": "closer_test_bot"}


# --- the stand-ins and the server ---------------------------------------------------------------


class Rasa:
    """Rasa's agent as ``register`` calls it: records every UserMessage, answers each with one text
    when ``reply`` is set, and notes how many answerCallbackQuery calls Telegram had seen by then."""

    def __init__(self, telegram: FakeTelegram, reply: bool = False, delays: list[float] | None = None) -> None:
        self.telegram, self.reply, self.delays = telegram, reply, list(delays or [])
        self.messages: list[UserMessage] = []
        self.answered_before: list[int] = []

    async def handle_message(self, message: UserMessage) -> None:
        self.answered_before.append(len(self.telegram.calls("answerCallbackQuery")))
        if self.delays:
            await asyncio.sleep(self.delays.pop(0))
        self.messages.append(message)
        if self.reply:
            await message.output_channel.send_response(message.sender_id, {"text": f"You said: {message.text}"})

    @property
    def texts(self) -> list[str]:
        return [m.text for m in self.messages]


def credentials(telegram: FakeTelegram, **overrides: Any) -> dict[str, Any]:
    return {
        "bot_token": telegram.token,
        "secret_token": SECRET,
        "api_base": f"{telegram.api_base}/bot",
        "timeout_s": 5,
        **overrides,
    }


@asynccontextmanager
async def serve(connector: TelegramInput, rasa: Any, port: int = 0) -> AsyncIterator[str]:
    """The connector in a real Sanic server on a loopback port (by default a free one), registered by
    Rasa's ``register`` under /webhooks/; yields the server's base URL. Runs the server's start and
    stop listeners."""
    app = Sanic(f"telegram_test_{uuid.uuid4().hex}")
    app.ctx.agent = rasa
    register([connector], app, route="/webhooks/")
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    server = await app.create_server(sock=sock, return_asyncio_server=True, access_log=False)
    await server.startup()
    await server.before_start()
    await server.after_start()
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        await server.before_stop()
        await server.close()
        await server.after_stop()


async def post(base_url: str, body: Any, secret: str | None = SECRET, **kwargs: Any) -> httpx.Response:
    headers = {SECRET_HEADER: secret.encode()} if secret is not None else {}
    async with httpx.AsyncClient(timeout=10) as client:
        if isinstance(body, (bytes, str)):
            return await client.post(
                f"{base_url}/webhooks/telegram/webhook",
                content=body,
                headers={**headers, "Content-Type": "application/json"},
            )
        return await client.post(f"{base_url}/webhooks/telegram/webhook", json=body, headers=headers, **kwargs)


async def table(store: ChannelStore, name: str) -> list[Any]:
    """The rows of channel table ``name`` in the order of its first column, typed by its contract (JSON as dicts)."""
    [contract] = [table for table in TABLES if table.name == name]

    def read() -> list[Any]:
        with store.engine.connect() as connection:
            return connection.execute(sa.select(contract).order_by(*contract.primary_key.columns)).all()

    return await asyncio.to_thread(read)


async def eventually(condition: Callable[[], Any], what: str, seconds: float = 30) -> None:
    """Wait until ``condition()`` (a function or a coroutine function) holds; fail after ``seconds``
    (a bound, not a measurement)."""
    for _ in range(int(seconds / 0.02)):
        holds = condition()
        if inspect.isawaitable(holds):
            holds = await holds
        if holds:
            return
        await asyncio.sleep(0.02)
    pytest.fail(f"still waiting for {what}")


@pytest.fixture
async def telegram() -> FakeTelegram:
    server = await FakeTelegram().start()
    yield server
    await server.close()


@pytest.fixture
async def files() -> str:
    """A file server: the quote PDF, an image, an HTML page, and 404 for anything else."""

    async def pdf(_: web.Request) -> web.Response:
        return web.Response(body=PDF, content_type="application/pdf")

    async def png(_: web.Request) -> web.Response:
        return web.Response(body=PNG, content_type="image/png")

    async def html(_: web.Request) -> web.Response:
        return web.Response(text="<html>Log in</html>", content_type="text/html")

    app = web.Application()
    app.router.add_get("/quotes/abc123.pdf", pdf)
    app.router.add_get("/images/desk.png", png)
    app.router.add_get("/login", html)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield str(server.make_url("")).rstrip("/")
    await server.close()


@pytest.fixture
def connector(telegram: FakeTelegram, store: ChannelStore) -> TelegramInput:
    return TelegramInput(TelegramConfig.from_credentials(credentials(telegram)), store)


@pytest.fixture
async def served(connector: TelegramInput, telegram: FakeTelegram):
    """(base URL, Rasa stand-in) of the connector being served."""
    rasa = Rasa(telegram)
    async with serve(connector, rasa) as base_url:
        yield base_url, rasa


# --- configuration ------------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["bot_token", "secret_token"])
@pytest.mark.parametrize("value", [None, "", "   "])
def test_a_missing_credential_names_the_key(telegram: FakeTelegram, key: str, value: str | None) -> None:
    with pytest.raises(ChannelConfigError, match=f"'{key}'"):
        TelegramConfig.from_credentials(credentials(telegram, **{key: value}))


def test_no_credentials_at_all_names_a_key() -> None:
    with pytest.raises(ChannelConfigError, match=r"'secret_token'|'bot_token'"):
        TelegramInput.from_credentials(None)


@pytest.mark.parametrize("secret", ["has space", "semi;colon", "ü-umlaut", "x" * 257])
def test_a_secret_token_telegram_would_refuse_is_a_config_error(telegram: FakeTelegram, secret: str) -> None:
    with pytest.raises(ChannelConfigError, match=r"'secret_token'.*A-Z, a-z, 0-9, _ and -"):
        TelegramConfig.from_credentials(credentials(telegram, secret_token=secret))


@pytest.mark.parametrize("key, value", [("timeout_s", "soon"), ("timeout_s", 0), ("max_body_bytes", -1)])
def test_numbers_must_be_positive(telegram: FakeTelegram, key: str, value: Any) -> None:
    with pytest.raises(ChannelConfigError, match=f"'{key}' must be a positive number"):
        TelegramConfig.from_credentials(credentials(telegram, **{key: value}))


def test_defaults_and_values_from_credentials(telegram: FakeTelegram, database_url: str) -> None:
    config = TelegramConfig.from_credentials({"bot_token": "42:abc", "secret_token": "s" * 256})
    assert (config.api_base, config.timeout_s, config.max_body_bytes, config.webhook_url) == (
        "https://api.telegram.org/bot",
        10.0,
        1024 * 1024,
        None,
    )
    url = "https://bot.example.com/webhooks/telegram/webhook"
    channel = TelegramInput.from_credentials(
        credentials(telegram, timeout_s="2.5", max_body_bytes="2048", webhook_url=url)
    )
    assert (channel.config.timeout_s, channel.config.max_body_bytes) == (2.5, 2048)
    assert channel.store.url == database_url and channel.get_output_channel().name() == "telegram"


def test_the_rate_limit_comes_from_credentials_then_the_environment(
    telegram: FakeTelegram, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def limit(**overrides: Any) -> tuple:
        limiter = TelegramInput.from_credentials(credentials(telegram, **overrides)).limiter
        return limiter.messages, limiter.window_s

    assert limit() == (20, 60.0)
    monkeypatch.setenv("CLOSER_RATE_LIMIT_MESSAGES", "5")
    assert limit(rate_limit_window_s="30") == (5, 30.0)
    assert limit(rate_limit_messages=7) == (7, 60.0)
    with pytest.raises(ChannelConfigError, match="telegram channel's 'rate_limit_messages' must be a positive number"):
        limit(rate_limit_messages=0)
    monkeypatch.setenv("CLOSER_RATE_LIMIT_WINDOW_S", "soon")
    with pytest.raises(ChannelConfigError, match="CLOSER_RATE_LIMIT_WINDOW_S must be a positive number"):
        limit()


# --- the webhook --------------------------------------------------------------------------------


async def test_health(served) -> None:
    base_url, _ = served
    async with httpx.AsyncClient() as client:
        response = await client.get(f"{base_url}/webhooks/telegram/")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


@pytest.mark.parametrize("secret", [None, "", "wrong", SECRET.upper(), SECRET + "x", "ünïcode"])
async def test_a_forged_or_missing_secret_is_refused_and_nothing_is_stored(
    served, connector: TelegramInput, secret: str | None, caplog
) -> None:
    base_url, rasa = served
    with caplog.at_level(logging.WARNING, logger="connectors.telegram"):
        response = await post(base_url, text_update(1, "hello"), secret=secret)
    await connector.queues.drain()
    assert response.status_code == 403
    assert await table(connector.store, "channel_deliveries") == [] and rasa.messages == []
    assert "refused" in caplog.text and "127.0.0.1" in caplog.text


async def test_a_body_over_the_limit_gets_413_and_is_not_stored(telegram: FakeTelegram, store: ChannelStore) -> None:
    connector = TelegramInput(TelegramConfig.from_credentials(credentials(telegram, max_body_bytes=1000)), store)
    rasa = Rasa(telegram)
    async with serve(connector, rasa) as base_url:
        small = await post(base_url, text_update(1, "a" * 100))
        big = await post(base_url, text_update(2, "a" * 1000))
        await connector.queues.drain()
    assert (small.status_code, big.status_code) == (200, 413)
    assert rasa.texts == ["a" * 100] and len(await table(store, "channel_deliveries")) == 1


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b"[1, 2]",
        b'"text"',
        b'{"message": {"text": "hi"}}',
        b'{"update_id": "7", "message": {"text": "hi"}}',
        b'{"update_id": 7, "message": "hi"}',
        b'{"update_id": 7, "message": {"text": "hi"}}',
        b'{"update_id": true, "message": {"text": "hi", "chat": {"id": 1, "type": "private"}}}',
        b'{"update_id": 7, "callback_query": "data"}',
        b'{"update_id": 7, "edited_message": {"text": "hi", "chat": {"id": "1", "type": "private"}}}',
    ],
)
async def test_a_malformed_body_gets_400_and_is_not_stored(served, connector: TelegramInput, body: bytes) -> None:
    base_url, rasa = served
    response = await post(base_url, body)
    assert response.status_code == 400
    assert await table(connector.store, "channel_deliveries") == [] and rasa.messages == []


async def test_a_text_reaches_rasa_with_its_sender_and_metadata(served, connector: TelegramInput) -> None:
    base_url, rasa = served
    response = await post(base_url, text_update(1, "Do you have standing desks?"))
    await connector.queues.drain()

    assert response.status_code == 200
    [received] = rasa.messages
    assert received.text == "Do you have standing desks?"
    assert received.sender_id == f"telegram-{CHAT_ID}" and received.input_channel == "telegram"
    assert received.output_channel.inner is connector.get_output_channel()  # sent from the server loop
    assert received.metadata == {
        "channel": "telegram",
        "telegram": {
            "update_id": 1,
            "chat_id": CHAT_ID,
            "message_id": 101,
            "user_id": CHAT_ID,
            "first_name": "Aisha",
            "last_name": "Rahman",
            "username": "aisha_r",
            "language_code": "en",
        },
    }
    [delivery] = await table(connector.store, "channel_deliveries")
    assert (delivery.channel, delivery.delivery_id, delivery.sender_id) == ("telegram", "1", f"telegram-{CHAT_ID}")
    assert delivery.processed_at is not None and delivery.error is None
    [customer] = await table(connector.store, "channel_customers")
    assert (customer.channel, customer.user_id, customer.name) == ("telegram", str(CHAT_ID), "Aisha")


@pytest.mark.parametrize("text, payload", [("/start", None), ("/start promo-oak_2026", "promo-oak_2026")])
async def test_start_and_deep_links_greet_with_the_payload(
    served, connector: TelegramInput, text: str, payload: str | None
) -> None:
    base_url, rasa = served
    await post(base_url, text_update(1, text))
    await post(base_url, text_update(2, "/request_human"))
    await connector.queues.drain()
    assert rasa.texts == ["/greet", "/request_human"]
    assert rasa.messages[0].metadata["telegram"]["start_payload"] == payload
    assert "start_payload" not in rasa.messages[1].metadata["telegram"]


async def test_a_button_press_is_answered_then_its_payload_reaches_rasa(
    served, connector: TelegramInput, telegram: FakeTelegram
) -> None:
    base_url, rasa = served
    await post(base_url, callback_update(7, "/request_human"))
    await connector.queues.drain()
    assert rasa.texts == ["/request_human"]
    assert rasa.answered_before == [1]  # the spinner stopped before Rasa was asked
    assert telegram.calls("answerCallbackQuery") == [{"callback_query_id": "438297"}]
    metadata = rasa.messages[0].metadata["telegram"]
    assert metadata["callback_query_id"] == "438297" and metadata["message_id"] == 55
    assert rasa.messages[0].sender_id == f"telegram-{CHAT_ID}"


async def test_a_long_button_payload_makes_the_round_trip(
    served, connector: TelegramInput, telegram: FakeTelegram
) -> None:
    base_url, rasa = served
    assert len(LONG_PAYLOAD.encode()) > 64
    buttons = [
        {"title": "Delivery charges", "payload": LONG_PAYLOAD},
        {"title": "A person", "payload": "/request_human"},
        {"title": "Catalogue", "payload": "https://closer.example/catalogue"},
    ]
    await connector.get_output_channel().send_response(
        f"telegram-{CHAT_ID}", {"text": "Anything else?", "buttons": buttons}
    )
    [sent] = telegram.messages
    [[long_button, short_button, url_button]] = sent["reply_markup"]["inline_keyboard"]
    assert long_button["text"] == "Delivery charges" and long_button["callback_data"].startswith("#")
    assert len(long_button["callback_data"].encode()) <= 64
    assert short_button == {"text": "A person", "callback_data": "/request_human"}
    assert url_button == {"text": "Catalogue", "url": "https://closer.example/catalogue"}

    await post(base_url, callback_update(8, long_button["callback_data"]))
    await connector.queues.drain()
    assert rasa.texts == [LONG_PAYLOAD]
    assert telegram.calls("answerCallbackQuery") == [{"callback_query_id": "438298"}]


async def test_a_short_payload_starting_with_a_hash_goes_through_the_store(
    served, connector: TelegramInput, telegram: FakeTelegram
) -> None:
    base_url, rasa = served
    await connector.get_output_channel().send_text_with_buttons(
        f"telegram-{CHAT_ID}", "Pick", [{"title": "Tag", "payload": "#oak"}]
    )
    data = telegram.messages[0]["reply_markup"]["inline_keyboard"][0][0]["callback_data"]
    assert data != "#oak"
    await post(base_url, callback_update(9, data))
    await connector.queues.drain()
    assert rasa.texts == ["#oak"]


async def test_an_expired_button_is_explained_without_asking_rasa(
    served, connector: TelegramInput, telegram: FakeTelegram
) -> None:
    base_url, rasa = served
    await post(base_url, callback_update(10, "#" + "0" * 32))
    await connector.queues.drain()
    assert rasa.messages == []
    assert telegram.calls("answerCallbackQuery") == [{"callback_query_id": "4382910", "text": EXPIRED_NOTICE}]
    assert [m["text"] for m in telegram.messages] == [EXPIRED_REPLY]
    [delivery] = await table(connector.store, "channel_deliveries")
    assert delivery.processed_at is not None and delivery.error is None


@pytest.mark.parametrize(
    "content, reply",
    [
        ({"location": LOCATION}, LOCATION_REPLY),
        (
            {
                "venue": {
                    "location": LOCATION,
                    "title": "Burj Khalifa",
                    "address": "1 Sheikh Mohammed bin Rashid Blvd",
                },
                "location": LOCATION,
            },
            LOCATION_REPLY,
        ),
        ({"sticker": STICKER}, UNSUPPORTED_REPLY),
        ({"voice": VOICE}, UNSUPPORTED_REPLY),
        ({"photo": PHOTO}, UNSUPPORTED_REPLY),
        ({"document": DOCUMENT}, UNSUPPORTED_REPLY),
    ],
)
async def test_what_the_bot_cannot_read_gets_a_polite_reply_without_rasa(
    served, connector: TelegramInput, telegram: FakeTelegram, content: dict, reply: str
) -> None:
    base_url, rasa = served
    assert (await post(base_url, update(11, **content))).status_code == 200
    await connector.queues.drain()
    assert rasa.messages == []
    [sent] = telegram.messages
    assert sent["text"] == reply and sent["chat"]["id"] == CHAT_ID
    [delivery] = await table(connector.store, "channel_deliveries")
    assert delivery.processed_at is not None
    [customer] = await table(connector.store, "channel_customers")
    assert customer.user_id == str(CHAT_ID)


@pytest.mark.parametrize(
    "content",
    [
        {"photo": PHOTO, "caption": "Do you have this in oak?"},
        {"document": DOCUMENT, "caption": "Do you have this in oak?"},
    ],
)
async def test_a_captioned_photo_or_document_is_its_caption(
    served, connector: TelegramInput, telegram: FakeTelegram, content: dict
) -> None:
    base_url, rasa = served
    await post(base_url, update(12, **content))
    await connector.queues.drain()
    assert rasa.texts == ["Do you have this in oak?"] and telegram.messages == []


@pytest.mark.parametrize("phone, text", [("971501234567", "+971501234567"), ("+971501234567", "+971501234567")])
async def test_a_shared_contact_becomes_its_phone_number(
    served, connector: TelegramInput, phone: str, text: str
) -> None:
    base_url, rasa = served
    contact = {"phone_number": phone, "first_name": "Aisha", "last_name": "Rahman", "user_id": CHAT_ID}
    await post(base_url, update(13, contact=contact))
    await connector.queues.drain()
    assert rasa.texts == [text]


async def test_an_edited_message_is_processed_as_a_correction(
    served, connector: TelegramInput, telegram: FakeTelegram
) -> None:
    base_url, rasa = served
    await post(base_url, text_update(14, "I need 20 chairs"))
    edited = {"update_id": 15, "edited_message": message(message_id=114, text="I need 25 chairs", edit_date=DATE + 30)}
    live_location = {"update_id": 16, "edited_message": message(message_id=120, location=LOCATION, edit_date=DATE + 60)}
    for body in (edited, live_location):
        assert (await post(base_url, body)).status_code == 200
    await connector.queues.drain()
    assert rasa.texts == ["I need 20 chairs", "I need 25 chairs"]
    first, second = (m.metadata["telegram"] for m in rasa.messages)
    assert "edited" not in first and second["edited"] is True
    assert first["message_id"] == second["message_id"] == 114
    assert telegram.messages == []  # no reply to a moving live location


GROUP = {"id": -1001234567890, "title": "Office furniture fans", "type": "supergroup"}
IGNORED = {
    "group message": {"update_id": 20, "message": message(chat=GROUP, text="Hi bot")},
    "basic group message": {
        "update_id": 21,
        "message": message(chat={"id": -4012345, "title": "Team", "type": "group"}, text="Hi bot"),
    },
    "channel post": {
        "update_id": 22,
        "channel_post": {
            "message_id": 3,
            "sender_chat": {"id": -1009876543210, "title": "Closer news", "type": "channel"},
            "chat": {"id": -1009876543210, "title": "Closer news", "type": "channel"},
            "date": DATE,
            "text": "New oak range",
        },
    },
    "blocked the bot": {
        "update_id": 23,
        "my_chat_member": {
            "chat": CHAT,
            "from": USER,
            "date": DATE,
            "old_chat_member": {"user": BOT_MEMBER, "status": "member"},
            "new_chat_member": {"user": BOT_MEMBER, "status": "kicked", "until_date": 0},
        },
    },
    "button in a group": {
        "update_id": 24,
        "callback_query": {
            **callback_update(24, "/request_human")["callback_query"],
            "message": message(chat=GROUP, text="Pick"),
        },
    },
}


@pytest.mark.parametrize("name", list(IGNORED))
async def test_groups_channels_and_other_updates_are_acknowledged_and_ignored(
    served, connector: TelegramInput, telegram: FakeTelegram, name: str, caplog
) -> None:
    base_url, rasa = served
    with caplog.at_level(logging.INFO, logger="connectors.telegram"):
        response = await post(base_url, IGNORED[name])
    await connector.queues.drain()
    assert response.status_code == 200 and "ignored" in caplog.text
    assert rasa.messages == [] and telegram.calls("sendMessage") == []
    assert telegram.calls("answerCallbackQuery") == []
    assert await table(connector.store, "channel_deliveries") == []


def delivered(channel: str, outcome: str) -> float:
    return REGISTRY.get_sample_value("closer_webhook_deliveries_total", {"channel": channel, "outcome": outcome}) or 0


async def test_a_delivery_replayed_100_times_at_once_is_processed_once(
    telegram: FakeTelegram, connector: TelegramInput
) -> None:
    rasa = Rasa(telegram, reply=True)
    before = {outcome: delivered("telegram", outcome) for outcome in ("accepted", "duplicate")}
    async with serve(connector, rasa) as base_url:
        body = text_update(30, "How much is the oak desk?")
        responses = await asyncio.gather(*(post(base_url, body) for _ in range(100)))
        await connector.queues.drain()
    assert {r.status_code for r in responses} == {200}
    # the Prometheus counter of connectors.metrics
    assert delivered("telegram", "accepted") - before["accepted"] == 1
    assert delivered("telegram", "duplicate") - before["duplicate"] == 99
    assert rasa.texts == ["How much is the oak desk?"]
    assert [m["text"] for m in telegram.messages] == ["You said: How much is the oak desk?"]
    assert len(await table(connector.store, "channel_deliveries")) == 1
    assert len(await table(connector.store, "channel_messages")) == 1


async def test_quick_messages_of_one_customer_are_processed_in_order(
    telegram: FakeTelegram, connector: TelegramInput
) -> None:
    texts = [f"message {n}" for n in range(8)]
    rasa = Rasa(telegram, reply=True, delays=[0.01 * (8 - n) for n in range(8)])  # the first is the slowest
    async with serve(connector, rasa) as base_url:
        for n, text in enumerate(texts):
            assert (await post(base_url, text_update(40 + n, text))).status_code == 200
        await connector.queues.drain()
    assert rasa.texts == texts
    assert [m["text"] for m in telegram.messages] == [f"You said: {text}" for text in texts]


class Clock:
    """A monotonic clock the test moves: ``clock.now += 60``."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_a_customer_over_the_rate_limit_is_acknowledged_without_a_turn_and_told_once(
    telegram: FakeTelegram, store: ChannelStore, caplog: pytest.LogCaptureFixture
) -> None:
    clock = Clock()
    connector = TelegramInput(TelegramConfig.from_credentials(credentials(telegram)), store, RateLimiter(3, 60, clock))
    rasa = Rasa(telegram, reply=True)
    other = {**CHAT, "id": 2222222}
    async with serve(connector, rasa) as base_url:
        with caplog.at_level(logging.DEBUG, logger="connectors"):
            responses = [await post(base_url, text_update(70 + n, f"secret {n}")) for n in range(6)]
            replayed = await post(base_url, text_update(75, "secret 5"))  # Telegram's retry of a refused update
            button = await post(base_url, callback_update(76, "/request_human"))
            others = await post(base_url, update(77, chat=other, text="hello from another chat"))
            await connector.queues.drain()
        assert [r.status_code for r in [*responses, replayed, button, others]] == [200] * 9
        assert rasa.texts == ["secret 0", "secret 1", "secret 2", "hello from another chat"]
        assert [(m["chat"]["id"], m["text"]) for m in telegram.messages] == [
            *((CHAT_ID, f"You said: secret {n}") for n in range(3)),
            (CHAT_ID, SLOW_DOWN_REPLY),
            (2222222, "You said: hello from another chat"),
        ]
        deliveries = await table(store, "channel_deliveries")
        assert [(d.delivery_id, d.error) for d in deliveries] == [
            *((str(70 + n), None) for n in range(3)),
            *((str(n), RATE_LIMITED) for n in (73, 74, 75, 76)),
            ("77", None),
        ]
        assert all(d.processed_at is not None for d in deliveries)  # not replayed after a restart
        warnings = [
            r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and r.name.startswith("connectors")
        ]
        over = f"{ref(f'telegram-{CHAT_ID}')} is over the rate limit of 3 messages per 60 s"  # a pseudonym, not the id
        assert len(warnings) == 1 and over in warnings[0]
        assert not any("secret" in r.getMessage() for r in caplog.records)  # never the message

        # a little over one message's worth of tokens back: one more goes through, the next is refused silently
        clock.now += 21
        await post(base_url, text_update(78, "one more"))
        await post(base_url, text_update(79, "and another"))
        clock.now += 60
        await post(base_url, text_update(80, "back after a minute"))
        await connector.queues.drain()
    assert rasa.texts[-2:] == ["one more", "back after a minute"]
    assert [m["text"] for m in telegram.messages].count(SLOW_DOWN_REPLY) == 1


async def test_a_failure_in_rasa_is_recorded_and_the_queue_goes_on(
    telegram: FakeTelegram, connector: TelegramInput
) -> None:
    class FailingOnce(Rasa):
        async def handle_message(self, message: UserMessage) -> None:
            if not self.messages and message.text == "boom":
                self.messages.append(message)
                raise RuntimeError("the model is not loaded")
            await super().handle_message(message)

    rasa = FailingOnce(telegram)
    async with serve(connector, rasa) as base_url:
        first = await post(base_url, text_update(50, "boom"))
        second = await post(base_url, text_update(51, "still there?"))
        await connector.queues.drain()
    assert (first.status_code, second.status_code) == (200, 200)
    assert rasa.texts == ["boom", "still there?"]
    failed, done = await table(connector.store, "channel_deliveries")
    assert "the model is not loaded" in failed.error and failed.processed_at is not None
    assert done.error is None


async def test_a_restart_processes_what_was_acknowledged_but_not_processed(
    telegram: FakeTelegram, store: ChannelStore
) -> None:
    body = text_update(60, "Are you open on Friday?")
    assert await store.accept("telegram", "60", f"telegram-{CHAT_ID}", body)  # then the process died
    connector = TelegramInput(TelegramConfig.from_credentials(credentials(telegram)), ChannelStore(store.url))
    rasa = Rasa(telegram)
    async with serve(connector, rasa) as base_url:
        await connector.queues.drain()
        assert rasa.texts == ["Are you open on Friday?"]
        assert (await post(base_url, body)).status_code == 200  # Telegram's own retry is still a replay
        await connector.queues.drain()
    assert rasa.texts == ["Are you open on Friday?"]
    [delivery] = await table(store, "channel_deliveries")
    assert delivery.processed_at is not None


async def test_a_restart_does_not_run_again_a_turn_that_ran_before_its_delivery_was_marked_done(
    telegram: FakeTelegram, store: ChannelStore
) -> None:
    body, sender_id = text_update(63, "Do you deliver to Sharjah?"), f"telegram-{CHAT_ID}"
    row = await store.accept("telegram", "63", sender_id, body)  # its turn ran, then the process died
    connector = TelegramInput(TelegramConfig.from_credentials(credentials(telegram)), ChannelStore(store.url))
    rasa = Rasa(telegram)
    rasa.tracker_store = InMemoryTrackerStore(Domain.empty())  # Rasa's own, holding the turn
    message = UserUttered("Do you deliver to Sharjah?", message_id=f"telegram-delivery-{row}")
    await rasa.tracker_store.save(DialogueStateTracker.from_events(sender_id, [message]))
    async with serve(connector, rasa):
        await connector.queues.drain()
    assert rasa.texts == []
    [delivery] = await table(store, "channel_deliveries")
    assert delivery.processed_at is not None and delivery.error is None


async def test_replicas_claim_each_delivery_once_and_take_over_a_stopped_ones(database_url: str) -> None:
    first, second = ChannelStore(database_url, replica="rasa-1"), ChannelStore(database_url, replica="rasa-2")
    row = await first.accept("telegram", "61", f"telegram-{CHAT_ID}", text_update(61, "hi"))
    assert await second.unprocessed("telegram", own=True) == []  # rasa-1 holds it: rasa-2 leaves it alone
    assert await second.claim(row) is Claim.TAKEN
    assert await first.claim(row) is Claim.CLAIMED
    second.stale_claim_s = 0  # as if rasa-1 had stopped STALE_CLAIM_S ago without processing it
    assert [r[0] for r in await second.unprocessed("telegram", own=False)] == [row]
    assert await second.claim(row) is Claim.CLAIMED
    assert await first.claim(row) is Claim.TAKEN  # rasa-1 back: the delivery is rasa-2's now
    await second.done(row)
    assert await second.claim(row) is Claim.TAKEN and await second.unprocessed("telegram", own=True) == []


async def test_a_customers_deliveries_are_claimed_in_the_order_received_whichever_replica_took_them(
    database_url: str,
) -> None:
    first, second = ChannelStore(database_url, replica="rasa-1"), ChannelStore(database_url, replica="rasa-2")
    earlier = await first.accept("telegram", "71", f"telegram-{CHAT_ID}", text_update(71, "hi"))
    later = await second.accept("telegram", "72", f"telegram-{CHAT_ID}", text_update(72, "chairs?"))
    other = await second.accept("telegram", "73", "telegram-2222222", text_update(73, "hello"))
    assert await second.claim(later) is Claim.BEHIND  # rasa-1 has not processed "hi" yet
    assert await second.claim(other) is Claim.CLAIMED  # another customer waits for nobody
    assert await first.claim(earlier) is Claim.CLAIMED
    assert await second.claim(later) is Claim.BEHIND  # claimed is not processed
    await first.done(earlier, "a failure counts as processed")
    assert await second.claim(later) is Claim.CLAIMED


async def test_two_replicas_noting_a_new_customer_at_once_both_succeed(database_url: str) -> None:
    """A customer's first messages processed at once by two replicas (make bench-load lost one to a unique key)."""
    replicas = [ChannelStore(database_url, replica=f"rasa-{n}") for n in (1, 2)]
    first = datetime(2026, 12, 5, 12, 0, tzinfo=timezone.utc)
    times = [first + timedelta(seconds=n) for n in range(8)]
    await asyncio.gather(
        *(replicas[n % 2].saw_customer("whatsapp", "971500000001", "Amira", at) for n, at in enumerate(times))
    )
    await replicas[0].saw_customer("whatsapp", "971500000001", None, first)  # an older message: nothing moves back
    [customer] = await table(replicas[0], "channel_customers")
    assert customer.name == "Amira"
    assert await replicas[1].last_inbound("whatsapp", "971500000001") == times[-1]


async def test_two_replicas_run_a_customers_turns_in_the_order_received(
    telegram: FakeTelegram, database_url: str
) -> None:
    """Webhooks of one customer alternate between two replicas (HAProxy's round robin); the replica with the first
    message is slow to get to it (its queue is busy), the other would run the second at once: it waits instead."""
    rasa = Rasa(telegram, delays=[1.0, 0, 0, 0])  # the first turn (the first message) takes a second
    replicas = [
        TelegramInput(TelegramConfig.from_credentials(credentials(telegram)), ChannelStore(database_url, replica=name))
        for name in ("rasa-1", "rasa-2")
    ]
    texts = ["hi", "do you have chairs?", "add 2 OC-1006", "send me a quote"]
    async with serve(replicas[0], rasa) as first, serve(replicas[1], rasa) as second:
        for n, text in enumerate(texts):
            assert (await post((first, second)[n % 2], text_update(80 + n, text))).status_code == 200
            await asyncio.sleep(0.05)
        await eventually(lambda: len(rasa.texts) == len(texts), "every message's turn")
    assert rasa.texts == texts


async def test_a_replica_processes_what_a_stopped_replica_acknowledged_once(
    telegram: FakeTelegram, database_url: str
) -> None:
    stopped = ChannelStore(database_url, replica="rasa-1")
    assert await stopped.accept("telegram", "62", f"telegram-{CHAT_ID}", text_update(62, "Still there?"))
    rasa = Rasa(telegram)
    for replica in ("rasa-2", "rasa-3"):  # two replicas starting after rasa-1 stopped: one turn
        store = ChannelStore(database_url, replica=replica)
        store.stale_claim_s = 0
        connector = TelegramInput(TelegramConfig.from_credentials(credentials(telegram)), store)
        async with serve(connector, rasa):
            await connector.queues.drain()
    assert rasa.texts == ["Still there?"]
    [delivery] = await table(stopped, "channel_deliveries")
    assert delivery.processed_at is not None and delivery.claimed_by == "rasa-2"


async def test_the_server_forgets_old_processed_deliveries(telegram: FakeTelegram, connector: TelegramInput) -> None:
    store = connector.store
    old, recent = [
        await store.accept("telegram", str(n), f"telegram-{CHAT_ID}", text_update(n, "hi")) for n in (90, 91)
    ]
    await store.done(old)
    await store.done(recent)

    def age() -> None:
        with store.engine.begin() as connection:
            connection.execute(
                sa.text("UPDATE channel_deliveries SET received_at = '2020-01-01 00:00:00.000000' WHERE id = :id"),
                {"id": old},
            )

    await asyncio.to_thread(age)

    async def pruned() -> bool:
        return [row.id for row in await table(store, "channel_deliveries")] == [recent]

    async with serve(connector, Rasa(telegram)):
        await eventually(pruned, "the old delivery forgotten")


async def test_stopping_the_server_finishes_the_queued_messages(
    telegram: FakeTelegram, connector: TelegramInput
) -> None:
    rasa = Rasa(telegram, reply=True, delays=[0.2])
    async with serve(connector, rasa) as base_url:
        assert (await post(base_url, text_update(70, "last words"))).status_code == 200
    assert rasa.texts == ["last words"] and [m["text"] for m in telegram.messages] == ["You said: last words"]
    [delivery] = await table(connector.store, "channel_deliveries")
    assert delivery.processed_at is not None


async def test_the_webhook_is_set_at_start_with_the_secret(telegram: FakeTelegram, store: ChannelStore) -> None:
    url = "https://bot.example.com/webhooks/telegram/webhook"
    connector = TelegramInput(TelegramConfig.from_credentials(credentials(telegram, webhook_url=url)), store)
    async with serve(connector, Rasa(telegram)):
        assert telegram.webhook == {
            "url": url,
            "secret_token": SECRET,
            "allowed_updates": ["message", "edited_message", "callback_query"],
        }


async def test_what_was_loaded_before_start_is_frozen_out_of_full_collections_once(
    telegram: FakeTelegram, store: ChannelStore, monkeypatch
) -> None:
    gc.unfreeze()
    monkeypatch.setattr(turns, "_heap_frozen", False)
    model = {"weights": [[0.5] * 4 for _ in range(100)]}  # stands for what Rasa loaded before the server started
    connector = TelegramInput(TelegramConfig.from_credentials(credentials(telegram)), store)
    async with serve(connector, Rasa(telegram)):
        created_later = {"tracker": [[]]}
        async with serve(TelegramInput(TelegramConfig.from_credentials(credentials(telegram)), store), Rasa(telegram)):
            tracked = {id(o) for o in gc.get_objects()}
    assert gc.get_freeze_count() > 0
    assert id(model) not in tracked and id(model["weights"][0]) not in tracked
    assert id(created_later) in tracked  # the second start froze nothing more


async def test_a_failed_set_webhook_or_bad_token_is_logged_and_the_server_runs(
    telegram: FakeTelegram, store: ChannelStore, caplog
) -> None:
    config = TelegramConfig.from_credentials(
        credentials(telegram, bot_token="42:wrong-secret-token", webhook_url="http://not-https.example.com/hook")
    )
    connector = TelegramInput(config, store)
    rasa = Rasa(telegram)
    with caplog.at_level(logging.ERROR, logger="connectors.telegram"):
        async with serve(connector, rasa) as base_url:
            response = await post(base_url, text_update(80, "hello"))
            await connector.queues.drain()
    assert response.status_code == 200 and rasa.texts == ["hello"]
    assert "did not accept the bot token" in caplog.text and "setWebhook" in caplog.text
    assert "wrong-secret-token" not in caplog.text and "<token>" in caplog.text
    assert telegram.webhook is None


# --- sending ------------------------------------------------------------------------------------

RECIPIENT = f"telegram-{CHAT_ID}"


async def test_the_output_channel_sends_outside_a_request(connector: TelegramInput, telegram: FakeTelegram) -> None:
    output = connector.get_output_channel()
    await output.send_response(RECIPIENT, {"text": "Your quote Q-2026-0001 is ready.\n\nSource: Pricing"})
    [sent] = telegram.messages
    assert sent["text"] == "Your quote Q-2026-0001 is ready.\n\nSource: Pricing"  # one message, not split
    assert telegram.calls("sendMessage")[0]["chat_id"] == str(CHAT_ID)
    [record] = await table(connector.store, "channel_messages")
    assert (record.channel, record.message_id, record.recipient_id, record.kind, record.status) == (
        "telegram",
        f"{CHAT_ID}:1",
        str(CHAT_ID),
        "text",
        "sent",
    )


async def test_a_long_text_is_split_at_telegrams_limit(connector: TelegramInput, telegram: FakeTelegram) -> None:
    words = " ".join(f"word{n}" for n in range(1200))
    assert len(words) > 4096 * 2
    await connector.get_output_channel().send_text_message(RECIPIENT, words)
    parts = [m["text"] for m in telegram.messages]
    assert len(parts) == 3 and all(len(p) <= 4096 for p in parts) and " ".join(parts) == words


def test_split_text_cuts_hard_without_a_space() -> None:
    assert split_text("x" * 5000, 4096) == ["x" * 4096, "x" * 904]
    assert split_text("   ", 4096) == [] and split_text("short", 4096) == ["short"]


@pytest.mark.parametrize(
    "button_type, rows",
    [
        (None, [["Yes", "No"]]),
        ("inline", [["Yes", "No"]]),
        ("vertical", [["Yes"], ["No"]]),
    ],
)
async def test_inline_keyboards_follow_rasas_button_type(
    connector: TelegramInput, telegram: FakeTelegram, button_type: str | None, rows: list[list[str]]
) -> None:
    message = {
        "text": "Shall I prepare a quote?",
        "buttons": [{"title": "Yes", "payload": "/affirm"}, {"title": "No", "payload": "/deny"}],
    }
    if button_type:
        message["button_type"] = button_type
    await connector.get_output_channel().send_response(RECIPIENT, message)
    keyboard = telegram.messages[0]["reply_markup"]["inline_keyboard"]
    assert [[b["text"] for b in row] for row in keyboard] == rows
    assert [b["callback_data"] for row in keyboard for b in row] == ["/affirm", "/deny"]
    [record] = await table(connector.store, "channel_messages")
    assert record.kind == "buttons"


async def test_long_titles_get_a_row_each(connector: TelegramInput, telegram: FakeTelegram) -> None:
    buttons = [{"title": "Delivery charges outside Dubai", "payload": "/a"}, {"title": "Assembly", "payload": "/b"}]
    await connector.get_output_channel().send_text_with_buttons(RECIPIENT, "Which policy?", buttons)
    assert len(telegram.messages[0]["reply_markup"]["inline_keyboard"]) == 2


async def test_reply_buttons_and_quick_replies_make_a_one_time_reply_keyboard(
    connector: TelegramInput, telegram: FakeTelegram
) -> None:
    options = [
        {"title": "Under 5,000 AED", "payload": '/inform{"budget": 5000}'},
        {"title": "More", "payload": '/inform{"budget": 20000}'},
    ]
    output = connector.get_output_channel()
    await output.send_response(RECIPIENT, {"text": "Your budget?", "buttons": options, "button_type": "reply"})
    await output.send_response(RECIPIENT, {"text": "Your budget?", "quick_replies": options})
    for sent in telegram.messages:
        assert sent["reply_markup"] == {
            "keyboard": [[{"text": "Under 5,000 AED"}, {"text": "More"}]],
            "one_time_keyboard": True,
            "resize_keyboard": True,
        }


async def test_the_quote_pdf_is_uploaded_with_the_served_bytes(
    connector: TelegramInput, telegram: FakeTelegram, files: str
) -> None:
    custom = {
        "document": {"url": f"{files}/quotes/abc123.pdf", "filename": "Q-2026-0001.pdf", "caption": "Quote Q-2026-0001"}
    }
    await connector.get_output_channel().send_response(RECIPIENT, {"custom": custom})
    [params] = telegram.calls("sendDocument")
    upload = params["document"]
    assert isinstance(upload, Upload) and upload.data == PDF and upload.filename == "Q-2026-0001.pdf"
    assert params["caption"] == "Quote Q-2026-0001" and params["chat_id"] == str(CHAT_ID)
    assert telegram.messages[0]["document"]["file_name"] == "Q-2026-0001.pdf"
    [record] = await table(connector.store, "channel_messages")
    assert record.kind == "document"


async def test_images_and_attachments_are_sent_by_url(
    connector: TelegramInput, telegram: FakeTelegram, files: str
) -> None:
    await connector.get_output_channel().send_response(
        RECIPIENT, {"image": f"{files}/images/desk.png", "attachment": f"{files}/quotes/abc123.pdf"}
    )
    assert telegram.calls("sendPhoto") == [{"chat_id": str(CHAT_ID), "photo": f"{files}/images/desk.png"}]
    assert telegram.calls("sendDocument") == [{"chat_id": str(CHAT_ID), "document": f"{files}/quotes/abc123.pdf"}]
    assert [r.kind for r in await table(connector.store, "channel_messages")] == ["image", "document"]


async def test_a_telegram_custom_payload_is_a_bot_api_call(connector: TelegramInput, telegram: FakeTelegram) -> None:
    output = connector.get_output_channel()
    await output.send_response(
        RECIPIENT,
        {"custom": {"telegram": {"method": "sendLocation", "chat_id": 999, "latitude": 25.2, "longitude": 55.27}}},
    )
    await output.send_response(
        RECIPIENT, {"custom": {"telegram": {"method": "setWebhook", "url": "https://x.example"}}}
    )
    await output.send_response(RECIPIENT, {"custom": {"telegram": {"method": "sendLocation", "lat": 1}}})
    assert [name for name, _ in telegram.requests] == ["sendLocation"]
    assert telegram.messages[0]["location"] == {"latitude": 25.2, "longitude": 55.27}
    assert telegram.messages[0]["chat"]["id"] == CHAT_ID


async def test_widget_metadata_and_unknown_custom_payloads_send_nothing(
    connector: TelegramInput, telegram: FakeTelegram
) -> None:
    output = connector.get_output_channel()
    await output.send_response(
        RECIPIENT, {"custom": {"answer_id": 7, "sources": ["policies/delivery.md"], "feedback": True}}
    )
    await output.send_response(RECIPIENT, {"custom": {"carousel": []}})
    assert telegram.requests == []


async def test_a_failed_send_is_logged_and_the_turn_goes_on(
    connector: TelegramInput, telegram: FakeTelegram, files: str, caplog
) -> None:
    output = connector.get_output_channel()
    with caplog.at_level(logging.ERROR, logger="connectors.telegram"):
        await output.send_response(
            RECIPIENT,
            {
                "text": "Here is your quote.",
                "custom": {"document": {"url": f"{files}/quotes/gone.pdf", "filename": "Q.pdf"}},
                "image": f"{files}/images/missing.png",
                "attachment": f"{files}/quotes/abc123.pdf",
            },
        )
    assert [name for name, _ in telegram.requests] == ["sendMessage", "sendPhoto", "sendDocument"]
    assert [r.kind for r in await table(connector.store, "channel_messages")] == ["text", "document"]
    assert f"sendDocument of Q.pdf to {ref(RECIPIENT)} failed: download: DocumentError: HTTP 404" in caplog.text
    assert f"send_photo to {ref(RECIPIENT)} failed: BadRequest" in caplog.text
    assert "gone.pdf" not in caplog.text  # the quote URL grants access: not logged


async def test_a_send_that_times_out_is_logged_and_the_turn_goes_on(
    telegram: FakeTelegram, store: ChannelStore, files: str, caplog
) -> None:
    telegram.failure, telegram.fail_method = "timeout", "sendDocument"
    connector = TelegramInput(TelegramConfig.from_credentials(credentials(telegram, timeout_s=0.5)), store)
    with caplog.at_level(logging.ERROR, logger="connectors.telegram"):
        await connector.get_output_channel().send_response(
            RECIPIENT,
            {
                "custom": {"document": {"url": f"{files}/quotes/abc123.pdf", "filename": "Q.pdf"}},
                "image": f"{files}/images/desk.png",
            },
        )
    assert f"send_document to {ref(RECIPIENT)} failed: TimedOut" in caplog.text  # its pseudonym, not its id
    assert RECIPIENT not in caplog.text
    assert [r.kind for r in await table(store, "channel_messages")] == ["image"]


@pytest.mark.parametrize("failure, error", [("flood", "RetryAfter"), ("chat_not_found", "BadRequest: Chat not found")])
async def test_platform_errors_are_logged_with_recipient_and_method(
    connector: TelegramInput, telegram: FakeTelegram, failure: str, error: str, caplog
) -> None:
    telegram.failure = failure
    with caplog.at_level(logging.ERROR, logger="connectors.telegram"):
        await connector.get_output_channel().send_response(RECIPIENT, {"text": "Hello"})
    assert f"send_message to {ref(RECIPIENT)} failed: {error}" in caplog.text and RECIPIENT not in caplog.text
    assert await table(connector.store, "channel_messages") == []


async def test_a_conversation_of_another_channel_is_not_sent_to(
    connector: TelegramInput, telegram: FakeTelegram, caplog
) -> None:
    with caplog.at_level(logging.ERROR, logger="connectors.telegram"):
        await connector.get_output_channel().send_response("whatsapp-971501234567", {"text": "Hello"})
    assert telegram.requests == [] and "not a telegram-<chat id> conversation" in caplog.text


async def test_fetch_pdf_refuses_what_is_not_a_pdf_or_too_big(files: str) -> None:
    with pytest.raises(DocumentError, match="not a PDF"):
        await fetch_pdf(f"{files}/login", 5)
    with pytest.raises(DocumentError, match="over 100 bytes"):
        await fetch_pdf(f"{files}/quotes/abc123.pdf", 5, max_bytes=100)
    with pytest.raises(DocumentError, match="HTTP 404"):
        await fetch_pdf(f"{files}/quotes/missing.pdf", 5)
    assert await fetch_pdf(f"{files}/quotes/abc123.pdf", 5) == PDF
