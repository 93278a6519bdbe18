"""Telegram channel for the Rasa server: :class:`TelegramInput` receives the Bot API's webhook
updates, :class:`TelegramOutput` sends the bot's messages through python-telegram-bot.

credentials.yml (Rasa substitutes ``${ENV_VARS}``)::

    connectors.telegram.TelegramInput:
      bot_token: ${TELEGRAM_BOT_TOKEN}          # required, from @BotFather
      secret_token: ${TELEGRAM_SECRET_TOKEN}    # required, 1-256 of A-Z a-z 0-9 _ -
      webhook_url: https://bot.example.com/webhooks/telegram/webhook   # optional: setWebhook at start
      api_base: https://api.telegram.org/bot    # optional (python-telegram-bot's base_url)
      timeout_s: 10                             # optional, each phase of each Bot API call
      max_body_bytes: 1048576                   # optional, larger webhook bodies get 413
      rate_limit_messages: 20                   # optional, per customer per window (see below)
      rate_limit_window_s: 60                   # optional, seconds

Inbound (``POST /webhooks/telegram/webhook``): the ``X-Telegram-Bot-Api-Secret-Token`` header is
checked first (403), then the body (413, 400); each update of a private chat is a delivery of the
durable inbox (:class:`~connectors.webhook.DurableWebhookInput`: deduplicated by its ``update_id``,
answered 200 at once, processed in its customer's queue, replayed after a restart, rate limited;
by default 20 messages per 60 s, :func:`~connectors.config.rate_limiter`). The Rasa conversation id
is ``telegram-<chat id>``.

- text → the text; ``/start`` or ``/start <payload>`` (a deep link) → ``/greet`` with metadata
  ``start_payload``; other ``/commands`` pass through as text (Rasa reads ``/intent``).
- a button press (``callback_query``) → answerCallbackQuery (stops the spinner), then the button's
  payload as the text; payloads over Telegram's 64-byte ``callback_data`` were sent as ``#<key>``
  and are looked up in the store; an unknown key gets "This button has expired" and a polite
  request to type it.
- ``edited_message``: processed as a new message (the customer corrected what they wrote, and the
  bot should answer the corrected text rather than ignore it), with metadata ``edited: true`` and
  the original ``message_id``. Edits without text or caption (live locations move by edits) are
  ignored.
- a shared contact → its phone number (``+`` added when Telegram sends digits only), so the lead
  form can fill the phone slot; a photo, video or document with a caption → the caption.
- a location, sticker, voice, photo without caption…: a polite reply from the connector, in the same
  queue, without calling Rasa.
- groups, supergroups, channels and other update kinds (``my_chat_member`` — e.g. the customer
  blocked the bot —, ``channel_post``…): 200, logged, not stored, no reply.

Outbound: text (split at 4096 characters), buttons as an inline keyboard (Rasa's ``button_type``:
``inline``, ``vertical``, or ``reply`` for a one-time reply keyboard, whose buttons send their
titles as text), quick replies as a reply keyboard, an http(s) payload as a URL button, ``image``
(sendPhoto by URL), ``attachment`` (sendDocument by URL), custom ``document`` (the quote PDF,
downloaded and uploaded), custom ``telegram`` (``{"method": "sendLocation", ...}``: any Bot API
``send*`` method with these arguments, to the conversation's chat). A failed call is logged and the
turn goes on. Each message Telegram accepts is recorded with ``store.sent``; message ids are
``<chat id>:<message_id>``, Telegram numbering messages per chat.

python-telegram-bot puts the bot token in every request URL, and httpx logs request URLs at INFO:
unless the ``httpx`` logger has a level of its own, it is set to WARNING here.
"""

import hmac
import inspect
import logging
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

import httpx
from rasa.core.channels.channel import OutputChannel
from sanic.request import Request
from telegram import (
    Bot,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InputFile,
    KeyboardButton,
    Message,
    ReplyKeyboardMarkup,
    Update,
)
from telegram.constants import ChatType, InlineKeyboardButtonLimit, MessageLimit
from telegram.error import TelegramError
from telegram.request import HTTPXRequest

from bot.contracts import conversation_ids
from connectors.config import ChannelConfigError, positive, rate_limiter, required
from connectors.logs import ref
from connectors.ratelimit import RateLimiter
from connectors.store import ChannelStore
from connectors.text import split_text
from connectors.webhook import LOCATION_REPLY, UNSUPPORTED_REPLY, Delivery, DurableWebhookInput, Reading
from connectors.webhook_http import DEFAULT_MAX_BODY_BYTES, Refused, read_json

log = logging.getLogger(__name__)
if logging.getLogger("httpx").level == logging.NOTSET:
    logging.getLogger("httpx").setLevel(logging.WARNING)

CHANNEL = "telegram"
CLASS_PATH = "connectors.telegram.TelegramInput"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
ALLOWED_UPDATES = ["message", "edited_message", "callback_query"]
DEFAULT_API_BASE = "https://api.telegram.org/bot"
DEFAULT_TIMEOUT_S = 10.0
MAX_DOCUMENT_BYTES = 20 * 1024 * 1024
ROW_MAX_BUTTONS, ROW_MAX_TITLE = 3, 20  # inline buttons side by side only when few and short
SECRET_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,256}")
START = re.compile(r"/start(?:@\w+)?(?:\s+(.*))?", re.DOTALL)
URL = re.compile(r"https?://\S+")
SEND_METHOD = re.compile(r"send[A-Z][A-Za-z]*")

EXPIRED_NOTICE = "This button has expired"
EXPIRED_REPLY = "Sorry, that button has expired. Could you type what you need?"


@dataclass(frozen=True)
class TelegramConfig:
    """The ``connectors.telegram.TelegramInput`` block of credentials.yml (see the module docstring)."""

    bot_token: str
    secret_token: str
    webhook_url: str | None = None
    api_base: str = DEFAULT_API_BASE
    timeout_s: float = DEFAULT_TIMEOUT_S
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES

    @classmethod
    def from_credentials(cls, credentials: dict[str, Any] | None) -> "TelegramConfig":
        """Raises ChannelConfigError naming the key: ``bot_token`` or ``secret_token`` missing or
        empty, a ``secret_token`` Telegram would refuse, a ``timeout_s`` or ``max_body_bytes`` that is
        not a positive number."""
        credentials = credentials or {}
        secret_token = required(credentials, "secret_token", CHANNEL)
        if not SECRET_TOKEN.fullmatch(secret_token):
            raise ChannelConfigError(
                "credentials.yml: the telegram channel's 'secret_token' must be 1-256 "
                "characters of A-Z, a-z, 0-9, _ and - (Telegram's rule)"
            )
        return cls(
            required(credentials, "bot_token", CHANNEL),
            secret_token,
            str(credentials.get("webhook_url") or "").strip() or None,
            str(credentials.get("api_base") or DEFAULT_API_BASE).strip(),
            positive(credentials, "timeout_s", CHANNEL, float, DEFAULT_TIMEOUT_S),
            positive(credentials, "max_body_bytes", CHANNEL, int, DEFAULT_MAX_BODY_BYTES),
        )

    def bot(self) -> Bot:
        """A Bot API client; each phase (connect, write, read, pool) of each call is bounded by
        ``timeout_s``. Usable at once; ``initialize()`` (getMe) checks the token, ``shutdown()``
        closes its connections."""

        def request() -> HTTPXRequest:
            t = self.timeout_s
            return HTTPXRequest(
                connect_timeout=t, read_timeout=t, write_timeout=t, pool_timeout=t, media_write_timeout=t
            )

        return Bot(self.bot_token, base_url=self.api_base, request=request(), get_updates_request=request())

    def describe(self, exc: BaseException) -> str:
        """An error's type and message for the log, with the bot token masked."""
        return f"{type(exc).__name__}: {exc}".replace(self.bot_token, "<token>")


def chat_id_of(recipient_id: str) -> str | None:
    """The Telegram chat id in a Rasa conversation id ``telegram-<chat id>``, or None."""
    parsed = conversation_ids.parse(recipient_id)
    return parsed[1] if parsed and parsed[0] == CHANNEL and parsed[1].lstrip("-").isdigit() else None


def _rows(items: list[Any], titles: list[str], vertical: bool) -> list[list[Any]]:
    if vertical or len(items) > ROW_MAX_BUTTONS or any(len(title) > ROW_MAX_TITLE for title in titles):
        return [[item] for item in items]
    return [items]


def _title(button: dict[str, Any]) -> str:
    return str(button.get("title") or button.get("payload") or "")


class DocumentError(ValueError):
    """A document URL that did not give a PDF within the size limit."""


async def fetch_pdf(url: str, timeout_s: float, max_bytes: int = MAX_DOCUMENT_BYTES) -> bytes:
    """The PDF at ``url`` (served as application/pdf, or a path ending .pdf). Raises httpx.HTTPError
    (unreachable, timeout after ``timeout_s`` per phase) or DocumentError (a non-2xx status, not a
    PDF, over ``max_bytes``; its message does not name the URL, which grants access to the file)."""
    async with (
        httpx.AsyncClient(timeout=timeout_s, follow_redirects=True) as client,
        client.stream("GET", url) as response,
    ):
        if not response.is_success:
            raise DocumentError(f"HTTP {response.status_code}")
        content_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type != "application/pdf" and not urlparse(url).path.lower().endswith(".pdf"):
            raise DocumentError(f"not a PDF ({content_type or 'no content type'})")
        chunks, size = [], 0
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > max_bytes:
                raise DocumentError(f"over {max_bytes} bytes")
            chunks.append(chunk)
    return b"".join(chunks)


class TelegramOutput(OutputChannel):
    """Sends Rasa's messages to ``telegram-<chat id>`` conversations; never raises out of
    :meth:`send_response` (a failed Bot API call is logged with recipient and method)."""

    @classmethod
    def name(cls) -> str:
        return CHANNEL

    def __init__(self, config: TelegramConfig, bot: Bot, store: ChannelStore) -> None:
        self.config, self.bot, self.store = config, bot, store

    async def send_response(self, recipient_id: str, message: dict[str, Any]) -> None:
        """Rasa's message dict (text, buttons, quick_replies, custom, image, attachment), each part sent
        even when another failed."""
        try:
            await super().send_response(recipient_id, dict(message))
        except Exception:
            log.exception("telegram: a message to %s was not sent", ref(recipient_id))

    async def _call(self, recipient_id: str, kind: str, method: str, **params: Any) -> None:
        """``bot.<method>(chat_id=…, **params)``; the sent message recorded as ``kind``."""
        chat_id = chat_id_of(recipient_id)
        if chat_id is None:
            log.error("telegram: %s to %s not sent: not a telegram-<chat id> conversation", method, ref(recipient_id))
            return
        try:
            result = await getattr(self.bot, method)(chat_id=chat_id, **params)
        except TelegramError as exc:
            log.error("telegram: %s to %s failed: %s", method, ref(recipient_id), self.config.describe(exc))
            return
        for message in result if isinstance(result, tuple) else (result,):
            if isinstance(message, Message):
                await self.store.sent(CHANNEL, f"{chat_id}:{message.message_id}", chat_id, kind)

    async def _send_text(self, recipient_id: str, text: str, kind: str, markup: Any = None) -> None:
        parts = split_text(text or "", MessageLimit.MAX_TEXT_LENGTH)
        for number, part in enumerate(parts, 1):
            last = number == len(parts)
            await self._call(
                recipient_id, kind if last else "text", "send_message", text=part, reply_markup=markup if last else None
            )

    async def send_text_message(self, recipient_id: str, text: str, **kwargs: Any) -> None:
        """One message per 4096 characters (Rasa's own channels split at blank lines; this one does not)."""
        await self._send_text(recipient_id, text, "text")

    async def send_text_with_buttons(
        self,
        recipient_id: str,
        text: str,
        buttons: list[dict[str, Any]],
        button_type: str | None = "inline",
        **kwargs: Any,
    ) -> None:
        """``button_type`` (a key of the Rasa response): ``inline`` (default: side by side when up to
        3 short titles, else one per row), ``vertical`` (one per row) or ``reply`` (a one-time reply
        keyboard). Inline buttons carry the payload as ``callback_data``, or ``#<key>`` when it is
        over 64 bytes; an http(s) payload makes a URL button."""
        titles = [_title(button) for button in buttons]
        if button_type == "reply":
            markup = ReplyKeyboardMarkup(
                _rows([KeyboardButton(title) for title in titles], titles, False),
                one_time_keyboard=True,
                resize_keyboard=True,
            )
        else:
            if button_type not in ("inline", "vertical", None):
                log.warning("telegram: unknown button_type %r, sending inline buttons", button_type)
            keys = [await self._inline_button(title, button) for title, button in zip(titles, buttons, strict=True)]
            markup = InlineKeyboardMarkup(_rows(keys, titles, button_type == "vertical"))
        await self._send_text(recipient_id, text, "buttons", markup)

    async def _inline_button(self, title: str, button: dict[str, Any]) -> InlineKeyboardButton:
        payload = str(button.get("payload") or title)
        if URL.fullmatch(payload):
            return InlineKeyboardButton(title, url=payload)
        if len(payload.encode()) > InlineKeyboardButtonLimit.MAX_CALLBACK_DATA or payload.startswith("#"):
            payload = "#" + await self.store.callback_key(payload)
        return InlineKeyboardButton(title, callback_data=payload)

    async def send_quick_replies(
        self, recipient_id: str, text: str, quick_replies: list[dict[str, Any]], **kwargs: Any
    ) -> None:
        """A one-time reply keyboard of the titles."""
        await self.send_text_with_buttons(recipient_id, text, quick_replies, button_type="reply")

    async def send_image_url(self, recipient_id: str, image: str, **kwargs: Any) -> None:
        """sendPhoto by URL (Telegram fetches it)."""
        await self._call(recipient_id, "image", "send_photo", photo=image)

    async def send_attachment(self, recipient_id: str, attachment: str, **kwargs: Any) -> None:
        """sendDocument by URL (Telegram fetches it; by URL it takes PDF, ZIP and GIF files only)."""
        await self._call(recipient_id, "document", "send_document", document=attachment)

    async def send_custom_json(self, recipient_id: str, json_message: dict[str, Any], **kwargs: Any) -> None:
        """``{"document": {"url", "filename", "caption"}}``: the PDF downloaded and uploaded;
        ``{"telegram": {"method": "send…", …}}``: that Bot API call; the web widget's answer metadata
        (``answer_id``) is ignored silently, anything else logged at debug."""
        if isinstance(json_message.get("document"), dict):
            await self._send_document(recipient_id, json_message["document"])
        elif isinstance(json_message.get("telegram"), dict):
            await self._send_api_call(recipient_id, json_message["telegram"])
        elif "answer_id" not in json_message:
            log.debug("telegram: custom message with keys %s not sent to %s", sorted(json_message), ref(recipient_id))

    async def _send_document(self, recipient_id: str, document: dict[str, Any]) -> None:
        url = str(document.get("url") or "")
        filename = str(document.get("filename") or urlparse(url).path.rsplit("/", 1)[-1] or "document.pdf")
        try:
            data = await fetch_pdf(url, self.config.timeout_s)
        except (httpx.HTTPError, DocumentError) as exc:  # the URL is not logged: it grants access to the PDF
            log.error(
                "telegram: sendDocument of %s to %s failed: download: %s",
                filename,
                ref(recipient_id),
                self.config.describe(exc),
            )
            return
        await self._call(
            recipient_id,
            "document",
            "send_document",
            document=InputFile(data, filename=filename),
            caption=document.get("caption") or None,
        )

    async def _send_api_call(self, recipient_id: str, call: dict[str, Any]) -> None:
        params = {key: value for key, value in call.items() if key not in ("method", "chat_id")}
        method = str(call.get("method") or "")
        function = getattr(self.bot, method, None) if SEND_METHOD.fullmatch(method) else None
        try:
            if function is None:
                raise TypeError("not a Bot API send method")
            inspect.signature(function).bind(chat_id=0, **params)
        except TypeError as exc:
            log.error("telegram: custom %r to %s not sent: %s", method, ref(recipient_id), exc)
            return
        await self._call(recipient_id, "custom", method, **params)


def private_chat_id(body: dict[str, Any]) -> int | None:
    """The id of the private chat an Update (Bot API JSON) is about (for a button press, the chat
    of the message that had the button), or None for an update the channel ignores (other kinds,
    groups, channels). Read from the JSON, not through ``Update.de_json``: it decides the webhook's
    answer, and building the Update costs the acknowledgement more than everything else it does.
    Raises ValueError for a body that is not an Update (no integer ``update_id``, a message or
    callback query that is not an object, a message without a chat)."""
    update_id = body.get("update_id")
    if not isinstance(update_id, int) or isinstance(update_id, bool):
        raise ValueError("update_id is not an integer")
    query = body.get("callback_query")
    if query is not None and not isinstance(query, dict):
        raise ValueError("callback_query is not an object")
    message = query.get("message") if query is not None else body.get("message") or body.get("edited_message")
    if message is None:
        return None
    chat = message.get("chat") if isinstance(message, dict) else None
    if not (isinstance(chat, dict) and isinstance(chat.get("id"), int) and isinstance(chat.get("type"), str)):
        raise ValueError("the message is not an object with a chat")
    return chat["id"] if chat["type"] == ChatType.PRIVATE else None


def read_message(message: Message) -> tuple[str | None, str | None, dict[str, Any]]:
    """What a customer's message means: ``(text for Rasa, None, extra metadata)``, ``(None, polite
    reply, {})`` for what the bot cannot read, or ``(None, None, {})`` for a service message."""
    if message.text:
        start = START.fullmatch(message.text.strip())
        if start:
            return "/greet", None, {"start_payload": (start.group(1) or "").strip() or None}
        return message.text, None, {}
    if message.caption:
        return message.caption, None, {}
    if message.contact:
        phone = message.contact.phone_number
        return ("+" + phone if phone.isdigit() else phone), None, {}
    if message.location:
        return None, LOCATION_REPLY, {}
    if message.effective_attachment:
        return None, UNSUPPORTED_REPLY, {}
    return None, None, {}


class TelegramInput(DurableWebhookInput):
    """The webhook endpoint (see the module docstring); registered by Rasa from credentials.yml."""

    @classmethod
    def name(cls) -> str:
        return CHANNEL

    @classmethod
    def from_credentials(cls, credentials: dict[str, Any] | None) -> "TelegramInput":
        """Raises ChannelConfigError for a missing or bad credential or a business DB without the
        channel tables."""
        return cls(TelegramConfig.from_credentials(credentials), limiter=rate_limiter(credentials, CHANNEL))

    def __init__(
        self, config: TelegramConfig, store: ChannelStore | None = None, limiter: RateLimiter | None = None
    ) -> None:
        """``store`` and ``limiter``: see :class:`~connectors.webhook.DurableWebhookInput`."""
        super().__init__(store, limiter)
        self.config = config
        self.bot = config.bot()
        self.output = TelegramOutput(config, self.bot, self.store)

    async def deliveries(self, request: Request) -> list[Delivery] | None:
        """The update of a private chat, after the secret token (403) and the body (413, 400: not a
        Telegram Update); None for other updates."""
        secret = request.headers.get(SECRET_HEADER, "").encode()
        if not hmac.compare_digest(secret, self.config.secret_token.encode()):
            log.warning(
                "telegram: webhook call from %s refused: %s secret token",
                request.remote_addr or request.ip,
                "wrong" if secret else "no",
            )
            raise Refused(403, "wrong secret token")
        body = read_json(request, self.config.max_body_bytes)
        try:
            chat_id = private_chat_id(body)
        except ValueError as exc:
            log.warning("telegram: webhook body is not a Telegram Update: %s", exc)
            raise Refused(400, "body is not a Telegram Update") from None
        if chat_id is None:
            log.info(
                "telegram: update %s (%s) ignored: not a message, edit or button press in a private chat",
                body["update_id"],
                ", ".join(key for key in body if key != "update_id"),
            )
            return None
        return [Delivery(str(body["update_id"]), conversation_ids.make(CHANNEL, chat_id), body)]

    async def read(self, sender_id: str, payload: dict[str, Any]) -> Reading:
        """A message, edit or button press (after answering it) of a private chat; the customer noted."""
        update = Update.de_json(payload, self.bot)
        query = update.callback_query  # a private chat's (see private_chat_id, which let it through)
        message = query.message if query else update.message or update.edited_message
        user = query.from_user if query else message.from_user
        name = user.first_name if user else message.chat.first_name
        await self.store.saw_customer(CHANNEL, str(message.chat.id), name)
        meta = {"update_id": update.update_id, "chat_id": message.chat.id, "message_id": message.message_id}
        if user:
            meta.update(
                {
                    key: value
                    for key, value in {
                        "user_id": user.id,
                        "first_name": user.first_name,
                        "last_name": user.last_name,
                        "username": user.username,
                        "language_code": user.language_code,
                    }.items()
                    if value is not None
                }
            )
        if query:
            meta["callback_query_id"] = query.id
            return Reading(await self._button_payload(query), EXPIRED_REPLY, meta)
        text, reply, extra = read_message(message)
        meta.update(extra)
        if update.edited_message:
            if text is None:
                return Reading()
            meta["edited"] = True
        return Reading(text, reply, meta)

    async def _button_payload(self, query: Any) -> str | None:
        """The pressed button's payload (None for an unknown ``#key``), after answering the query."""
        data = query.data or ""
        payload = await self.store.callback_payload(data[1:]) if data.startswith("#") else data or None
        try:
            await self.bot.answer_callback_query(query.id, text=None if payload else EXPIRED_NOTICE)
        except TelegramError as exc:  # e.g. a query answered too late; the press still counts
            log.warning("telegram: answerCallbackQuery %s failed: %s", query.id, self.config.describe(exc))
        return payload

    async def start(self) -> None:
        """The inbox's start, then getMe (checks the token) and, with ``webhook_url``, setWebhook."""
        await super().start()
        try:
            await self.bot.initialize()  # getMe
            log.info("telegram: connected as @%s", self.bot.username)
        except TelegramError as exc:
            log.error(
                "telegram: the Bot API did not accept the bot token or was unreachable: %s", self.config.describe(exc)
            )
        if self.config.webhook_url:
            try:
                await self.bot.set_webhook(
                    self.config.webhook_url, secret_token=self.config.secret_token, allowed_updates=ALLOWED_UPDATES
                )
                log.info("telegram: webhook set to %s", self.config.webhook_url)
            except TelegramError as exc:
                log.error("telegram: setWebhook %s failed: %s", self.config.webhook_url, self.config.describe(exc))

    async def stop(self) -> None:
        """The inbox's stop, then the Bot API client closed."""
        await super().stop()
        await self.bot.shutdown()
