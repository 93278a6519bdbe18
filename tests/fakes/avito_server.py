"""A local HTTP server speaking the part of Avito's API Closer's Avito channel uses (the Messenger API and its
OAuth 2.0 client-credentials token, as documented at developers.avito.ru), standing in for api.avito.ru in tests
(aiohttp; runs under Python 3.10 and 3.11):

- ``POST /token`` (form ``grant_type=client_credentials``, ``client_id``, ``client_secret``): ``{"access_token",
  "expires_in", "token_type": "Bearer"}``; wrong credentials or another grant get 400 with OAuth's ``{"error",
  "error_description"}``.
- ``GET /messenger/v3/accounts/{user_id}/chats/{chat_id}/messages/`` (``limit`` 1-100, ``offset`` 0-1000): the
  chat's messages, newest first, as a JSON array of Message objects (``id``, ``author_id``, ``created``,
  ``content``, ``type``, ``direction`` ``in``/``out``, ``is_read``, ``read``).
- ``POST /messenger/v1/accounts/{user_id}/chats/{chat_id}/messages`` (``{"message": {"text"}, "type": "text"}``, text
  1-1000 characters): the sent message ``{"id", "content": {"text"}, "created", "direction": "out", "type":
  "text"}``, added to the chat.
- ``POST /messenger/v3/webhook`` (``{"url"}``): ``{"ok": true}``; the URL kept in ``subscriptions``.

Errors have Avito's shape ``{"error": {"code", "message"}}``: 401 for a missing, unknown or expired bearer token,
403 for another account's ``user_id``, 404 for a chat the account does not have, 400 for a body or parameter
breaking the rules above. The test drives it: :meth:`FakeAvito.customer_wrote` adds a customer's message to a chat
and returns the webhook v3 notification Avito would POST for it (:meth:`FakeAvito.notification`);
:meth:`FakeAvito.expire_tokens` makes every token issued so far invalid (the next call gets 401);
:meth:`FakeAvito.fail` answers the next messenger calls with an error status (500, 401, …), one each. Every
request is kept in ``requests``; every accepted outbound message in ``sent``."""

import itertools
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer

MAX_TEXT = 1000
ERROR_MESSAGES = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not found", 500: "Internal Error"}


@dataclass
class Recorded:
    method: str
    path: str
    authorization: str | None
    body: Any  # the JSON body, the form of a token request, or None
    query: dict


def _error(status: int, message: str | None = None) -> web.Response:
    body = {"error": {"code": status, "message": message or ERROR_MESSAGES.get(status, "Error")}}
    return web.json_response(body, status=status)


@dataclass
class FakeAvito:
    client_id: str = "fake-avito-client-id"
    client_secret: str = "fake-avito-client-secret"
    user_id: int = 94235311  # the account the credentials belong to
    token_lifetime_s: int = 86400
    chats: dict = field(default_factory=dict)  # chat_id → messages (API Message objects), oldest first
    sent: list = field(default_factory=list)  # {"chat_id", "text", "id"} of each accepted outbound message
    subscriptions: list = field(default_factory=list)
    requests: list = field(default_factory=list)
    tokens: set = field(default_factory=set)  # valid access tokens
    token_requests: int = 0
    failures: list = field(default_factory=list)  # statuses for the next messenger calls, one each
    server: TestServer | None = None
    _clock: Any = field(default_factory=lambda: itertools.count(int(time.time()) - 600))

    @property
    def base_url(self) -> str:
        """The channel's ``base_url``, e.g. ``http://127.0.0.1:PORT``."""
        assert self.server is not None, "start() the fake first"
        return str(self.server.make_url("")).rstrip("/")

    def expire_tokens(self) -> None:
        """Every access token issued so far stops working (Avito's expire after ``expires_in`` seconds)."""
        self.tokens.clear()

    def fail(self, status: int, times: int = 1) -> None:
        """Answer the next ``times`` messenger calls (not ``/token``) with ``status`` in Avito's error shape."""
        self.failures.extend([status] * times)

    def message(
        self, chat_id: str, author_id: int, kind: str = "text", content: dict | None = None, text: str | None = None
    ) -> dict:
        """Add a message to a chat (created if new) as the API lists it; returns it."""
        message = {
            "id": uuid.uuid4().hex,
            "author_id": author_id,
            "created": next(self._clock),
            "content": content if content is not None else ({"text": text} if text is not None else {}),
            "type": kind,
            "direction": "out" if author_id == self.user_id else "in",
            "is_read": False,
            "read": None,
        }
        self.chats.setdefault(chat_id, []).append(message)
        return message

    def customer_wrote(
        self,
        chat_id: str,
        text: str | None = None,
        author_id: int = 201853461,
        kind: str = "text",
        content: dict | None = None,
        item_id: int | None = 4213861287,
        chat_type: str = "u2i",
    ) -> dict:
        """A customer's message added to the chat; the webhook v3 body Avito sends for it."""
        message = self.message(chat_id, author_id, kind, content, text)
        return self.notification(message, chat_id, item_id=item_id, chat_type=chat_type)

    def notification(self, message: dict, chat_id: str, item_id: int | None = None, chat_type: str = "u2i") -> dict:
        """The webhook v3 body for ``message`` of ``chat_id``: ``{"id", "version", "timestamp", "payload": {"type":
        "message", "value": WebhookMessage}}``."""
        created = message["created"]
        value = {
            "id": message["id"],
            "chat_id": chat_id,
            "user_id": self.user_id,
            "author_id": message["author_id"],
            "created": created,
            "type": message["type"],
            "chat_type": chat_type,
            "content": message["content"],
            "item_id": item_id if chat_type == "u2i" else None,
            "published_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(created)),
            "read": None,
        }
        return {
            "id": str(uuid.uuid4()),
            "version": "v3.0.0",
            "timestamp": created,
            "payload": {"type": "message", "value": value},
        }

    def texts(self, chat_id: str) -> list[str]:
        """What the bot sent to a chat, in order."""
        return [m["text"] for m in self.sent if m["chat_id"] == chat_id]

    async def _token(self, request: web.Request) -> web.Response:
        form = dict(await request.post())
        self.requests.append(Recorded(request.method, request.path, request.headers.get("Authorization"), form, {}))
        self.token_requests += 1
        if form.get("grant_type") != "client_credentials":
            return web.json_response(
                {"error": "unsupported_grant_type", "error_description": "grant_type must be client_credentials"},
                status=400,
            )
        if form.get("client_id") != self.client_id or form.get("client_secret") != self.client_secret:
            return web.json_response(
                {"error": "invalid_client", "error_description": "client authentication failed"}, status=400
            )
        token = uuid.uuid4().hex
        self.tokens.add(token)
        return web.json_response({"access_token": token, "expires_in": self.token_lifetime_s, "token_type": "Bearer"})

    async def _call(self, request: web.Request) -> tuple[web.Response | None, Any]:
        """Record a messenger call; ``(error response or None, JSON body)``: a queued failure, a bad bearer token
        (401), a body that is not JSON (400), another account's ``user_id`` (403)."""
        try:
            body = await request.json() if request.can_read_body else None
        except ValueError:
            body = ValueError
        authorization = request.headers.get("Authorization")
        self.requests.append(Recorded(request.method, request.path, authorization, body, dict(request.query)))
        if self.failures:
            return _error(self.failures.pop(0)), None
        if not authorization or not authorization.startswith("Bearer ") or authorization[7:] not in self.tokens:
            return _error(401), None
        if body is ValueError:
            return _error(400, "body is not JSON"), None
        user_id = request.match_info.get("user_id")
        if user_id is not None and user_id != str(self.user_id):
            return _error(403), None
        return None, body

    async def _list(self, request: web.Request) -> web.Response:
        refused, _ = await self._call(request)
        if refused is not None:
            return refused
        chat_id = request.match_info["chat_id"]
        if chat_id not in self.chats:
            return _error(404)
        try:
            limit, offset = int(request.query.get("limit", 100)), int(request.query.get("offset", 0))
        except ValueError:
            return _error(400, "limit and offset must be integers")
        if not 1 <= limit <= 100 or not 0 <= offset <= 1000:
            return _error(400, "limit must be 1-100 and offset 0-1000")
        newest_first = list(reversed(self.chats[chat_id]))
        return web.json_response(newest_first[offset : offset + limit])

    async def _send(self, request: web.Request) -> web.Response:
        refused, body = await self._call(request)
        if refused is not None:
            return refused
        chat_id = request.match_info["chat_id"]
        if chat_id not in self.chats:
            return _error(404)
        message = body.get("message") if isinstance(body, dict) else None
        text = message.get("text") if isinstance(message, dict) else None
        if not isinstance(body, dict) or body.get("type") != "text" or not isinstance(text, str) or not text.strip():
            return _error(400, "message.text and type text are required")
        if len(text) > MAX_TEXT:
            return _error(400, f"message.text must be at most {MAX_TEXT} characters")
        sent = self.message(chat_id, self.user_id, "text", {"text": text})
        self.sent.append({"chat_id": chat_id, "text": text, "id": sent["id"]})
        answer = {"id": sent["id"], "content": {"text": text}, "created": sent["created"], "direction": "out"}
        return web.json_response({**answer, "type": "text"})

    async def _subscribe(self, request: web.Request) -> web.Response:
        refused, body = await self._call(request)
        if refused is not None:
            return refused
        if not isinstance(body, dict) or not isinstance(body.get("url"), str) or not body["url"]:
            return _error(400, "url is required")
        self.subscriptions.append(body["url"])
        return web.json_response({"ok": True})

    async def start(self) -> "FakeAvito":
        app = web.Application()
        app.router.add_post("/token", self._token)
        app.router.add_post("/token/", self._token)
        app.router.add_get("/messenger/v3/accounts/{user_id}/chats/{chat_id}/messages/", self._list)
        app.router.add_post("/messenger/v1/accounts/{user_id}/chats/{chat_id}/messages", self._send)
        app.router.add_post("/messenger/v3/webhook", self._subscribe)
        self.server = TestServer(app, host="127.0.0.1")
        await self.server.start_server()
        return self

    async def close(self) -> None:
        if self.server is not None:
            await self.server.close()
