"""WhatsApp through Meta's WhatsApp Cloud API, as a Rasa channel (``connectors.whatsapp.WhatsAppInput``
in credentials.yml, webhook at ``/webhooks/whatsapp/webhook``).

Inbound: Meta's webhook (GET verification with the verify token; POST signed with the app secret in
``X-Hub-Signature-256``). Each message is a delivery of the durable inbox
(:class:`~connectors.webhook.DurableWebhookInput`: deduplicated by its ``wamid``, acknowledged at
once, handed to Rasa from a per-customer queue, replayed after a restart, rate limited with
``rate_limit_messages`` per ``rate_limit_window_s`` seconds, :func:`~connectors.config.rate_limiter`);
delivery statuses update the outbound messages. Outbound: Graph API
``POST /{version}/{phone-number-id}/messages`` (text, interactive reply buttons and lists, image,
document, template) and ``/media`` (the quote PDF).

Outside WhatsApp's 24-hour customer-service window (no message from the customer in the last 24 h)
free-form messages are not allowed: the channel sends an approved template once and keeps the messages
back until the customer writes again; they are then sent before the reply to that message. The template
is the one of the first held message's language (:meth:`WhatsAppConfig.template`): ``templates`` maps a
language to a template, the language the one that the text is clearly in (:func:`bot.contracts.languages.detect`,
the rule that fills the conversation's ``language`` slot); any other text gets ``template_name`` in
``template_language``.
"""

import asyncio
import hashlib
import hmac
import logging
import posixpath
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import urlparse

import aiohttp
from rasa.core.channels.channel import OutputChannel, UserMessage
from sanic import Blueprint
from sanic.request import Request
from sanic.response import HTTPResponse
from sanic.response import text as text_response

from bot.contracts import conversation_ids
from bot.contracts.languages import detect, language_script
from connectors.config import ChannelConfigError, positive, rate_limiter, required
from connectors.logs import ref
from connectors.ratelimit import RateLimiter
from connectors.store import ChannelStore
from connectors.text import split_text
from connectors.webhook import LOCATION_REPLY, UNSUPPORTED_REPLY, Delivery, DurableWebhookInput, Reading
from connectors.webhook_http import DEFAULT_MAX_BODY_BYTES, Refused, error, read_json

log = logging.getLogger(__name__)

CHANNEL = "whatsapp"
REQUIRED_KEYS = ("access_token", "app_secret", "verify_token", "phone_number_id", "template_name")
WINDOW = timedelta(hours=24)  # Meta's customer-service window after the customer's last message
# Limits of the Cloud API's messages endpoint
MAX_TEXT = 4096
MAX_INTERACTIVE_BODY = 1024
MAX_CAPTION = 1024
MAX_REPLY_BUTTONS = 3
MAX_BUTTON_TITLE = 20
MAX_BUTTON_ID = 256
MAX_LIST_ROWS = 10
MAX_ROW_TITLE = 24
MAX_ROW_DESCRIPTION = 72
MAX_ROW_ID = 200
MAX_DOCUMENT_BYTES = 20 * 1024 * 1024
LIST_BUTTON_TEXT = "Choose"
CHOOSE_PROMPT = "Please choose:"


@dataclass(frozen=True)
class Template:
    """An approved message template: its ``name`` and its ``language`` as Meta codes it (``en_US``, ``ar``)."""

    name: str
    language: str


@dataclass(frozen=True)
class WhatsAppConfig:
    """The channel's block in credentials.yml. ``template_name`` in ``template_language``: the template of
    the default language; ``templates``: language (ISO 639-1) → the template of that language.
    ``timeout_s``: seconds for each Graph API call and document download; ``max_body_bytes``: the largest
    webhook body accepted (413 above)."""

    access_token: str
    app_secret: str
    verify_token: str
    phone_number_id: str
    template_name: str
    template_language: str = "en"
    templates: dict[str, Template] = field(default_factory=dict)
    api_base: str = "https://graph.facebook.com"
    api_version: str = "v21.0"
    timeout_s: float = 10.0
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES

    @classmethod
    def from_credentials(cls, credentials: dict[str, Any] | None) -> "WhatsAppConfig":
        """Settings from the credentials dict; ChannelConfigError naming the key when a required one
        is missing or empty, or a number is not a positive number."""
        credentials = credentials or {}

        def text(key: str, default: str) -> str:
            return str(credentials.get(key) or "").strip() or default

        return cls(
            **{key: required(credentials, key, CHANNEL) for key in REQUIRED_KEYS},
            template_language=text("template_language", cls.template_language),
            templates=_templates(credentials.get("templates")),
            api_base=text("api_base", cls.api_base).rstrip("/"),
            api_version=text("api_version", cls.api_version),
            timeout_s=positive(credentials, "timeout_s", CHANNEL, float, cls.timeout_s),
            max_body_bytes=positive(credentials, "max_body_bytes", CHANNEL, int, cls.max_body_bytes),
        )

    def template(self, text: str) -> Template:
        """The template that reopens a conversation whose held message says ``text``: the ``templates``
        entry of the language ``text`` is clearly in (:func:`bot.contracts.languages.detect`), else
        ``template_name`` in ``template_language``."""
        language = detect(text, tuple(self.templates))
        template = self.templates.get(language) if language else None
        return template or Template(self.template_name, self.template_language)


def _templates(value: Any) -> dict[str, Template]:
    """credentials.yml's ``templates``: ``{language: {name, language}}`` (absent or empty: none) as
    Templates; ChannelConfigError naming the key for a language CLDR does not know or an entry without a name
    or a language."""
    if value is None or value == "":
        return {}
    if not isinstance(value, dict):
        raise ChannelConfigError(
            f"credentials.yml: the {CHANNEL} channel's 'templates' must map a language to {{name, language}}"
        )
    templates = {}
    for language, entry in value.items():
        key = f"templates.{language}"
        try:
            language_script(str(language))
        except KeyError:
            raise ChannelConfigError(
                f"credentials.yml: the {CHANNEL} channel's '{key}': {language!r} is not an ISO 639-1 language code"
            ) from None
        name, code = (str(entry.get(k) or "").strip() if isinstance(entry, dict) else "" for k in ("name", "language"))
        if not name or not code:
            raise ChannelConfigError(
                f"credentials.yml: the {CHANNEL} channel's '{key}' needs a name and a language "
                "(an approved template's name and its language as Meta codes it, e.g. ar)"
            )
        templates[language] = Template(name, code)
    return templates


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _time(timestamp: Any) -> datetime:
    """A webhook's Unix timestamp (a string of seconds) as a UTC datetime; now if it is unusable."""
    try:
        return datetime.fromtimestamp(int(timestamp), timezone.utc)
    except (TypeError, ValueError, OverflowError):
        return _now()


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _wa_id(recipient_id: str) -> str:
    """The ``wa_id`` of Rasa's sender id ``whatsapp-<wa_id>``; any other id as it is."""
    parsed = conversation_ids.parse(recipient_id)
    return parsed[1] if parsed and parsed[0] == CHANNEL else recipient_id


def _ref(wa_id: str) -> str:
    """How a log line names the conversation of ``wa_id`` (a phone number): its pseudonym (connectors.logs)."""
    return ref(conversation_ids.make(CHANNEL, wa_id))


def _remote(request: Request) -> str:
    return request.remote_addr or request.ip


class WhatsAppOutput(OutputChannel):
    """Sends Rasa's messages to a WhatsApp user through the Graph API (``recipient_id`` is Rasa's
    ``whatsapp-<wa_id>``). A message the platform accepts is recorded with ``ChannelStore.sent``; a
    failed call (Graph error, timeout, connection) is logged with recipient and method and never
    raised, so the rest of the turn is still sent. Outside the 24-hour window messages are held."""

    @classmethod
    def name(cls) -> str:
        return CHANNEL

    def __init__(self, config: WhatsAppConfig, store: ChannelStore) -> None:
        self.config = config
        self.store = store
        self._session: aiohttp.ClientSession | None = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.config.timeout_s))
        return self._session

    async def close(self) -> None:
        """Close the HTTP session (a later send opens a new one)."""
        if self._session is not None:
            await self._session.close()

    async def send_response(self, recipient_id: str, message: dict[str, Any]) -> None:
        """Send one Rasa message, or hold it when the customer's 24-hour window is closed. A message whose
        ``custom`` is ``{"whatsapp_template": {"name", "language"}}`` (a follow-up Closer writes first,
        ``bot.follow_ups.outreach``) is sent as that approved template at any time, its text left out."""
        wa_id = _wa_id(recipient_id)
        template = (
            (message.get("custom") or {}).get("whatsapp_template") if isinstance(message.get("custom"), dict) else None
        )
        if isinstance(template, dict) and template.get("name") and template.get("language"):
            content = {"name": str(template["name"]), "language": {"code": str(template["language"])}}
            await self._send(wa_id, "template", {"type": "template", "template": content})
            return
        last_inbound = await self.store.last_inbound(CHANNEL, wa_id)
        if last_inbound is None or _now() - last_inbound >= WINDOW:
            await self._hold(wa_id, last_inbound, message)
            return
        await super().send_response(recipient_id, dict(message))

    async def _hold(self, wa_id: str, last_inbound: datetime | None, message: dict[str, Any]) -> None:
        """Keep ``message`` for when the customer next writes; send the re-engagement template of its
        text's language (:meth:`WhatsAppConfig.template`) unless one was sent since the customer last wrote."""
        await self.store.hold(CHANNEL, wa_id, message)
        log.info(
            "WhatsApp: the 24-hour window of %s is closed (last message from them: %s); message held until they write",
            _ref(wa_id),
            last_inbound.isoformat() if last_inbound else "never",
        )
        template_at = await self.store.last_sent(CHANNEL, wa_id, "template")
        if template_at is not None and (last_inbound is None or template_at >= last_inbound):
            return
        template = self.config.template(str(message.get("text") or ""))
        content = {"name": template.name, "language": {"code": template.language}}
        if await self._send(wa_id, "template", {"type": "template", "template": content}):
            log.info(
                "WhatsApp: template %s (%s) sent to %s to reopen the conversation",
                template.name,
                template.language,
                _ref(wa_id),
            )

    async def send_text_message(self, recipient_id: str, text: str, **kwargs: Any) -> None:
        """Text in messages of at most 4096 characters, link previews off."""
        for part in split_text(text.strip(), MAX_TEXT):
            content = {"type": "text", "text": {"preview_url": False, "body": part}}
            await self._send(_wa_id(recipient_id), "text", content)

    async def send_text_with_buttons(
        self, recipient_id: str, text: str, buttons: list[dict[str, Any]], **kwargs: Any
    ) -> None:
        """Up to 3 buttons as interactive reply buttons (titles cut to 20 characters), 4 to 10 as an
        interactive list (row titles cut to 24, the full title as the row's description); beyond 10
        only the first 10 are sent. A button's id is its payload, or ``#<key>`` of the payload stored
        with ``ChannelStore.callback_key`` when it is too long for WhatsApp."""
        wa_id = _wa_id(recipient_id)
        if len(buttons) > MAX_LIST_ROWS:
            log.warning(
                "WhatsApp: %d buttons for %s; a list holds %d, the rest are dropped",
                len(buttons),
                _ref(wa_id),
                MAX_LIST_ROWS,
            )
            buttons = buttons[:MAX_LIST_ROWS]
        body = (text or "").strip()
        if not buttons:
            await self.send_text_message(recipient_id, body)
            return
        if not body or len(body) > MAX_INTERACTIVE_BODY:
            await self.send_text_message(recipient_id, body)
            body = CHOOSE_PROMPT
        choices = [
            (str(b.get("title") or b.get("payload") or ""), str(b.get("payload") or b.get("title") or ""))
            for b in buttons
        ]
        if len(choices) <= MAX_REPLY_BUTTONS:
            replies = [
                {
                    "type": "reply",
                    "reply": {
                        "id": await self._button_id(payload, MAX_BUTTON_ID),
                        "title": _clip(title, MAX_BUTTON_TITLE),
                    },
                }
                for title, payload in choices
            ]
            interactive = {"type": "button", "body": {"text": body}, "action": {"buttons": replies}}
            await self._send(wa_id, "buttons", {"type": "interactive", "interactive": interactive})
            return
        rows = []
        for title, payload in choices:
            row = {"id": await self._button_id(payload, MAX_ROW_ID), "title": _clip(title, MAX_ROW_TITLE)}
            if len(title) > MAX_ROW_TITLE:
                row["description"] = _clip(title, MAX_ROW_DESCRIPTION)
            rows.append(row)
        interactive = {
            "type": "list",
            "body": {"text": body},
            "action": {"button": LIST_BUTTON_TEXT, "sections": [{"rows": rows}]},
        }
        await self._send(wa_id, "list", {"type": "interactive", "interactive": interactive})

    async def _button_id(self, payload: str, limit: int) -> str:
        if len(payload) <= limit and not payload.startswith("#"):
            return payload
        return "#" + await self.store.callback_key(payload)

    async def send_custom_json(self, recipient_id: str, json_message: dict[str, Any], **kwargs: Any) -> None:
        """``{"document": {"url", "filename", "caption"}}`` (the quote PDF) is sent as an uploaded
        document; the web widget's answer metadata is ignored; anything else is logged at debug."""
        document = json_message.get("document") if isinstance(json_message, dict) else None
        if isinstance(document, dict) and document.get("url"):
            await self._send_document(_wa_id(recipient_id), document)
        elif not (isinstance(json_message, dict) and "answer_id" in json_message):
            log.debug("WhatsApp: custom payload for %s ignored: %s", ref(recipient_id), json_message)

    async def send_image_url(self, recipient_id: str, image: str, **kwargs: Any) -> None:
        await self._send(_wa_id(recipient_id), "image", {"type": "image", "image": {"link": image}})

    async def send_attachment(self, recipient_id: str, attachment: str, **kwargs: Any) -> None:
        filename = posixpath.basename(urlparse(attachment).path) or "attachment"
        await self._send(
            _wa_id(recipient_id),
            "document",
            {"type": "document", "document": {"link": attachment, "filename": filename}},
        )

    async def _send_document(self, wa_id: str, document: dict[str, Any]) -> None:
        url = str(document["url"])
        filename = str(document.get("filename") or posixpath.basename(urlparse(url).path) or "document.pdf")
        data = await self._download_pdf(url, wa_id)
        if data is None:
            return
        form = aiohttp.FormData()
        form.add_field("messaging_product", CHANNEL)
        form.add_field("type", "application/pdf")
        form.add_field("file", data, filename=filename, content_type="application/pdf")
        media = await self._graph("media", wa_id, "media upload", data=form)
        if media is None:
            return
        if not media.get("id"):
            log.error("WhatsApp: media upload for %s answered without an id: %s", _ref(wa_id), media)
            return
        content = {"id": str(media["id"]), "filename": filename}
        if document.get("caption"):
            content["caption"] = _clip(str(document["caption"]), MAX_CAPTION)
        await self._send(wa_id, "document", {"type": "document", "document": content})

    async def _download_pdf(self, url: str, wa_id: str) -> bytes | None:
        """The PDF at ``url`` (application/pdf or a path ending .pdf, at most 20 MB), or None, logged."""
        try:
            async with self._http().get(url) as response:
                if response.status != 200:
                    log.error(
                        "WhatsApp: document for %s not sent: %s answered HTTP %d", _ref(wa_id), url, response.status
                    )
                    return None
                if response.content_type != "application/pdf" and not urlparse(url).path.lower().endswith(".pdf"):
                    log.error(
                        "WhatsApp: document for %s not sent: %s is %s, not a PDF",
                        _ref(wa_id),
                        url,
                        response.content_type,
                    )
                    return None
                data = bytearray()
                async for chunk in response.content.iter_chunked(64 * 1024):
                    data += chunk
                    if len(data) > MAX_DOCUMENT_BYTES:
                        log.error(
                            "WhatsApp: document for %s not sent: %s is over %d bytes",
                            _ref(wa_id),
                            url,
                            MAX_DOCUMENT_BYTES,
                        )
                        return None
                return bytes(data)
        except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as exc:
            log.error("WhatsApp: document for %s not sent: downloading %s failed: %r", _ref(wa_id), url, exc)
            return None

    async def _send(self, wa_id: str, kind: str, content: dict[str, Any]) -> str | None:
        """POST one message; its ``wamid`` (recorded as sent with ``kind`` and a template's name), or None after
        logging."""
        body = {"messaging_product": CHANNEL, "recipient_type": "individual", "to": wa_id, **content}
        answer = await self._graph("messages", wa_id, f"{kind} message", json=body)
        messages = _list((answer or {}).get("messages"))
        message_id = messages[0].get("id") if messages and isinstance(messages[0], dict) else None
        if answer is not None and not message_id:
            log.error("WhatsApp: %s message to %s answered without a message id: %s", kind, _ref(wa_id), answer)
        if message_id:
            template = content["template"]["name"] if kind == "template" else None
            await self.store.sent(CHANNEL, message_id, wa_id, kind, template=template)
        return message_id

    async def _graph(self, edge: str, wa_id: str, method: str, **request: Any) -> dict[str, Any] | None:
        """POST ``/{version}/{phone_number_id}/{edge}``; the JSON answer, or None after logging why."""
        config = self.config
        url = f"{config.api_base}/{config.api_version}/{config.phone_number_id}/{edge}"
        try:
            async with self._http().post(
                url, headers={"Authorization": f"Bearer {config.access_token}"}, **request
            ) as response:
                answer = await response.json(content_type=None)
        except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as exc:
            log.error("WhatsApp: %s to %s failed: %r", method, _ref(wa_id), exc)
            return None
        if response.status != 200 or not isinstance(answer, dict) or "error" in answer:
            problem = answer.get("error", answer) if isinstance(answer, dict) else answer
            log.error("WhatsApp: %s to %s refused with HTTP %d: %s", method, _ref(wa_id), response.status, problem)
            return None
        return answer


class WhatsAppInput(DurableWebhookInput):
    """Meta's webhook for one WhatsApp business phone number, with the durable inbox of
    :class:`~connectors.webhook.DurableWebhookInput`. Sender ids are ``whatsapp-<wa_id>``; each
    UserMessage carries ``{"channel": "whatsapp", "whatsapp": {wa_id, name, message_id, message_type,
    timestamp, phone_number_id, context_message_id}}`` as metadata."""

    @classmethod
    def name(cls) -> str:
        return CHANNEL

    @classmethod
    def from_credentials(cls, credentials: dict[str, Any] | None) -> "WhatsAppInput":
        """The channel from its credentials.yml block (see :class:`WhatsAppConfig` and
        :func:`~connectors.config.rate_limiter`); raises ChannelConfigError for a missing key or when
        the business DB lacks the channel tables."""
        return cls(WhatsAppConfig.from_credentials(credentials), limiter=rate_limiter(credentials, CHANNEL))

    def __init__(
        self, config: WhatsAppConfig, store: ChannelStore | None = None, limiter: RateLimiter | None = None
    ) -> None:
        """``store`` and ``limiter``: see :class:`~connectors.webhook.DurableWebhookInput`."""
        super().__init__(store, limiter)
        self.config = config
        self.output = WhatsAppOutput(config, self.store)

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        """The inbox's routes, and ``GET /webhook``: Meta's verification of the webhook."""
        blueprint = super().blueprint(on_new_message)

        @blueprint.route("/webhook", methods=["GET"])
        async def verify(request: Request) -> HTTPResponse:
            return await self._verify(request)

        return blueprint

    async def _verify(self, request: Request) -> HTTPResponse:
        """Meta's challenge echoed for the right mode and verify token; 403 otherwise."""
        token = request.args.get("hub.verify_token") or ""
        if request.args.get("hub.mode") == "subscribe" and hmac.compare_digest(
            token.encode(), self.config.verify_token.encode()
        ):
            return text_response(request.args.get("hub.challenge") or "")
        log.warning("WhatsApp webhook verification from %s refused: wrong mode or verify token", _remote(request))
        return error(403, "verification failed")

    async def deliveries(self, request: Request) -> list[Delivery] | None:
        """The messages of a signed webhook call (401 without a valid ``X-Hub-Signature-256``; 413,
        400 for the body), after recording its delivery statuses; None for another ``object``."""
        if not self._signed(request):
            log.warning("WhatsApp webhook from %s refused: missing or wrong X-Hub-Signature-256", _remote(request))
            raise Refused(401, "missing or invalid X-Hub-Signature-256")
        update = read_json(request, self.config.max_body_bytes)
        if update.get("object") != "whatsapp_business_account":
            log.info("WhatsApp webhook: object %r ignored", update.get("object"))
            return None
        deliveries = []
        for value in self._values(update):
            deliveries += self._messages(value)
            for status in _list(value.get("statuses")):
                await self._record_status(status)
            for problem in _list(value.get("errors")):
                log.warning("WhatsApp webhook reports an error: %s", problem)
        return deliveries

    def _signed(self, request: Request) -> bool:
        """Whether ``X-Hub-Signature-256`` is ``sha256=`` + HMAC-SHA256 of the raw body with the app secret."""
        digest = hmac.new(self.config.app_secret.encode(), request.body or b"", hashlib.sha256).hexdigest()
        expected = f"sha256={digest}"
        return hmac.compare_digest(request.headers.get("X-Hub-Signature-256", "").encode(), expected.encode())

    def _values(self, update: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """The ``value`` of every ``messages`` change for this phone number, in delivery order."""
        for entry in _list(update.get("entry")):
            for change in _list(entry.get("changes") if isinstance(entry, dict) else None):
                value = change.get("value") if isinstance(change, dict) else None
                if not isinstance(value, dict) or change.get("field") != "messages":
                    log.info(
                        "WhatsApp webhook: change %r ignored",
                        change.get("field") if isinstance(change, dict) else change,
                    )
                    continue
                number = (value.get("metadata") or {}).get("phone_number_id")
                if number is not None and str(number) != self.config.phone_number_id:
                    log.info(
                        "WhatsApp webhook: change for phone number id %s ignored (this channel is %s)",
                        number,
                        self.config.phone_number_id,
                    )
                    continue
                yield value

    def _messages(self, value: dict[str, Any]) -> list[Delivery]:
        """The customer messages of a change's ``value``, each with the sender's profile name."""
        names = {
            str(c.get("wa_id")): (c.get("profile") or {}).get("name")
            for c in _list(value.get("contacts"))
            if isinstance(c, dict)
        }
        deliveries = []
        for message in _list(value.get("messages")):
            if not (isinstance(message, dict) and message.get("id") and message.get("from")):
                log.warning("WhatsApp webhook: message without id or sender ignored (fields: %s)", sorted(message))
                continue
            wa_id = str(message["from"])
            payload = {
                "message": message,
                "name": names.get(wa_id),
                "phone_number_id": (value.get("metadata") or {}).get("phone_number_id"),
            }
            deliveries.append(Delivery(str(message["id"]), conversation_ids.make(CHANNEL, wa_id), payload))
        return deliveries

    async def _record_status(self, status: Any) -> None:
        if not isinstance(status, dict) or not status.get("id"):
            log.warning("WhatsApp webhook: status without message id ignored: %r", status)
            return
        errors = [e for e in _list(status.get("errors")) if isinstance(e, dict)]
        error_text = f"{errors[0].get('code')} {errors[0].get('title')}" if errors else None
        if status.get("status") == "failed":
            log.warning(
                "WhatsApp: message %s to %s failed: %s", status["id"], _ref(str(status.get("recipient_id"))), error_text
            )
        try:
            await self.store.status(
                CHANNEL,
                str(status["id"]),
                str(status.get("recipient_id") or ""),
                str(status.get("status")),
                _time(status.get("timestamp")),
                error_text=error_text,
            )
        except ValueError as exc:  # statuses we do not track, e.g. "deleted" or "warning"
            log.info("WhatsApp webhook: status of %s ignored: %s", status["id"], exc)

    async def read(self, sender_id: str, payload: dict[str, Any]) -> Reading:
        """A customer's message; the customer noted (their 24-hour window opens) and the messages held
        for them sent first."""
        message, name = payload["message"], payload.get("name")
        wa_id = str(message["from"])
        await self.store.saw_customer(CHANNEL, wa_id, name, at=_time(message.get("timestamp")))
        for held in await self.store.take_held(CHANNEL, wa_id):
            await self.output.send_response(sender_id, held)
        text = await self._text(message)
        if not text:
            return Reading(reply=LOCATION_REPLY if message.get("type") == "location" else UNSUPPORTED_REPLY)
        details = {
            "wa_id": wa_id,
            "name": name,
            "message_id": str(message["id"]),
            "message_type": message.get("type"),
            "timestamp": message.get("timestamp"),
            "phone_number_id": payload.get("phone_number_id"),
            "context_message_id": (message.get("context") or {}).get("id"),
        }
        return Reading(
            text,
            metadata={key: value for key, value in details.items() if value is not None},
            message_id=str(message["id"]),
        )

    async def _text(self, message: dict[str, Any]) -> str | None:
        """What Rasa receives for a message: the text, a button's payload, a shared contact's phone
        number or a media caption; None for what we cannot read."""
        kind = message.get("type")
        content = message.get(kind) if isinstance(message.get(kind), (dict, list)) else {}
        if kind == "text":
            return content.get("body")
        if kind == "interactive" and content.get("type") in ("button_reply", "list_reply"):
            reply = content.get(content["type"]) or {}
            return await self._payload(str(reply.get("id") or ""), reply.get("title"))
        if kind == "button":
            return content.get("payload") or content.get("text")
        if kind == "contacts":
            phones = [
                p.get("phone")
                for c in content
                if isinstance(c, dict)
                for p in _list(c.get("phones"))
                if isinstance(p, dict) and p.get("phone")
            ]
            return phones[0] if phones else None
        if kind in ("image", "video", "document"):
            return content.get("caption")
        return None

    async def _payload(self, button_id: str, title: str | None) -> str | None:
        """A pressed button's payload: its id, or the payload stored under ``#<key>``."""
        if not button_id.startswith("#"):
            return button_id or title
        payload = await self.store.callback_payload(button_id[1:])
        if payload is None:
            log.warning("WhatsApp: button key %s is unknown (pruned?); its title %r is used", button_id, title)
            return title
        return payload

    async def stop(self) -> None:
        """The inbox's stop, then the HTTP session closed."""
        await super().stop()
        await self.output.close()
