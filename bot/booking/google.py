"""The Google Calendar adapter: a sales manager's calendar through the Google Calendar API v3, authorised as a
service account.

Authorisation (Google's "OAuth 2.0 for server to server applications"): the service account's JSON key file
(``google_service_account_file``; its ``client_email``, ``private_key``, ``private_key_id`` and ``token_uri``) signs
an RS256 JWT assertion (``iss`` the service account, ``scope`` :data:`SCOPES`, ``aud`` the token URI, ``iat``/``exp``
one hour apart, ``sub`` the user acted as under domain-wide delegation when ``google_calendar_subject`` is set),
exchanged at the token URI (``grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer``) for an access token kept
until :data:`REFRESH_BEFORE_S` before it expires; after a 401 it is fetched again and the request sent once more.
Share the manager's calendar with the service account's address ("Make changes to events"), or use domain-wide
delegation with ``google_calendar_subject``.

Calls: ``POST /calendar/v3/freeBusy`` (busy time), ``POST /calendar/v3/calendars/{calendarId}/events`` with the
event's ``id`` set to the call's UID (a retried insert answers 409 and is taken as done), ``PATCH …/events/{eventId}``
and ``DELETE …/events/{eventId}`` (404 and 410, already deleted, are not errors); ``sendUpdates=none`` throughout:
the customer's invitation is Closer's own e-mail (:mod:`bot.booking.invites`), since a service account cannot invite
attendees without domain-wide delegation.

Errors: :class:`~bot.booking.base.CalendarError` with provider ``google``, the HTTP status (None for no answer or a
timeout) and Google's ``error.message`` (or the token endpoint's ``error_description``); a key file that is missing
or lacks a field is a CalendarError with status None naming the file. Each request is bounded by ``timeout_s``.
"""

import asyncio
import json
import logging
import time
from datetime import datetime
from pathlib import Path
from typing import Any, Self
from urllib.parse import quote

import aiohttp
import jwt

from bot.booking.base import CalendarError, CalendarProvider, CallEvent, as_utc, merge

log = logging.getLogger(__name__)

PROVIDER = "google"
API_BASE = "https://www.googleapis.com"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
# Least privilege: write events and read free/busy time, nothing else of the account's calendars.
SCOPES = ("https://www.googleapis.com/auth/calendar.events", "https://www.googleapis.com/auth/calendar.freebusy")
ASSERTION_LIFETIME_S = 3600  # Google's maximum
REFRESH_BEFORE_S = 300.0  # fetch a new access token this long before the held one expires
KEY_FIELDS = ("client_email", "private_key", "token_uri")


class GoogleCalendar(CalendarProvider):
    """The calendar ``calendar_id`` (``primary``, or a calendar's address) through the API at ``api_base``, as the
    service account whose JSON key is at ``key_file``; ``token_uri`` overrides the key's own (tests), ``subject`` is
    the Workspace user acted as (domain-wide delegation). Every request is bounded by ``timeout_s`` seconds."""

    name = PROVIDER

    def __init__(
        self,
        key_file: Path,
        calendar_id: str = "primary",
        api_base: str = API_BASE,
        token_uri: str | None = None,
        subject: str | None = None,
        timeout_s: float = 10.0,
    ):
        self.key_file, self.calendar_id, self.api_base = Path(key_file), calendar_id, api_base.rstrip("/")
        self.token_uri, self.subject, self.timeout_s = token_uri, subject, timeout_s
        self._key: dict[str, str] | None = None
        self._token: tuple[str, float] | None = None  # access token, time.monotonic() it is kept until
        self._lock: asyncio.Lock | None = None

    @classmethod
    def from_settings(cls, settings: Any) -> Self:
        """From ``google_service_account_file``, ``google_calendar_id``, ``google_calendar_api_base``,
        ``google_token_uri``, ``google_calendar_subject`` and ``calendar_timeout``. Raises ValueError when the key file
        is not set."""
        if not settings.google_service_account_file:
            raise ValueError("calendar_provider is google but CLOSER_GOOGLE_SERVICE_ACCOUNT_FILE is not set")
        return cls(
            settings.google_service_account_file,
            settings.google_calendar_id,
            settings.google_calendar_api_base,
            settings.google_token_uri,
            settings.google_calendar_subject,
            settings.calendar_timeout,
        )

    @property
    def _events(self) -> str:
        return f"/calendar/v3/calendars/{quote(self.calendar_id, safe='')}/events"

    async def busy(self, start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
        body = {
            "timeMin": as_utc(start).isoformat(),
            "timeMax": as_utc(end).isoformat(),
            "timeZone": "UTC",
            "items": [{"id": self.calendar_id}],
        }
        path = "/calendar/v3/freeBusy"
        answer = await self._call("POST", path, body)
        calendars = answer.get("calendars")
        found = calendars.get(self.calendar_id) if isinstance(calendars, dict) else None
        if not isinstance(found, dict):
            raise CalendarError(PROVIDER, 200, f"Google Calendar 200 on POST {path}: no calendar {self.calendar_id!r}")
        if found.get("errors"):  # e.g. notFound: the calendar is not shared with the service account
            reasons = ", ".join(str(e.get("reason")) for e in found["errors"] if isinstance(e, dict))
            raise CalendarError(
                PROVIDER, 200, f"Google Calendar 200 on POST {path}: calendar {self.calendar_id!r}: {reasons}"
            )
        try:
            periods = [(_time(b["start"]), _time(b["end"])) for b in found.get("busy") or []]
        except (KeyError, TypeError, ValueError) as exc:
            raise CalendarError(PROVIDER, 200, f"Google Calendar 200 on POST {path}: bad busy period ({exc})") from exc
        lo, hi = as_utc(start), as_utc(end)
        return merge([(max(s, lo), min(e, hi)) for s, e in periods])

    async def create(self, event: CallEvent) -> str:
        body = {"id": event.uid, **_resource(event)}
        try:
            created = await self._call("POST", self._events, body, {"sendUpdates": "none"})
        except CalendarError as exc:
            if exc.status != 409:  # 409: "The requested identifier already exists", a retried insert
                raise
            log.info("Google Calendar event %s already existed", event.uid)
            return event.uid
        return str(created.get("id") or event.uid)

    async def move(self, event_id: str, event: CallEvent) -> None:
        path = f"{self._events}/{quote(event_id, safe='')}"
        await self._call("PATCH", path, _resource(event), {"sendUpdates": "none"})

    async def cancel(self, event_id: str) -> None:
        path = f"{self._events}/{quote(event_id, safe='')}"
        try:
            await self._call("DELETE", path, None, {"sendUpdates": "none"})
        except CalendarError as exc:
            if exc.status not in (404, 410):  # 410 Gone: deleted already
                raise

    # --- authorisation and requests -------------------------------------------------------------------------------

    async def _read_key(self) -> dict[str, str]:
        if self._key is None:
            try:
                raw = json.loads(await asyncio.to_thread(self.key_file.read_text, encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise CalendarError(
                    PROVIDER, None, f"Google Calendar: cannot read the service account key {self.key_file}: {exc}"
                ) from exc
            missing = [f for f in KEY_FIELDS if not (isinstance(raw, dict) and raw.get(f))]
            if missing:
                raise CalendarError(
                    PROVIDER, None, f"Google Calendar: the key {self.key_file} lacks {', '.join(missing)}"
                )
            self._key = {k: str(v) for k, v in raw.items() if isinstance(v, str)}
        return self._key

    def assertion(self, key: dict[str, str], now: float | None = None) -> str:
        """The signed JWT (RS256, header ``kid`` the key's ``private_key_id``) exchanged for an access token."""
        issued = int(now if now is not None else time.time())
        claims = {
            "iss": key["client_email"],
            "scope": " ".join(SCOPES),
            "aud": self.token_uri or key["token_uri"],
            "iat": issued,
            "exp": issued + ASSERTION_LIFETIME_S,
        }
        if self.subject:
            claims["sub"] = self.subject
        headers = {"kid": key["private_key_id"]} if key.get("private_key_id") else None
        try:
            return jwt.encode(claims, key["private_key"], algorithm="RS256", headers=headers)
        except (ValueError, TypeError, jwt.PyJWTError) as exc:  # not a PEM RSA private key
            raise CalendarError(
                PROVIDER, None, f"Google Calendar: the key {self.key_file} has no usable private_key ({exc})"
            ) from exc

    async def _access_token(self) -> str:
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:  # one token request at a time: concurrent calls share its answer
            if self._token is not None and self._token[1] > time.monotonic():
                return self._token[0]
            key = await self._read_key()
            uri = self.token_uri or key["token_uri"]
            form = {"grant_type": JWT_BEARER, "assertion": self.assertion(key)}
            status, data, text = await self._send("POST", uri, form=form)
            if status != 200 or not isinstance(data, dict) or not data.get("access_token"):
                detail = data if isinstance(data, dict) else {}
                reason = detail.get("error_description") or detail.get("error") or text[:300]
                raise CalendarError(PROVIDER, status, f"Google Calendar {status} on the token request: {reason}")
            lifetime = float(data.get("expires_in") or ASSERTION_LIFETIME_S)
            self._token = (str(data["access_token"]), time.monotonic() + max(0.0, lifetime - REFRESH_BEFORE_S))
            return self._token[0]

    async def _call(
        self, method: str, path: str, body: Any = None, params: dict[str, str] | None = None
    ) -> dict[str, Any]:
        """An API request with the access token, sent once more with a new token after a 401; the JSON answer ({} for
        204 No Content). Raises CalendarError for any other status than 2xx."""
        for attempt in (1, 2):
            token = await self._access_token()
            status, data, text = await self._send(method, self.api_base + path, body, params, token)
            if status == 401 and attempt == 1:
                self._token = None
                continue
            break
        if 200 <= status < 300:
            return data if isinstance(data, dict) else {}
        error = data.get("error") if isinstance(data, dict) else None
        reason = error.get("message") if isinstance(error, dict) else None
        raise CalendarError(PROVIDER, status, f"Google Calendar {status} on {method} {path}: {reason or text[:300]}")

    async def _send(
        self,
        method: str,
        url: str,
        body: Any = None,
        params: dict[str, str] | None = None,
        token: str | None = None,
        form: dict[str, str] | None = None,
    ) -> tuple[int, Any, str]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        try:
            async with (
                aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout_s)) as client,
                client.request(method, url, json=body, data=form, params=params, headers=headers) as response,
            ):
                status, text = response.status, await response.text()
        except (aiohttp.ClientError, TimeoutError) as exc:
            shown = url.removeprefix(self.api_base)
            raise CalendarError(
                PROVIDER, None, f"Google Calendar: no answer on {method} {shown} ({type(exc).__name__} {exc})".strip()
            ) from exc
        try:
            data = json.loads(text) if text else None
        except ValueError:
            data = None
        return status, data, text


def _time(value: str) -> datetime:
    """An RFC 3339 time of Google's answer, as aware UTC. Raises ValueError."""
    return as_utc(datetime.fromisoformat(value))


def _resource(event: CallEvent) -> dict[str, Any]:
    """The Events resource fields Closer writes."""
    return {
        "summary": event.summary,
        "description": event.description,
        "start": {"dateTime": event.start.isoformat(), "timeZone": "UTC"},
        "end": {"dateTime": event.end.isoformat(), "timeZone": "UTC"},
        "status": "confirmed",
        "transparency": "opaque",
        "extendedProperties": {"private": {"closerUid": event.uid}},
    }
