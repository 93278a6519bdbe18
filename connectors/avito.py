"""Avito Messenger as a Rasa channel: :class:`AvitoInput` receives the Messenger API's webhook (v3) at
``/webhooks/avito/webhook/<webhook_secret>``, :class:`AvitoOutput` answers through the Messenger API.

credentials.yml (Rasa substitutes ``${ENV_VARS}``)::

    connectors.avito.AvitoInput:
      client_id: ${AVITO_CLIENT_ID}             # required: avito.ru/professionals/api (Avito for business → API)
      client_secret: ${AVITO_CLIENT_SECRET}     # required
      user_id: ${AVITO_USER_ID}                 # required: the account's numeric id (its profile number)
      webhook_secret: ${AVITO_WEBHOOK_SECRET}   # required: 16-256 of A-Z a-z 0-9 _ - (openssl rand -hex 32)
      webhook_url: https://bot.example.com/webhooks/avito/webhook/<webhook_secret>   # optional: subscribed at start
      base_url: https://api.avito.ru            # optional
      timeout_s: 10                             # optional, seconds for each API call (token included)
      max_body_bytes: 1048576                   # optional, larger webhook bodies get 413
      rate_limit_messages: 20                   # optional, per conversation per window
      rate_limit_window_s: 60                   # optional, seconds

Inbound. Avito documents no signature for its webhooks, so the webhook's URL carries the secret as its last
path segment: a call without it or with another one gets 404 (logged with the caller's address, nothing stored).
The body is webhook v3, ``{"id", "version": "v3.0.0", "timestamp", "payload": {"type": "message", "value":
{"id", "chat_id", "user_id", "author_id", "created", "type", "chat_type", "content", "item_id", "published_at"}}}``
(:func:`webhook_message` checks it: 400 naming the field). ``{}`` (the probe Avito's documentation suggests, ``curl
-d '{}'``) and other payload types are acknowledged and ignored, and so are the account's own messages (``author_id``
== ``user_id``: the bot's replies, a manager writing in Avito's app), Avito's chat bots (``system``), deleted messages,
Avito's own chats (``a2u``) and notices for another account. Each customer message is a delivery of the durable inbox
(:class:`~connectors.webhook.DurableWebhookInput`: deduplicated by its message id, answered 200 at once, processed
in its conversation's queue, replayed after a restart, rate limited); the conversation id is ``avito-<chat_id>``.

In the queue, before any Rasa turn, the message is **confirmed** by reading it back through the Messenger API
(``GET /messenger/v3/accounts/{user_id}/chats/{chat_id}/messages/``, the newest 100): it must be there, inbound, by
the same author. One the API does not know (nor its chat: 400, 404) is dropped and logged as a warning, so a call
forged by someone who learnt the URL gets no turn and no reply; Rasa reads the API's copy of the message, not the
webhook's. An API failure (5xx, 403, timeout) marks the delivery failed, the error kept in ``channel_deliveries``.
Message types: ``text`` → its text; ``link`` → its text; ``location`` → LOCATION_REPLY; ``image``, ``voice``,
``file``, ``video``, ``item`` (a shared ad) → UNSUPPORTED_REPLY, both without Rasa; ``call``, ``appCall``,
``system``, ``deleted`` → nothing. Rasa's metadata: ``{"channel": "avito", "avito": {"chat_id": str, "chat_type":
"u2i" | "u2u", "item_id": int | None (the ad the customer writes about; None in a u2u chat), "author_id": int (the
customer's Avito id), "user_id": int (our account), "message_id": str, "created": int | None (Unix seconds),
"published_at": str | None (RFC 3339)}}``.

Outbound: ``POST /messenger/v1/accounts/{user_id}/chats/{chat_id}/messages`` with ``{"message": {"text"}, "type":
"text"}``, the text cut at 1000 characters (the API's limit, :func:`~connectors.text.split_text`). Avito messages have
no buttons: Rasa's buttons and quick replies become lines under the text, ``• <title>`` (``• <title>: <url>`` for a
link), and the customer types their choice (neither channel base nor Telegram/WhatsApp keeps a numbered-choice map,
so no numbers are shown that would mean nothing when typed back); images, attachments and the quote PDF (custom
``document``) are sent as their link. Each message the API accepts is recorded (``ChannelStore.sent``, its id the
API's); a failed call is logged and never raised, so the rest of the turn is still sent.

Auth: OAuth 2.0 client credentials (``POST /token``, form ``grant_type=client_credentials&client_id&client_secret``
→ ``{"access_token", "expires_in", "token_type": "Bearer"}``, 24 h), the token kept until 60 s before it expires
and fetched again after a 401 (or 403, which Avito has been reported to answer for an expired token), once per call.
With ``webhook_url``, the webhook is subscribed at start-up (``POST /messenger/v3/webhook {"url"}``); the URL must end
with the secret.
"""

import asyncio
import hmac
import json
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any
from urllib.parse import quote, urlparse

import aiohttp
from rasa.core.channels.channel import OutputChannel
from sanic.request import Request

from bot.contracts import conversation_ids
from connectors.config import ChannelConfigError, positive, rate_limiter, required
from connectors.logs import ref
from connectors.ratelimit import RateLimiter
from connectors.store import ChannelStore
from connectors.text import split_text
from connectors.webhook import LOCATION_REPLY, UNSUPPORTED_REPLY, Delivery, DurableWebhookInput, Reading
from connectors.webhook_http import DEFAULT_MAX_BODY_BYTES, Refused, read_json

log = logging.getLogger(__name__)

CHANNEL = "avito"
DEFAULT_BASE_URL = "https://api.avito.ru"
DEFAULT_TIMEOUT_S = 10.0
MAX_TEXT = 1000  # sendMessageRequestBody.message.text: "максимум 1000 символов"
CONFIRM_LIMIT = 100  # messages read back per confirmation: the API's largest page, newest first
TOKEN_RENEW_BEFORE_S = 60.0
SECRET = re.compile(r"[A-Za-z0-9_-]{16,256}")
MAX_CHAT_ID = 64  # channel_customers.user_id and channel_messages.recipient_id hold 64 characters
MAX_MESSAGE_ID = 160  # channel_deliveries.delivery_id
UNSUPPORTED_TYPES = ("image", "voice", "file", "video", "item")
IGNORED_TYPES = ("system", "deleted")  # Avito's chat bots; a message its author deleted
CUSTOMER_CHAT_TYPES = ("u2i", "u2u")  # a2u: Avito's own chat with the account
BULLET = "• "


@dataclass(frozen=True)
class AvitoConfig:
    """The ``connectors.avito.AvitoInput`` block of credentials.yml (see the module docstring). ``user_id``: the
    account's Avito id; ``timeout_s``: seconds for each API call; ``max_body_bytes``: the largest webhook body."""

    client_id: str
    client_secret: str
    user_id: int
    webhook_secret: str
    webhook_url: str | None = None
    base_url: str = DEFAULT_BASE_URL
    timeout_s: float = DEFAULT_TIMEOUT_S
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES

    @classmethod
    def from_credentials(cls, credentials: dict[str, Any] | None) -> "AvitoConfig":
        """Raises ChannelConfigError naming the key: a required key missing or empty, a ``user_id`` that is not a
        positive integer, a ``webhook_secret`` not of 16-256 URL-safe characters, a ``webhook_url`` that is not an
        http(s) URL ending with ``/<webhook_secret>``, a ``timeout_s`` or ``max_body_bytes`` not a positive number."""
        credentials = credentials or {}
        user_id = required(credentials, "user_id", CHANNEL)
        if not user_id.isdigit() or int(user_id) <= 0:
            raise ChannelConfigError(
                f"credentials.yml: the {CHANNEL} channel's 'user_id' must be the account's numeric id, not {user_id!r}"
            )
        secret = required(credentials, "webhook_secret", CHANNEL)
        if not SECRET.fullmatch(secret):
            raise ChannelConfigError(
                f"credentials.yml: the {CHANNEL} channel's 'webhook_secret' must be 16-256 characters of A-Z, a-z, "
                "0-9, _ and - (it is a segment of the webhook's URL; e.g. `openssl rand -hex 32`)"
            )
        webhook_url = str(credentials.get("webhook_url") or "").strip() or None
        if webhook_url is not None:
            parsed = urlparse(webhook_url)
            if parsed.scheme not in ("http", "https") or not parsed.netloc or parsed.path.rsplit("/", 1)[-1] != secret:
                raise ChannelConfigError(
                    f"credentials.yml: the {CHANNEL} channel's 'webhook_url' must be the public https URL of "
                    "/webhooks/avito/webhook/<webhook_secret>, ending with the webhook_secret"
                )
        return cls(
            required(credentials, "client_id", CHANNEL),
            required(credentials, "client_secret", CHANNEL),
            int(user_id),
            secret,
            webhook_url,
            (str(credentials.get("base_url") or "").strip() or DEFAULT_BASE_URL).rstrip("/"),
            positive(credentials, "timeout_s", CHANNEL, float, DEFAULT_TIMEOUT_S),
            positive(credentials, "max_body_bytes", CHANNEL, int, DEFAULT_MAX_BODY_BYTES),
        )


class AvitoAPIError(Exception):
    """A Messenger API call that failed: ``status`` is the HTTP status (None when no answer came: timeout,
    connection), ``detail`` what went wrong (never the client secret or a token)."""

    def __init__(self, status: int | None, detail: str) -> None:
        super().__init__(f"HTTP {status}: {detail}" if status is not None else detail)
        self.status, self.detail = status, detail


def _integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _error_text(body: Any) -> str:
    """What an Avito error body says: ``{"error": {"code", "message"}}``, or OAuth's ``{"error",
    "error_description"}``."""
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict):
            return str(error.get("message") or error)
        if error:
            return f"{error}: {body.get('error_description') or ''}".rstrip(": ")
    return str(body)[:200]


class AvitoAPI:
    """The Messenger API calls the channel makes, with the account's client-credentials token: kept until
    ``TOKEN_RENEW_BEFORE_S`` before it expires (by ``clock``, monotonic seconds), fetched again after a 401 or 403
    (one retry per call). Every call is bounded by ``config.timeout_s``. Raises :class:`AvitoAPIError`."""

    def __init__(self, config: AvitoConfig, clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config
        self.clock = clock
        self._session: aiohttp.ClientSession | None = None
        self._token: str | None = None
        self._renew_at = 0.0
        self._lock: asyncio.Lock | None = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.config.timeout_s))
        return self._session

    async def close(self) -> None:
        """Close the HTTP session (a later call opens a new one)."""
        if self._session is not None:
            await self._session.close()

    async def _send(self, method: str, url: str, what: str, **request: Any) -> tuple[int, Any]:
        """``(status, JSON body or None)`` of one request; AvitoAPIError(None, …) when no answer came."""
        try:
            async with self._http().request(method, url, **request) as response:
                raw = await response.read()
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            raise AvitoAPIError(None, f"{what}: no answer from {self.config.base_url} ({exc!r})") from None
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        return response.status, body

    async def token(self) -> str:
        """The account's access token, from the cache or ``POST /token`` (client credentials)."""
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            if self._token is not None and self.clock() < self._renew_at:
                return self._token
            form = {
                "grant_type": "client_credentials",
                "client_id": self.config.client_id,
                "client_secret": self.config.client_secret,
            }
            status, body = await self._send("POST", f"{self.config.base_url}/token", "token", data=form)
            token = body.get("access_token") if isinstance(body, dict) else None
            lifetime = body.get("expires_in") if isinstance(body, dict) else None
            if status != 200 or not isinstance(token, str) or not token:
                raise AvitoAPIError(status, f"token refused: {_error_text(body)}")
            lifetime = float(lifetime) if isinstance(lifetime, (int, float)) and lifetime > 0 else 3600.0
            self._token = token
            self._renew_at = self.clock() + max(lifetime - TOKEN_RENEW_BEFORE_S, lifetime / 2)
            log.info("avito: access token obtained for account %d (valid %.0f s)", self.config.user_id, lifetime)
            return token

    def _forget(self, token: str) -> None:
        if self._token == token:
            self._token = None

    async def call(self, method: str, path: str, what: str, **request: Any) -> Any:
        """The JSON answer of ``method`` ``base_url + path`` with the bearer token; a 401 or 403 fetches a new token
        and tries once more. Raises AvitoAPIError for any status but 200, or no answer."""
        url = f"{self.config.base_url}{path}"
        for attempt in (1, 2):
            token = await self.token()
            status, body = await self._send(method, url, what, headers={"Authorization": f"Bearer {token}"}, **request)
            if status in (401, 403) and attempt == 1:
                log.info("avito: %s answered HTTP %d; fetching a new access token", what, status)
                self._forget(token)
                continue
            if status != 200:
                raise AvitoAPIError(status, f"{what}: {_error_text(body)}")
            return body
        raise AssertionError("unreachable")

    def _chat_path(self, version: str, chat_id: str) -> str:
        return f"/messenger/{version}/accounts/{self.config.user_id}/chats/{quote(chat_id, safe='')}"

    async def messages(self, chat_id: str) -> list[dict[str, Any]]:
        """The newest ``CONFIRM_LIMIT`` messages of a chat (``GET /messenger/v3/…/messages/``), as the API's Message
        objects (``id``, ``author_id``, ``created``, ``type``, ``direction``, ``content``); the documented answer is
        a JSON array, an object with ``messages`` is read too."""
        body = await self.call(
            "GET",
            self._chat_path("v3", chat_id) + "/messages/",
            "reading a chat's messages",
            params={"limit": CONFIRM_LIMIT, "offset": 0},
        )
        items = body.get("messages") if isinstance(body, dict) else body
        if not isinstance(items, list):
            raise AvitoAPIError(200, "reading a chat's messages: the answer is not a list of messages")
        return [item for item in items if isinstance(item, dict)]

    async def send_text(self, chat_id: str, text: str) -> str:
        """Send ``text`` (at most 1000 characters) to a chat; the new message's id."""
        body = await self.call(
            "POST",
            self._chat_path("v1", chat_id) + "/messages",
            "sending a message",
            json={"message": {"text": text}, "type": "text"},
        )
        message_id = body.get("id") if isinstance(body, dict) else None
        if not message_id:
            raise AvitoAPIError(200, "sending a message: the answer has no message id")
        return str(message_id)

    async def subscribe(self, url: str) -> None:
        """Subscribe ``url`` to the account's webhook v3 notifications (``POST /messenger/v3/webhook``)."""
        await self.call("POST", "/messenger/v3/webhook", "subscribing the webhook", json={"url": url})


def chat_id_of(recipient_id: str) -> str | None:
    """The Avito chat id in a conversation id ``avito-<chat_id>``, or None."""
    parsed = conversation_ids.parse(recipient_id)
    return parsed[1] if parsed and parsed[0] == CHANNEL else None


def _button_line(button: dict[str, Any]) -> str:
    title = str(button.get("title") or button.get("payload") or "").strip()
    payload = str(button.get("payload") or "").strip()
    return f"{BULLET}{title}: {payload}" if payload.startswith(("http://", "https://")) else f"{BULLET}{title}"


class AvitoOutput(OutputChannel):
    """Sends Rasa's messages to ``avito-<chat_id>`` conversations as text messages (see the module docstring); never
    raises out of :meth:`send_response`."""

    @classmethod
    def name(cls) -> str:
        return CHANNEL

    def __init__(self, api: AvitoAPI, store: ChannelStore) -> None:
        self.api, self.store = api, store

    async def send_response(self, recipient_id: str, message: dict[str, Any]) -> None:
        """Rasa's message dict (text, buttons, quick_replies, custom, image, attachment), each part sent even when
        another failed."""
        try:
            await super().send_response(recipient_id, dict(message))
        except Exception:
            log.exception("avito: a message to %s was not sent", ref(recipient_id))

    async def _send(self, recipient_id: str, text: str, kind: str) -> None:
        """``text`` in messages of at most 1000 characters, each recorded as ``kind`` once accepted; a refused or
        failed one is logged and the next part still sent."""
        chat_id = chat_id_of(recipient_id)
        if chat_id is None:
            log.error("avito: %s message to %s not sent: not an avito-<chat_id> conversation", kind, ref(recipient_id))
            return
        for part in split_text(text.strip(), MAX_TEXT):
            try:
                message_id = await self.api.send_text(chat_id, part)
            except AvitoAPIError as exc:
                log.error("avito: %s message to %s failed: %s", kind, ref(recipient_id), exc)
                continue
            await self.store.sent(CHANNEL, message_id, chat_id, kind)

    async def send_text_message(self, recipient_id: str, text: str, **kwargs: Any) -> None:
        """The text, in parts of at most 1000 characters."""
        await self._send(recipient_id, text, "text")

    async def send_text_with_buttons(
        self, recipient_id: str, text: str, buttons: list[dict[str, Any]], **kwargs: Any
    ) -> None:
        """The text with one line per button under it (``• <title>``; ``• <title>: <url>`` for a link payload)."""
        lines = [(text or "").strip(), *(_button_line(button) for button in buttons)]
        await self._send(recipient_id, "\n".join(line for line in lines if line), "buttons")

    async def send_quick_replies(
        self, recipient_id: str, text: str, quick_replies: list[dict[str, Any]], **kwargs: Any
    ) -> None:
        """As buttons."""
        await self.send_text_with_buttons(recipient_id, text, quick_replies)

    async def send_image_url(self, recipient_id: str, image: str, **kwargs: Any) -> None:
        """The image's URL as a text message."""
        await self._send(recipient_id, image, "image")

    async def send_attachment(self, recipient_id: str, attachment: str, **kwargs: Any) -> None:
        """The attachment's URL as a text message."""
        await self._send(recipient_id, attachment, "document")

    async def send_custom_json(self, recipient_id: str, json_message: dict[str, Any], **kwargs: Any) -> None:
        """``{"document": {"url", "filename", "caption"}}`` (the quote PDF): the caption and the URL as a text
        message; the web widget's answer metadata (``answer_id``) is ignored silently, anything else logged at
        debug."""
        document = json_message.get("document")
        if isinstance(document, dict) and document.get("url"):
            caption = str(document.get("caption") or document.get("filename") or "").strip()
            await self._send(recipient_id, "\n".join(filter(None, [caption, str(document["url"])])), "document")
        elif "answer_id" not in json_message:
            log.debug("avito: custom message with keys %s not sent to %s", sorted(json_message), ref(recipient_id))


def webhook_message(body: dict[str, Any]) -> dict[str, Any] | None:
    """The ``payload.value`` (Avito's WebhookMessage) of a webhook v3 body, or None for a body that carries no
    message (``{}``, another ``payload.type``). Raises :class:`~connectors.webhook_http.Refused` (400) naming the
    field that is missing or of the wrong type: ``payload``, ``payload.value`` and its ``id`` and ``chat_id``
    (non-empty strings of at most 160 and 64 characters), ``user_id`` and ``author_id`` (integers), ``type``
    (a string), ``chat_type`` (a string or absent), ``item_id`` (an integer or null) and ``content`` (an object or
    absent)."""
    if not body:
        return None
    payload = body.get("payload")
    if not isinstance(payload, dict):
        raise Refused(400, "payload must be an object")
    if payload.get("type") != "message":
        log.info("avito: webhook of payload type %r ignored", payload.get("type"))
        return None
    value = payload.get("value")
    if not isinstance(value, dict):
        raise Refused(400, "payload.value must be an object")
    for key, limit in (("id", MAX_MESSAGE_ID), ("chat_id", MAX_CHAT_ID)):
        if not isinstance(value.get(key), str) or not value[key].strip() or len(value[key]) > limit:
            raise Refused(400, f"payload.value.{key} must be a non-empty string of at most {limit} characters")
    for key in ("user_id", "author_id"):
        if not _integer(value.get(key)):
            raise Refused(400, f"payload.value.{key} must be an integer")
    if not isinstance(value.get("type"), str):
        raise Refused(400, "payload.value.type must be a string")
    checks = (("chat_type", str, "a string"), ("item_id", int, "an integer"), ("content", dict, "an object"))
    for key, kind, name in checks:
        item = value.get(key)
        if item is not None and (not isinstance(item, kind) or isinstance(item, bool)):
            raise Refused(400, f"payload.value.{key} must be {name} or null")
    return value


def _time(seconds: Any) -> datetime | None:
    try:
        return datetime.fromtimestamp(int(seconds), timezone.utc) if seconds is not None else None
    except (TypeError, ValueError, OverflowError):
        return None


class AvitoInput(DurableWebhookInput):
    """Avito Messenger's webhook for one account (see the module docstring); registered by Rasa from
    credentials.yml."""

    webhook_paths = ("/webhook", "/webhook/<secret:str>")

    @classmethod
    def name(cls) -> str:
        return CHANNEL

    @classmethod
    def from_credentials(cls, credentials: dict[str, Any] | None) -> "AvitoInput":
        """Raises ChannelConfigError for a missing or bad credential (:meth:`AvitoConfig.from_credentials`,
        :func:`~connectors.config.rate_limiter`) or a business DB without the channel tables."""
        return cls(AvitoConfig.from_credentials(credentials), limiter=rate_limiter(credentials, CHANNEL))

    def __init__(
        self,
        config: AvitoConfig,
        store: ChannelStore | None = None,
        limiter: RateLimiter | None = None,
        api: AvitoAPI | None = None,
    ) -> None:
        """``store`` and ``limiter``: see :class:`~connectors.webhook.DurableWebhookInput`; ``api``: by default one
        on ``config``."""
        super().__init__(store, limiter)
        self.config = config
        self.api = api or AvitoAPI(config)
        self.output = AvitoOutput(self.api, self.store)

    async def deliveries(self, request: Request) -> list[Delivery] | None:
        """The customer message of a webhook call, after the secret path segment (404) and the body (413, 400:
        :func:`webhook_message`); None for a call without one (see the module docstring)."""
        secret = str(request.match_info.get("secret") or "")
        if not hmac.compare_digest(secret.encode(), self.config.webhook_secret.encode()):
            log.warning(
                "avito: webhook call from %s refused: %s secret in the URL",
                request.remote_addr or request.ip,
                "wrong" if secret else "no",
            )
            raise Refused(404, "not found")
        value = webhook_message(read_json(request, self.config.max_body_bytes))
        if value is None:
            return None
        if value["user_id"] != self.config.user_id:
            log.info(
                "avito: message %s for account %d ignored (this channel is %d)",
                value["id"],
                value["user_id"],
                self.config.user_id,
            )
            return None
        sender_id = conversation_ids.make(CHANNEL, value["chat_id"])
        if value["author_id"] == self.config.user_id:
            log.debug("avito: message %s in %s is the account's own, ignored", value["id"], ref(sender_id))
            return None
        if value["type"] in IGNORED_TYPES or (value.get("chat_type") or "u2i") not in CUSTOMER_CHAT_TYPES:
            log.info(
                "avito: %s message %s in a %s chat %s ignored",
                value["type"],
                value["id"],
                value.get("chat_type"),
                ref(sender_id),
            )
            return None
        return [Delivery(value["id"], sender_id, value)]

    async def _confirmed(self, sender_id: str, value: dict[str, Any]) -> dict[str, Any] | None:
        """The API's copy of the webhook's message: inbound, by the same author, among the chat's newest messages;
        None (logged) when the API does not know it or its chat. Raises AvitoAPIError when the API fails."""
        try:
            messages = await self.api.messages(value["chat_id"])
        except AvitoAPIError as exc:
            if exc.status not in (400, 404):
                raise
            log.warning(
                "avito: message %s of %s dropped: the API does not know its chat (%s)", value["id"], ref(sender_id), exc
            )
            return None
        message = next((m for m in messages if str(m.get("id")) == value["id"]), None)
        if message is None:
            log.warning(
                "avito: message %s of %s dropped: not among the chat's latest %d messages in the API",
                value["id"],
                ref(sender_id),
                CONFIRM_LIMIT,
            )
            return None
        if message.get("direction") == "out" or message.get("author_id") == self.config.user_id:
            log.info("avito: message %s of %s is the account's own in the API, ignored", value["id"], ref(sender_id))
            return None
        if message.get("author_id") != value["author_id"]:
            log.warning(
                "avito: message %s of %s dropped: the API names another author than the webhook",
                value["id"],
                ref(sender_id),
            )
            return None
        return message

    async def read(self, sender_id: str, payload: dict[str, Any]) -> Reading:
        """The webhook's message, confirmed by the API (:meth:`_confirmed`; nothing to answer when it is not), as
        the API has it; the customer noted."""
        message = await self._confirmed(sender_id, payload)
        if message is None:
            return Reading()
        await self.store.saw_customer(CHANNEL, payload["chat_id"], None, at=_time(message.get("created")))
        kind = message.get("type")
        content = message.get("content")
        content = content if isinstance(content, dict) else {}
        if kind == "location":
            return Reading(reply=LOCATION_REPLY)
        if kind in UNSUPPORTED_TYPES:
            return Reading(reply=UNSUPPORTED_REPLY)
        text = None
        if kind == "text":
            text = content.get("text")
        elif kind == "link":
            link = content.get("link")
            text = (link.get("text") or link.get("url")) if isinstance(link, dict) else None
        if not isinstance(text, str) or not text.strip():
            log.info("avito: %s message %s of %s has nothing to answer", kind, payload["id"], ref(sender_id))
            return Reading()
        metadata = {
            "chat_id": payload["chat_id"],
            "chat_type": payload.get("chat_type"),
            "item_id": payload.get("item_id"),
            "author_id": payload["author_id"],
            "user_id": self.config.user_id,
            "message_id": payload["id"],
            "created": message.get("created") if _integer(message.get("created")) else payload.get("created"),
            "published_at": payload.get("published_at"),
        }
        return Reading(text, metadata=metadata, message_id=payload["id"])

    async def start(self) -> None:
        """The inbox's start, then, with ``webhook_url``, the webhook subscribed (a failure is logged)."""
        await super().start()
        if self.config.webhook_url:
            try:
                await self.api.subscribe(self.config.webhook_url)
            except AvitoAPIError as exc:
                log.error("avito: subscribing the webhook failed: %s", exc)
            else:
                log.info("avito: webhook subscribed (account %d)", self.config.user_id)

    async def stop(self) -> None:
        """The inbox's stop, then the HTTP session closed."""
        await super().stop()
        await self.api.close()
