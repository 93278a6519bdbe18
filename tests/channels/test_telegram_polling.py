"""Long polling (connectors/telegram_polling.py) between the fake Bot API (getUpdates serving the
updates a test queues) and a real Sanic server with the Telegram connector, in process and as the
command a developer runs."""

import asyncio
import logging
import signal
import socket
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress

from connectors.telegram import TelegramConfig, TelegramInput
from connectors.telegram_polling import poll
from tests.channels.conftest import ROOT
from tests.channels.test_telegram import (
    CHAT_ID,
    SECRET,
    STICKER,
    UNSUPPORTED_REPLY,
    Rasa,
    callback_update,
    connector,
    credentials,
    eventually,
    serve,
    table,
    telegram,
    text_update,
    update,
)
from tests.fakes.telegram_server import FakeTelegram

__all__ = ["connector", "telegram"]  # fixtures of test_telegram.py

PYTHON = sys.executable  # .venv-rasa's interpreter: the one running these tests


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@asynccontextmanager
async def polling(telegram: FakeTelegram, rasa_url: str, **overrides) -> AsyncIterator[asyncio.Task]:
    config = TelegramConfig.from_credentials(credentials(telegram, **overrides))
    task = asyncio.create_task(poll(config, rasa_url, first_backoff_s=0.05))
    try:
        yield task
    finally:
        task.cancel()
        with suppress(asyncio.CancelledError):
            await task


async def test_updates_are_forwarded_unchanged_in_order_and_confirmed(
    telegram: FakeTelegram, connector: TelegramInput
) -> None:
    telegram.webhook = {"url": "https://old.example.com/hook"}
    pushed = [text_update(1, "Hi"), callback_update(2, "/request_human"), update(3, sticker=STICKER)]
    for body in pushed:
        telegram.push_update(body)
    rasa = Rasa(telegram)
    async with serve(connector, rasa) as base_url, polling(telegram, base_url) as task:
        await eventually(lambda: len(telegram.calls("sendMessage")) == 1, "the reply to the sticker")
        await eventually(lambda: telegram.updates == [], "getUpdates confirming the forwarded updates")
        assert not task.done()
        await connector.queues.drain()
    assert telegram.webhook is None and telegram.calls("deleteWebhook")
    assert rasa.texts == ["Hi", "/request_human"]
    assert telegram.messages[0]["text"] == UNSUPPORTED_REPLY
    assert [row.payload for row in await table(connector.store, "channel_deliveries")] == pushed
    offsets = [params.get("offset") for params in telegram.calls("getUpdates")]
    assert offsets[0] is None and offsets[-1] == "4"
    assert {params["timeout"] for params in telegram.calls("getUpdates")} == {"25"}


async def test_an_update_waits_while_rasa_is_down_and_is_delivered_once(
    telegram: FakeTelegram, connector: TelegramInput, caplog
) -> None:
    port = free_port()
    telegram.push_update(text_update(10, "Are you there?"))
    rasa = Rasa(telegram)
    with caplog.at_level(logging.WARNING, logger="connectors.telegram_polling"):
        async with polling(telegram, f"http://127.0.0.1:{port}"):
            await eventually(lambda: caplog.text.count("not taken by") >= 2, "failed deliveries to the stopped Rasa")
            assert [u["update_id"] for u in telegram.updates] == [10]  # not confirmed to Telegram
            async with serve(connector, rasa, port=port):
                await eventually(lambda: rasa.texts == ["Are you there?"], "the update reaching Rasa")
                await eventually(lambda: telegram.updates == [], "the update confirmed")
                await connector.queues.drain()
    assert rasa.texts == ["Are you there?"]
    assert "ConnectError" in caplog.text


async def test_an_update_the_webhook_refuses_is_kept(telegram: FakeTelegram, connector: TelegramInput, caplog) -> None:
    telegram.push_update(text_update(20, "Hello"))
    rasa = Rasa(telegram)
    with caplog.at_level(logging.WARNING, logger="connectors.telegram_polling"):
        async with serve(connector, rasa) as base_url, polling(telegram, base_url, secret_token="another-secret"):
            await eventually(lambda: caplog.text.count("HTTP 403") >= 2, "refused deliveries")
            assert [u["update_id"] for u in telegram.updates] == [20]
    assert rasa.messages == [] and await table(connector.store, "channel_deliveries") == []


# --- the command --------------------------------------------------------------------------------

CREDENTIALS = """\
rest:
connectors.telegram.TelegramInput:
  bot_token: ${CLOSER_TEST_TELEGRAM_TOKEN}
  secret_token: ${CLOSER_TEST_TELEGRAM_SECRET}
  api_base: %s/bot
  timeout_s: 5
"""


async def command(credentials_file, rasa_url: str, **env: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        PYTHON,
        "-m",
        "connectors.telegram_polling",
        "--credentials",
        str(credentials_file),
        "--rasa-url",
        rasa_url,
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )


async def finished(process: asyncio.subprocess.Process) -> tuple[int, str]:
    output, _ = await asyncio.wait_for(process.communicate(), 120)
    return process.returncode, output.decode()


async def test_the_command_forwards_updates_and_stops_cleanly_on_ctrl_c(
    telegram: FakeTelegram, connector: TelegramInput, tmp_path
) -> None:
    path = tmp_path / "credentials.yml"
    path.write_text(CREDENTIALS % telegram.api_base)
    rasa = Rasa(telegram, reply=True)
    async with serve(connector, rasa) as base_url:
        process = await command(
            path, base_url, CLOSER_TEST_TELEGRAM_TOKEN=telegram.token, CLOSER_TEST_TELEGRAM_SECRET=SECRET
        )
        try:
            telegram.push_update(text_update(30, "I want 12 oak desks"))
            await eventually(lambda: rasa.texts == ["I want 12 oak desks"], "the update reaching Rasa", seconds=120)
            await eventually(
                lambda: len(telegram.calls("getUpdates")) >= 2 and telegram.updates == [], "the next long poll"
            )
        finally:
            process.send_signal(signal.SIGINT)
            returncode, output = await finished(process)
        await connector.queues.drain()
    assert returncode == 0, output
    assert "stopped" in output and "Traceback" not in output
    assert telegram.token not in output
    assert rasa.messages[0].sender_id == f"telegram-{CHAT_ID}"
    assert [m["text"] for m in telegram.messages] == ["You said: I want 12 oak desks"]


async def test_the_command_refuses_an_unset_variable_or_a_missing_block(telegram: FakeTelegram, tmp_path) -> None:
    path = tmp_path / "credentials.yml"
    path.write_text(CREDENTIALS % telegram.api_base)
    returncode, output = await finished(await command(path, "http://127.0.0.1:9", CLOSER_TEST_TELEGRAM_TOKEN="1:x"))
    assert returncode == 2 and "CLOSER_TEST_TELEGRAM_SECRET" in output

    path.write_text("rest:\n")
    returncode, output = await finished(await command(path, "http://127.0.0.1:9"))
    assert returncode == 2 and "no 'connectors.telegram.TelegramInput' block" in output
    assert telegram.requests == []


async def test_the_command_stops_on_a_wrong_token_without_printing_it(telegram: FakeTelegram, tmp_path) -> None:
    path = tmp_path / "credentials.yml"
    path.write_text(CREDENTIALS % telegram.api_base)
    returncode, output = await finished(
        await command(
            path,
            "http://127.0.0.1:9",
            CLOSER_TEST_TELEGRAM_SECRET=SECRET,
            CLOSER_TEST_TELEGRAM_TOKEN="42:wrong-secret-token",
        )
    )
    assert returncode == 1 and "InvalidToken" in output
    assert "wrong-secret-token" not in output
    assert [name for name, _ in telegram.requests] == ["getMe"]
