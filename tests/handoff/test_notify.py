"""The managers' Telegram notification against a local server speaking the Bot API."""

import logging
from types import SimpleNamespace

import pytest

from bot.handoff.notify import NotifyError, notify_managers
from tests.fakes.telegram_server import FakeTelegram

CHAT_ID = "-1001234567890"


@pytest.fixture
async def telegram() -> FakeTelegram:
    server = await FakeTelegram().start()
    yield server
    await server.close()


def settings_for(server: FakeTelegram, **overrides) -> SimpleNamespace:
    values = {
        "telegram_bot_token": server.token,
        "telegram_manager_chat_id": CHAT_ID,
        "telegram_api_base": server.api_base,
        "telegram_timeout": 5.0,
    }
    return SimpleNamespace(**(values | overrides))


async def test_text_and_url_buttons_reach_the_managers_chat(telegram: FakeTelegram) -> None:
    buttons = [("Open lead", "https://closer.example/leads/7"), ("Call", "https://closer.example/call/7")]
    message_id = await notify_managers("New lead: Aisha, +971 50 123 4567", settings_for(telegram), buttons)

    assert message_id == "1"
    [sent] = telegram.messages
    assert sent["chat"]["id"] == int(CHAT_ID)
    assert sent["text"] == "New lead: Aisha, +971 50 123 4567"
    assert sent["reply_markup"] == {"inline_keyboard": [[{"text": title, "url": url}] for title, url in buttons]}
    method, params = telegram.requests[-1]
    assert method == "sendMessage" and params["chat_id"] == CHAT_ID and "parse_mode" not in params


async def test_without_buttons_no_keyboard_is_sent(telegram: FakeTelegram) -> None:
    assert await notify_managers("Plain", settings_for(telegram)) == "1"
    assert "reply_markup" not in telegram.requests[-1][1]


@pytest.mark.parametrize("missing", ["telegram_bot_token", "telegram_manager_chat_id"])
async def test_not_configured_warns_and_sends_nothing(
    telegram: FakeTelegram, missing: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="bot.handoff.notify"):
        assert await notify_managers("New lead", settings_for(telegram, **{missing: None})) is None
    assert "Telegram not configured; managers not notified" in caplog.text
    assert telegram.requests == []


async def test_long_text_is_truncated_to_the_limit(telegram: FakeTelegram) -> None:
    await notify_managers("x" * 5000, settings_for(telegram))
    text = telegram.messages[0]["text"]
    assert len(text) == 4096 and text.endswith("…") and text.startswith("x" * 4095)


async def test_wrong_token_raises_without_revealing_it(telegram: FakeTelegram) -> None:
    with pytest.raises(NotifyError, match=r"InvalidToken.*Unauthorized") as error:
        await notify_managers("New lead", settings_for(telegram, telegram_bot_token="42:wrong-secret"))
    assert "wrong-secret" not in str(error.value)
    assert telegram.messages == []


async def test_flood_control_raises_with_the_retry_delay(telegram: FakeTelegram) -> None:
    telegram.failure = "flood"
    with pytest.raises(NotifyError, match=r"RetryAfter.*Retry in 3 seconds"):
        await notify_managers("New lead", settings_for(telegram))


async def test_unknown_chat_raises_bad_request(telegram: FakeTelegram) -> None:
    telegram.failure = "chat_not_found"
    with pytest.raises(NotifyError, match="BadRequest: Chat not found"):
        await notify_managers("New lead", settings_for(telegram))


async def test_outage_raises_network_error() -> None:
    server = await FakeTelegram().start()
    settings = settings_for(server)
    await server.close()
    with pytest.raises(NotifyError, match=r"NetworkError.*ConnectError"):
        await notify_managers("New lead", settings)
