"""Telegram by long polling, for a machine Telegram cannot reach (no public URL): fetches the bot's
updates with getUpdates and hands each one to the Rasa server's Telegram webhook, as Telegram would.

    .venv-rasa/bin/python -m connectors.telegram_polling --credentials credentials.channels.yml \\
        --rasa-url http://localhost:5005

It reads the ``connectors.telegram.TelegramInput`` block of the credentials file with Rasa's own
YAML reader (``${ENV_VARS}`` substituted), checks the token (getMe), removes the bot's webhook
(deleteWebhook: Telegram refuses getUpdates while one is set; pending updates are kept), then loops
``getUpdates(offset, timeout=25)`` and POSTs each update's JSON, as received, to
``<rasa-url>/webhooks/telegram/webhook`` with the ``X-Telegram-Bot-Api-Secret-Token`` header. The
offset moves past an update only once the webhook answered 2xx; until then the POST is retried with
back-off (1 s doubling to 30 s), so no update is dropped while Rasa is down. Updates forwarded twice
(after a restart of this process) are dropped by the webhook's dedupe. Ctrl-C or SIGTERM stops it.

Exit status: 0 when stopped, 1 when Telegram refused the token or could not be reached at start,
2 for a missing or bad credentials file.
"""

import argparse
import asyncio
import logging
import signal
import sys
import warnings
from typing import Any

import httpx
from rasa.shared.exceptions import RasaException
from rasa.shared.utils.io import read_config_file
from telegram.error import TelegramError
from telegram.warnings import PTBUserWarning

from connectors.config import ChannelConfigError
from connectors.telegram import ALLOWED_UPDATES, CLASS_PATH, SECRET_HEADER, TelegramConfig

log = logging.getLogger("connectors.telegram_polling")

POLL_TIMEOUT_S = 25
FIRST_BACKOFF_S = 1.0
MAX_BACKOFF_S = 30.0


def load_config(path: str) -> TelegramConfig:
    """The Telegram block of the credentials file at ``path``. Raises ChannelConfigError (no block,
    a bad value), RasaException (unset environment variable, bad YAML) or OSError (unreadable)."""
    credentials = read_config_file(path)
    if CLASS_PATH not in credentials:
        raise ChannelConfigError(f"{path}: no '{CLASS_PATH}' block")
    return TelegramConfig.from_credentials(credentials[CLASS_PATH])


async def forward(
    client: httpx.AsyncClient,
    url: str,
    secret_token: str,
    update: dict[str, Any],
    first_backoff_s: float = FIRST_BACKOFF_S,
) -> None:
    """POST ``update`` to the webhook at ``url`` until it answers 2xx, waiting ``first_backoff_s``
    seconds after the first failure, twice as long after each next one, at most MAX_BACKOFF_S."""
    delay = first_backoff_s
    while True:
        try:
            response = await client.post(url, json=update, headers={SECRET_HEADER: secret_token})
            if response.is_success:
                return
            problem = f"HTTP {response.status_code} {response.text[:200]}"
        except httpx.HTTPError as exc:
            problem = f"{type(exc).__name__}: {exc}"
        log.warning("update %s not taken by %s (%s); retrying in %.0f s", update.get("update_id"), url, problem, delay)
        await asyncio.sleep(delay)
        delay = min(delay * 2, MAX_BACKOFF_S)


async def poll(config: TelegramConfig, rasa_url: str, first_backoff_s: float = FIRST_BACKOFF_S) -> None:
    """Forward the bot's updates to the Rasa server at ``rasa_url`` until cancelled. Raises
    TelegramError when getMe or deleteWebhook fails at start (wrong token, Telegram unreachable);
    later getUpdates failures are logged and retried with back-off."""
    webhook = f"{rasa_url.rstrip('/')}/webhooks/telegram/webhook"
    # getUpdates goes through Bot.do_api_request to forward Telegram's JSON unchanged (Bot.get_updates
    # returns parsed Update objects); python-telegram-bot warns that a method of its own exists.
    warnings.filterwarnings("ignore", message=r"Please use 'Bot\.getUpdates'", category=PTBUserWarning)
    async with config.bot() as bot, httpx.AsyncClient(timeout=config.timeout_s) as client:
        await bot.delete_webhook()
        log.info("polling Telegram as @%s, forwarding updates to %s", bot.username, webhook)
        offset: int | None = None
        delay = first_backoff_s
        while True:
            try:
                updates: list[dict[str, Any]] = await bot.do_api_request(
                    "getUpdates",
                    {"offset": offset, "timeout": POLL_TIMEOUT_S, "allowed_updates": ALLOWED_UPDATES},
                    read_timeout=config.timeout_s + POLL_TIMEOUT_S,
                )
            except TelegramError as exc:
                log.warning("getUpdates failed (%s); retrying in %.0f s", config.describe(exc), delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, MAX_BACKOFF_S)
                continue
            delay = first_backoff_s
            for update in updates:
                await forward(client, webhook, config.secret_token, update, first_backoff_s)
                offset = update["update_id"] + 1


async def run(config: TelegramConfig, rasa_url: str) -> None:
    """:func:`poll` until SIGINT (Ctrl-C) or SIGTERM."""
    task, loop = asyncio.current_task(), asyncio.get_running_loop()
    for stop in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(stop, task.cancel)
    try:
        await poll(config, rasa_url)
    except asyncio.CancelledError:
        log.info("stopped")


def main(argv: list[str] | None = None) -> int:
    """The command line (see the module docstring); the exit code: 0 stopped by Ctrl-C or SIGTERM, 1 token
    refused or Telegram unreachable at start, 2 a bad credentials file."""
    parser = argparse.ArgumentParser(prog="python -m connectors.telegram_polling", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--credentials", default="credentials.channels.yml", help="Rasa credentials file (default %(default)s)"
    )
    parser.add_argument("--rasa-url", default="http://localhost:5005", help="Rasa server (default %(default)s)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        config = load_config(args.credentials)
    except (ChannelConfigError, RasaException, OSError) as exc:
        log.error("%s", exc)
        return 2
    try:
        asyncio.run(run(config, args.rasa_url))
    except TelegramError as exc:
        log.error("Telegram: %s", config.describe(exc))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
