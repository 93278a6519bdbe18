"""A local HTTP server speaking the part of Meta's WhatsApp Cloud API (the Graph API) Closer uses,
standing in for graph.facebook.com in tests (aiohttp; runs under Python 3.10 and 3.11):

- ``POST /{version}/{phone-number-id}/messages``: text (body ≤ 4096), interactive reply buttons (1–3,
  id ≤ 256, title ≤ 20, unique) and lists (button text ≤ 20, ≤ 10 rows in all, row id ≤ 200, title ≤ 24,
  description ≤ 72), interactive body ≤ 1024, image and document by link or uploaded media id (caption
  ≤ 1024), template (an approved name and language). Answers ``{"messaging_product": "whatsapp",
  "contacts": [{"input", "wa_id"}], "messages": [{"id": "wamid..."}]}``.
- ``POST /{version}/{phone-number-id}/media``: multipart ``file``, ``type`` and
  ``messaging_product=whatsapp``; keeps the bytes, filename and MIME type; answers ``{"id": ...}``.

Errors have Meta's shape ``{"error": {"message", "type", "code", "error_data", "fbtrace_id"}}``: a
missing or wrong Bearer token gets 401 code 190; another API version, phone number id or edge, and any
message breaking the rules above, 400. The 24-hour customer-service window is enforced: the test says
when each wa_id last wrote (``customer_wrote``); a message other than a template to a customer who has
not written in the last 24 hours gets 400 code 131047. ``delay_s`` delays every answer (a slow API).
Every request is kept in ``requests``; every accepted message, with its id, in ``messages``."""

import asyncio
import base64
import itertools
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer

WINDOW_S = 24 * 3600
MEDIA_TYPES = {"application/pdf", "image/jpeg", "image/png"}
MAX_MEDIA_BYTES = 100 * 1024 * 1024


@dataclass
class Media:
    data: bytes
    filename: str
    mime_type: str


@dataclass
class Recorded:
    path: str
    authorization: str | None
    body: Any  # the JSON body, or the form fields of an upload (the file as a Media)


class GraphError(Exception):
    def __init__(
        self, code: int, title: str, details: str = "", status: int = 400, kind: str = "OAuthException"
    ) -> None:
        super().__init__(title)
        self.code, self.title, self.details, self.status, self.kind = code, title, details, status, kind

    def response(self) -> web.Response:
        message = self.title if self.code == 190 else f"(#{self.code}) {self.title}"
        error = {"message": message, "type": self.kind, "code": self.code, "fbtrace_id": "A" + uuid.uuid4().hex[:22]}
        if self.details:
            error["error_data"] = {"messaging_product": "whatsapp", "details": self.details}
        return web.json_response({"error": error}, status=self.status)


def _invalid(details: str) -> GraphError:
    return GraphError(100, "Invalid parameter", details)


def _text_field(value: Any, name: str, limit: int, required: bool = True) -> None:
    if value is None and not required:
        return
    if not isinstance(value, str) or not value.strip():
        raise _invalid(f"Parameter {name} is required and must be a non-empty string")
    if len(value) > limit:
        raise _invalid(f"Parameter {name} must be at most {limit} characters long")


@dataclass
class FakeGraph:
    token: str = "EAAGtest-access-token"
    phone_number_id: str = "106540352242922"
    version: str = "v21.0"
    templates: dict = field(default_factory=lambda: {"closer_follow_up": {"en"}})  # approved name → languages
    last_inbound: dict = field(default_factory=dict)  # wa_id → Unix time the customer last wrote
    delay_s: float = 0.0
    requests: list = field(default_factory=list)
    messages: list = field(default_factory=list)
    media: dict = field(default_factory=dict)
    server: TestServer | None = None
    _ids: Any = field(default_factory=lambda: itertools.count(4490709327384033))

    @property
    def api_base(self) -> str:
        """The channel's ``api_base``, e.g. ``http://127.0.0.1:PORT``."""
        return str(self.server.make_url("")).rstrip("/")

    def customer_wrote(self, wa_id: str, at: float | None = None) -> None:
        """Open (or, with an old ``at``, keep closed) the 24-hour window of ``wa_id``."""
        self.last_inbound[wa_id] = time.time() if at is None else at

    def sent(self, to: str | None = None) -> list:
        """Accepted messages (request bodies with their ``id``), to ``to`` if given, in order."""
        return [m for m in self.messages if to is None or m["to"] == to]

    async def _handle(self, request: web.Request) -> web.Response:
        authorization = request.headers.get("Authorization")
        if request.content_type.startswith("multipart/"):
            body: Any = {}
            for name, value in (await request.post()).items():
                body[name] = (
                    Media(value.file.read(), value.filename, value.content_type)
                    if isinstance(value, web.FileField)
                    else value
                )
        else:
            try:
                body = await request.json()
            except ValueError:
                body = None
        self.requests.append(Recorded(request.path, authorization, body))
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        try:
            if authorization != f"Bearer {self.token}":
                raise GraphError(190, "Invalid OAuth access token - Cannot parse access token", status=401)
            version, node, edge = request.match_info["version"], request.match_info["node"], request.match_info["edge"]
            if version != self.version:
                raise GraphError(2500, "Unknown path components", f"API version {version} is not served here")
            if node != self.phone_number_id:
                raise GraphError(
                    100,
                    "Unsupported post request",
                    f"Object with ID '{node}' does not exist",
                    kind="GraphMethodException",
                )
            if edge == "messages":
                return web.json_response(self._message(body))
            if edge == "media":
                return web.json_response(self._upload(body))
            raise GraphError(2500, "Unknown path components", f"/{edge}")
        except GraphError as exc:
            return exc.response()

    def _message(self, body: Any) -> dict:
        if not isinstance(body, dict) or body.get("messaging_product") != "whatsapp":
            raise _invalid("messaging_product must be whatsapp")
        to = body.get("to")
        if not isinstance(to, str) or not to.isdigit():
            raise _invalid("Parameter to must be the recipient's phone number")
        kind = body.get("type", "text")
        check = {
            "text": self._check_text,
            "interactive": self._check_interactive,
            "image": self._check_media,
            "document": self._check_media,
            "template": self._check_template,
        }.get(kind)
        if check is None:
            raise _invalid(f"Unsupported message type {kind!r}")
        if not isinstance(body.get(kind), dict):
            raise _invalid(f"Parameter {kind} is required")
        check(body[kind], kind)
        if kind != "template" and time.time() - self.last_inbound.get(to, float("-inf")) > WINDOW_S:
            raise GraphError(
                131047,
                "Re-engagement message",
                "Message failed to send because more than 24 hours have "
                "passed since the customer last replied to this number.",
            )
        message_id = "wamid." + base64.b64encode(uuid.uuid4().bytes).decode()
        self.messages.append({**body, "id": message_id})
        answer = {"id": message_id, **({"message_status": "accepted"} if kind == "template" else {})}
        return {"messaging_product": "whatsapp", "contacts": [{"input": to, "wa_id": to}], "messages": [answer]}

    @staticmethod
    def _check_text(text: dict, _: str) -> None:
        _text_field(text.get("body"), "text['body']", 4096)
        if not isinstance(text.get("preview_url", False), bool):
            raise _invalid("Parameter text['preview_url'] must be a boolean")

    @staticmethod
    def _check_interactive(interactive: dict, _: str) -> None:
        _text_field((interactive.get("body") or {}).get("text"), "interactive['body']['text']", 1024)
        action = interactive.get("action") or {}
        if interactive.get("type") == "button":
            buttons = action.get("buttons")
            if not isinstance(buttons, list) or not 1 <= len(buttons) <= 3:
                raise _invalid("Parameter interactive['action']['buttons'] must have 1 to 3 buttons")
            for i, button in enumerate(buttons):
                name = f"interactive['action']['buttons'][{i}]"
                if not (
                    isinstance(button, dict) and button.get("type") == "reply" and isinstance(button.get("reply"), dict)
                ):
                    raise _invalid(f"Parameter {name} must be a reply button")
                _text_field(button["reply"].get("id"), f"{name}['reply']['id']", 256)
                _text_field(button["reply"].get("title"), f"{name}['reply']['title']", 20)
            for key in ("id", "title"):
                if len({b["reply"][key] for b in buttons}) != len(buttons):
                    raise _invalid(f"Button {key}s must be unique within a message")
        elif interactive.get("type") == "list":
            _text_field(action.get("button"), "interactive['action']['button']", 20)
            sections = action.get("sections")
            if not isinstance(sections, list) or not 1 <= len(sections) <= 10:
                raise _invalid("Parameter interactive['action']['sections'] must have 1 to 10 sections")
            rows = [row for section in sections for row in _rows(section)]
            if not 1 <= len(rows) <= 10:
                raise _invalid("Total row count exceed max allowed count: 10")
            if len(sections) > 1 and not all(isinstance(s.get("title"), str) and s["title"] for s in sections):
                raise _invalid(
                    "Parameter interactive['action']['sections'][*]['title'] is required with several sections"
                )
            for i, row in enumerate(rows):
                _text_field(row.get("id"), f"row {i} id", 200)
                _text_field(row.get("title"), f"row {i} title", 24)
                _text_field(row.get("description"), f"row {i} description", 72, required=False)
            if len({row["id"] for row in rows}) != len(rows):
                raise _invalid("Row ids must be unique within a message")
        else:
            raise _invalid(f"Unsupported interactive type {interactive.get('type')!r}")

    def _check_media(self, media: dict, kind: str) -> None:
        if ("id" in media) == ("link" in media):
            raise _invalid(f"Parameter {kind} needs exactly one of id and link")
        if "id" in media and media["id"] not in self.media:
            raise GraphError(131053, "Media upload error", f"Media id {media['id']} was not uploaded")
        if "link" in media and not str(media["link"]).startswith(("http://", "https://")):
            raise _invalid(f"Parameter {kind}['link'] must be an http(s) URL")
        _text_field(media.get("caption"), f"{kind}['caption']", 1024, required=False)
        _text_field(media.get("filename"), f"{kind}['filename']", 240, required=False)

    def _check_template(self, template: dict, _: str) -> None:
        name, language = template.get("name"), (template.get("language") or {}).get("code")
        if language not in self.templates.get(name, set()):
            raise GraphError(
                132001,
                "Template name does not exist in the translation",
                f"template name ({name}) does not exist in {language}",
            )

    def _upload(self, form: Any) -> dict:
        if not isinstance(form, dict) or form.get("messaging_product") != "whatsapp":
            raise _invalid("messaging_product must be whatsapp")
        file, mime_type = form.get("file"), form.get("type")
        if not isinstance(file, Media):
            raise _invalid("Parameter file is required (multipart)")
        if mime_type not in MEDIA_TYPES:
            raise _invalid(f"Param type must be one of {sorted(MEDIA_TYPES)}")
        if not file.data or len(file.data) > MAX_MEDIA_BYTES:
            raise GraphError(131053, "Media upload error", "File is empty or over the size limit")
        media_id = str(next(self._ids))
        self.media[media_id] = Media(file.data, file.filename, mime_type)
        return {"id": media_id}

    async def start(self) -> "FakeGraph":
        app = web.Application(client_max_size=MAX_MEDIA_BYTES + 1024 * 1024)
        app.router.add_post("/{version}/{node}/{edge}", self._handle)
        self.server = TestServer(app, host="127.0.0.1")
        await self.server.start_server()
        return self

    async def close(self) -> None:
        await self.server.close()


def _rows(section: Any) -> list:
    rows = section.get("rows") if isinstance(section, dict) else None
    if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
        raise _invalid("Parameter interactive['action']['sections'][*]['rows'] must be a list of rows")
    return rows
