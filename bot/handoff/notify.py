"""Notifications to the sales managers' Telegram chat through the Bot API (python-telegram-bot),
configured by ``CLOSER_TELEGRAM_*`` settings.

Without a bot token or a manager chat id nothing is sent: :func:`notify_managers` logs a warning and
returns None. A failed send raises :class:`NotifyError`; callers record it and carry on, a lost
notification never stops the conversation.
"""

import logging

from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, InputFile
from telegram.constants import MessageLimit
from telegram.error import TelegramError
from telegram.request import HTTPXRequest

from bot.core.settings import Settings, get_settings

log = logging.getLogger(__name__)

ELLIPSIS = "…"


class NotifyError(Exception):
    """Telegram refused or could not be reached: bad token (401), flood control (429), unknown chat
    or bad request (400), bot blocked (403), timeout or network failure. The message names the
    python-telegram-bot error type and Telegram's description, with the bot token masked."""


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - len(ELLIPSIS)] + ELLIPSIS


async def notify_managers(
    text: str,
    settings: Settings | None = None,
    buttons: list[tuple[str, str]] | None = None,
    photo: tuple[bytes, str] | None = None,
) -> str | None:
    """Send ``text`` as plain text (no parse mode) to the managers' chat, with ``buttons`` as
    ``(title, url)`` inline URL buttons, one per row, and then ``photo`` (``(PNG bytes, caption)``, e.g. a
    chart; the caption cut to Telegram's 1024 characters) when given. Text over Telegram's
    4096-character limit is cut to 4096 characters ending in an ellipsis. ``settings.telegram_timeout``
    (seconds) bounds each phase (connect, write, read) of each API call (``getMe``, ``sendMessage``,
    ``sendPhoto``).

    Returns the sent message's id as a string, or None when the bot token or the manager chat id is
    not configured. Raises :class:`NotifyError` on any Telegram error."""
    settings = settings or get_settings()
    token, chat_id = settings.telegram_bot_token, settings.telegram_manager_chat_id
    if not token or not chat_id:
        log.warning("Telegram not configured; managers not notified")
        return None
    text = _cut(text, MessageLimit.MAX_TEXT_LENGTH)
    rows = [[InlineKeyboardButton(title, url=url)] for title, url in buttons or []]
    timeout = settings.telegram_timeout
    bot = Bot(
        token,
        base_url=f"{settings.telegram_api_base}/bot",
        base_file_url=f"{settings.telegram_api_base}/file/bot",
        request=HTTPXRequest(
            read_timeout=timeout, write_timeout=timeout, connect_timeout=timeout, pool_timeout=timeout
        ),
    )
    try:
        async with bot:  # getMe, which also checks the token
            message = await bot.send_message(
                chat_id, text, parse_mode=None, reply_markup=InlineKeyboardMarkup(rows) if rows else None
            )
            if photo is not None:
                image, caption = photo
                upload = InputFile(image, filename="chart.png")
                await bot.send_photo(chat_id, upload, caption=_cut(caption, MessageLimit.CAPTION_LENGTH))
    except TelegramError as exc:
        detail = f"{type(exc).__name__}: {exc}"
        if isinstance(exc.__cause__, TelegramError):  # getMe's 401 comes re-raised without the description
            detail += f" ({exc.__cause__})"
        raise NotifyError(detail.replace(token, "<token>")) from exc
    return str(message.message_id)
