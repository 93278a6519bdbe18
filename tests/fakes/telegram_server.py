"""A local HTTP server speaking the Telegram Bot API (https://core.telegram.org/bots/api), standing
in for api.telegram.org in tests, at ``/bot<token>/<method>``, by GET or POST with parameters in the
query string or a JSON, urlencoded or multipart body (objects such as ``reply_markup`` JSON-encoded
in form bodies, files as multipart parts). Methods, each answering ``{"ok": true, "result": …}``
like the real API:

- ``getMe``; ``sendMessage`` (with ``reply_markup``), ``sendPhoto``, ``sendDocument``,
  ``sendLocation``: the sent Message. A photo or document given by URL is fetched, as Telegram
  does (400 when that fails or, for a photo, is not an image); an uploaded one is kept as an
  :class:`Upload` (bytes, filename, content type) in the request's parameters.
- ``answerCallbackQuery``: True.
- ``setWebhook``, ``deleteWebhook``, ``getWebhookInfo``: the webhook lives in ``webhook``.
- ``getUpdates``: the updates a test queued with :meth:`FakeTelegram.push_update`; ``offset``
  confirms (forgets) the updates before it; ``timeout`` long-polls until an update is queued.
  409 ``Conflict`` while a webhook is set, as Telegram answers.

A wrong token gets 401 ``Unauthorized``; a text over 4096 characters gets 400 ``message is too
long``. Each test may make one method (``fail_method``, by default ``sendMessage``) fail with
``failure``: ``"flood"`` (429 with ``retry_after``), ``"chat_not_found"`` (400) or ``"timeout"`` (no
answer until the server closes). An outage is the server closed (connection refused). Every
request is kept in ``requests``; every sent message, as the Message object returned, in
``messages``."""

import asyncio
import json
import re
import time
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import urlparse

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer

MAX_TEXT_LENGTH = 4096
RETRY_AFTER_S = 3
FETCH_TIMEOUT_S = 10
JSON_FIELDS = ("reply_markup", "allowed_updates")  # Bot API parameters that are objects or arrays
SECRET_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,256}")


def _error(code: int, description: str, **parameters: int) -> web.Response:
    body = {"ok": False, "error_code": code, "description": description}
    if parameters:
        body["parameters"] = parameters
    return web.json_response(body, status=code)


def _ok(result, description: str | None = None) -> web.Response:
    return web.json_response({"ok": True, "result": result, **({"description": description} if description else {})})


def _chat(chat_id: str) -> dict | None:
    """The Chat object for a numeric chat id: a user (positive), a supergroup (-100…) or a group."""
    if not chat_id.lstrip("-").isdigit():
        return None
    kind = "private" if not chat_id.startswith("-") else "supergroup" if chat_id.startswith("-100") else "group"
    name = {"first_name": "Manager"} if kind == "private" else {"title": "Managers"}
    return {"id": int(chat_id), "type": kind, **name}


@dataclass
class Upload:
    """A file sent as a multipart part."""

    filename: str
    content_type: str
    data: bytes


@dataclass
class FakeTelegram:
    token: str = "123456789:TEST-fake-telegram-token"
    failure: Literal["flood", "chat_not_found", "timeout"] | None = None
    fail_method: str = "sendMessage"
    requests: list[tuple[str, dict]] = field(default_factory=list)  # (method, parameters)
    messages: list[dict] = field(default_factory=list)
    webhook: dict | None = None  # setWebhook's parameters while a webhook is set
    updates: list[dict] = field(default_factory=list)  # queued for getUpdates, not yet confirmed
    server: TestServer | None = None
    _queued: asyncio.Event = field(default_factory=asyncio.Event)
    _closing: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def api_base(self) -> str:
        """The value for ``CLOSER_TELEGRAM_API_BASE``, e.g. ``http://127.0.0.1:PORT``."""
        return str(self.server.make_url("")).rstrip("/")

    @property
    def bot_user(self) -> dict:
        return {
            "id": int(self.token.split(":")[0]),
            "is_bot": True,
            "first_name": "Closer",
            "username": "closer_test_bot",
        }

    def push_update(self, update: dict) -> None:
        """Queue an Update object for ``getUpdates``."""
        self.updates.append(update)
        self._queued.set()

    def calls(self, method: str) -> list[dict]:
        """The parameters of every request of ``method``, in order."""
        return [params for name, params in self.requests if name == method]

    async def _parameters(self, request: web.Request) -> dict:
        params = dict(request.query)
        if request.content_type == "application/json":
            params.update(await request.json())
        elif request.body_exists:
            for key, value in (await request.post()).items():
                if isinstance(value, web.FileField):
                    value = Upload(value.filename, value.content_type, value.file.read())
                params[key] = value
        for key in JSON_FIELDS:  # form bodies carry objects JSON-encoded
            if isinstance(params.get(key), str):
                params[key] = json.loads(params[key])
        return params

    async def _method(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        params = await self._parameters(request)
        self.requests.append((method, params))
        if request.match_info["token"] != self.token:
            return _error(401, "Unauthorized")
        handler = {
            "getme": self._get_me,
            "sendmessage": self._send_message,
            "sendphoto": self._send_photo,
            "senddocument": self._send_document,
            "sendlocation": self._send_location,
            "answercallbackquery": self._answer_callback_query,
            "setwebhook": self._set_webhook,
            "deletewebhook": self._delete_webhook,
            "getwebhookinfo": self._get_webhook_info,
            "getupdates": self._get_updates,
        }.get(method.lower())
        if handler is None:
            return _error(404, "Not Found")
        if self.failure and method.lower() == self.fail_method.lower():
            return await self._fail()
        return await handler(params)

    async def _fail(self) -> web.Response:
        if self.failure == "flood":
            return _error(429, f"Too Many Requests: retry after {RETRY_AFTER_S}", retry_after=RETRY_AFTER_S)
        if self.failure == "timeout":
            await self._closing.wait()
        return _error(400, "Bad Request: chat not found")

    async def _get_me(self, params: dict) -> web.Response:
        return _ok(self.bot_user)

    def _message(self, params: dict, **content) -> dict:
        """A sent message, kept in ``messages``."""
        message = {
            "message_id": len(self.messages) + 1,
            "date": int(time.time()),
            "chat": _chat(str(params.get("chat_id", ""))),
            "from": self.bot_user,
            **content,
        }
        if params.get("caption"):
            message["caption"] = params["caption"]
        if params.get("reply_markup"):
            message["reply_markup"] = params["reply_markup"]
        self.messages.append(message)
        return message

    async def _send_message(self, params: dict) -> web.Response:
        text = params.get("text", "")
        if _chat(str(params.get("chat_id", ""))) is None:
            return _error(400, "Bad Request: chat not found")
        if not text:
            return _error(400, "Bad Request: message text is empty")
        if len(text) > MAX_TEXT_LENGTH:
            return _error(400, "Bad Request: message is too long")
        return _ok(self._message(params, text=text))

    async def _file(self, value) -> Upload | None:
        """The file a photo or document parameter names: an upload, or the content at its URL."""
        if isinstance(value, Upload):
            return value
        if not isinstance(value, str) or not value.startswith(("http://", "https://")):
            return None
        try:
            async with (
                aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=FETCH_TIMEOUT_S)) as session,
                session.get(value) as response,
            ):
                if response.status != 200:
                    return None
                return Upload(urlparse(value).path.rsplit("/", 1)[-1], response.content_type, await response.read())
        except aiohttp.ClientError:
            return None

    async def _send_photo(self, params: dict) -> web.Response:
        if _chat(str(params.get("chat_id", ""))) is None:
            return _error(400, "Bad Request: chat not found")
        photo = await self._file(params.get("photo"))
        if photo is None:
            return _error(400, "Bad Request: failed to get HTTP URL content")
        if not photo.content_type.startswith("image/"):
            return _error(400, "Bad Request: wrong type of the web page content")
        size = {
            "file_id": f"photo-{len(self.messages) + 1}",
            "file_unique_id": f"p{len(self.messages) + 1}",
            "width": 320,
            "height": 240,
            "file_size": len(photo.data),
        }
        return _ok(self._message(params, photo=[size]))

    async def _send_document(self, params: dict) -> web.Response:
        if _chat(str(params.get("chat_id", ""))) is None:
            return _error(400, "Bad Request: chat not found")
        document = await self._file(params.get("document"))
        if document is None:
            return _error(400, "Bad Request: failed to get HTTP URL content")
        number = len(self.messages) + 1
        return _ok(
            self._message(
                params,
                document={
                    "file_id": f"document-{number}",
                    "file_unique_id": f"d{number}",
                    "file_name": document.filename,
                    "mime_type": document.content_type,
                    "file_size": len(document.data),
                },
            )
        )

    async def _send_location(self, params: dict) -> web.Response:
        if _chat(str(params.get("chat_id", ""))) is None:
            return _error(400, "Bad Request: chat not found")
        try:
            location = {"latitude": float(params["latitude"]), "longitude": float(params["longitude"])}
        except (KeyError, ValueError):
            return _error(400, "Bad Request: wrong latitude or longitude")
        return _ok(self._message(params, location=location))

    async def _answer_callback_query(self, params: dict) -> web.Response:
        if not params.get("callback_query_id"):
            return _error(400, "Bad Request: query is too old and response timeout expired or query ID is invalid")
        return _ok(True)

    async def _set_webhook(self, params: dict) -> web.Response:
        if not str(params.get("url", "")).startswith("https://"):
            return _error(400, "Bad Request: bad webhook: An HTTPS URL must be provided for webhook")
        if "secret_token" in params and not SECRET_TOKEN.fullmatch(str(params["secret_token"])):
            return _error(400, "Bad Request: secret token contains unallowed characters")
        self.webhook = params
        return _ok(True, "Webhook was set")

    async def _delete_webhook(self, params: dict) -> web.Response:
        existed, self.webhook = self.webhook is not None, None
        return _ok(True, "Webhook was deleted" if existed else "Webhook is already deleted")

    async def _get_webhook_info(self, params: dict) -> web.Response:
        info = {"url": "", "has_custom_certificate": False, "pending_update_count": len(self.updates)}
        if self.webhook:
            info.update(url=self.webhook["url"], allowed_updates=self.webhook.get("allowed_updates") or [])
        return _ok(info)

    async def _get_updates(self, params: dict) -> web.Response:
        if self.webhook is not None:
            return _error(
                409,
                "Conflict: can't use getUpdates method while webhook is active; "
                "use deleteWebhook to delete the webhook first",
            )
        offset, limit = int(params.get("offset") or 0), int(params.get("limit") or 100)
        if offset > 0:
            self.updates = [update for update in self.updates if update["update_id"] >= offset]
        if not self.updates and float(params.get("timeout") or 0) > 0:
            self._queued.clear()
            waits = [asyncio.ensure_future(event.wait()) for event in (self._queued, self._closing)]
            await asyncio.wait(waits, timeout=float(params["timeout"]), return_when=asyncio.FIRST_COMPLETED)
            for wait in waits:
                wait.cancel()
        return _ok(self.updates[:limit])

    async def start(self) -> "FakeTelegram":
        app = web.Application()
        app.router.add_route("*", "/bot{token}/{method}", self._method)
        self.server = TestServer(app, host="127.0.0.1")
        await self.server.start_server()
        return self

    async def close(self) -> None:
        self._closing.set()
        await self.server.close()
