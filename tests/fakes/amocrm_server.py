"""A local HTTP server speaking the part of amoCRM's API v4 and OAuth 2.0 Closer uses, standing in for an amoCRM
account in tests: ``POST /oauth2/access_token`` (authorization_code and refresh_token grants; a refresh token works
once, an access token expires after ``token_lifetime_s``), contacts and leads (add: a JSON array; update: PATCH one;
search: ``?query=``, 204 No Content when nothing matches), and common notes on a lead, kept in memory. Errors as
amoCRM sends them (``application/problem+json`` with title, status and detail): 401 for a missing, unknown or expired
access token, 400 for a refused grant or an invalid body, 404 for an unknown id, and 429 when a client sends more
than ``max_per_second`` requests within one second.

Failure modes, set by the test: ``outage = True`` answers 502. Every request is recorded in ``requests`` with its
time (``time.monotonic()``)."""

import itertools
import json
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer


@dataclass
class Recorded:
    method: str
    path: str
    body: Any
    at: float


def _problem(status: int, title: str, detail: str) -> web.Response:
    body = {"title": title, "type": "https://httpstatus.es/" + str(status), "status": status, "detail": detail}
    return web.Response(status=status, text=json.dumps(body), content_type="application/problem+json")


@dataclass
class FakeAmoCRM:
    client_id: str = "3f1c0a7e-5b1d-4c55-9d0e-2b8c6a1f9e42"
    client_secret: str = "fake-amocrm-client-secret"
    redirect_uri: str = "https://closer.example/amocrm"
    code: str = "def502004a1b2c3d"  # the authorisation code the account's admin copies
    token_lifetime_s: float = 86400.0
    max_per_second: int = 7
    contacts: dict[int, dict] = field(default_factory=dict)
    leads: dict[int, dict] = field(default_factory=dict)
    notes: list[dict] = field(default_factory=list)
    requests: list[Recorded] = field(default_factory=list)
    outage: bool = False
    access_tokens: dict[str, float] = field(default_factory=dict)  # token → monotonic expiry
    refresh_tokens: set[str] = field(default_factory=set)
    refreshes: int = 0
    _ids: Any = field(default_factory=lambda: itertools.count(1_000_001))

    async def start(self) -> "FakeAmoCRM":
        app = web.Application(middlewares=[self._record])
        app.router.add_post("/oauth2/access_token", self._token)
        for entity in ("contacts", "leads"):
            app.router.add_get(f"/api/v4/{entity}", self._search)
            app.router.add_post(f"/api/v4/{entity}", self._add)
            app.router.add_patch(f"/api/v4/{entity}/{{id}}", self._update)
        app.router.add_post("/api/v4/leads/{id}/notes", self._add_notes)
        self._server = TestServer(app, host="127.0.0.1")
        await self._server.start_server()
        self.base_url = str(self._server.make_url("")).rstrip("/")
        return self

    async def close(self) -> None:
        await self._server.close()

    def expire_access_tokens(self) -> None:
        """Every access token given so far expires now (as after 24 hours)."""
        self.access_tokens = dict.fromkeys(self.access_tokens, 0.0)

    @web.middleware
    async def _record(self, request: web.Request, handler) -> web.StreamResponse:
        now = time.monotonic()
        body = await request.text()
        self.requests.append(Recorded(request.method, request.path, json.loads(body) if body else None, now))
        if self.outage:
            return web.Response(status=502, text="<html>Bad Gateway</html>", content_type="text/html")
        if sum(1 for r in self.requests if now - r.at < 1.0) > self.max_per_second:
            return _problem(429, "Too Many Requests", "Превышен лимит запросов")
        if not request.path.startswith("/oauth2/"):
            token = request.headers.get("Authorization", "").removeprefix("Bearer ")
            if self.access_tokens.get(token, 0.0) <= now:
                return _problem(401, "Unauthorized", "Токен доступа недействителен или истёк")
        return await handler(request)

    def _pair(self) -> dict[str, Any]:
        access, refresh = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
        self.access_tokens[access] = time.monotonic() + self.token_lifetime_s
        self.refresh_tokens.add(refresh)
        lifetime = int(self.token_lifetime_s)
        return {"token_type": "Bearer", "expires_in": lifetime, "access_token": access, "refresh_token": refresh}

    async def _token(self, request: web.Request) -> web.Response:
        grant = await request.json()
        client = (grant.get("client_id"), grant.get("client_secret"), grant.get("redirect_uri"))
        if client != (self.client_id, self.client_secret, self.redirect_uri):
            return _problem(400, "Bad Request", "Клиент не найден или redirect_uri не совпадает")
        if grant.get("grant_type") == "authorization_code" and grant.get("code") == self.code:
            self.code = ""  # an authorisation code works once
            return web.json_response(self._pair())
        if grant.get("grant_type") == "refresh_token" and grant.get("refresh_token") in self.refresh_tokens:
            self.refresh_tokens.discard(grant["refresh_token"])  # single-use
            self.refreshes += 1
            return web.json_response(self._pair())
        return _problem(400, "Bad Request", "Токен отозван или код авторизации истёк")

    def _store(self, entity: str) -> dict[int, dict]:
        return self.contacts if entity == "contacts" else self.leads

    async def _search(self, request: web.Request) -> web.Response:
        entity = request.path.rsplit("/", 1)[1]
        query = request.query.get("query", "").lower()
        found = [
            r for r in self._store(entity).values() if query and query in json.dumps(r, ensure_ascii=False).lower()
        ]
        if not found:
            return web.Response(status=204)
        return web.json_response({"_embedded": {entity: found[: int(request.query.get("limit", "50"))]}})

    def _invalid(self, entity: str, record: Any) -> str | None:
        if not isinstance(record, dict):
            return "each element must be an object"
        if entity == "leads" and "status_id" in record and not isinstance(record["status_id"], int):
            return "status_id must be an int"
        if "price" in record and not isinstance(record["price"], int):
            return "price must be an int"
        for linked in (record.get("_embedded") or {}).get("contacts") or []:
            if linked.get("id") not in self.contacts:
                return f"contact {linked.get('id')} not found"
        return None

    async def _add(self, request: web.Request) -> web.Response:
        entity = request.path.rsplit("/", 1)[1]
        records = await request.json()
        if not isinstance(records, list) or not records:
            return _problem(400, "Bad Request", "Тело запроса должно быть непустым массивом")
        added = []
        for i, record in enumerate(records):
            problem = self._invalid(entity, record)
            if problem:
                return _problem(400, "Bad Request", f"[{i}]: {problem}")
            record_id = next(self._ids)
            self._store(entity)[record_id] = {"id": record_id, **record}
            added.append({"id": record_id, "request_id": str(i)})
        return web.json_response({"_embedded": {entity: added}})

    async def _update(self, request: web.Request) -> web.Response:
        entity, record_id = request.path.split("/")[3], int(request.match_info["id"])
        record = await request.json()
        if record_id not in self._store(entity):
            return _problem(404, "Not Found", f"{entity} {record_id} not found")
        problem = self._invalid(entity, record)
        if problem:
            return _problem(400, "Bad Request", problem)
        self._store(entity)[record_id].update(record)
        return web.json_response({"id": record_id, "updated_at": int(time.time())})

    async def _add_notes(self, request: web.Request) -> web.Response:
        lead_id = int(request.match_info["id"])
        if lead_id not in self.leads:
            return _problem(404, "Not Found", f"lead {lead_id} not found")
        added = []
        for note in await request.json():
            note_id = next(self._ids)
            self.notes.append({"id": note_id, "entity_id": lead_id, **note})
            added.append({"id": note_id, "entity_id": lead_id})
        return web.json_response({"_embedded": {"notes": added}})
