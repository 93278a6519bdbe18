"""A local HTTP server speaking the Telegram Bot API (https://core.telegram.org/bots/api), standing
in for api.telegram.org in tests: ``getMe`` and ``sendMessage`` at ``/bot<token>/<method>``, by GET
or POST with parameters in the query string or a JSON, urlencoded or multipart body.

A wrong token gets 401 ``Unauthorized``; a text over 4096 characters gets 400 ``message is too
long``. Each test may make ``sendMessage`` fail with ``failure``: ``"flood"`` (429 with
``retry_after``) or ``"chat_not_found"`` (400). An outage is the server closed (connection refused).
Every request is kept in ``requests``; every sent message, as the Message object returned, in
``messages``."""

import json
import time
from dataclasses import dataclass, field
from typing import Literal

from aiohttp import web
from aiohttp.test_utils import TestServer

MAX_TEXT_LENGTH = 4096
RETRY_AFTER_S = 3


def _error(code: int, description: str, **parameters: int) -> web.Response:
    body = {"ok": False, "error_code": code, "description": description}
    if parameters:
        body["parameters"] = parameters
    return web.json_response(body, status=code)


def _chat(chat_id: str) -> dict | None:
    """The Chat object for a numeric chat id: a user (positive), a supergroup (-100…) or a group."""
    if not chat_id.lstrip("-").isdigit():
        return None
    kind = "private" if not chat_id.startswith("-") else "supergroup" if chat_id.startswith("-100") else "group"
    name = {"first_name": "Manager"} if kind == "private" else {"title": "Managers"}
    return {"id": int(chat_id), "type": kind, **name}


@dataclass
class FakeTelegram:
    token: str = "123456789:TEST-fake-telegram-token"
    failure: Literal["flood", "chat_not_found"] | None = None
    requests: list[tuple[str, dict]] = field(default_factory=list)  # (method, parameters)
    messages: list[dict] = field(default_factory=list)
    server: TestServer | None = None

    @property
    def api_base(self) -> str:
        """The value for ``CLOSER_TELEGRAM_API_BASE``, e.g. ``http://127.0.0.1:PORT``."""
        return str(self.server.make_url("")).rstrip("/")

    @property
    def bot_user(self) -> dict:
        return {"id": int(self.token.split(":")[0]), "is_bot": True, "first_name": "Closer",
                "username": "closer_test_bot"}

    async def _parameters(self, request: web.Request) -> dict:
        params = dict(request.query)
        if request.content_type == "application/json":
            params.update(await request.json())
        elif request.body_exists:
            params.update(await request.post())
        if isinstance(params.get("reply_markup"), str):  # form bodies carry objects JSON-encoded
            params["reply_markup"] = json.loads(params["reply_markup"])
        return params

    async def _method(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        params = await self._parameters(request)
        self.requests.append((method, params))
        if request.match_info["token"] != self.token:
            return _error(401, "Unauthorized")
        if method.lower() == "getme":
            return web.json_response({"ok": True, "result": self.bot_user})
        if method.lower() == "sendmessage":
            return self._send_message(params)
        return _error(404, "Not Found")

    def _send_message(self, params: dict) -> web.Response:
        text, chat = params.get("text", ""), _chat(str(params.get("chat_id", "")))
        if self.failure == "flood":
            return _error(429, f"Too Many Requests: retry after {RETRY_AFTER_S}", retry_after=RETRY_AFTER_S)
        if self.failure == "chat_not_found" or chat is None:
            return _error(400, "Bad Request: chat not found")
        if not text:
            return _error(400, "Bad Request: message text is empty")
        if len(text) > MAX_TEXT_LENGTH:
            return _error(400, "Bad Request: message is too long")
        message = {"message_id": len(self.messages) + 1, "date": int(time.time()), "chat": chat,
                   "from": self.bot_user, "text": text}
        if params.get("reply_markup"):
            message["reply_markup"] = params["reply_markup"]
        self.messages.append(message)
        return web.json_response({"ok": True, "result": message})

    async def start(self) -> "FakeTelegram":
        app = web.Application()
        app.router.add_route("*", "/bot{token}/{method}", self._method)
        self.server = TestServer(app, host="127.0.0.1")
        await self.server.start_server()
        return self

    async def close(self) -> None:
        await self.server.close()
