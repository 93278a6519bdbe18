"""A local HTTP server speaking the part of the Google Calendar API v3 and Google's OAuth 2.0 token endpoint Closer
uses, standing in for a Google account in tests, with events kept in memory:

- ``POST /token``: the service-account grant (``grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer``, form
  encoded) whose ``assertion`` is a JWT verified with ``public_key`` (RS256; ``iss`` the service account, ``aud`` this
  URI, ``exp`` at most an hour after ``iat`` and not past); answers ``{"access_token", "expires_in", "token_type"}``
  or 400 ``{"error": "invalid_grant", "error_description"}``. Each verified claim set is kept in ``assertions``.
- ``POST /calendar/v3/freeBusy``: ``calendars.<id>.busy`` (the confirmed, opaque events of ``calendars[id]``
  overlapping ``timeMin``–``timeMax``, clipped, merged) or ``calendars.<id>.errors`` (reason ``notFound``) for a
  calendar the account cannot see.
- ``POST /calendar/v3/calendars/{calendarId}/events`` (insert; a client-chosen ``id`` must be base32hex, 5–1024
  characters, and unused: 409 ``duplicate`` otherwise), ``PATCH …/events/{eventId}`` (404 for an unknown id, 410
  once deleted), ``DELETE …/events/{eventId}`` (204; 410 when deleted already, 404 unknown). A deleted event stays
  with ``status: cancelled`` as Google keeps it.

API errors are Google's JSON error objects (``{"error": {"code", "message", "errors": [{"domain", "reason",
"message"}]}}``); a missing, unknown or expired access token is 401. Failure modes, set by the test: ``outage =
True`` answers 503 (``backendError``); ``expire_tokens()``; ``delay_s`` holds every answer that long. Every request
is recorded in ``requests``."""

import asyncio
import itertools
import re
import secrets
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import jwt
from aiohttp import web
from aiohttp.test_utils import TestServer

JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
_BASE32HEX = re.compile(r"[0-9a-v]{5,1024}")


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    body: Any


def _error(status: int, reason: str, message: str) -> web.Response:
    body = {"error": {"code": status, "message": message, "errors": [{"domain": "global", "reason": reason}]}}
    return web.json_response(body, status=status)


def _time(value: Any) -> datetime:
    return datetime.fromisoformat(str(value)).astimezone(UTC)


@dataclass
class FakeGoogleCalendar:
    public_key: Any  # the service account key's public half (cryptography RSAPublicKey or PEM)
    client_email: str = "closer-booking@closer-test.iam.gserviceaccount.com"
    token_lifetime_s: int = 3599
    calendars: dict[str, dict[str, dict]] = field(default_factory=lambda: {"primary": {}})
    requests: list[Recorded] = field(default_factory=list)
    assertions: list[dict] = field(default_factory=list)
    access_tokens: dict[str, float] = field(default_factory=dict)  # token → time.monotonic() expiry
    outage: bool = False
    delay_s: float = 0.0
    _ids: Any = field(default_factory=lambda: itertools.count(1))

    async def start(self) -> "FakeGoogleCalendar":
        app = web.Application(middlewares=[self._middleware])
        app.router.add_post("/token", self._token)
        app.router.add_post("/calendar/v3/freeBusy", self._free_busy)
        app.router.add_post("/calendar/v3/calendars/{calendar}/events", self._insert)
        app.router.add_patch("/calendar/v3/calendars/{calendar}/events/{event}", self._patch)
        app.router.add_delete("/calendar/v3/calendars/{calendar}/events/{event}", self._delete)
        self._server = TestServer(app, host="127.0.0.1")
        await self._server.start_server()
        self.api_base = str(self._server.make_url("")).rstrip("/")
        self.token_uri = f"{self.api_base}/token"
        return self

    async def close(self) -> None:
        await self._server.close()

    def expire_tokens(self) -> None:
        """Every access token given so far expires now."""
        self.access_tokens = dict.fromkeys(self.access_tokens, 0.0)

    def add_event(self, start: datetime, end: datetime, calendar: str = "primary", transparency: str = "opaque") -> str:
        """An event put in the calendar by someone else (the manager); returns its id."""
        event_id = f"manual{next(self._ids):05d}"
        self.calendars[calendar][event_id] = {
            "id": event_id,
            "status": "confirmed",
            "summary": "Busy",
            "transparency": transparency,
            "start": {"dateTime": start.isoformat()},
            "end": {"dateTime": end.isoformat()},
        }
        return event_id

    def live(self, calendar: str = "primary") -> dict[str, dict]:
        """The calendar's events that are not deleted."""
        return {k: v for k, v in self.calendars[calendar].items() if v.get("status") != "cancelled"}

    @web.middleware
    async def _middleware(self, request: web.Request, handler) -> web.StreamResponse:
        if request.content_type == "application/json" and request.can_read_body:
            body: Any = await request.json()
        elif request.can_read_body:
            body = dict(await request.post())
        else:
            body = None
        self.requests.append(Recorded(request.method, request.path, dict(request.query), body))
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        if self.outage:
            return _error(503, "backendError", "Backend Error")
        if request.path != "/token":
            token = request.headers.get("Authorization", "").removeprefix("Bearer ")
            if self.access_tokens.get(token, 0.0) <= time.monotonic():
                return _error(401, "authError", "Invalid Credentials")
        return await handler(request)

    async def _token(self, request: web.Request) -> web.Response:
        form = await request.post()
        if form.get("grant_type") != JWT_BEARER:
            return web.json_response(
                {"error": "unsupported_grant_type", "error_description": "Invalid grant_type"}, status=400
            )
        try:
            claims = jwt.decode(
                str(form.get("assertion", "")),
                self.public_key,
                algorithms=["RS256"],
                audience=self.token_uri,
                issuer=self.client_email,
                options={"require": ["iss", "aud", "iat", "exp", "scope"]},
            )
        except jwt.PyJWTError as exc:
            return web.json_response({"error": "invalid_grant", "error_description": f"Invalid JWT: {exc}"}, status=400)
        if claims["exp"] - claims["iat"] > 3600:
            return web.json_response(
                {"error": "invalid_grant", "error_description": "Invalid JWT: lifetime"}, status=400
            )
        self.assertions.append(claims)
        token = "ya29." + secrets.token_urlsafe(24)
        self.access_tokens[token] = time.monotonic() + self.token_lifetime_s
        return web.json_response({"access_token": token, "expires_in": self.token_lifetime_s, "token_type": "Bearer"})

    def _calendar(self, request: web.Request) -> dict[str, dict] | None:
        return self.calendars.get(request.match_info["calendar"])

    async def _free_busy(self, request: web.Request) -> web.Response:
        query = await request.json()
        try:
            lo, hi = _time(query["timeMin"]), _time(query["timeMax"])
        except (KeyError, ValueError):
            return _error(400, "badRequest", "Bad Request")
        answer: dict[str, Any] = {}
        for item in query.get("items") or []:
            events = self.calendars.get(item["id"])
            if events is None:
                answer[item["id"]] = {"errors": [{"domain": "global", "reason": "notFound"}], "busy": []}
                continue
            periods = sorted(
                (max(_time(e["start"]["dateTime"]), lo), min(_time(e["end"]["dateTime"]), hi))
                for e in events.values()
                if e.get("status") != "cancelled" and e.get("transparency", "opaque") == "opaque"
            )
            busy: list[list[datetime]] = []
            for start, end in periods:
                if end <= start:
                    continue
                if busy and start <= busy[-1][1]:
                    busy[-1][1] = max(busy[-1][1], end)
                else:
                    busy.append([start, end])
            stamp = "%Y-%m-%dT%H:%M:%SZ"
            answer[item["id"]] = {"busy": [{"start": s.strftime(stamp), "end": e.strftime(stamp)} for s, e in busy]}
        return web.json_response(
            {"kind": "calendar#freeBusy", "timeMin": query["timeMin"], "timeMax": query["timeMax"], "calendars": answer}
        )

    def _check_times(self, event: dict) -> web.Response | None:
        try:
            if _time(event["end"]["dateTime"]) <= _time(event["start"]["dateTime"]):
                return _error(400, "timeRangeEmpty", "The specified time range is empty.")
        except (KeyError, TypeError, ValueError):
            return _error(400, "required", "Missing end time.")
        return None

    async def _insert(self, request: web.Request) -> web.Response:
        events = self._calendar(request)
        if events is None:
            return _error(404, "notFound", "Not Found")
        event = await request.json()
        problem = self._check_times(event)
        if problem:
            return problem
        event_id = event.get("id") or f"gen{next(self._ids):08d}"
        if not _BASE32HEX.fullmatch(event_id):
            return _error(400, "invalidResourceId", "Invalid resource id value.")
        if event_id in events:
            return _error(409, "duplicate", "The requested identifier already exists.")
        stored = {"kind": "calendar#event", "status": "confirmed", **event, "id": event_id, "iCalUID": event_id}
        stored["htmlLink"] = f"https://www.google.com/calendar/event?eid={event_id}"
        events[event_id] = stored
        return web.json_response(stored)

    async def _patch(self, request: web.Request) -> web.Response:
        events = self._calendar(request)
        event = (events or {}).get(request.match_info["event"])
        if event is None:
            return _error(404, "notFound", "Not Found")
        if event.get("status") == "cancelled":
            return _error(410, "deleted", "Resource has been deleted")
        changed = {**event, **(await request.json())}
        problem = self._check_times(changed)
        if problem:
            return problem
        changed["sequence"] = int(event.get("sequence", 0)) + 1
        event.update(changed)
        return web.json_response(event)

    async def _delete(self, request: web.Request) -> web.Response:
        events = self._calendar(request)
        event = (events or {}).get(request.match_info["event"])
        if event is None:
            return _error(404, "notFound", "Not Found")
        if event.get("status") == "cancelled":
            return _error(410, "deleted", "Resource has been deleted")
        event["status"] = "cancelled"
        return web.Response(status=204)
