"""The CalDAV adapter: a sales manager's calendar on any CalDAV server (RFC 4791: Nextcloud, Radicale, Baïkal, SOGo,
Fastmail, iCloud, …), the calendar collection at ``caldav_calendar_url`` with HTTP Basic credentials.

Spoken with aiohttp directly rather than the ``caldav`` package in a thread: Closer needs four requests of the
protocol (one REPORT, PUT, PUT, DELETE), which aiohttp sends on the event loop with the same timeout and error
handling as every other outside call, while ``caldav`` is synchronous (requests/niquests), would hold a worker
thread per call, and brings a dependency tree of its own for discovery features Closer does not use.

- Busy time: a ``free-busy-query`` REPORT (RFC 4791 §7.10) with a ``time-range``, answered by the server as a
  ``VFREEBUSY`` (``text/calendar``) whose ``FREEBUSY`` periods (``BUSY``, ``BUSY-UNAVAILABLE``,
  ``BUSY-TENTATIVE``) are busy; the server expands recurring events and leaves out transparent and cancelled ones.
  It needs the CALDAV:read-free-busy privilege (any account that can read the calendar has it).
- An event: one calendar object resource ``<calendar-url>/<uid>.ics`` (a VCALENDAR without METHOD, one VEVENT;
  :meth:`~bot.booking.base.CallEvent.vevent`), written with ``PUT`` and ``If-None-Match: *`` (a retried create finds
  it there: 412, taken as done); moved by ``PUT`` with ``If-Match: *`` (412 when it is gone) and the incremented
  SEQUENCE; cancelled by ``DELETE`` (404: already gone, not an error). No ORGANIZER or ATTENDEE is written, so a
  server that schedules (RFC 6638) sends nothing of its own: the customer's invitation is Closer's e-mail
  (:mod:`bot.booking.invites`). The event id is the UID.

Errors: :class:`~bot.booking.base.CalendarError` with provider ``caldav``, the HTTP status (None for no answer or a
timeout) and the start of the server's answer. Each request is bounded by ``timeout_s``.
"""

from datetime import datetime
from typing import Any, Self
from urllib.parse import quote

import aiohttp
import icalendar

from bot.booking.base import CalendarError, CalendarProvider, CallEvent, as_utc, calendar, merge

PROVIDER = "caldav"
BUSY_TYPES = {"BUSY", "BUSY-UNAVAILABLE", "BUSY-TENTATIVE"}
FREE_BUSY_QUERY = """<?xml version="1.0" encoding="utf-8"?>
<C:free-busy-query xmlns:C="urn:ietf:params:xml:ns:caldav">
  <C:time-range start="{start}" end="{end}"/>
</C:free-busy-query>"""


class CalDAVCalendar(CalendarProvider):
    """The calendar collection at ``calendar_url`` (``https://dav.example.com/calendars/manager/sales/``), with HTTP
    Basic ``username``/``password`` when given. Every request is bounded by ``timeout_s`` seconds."""

    name = PROVIDER

    def __init__(
        self, calendar_url: str, username: str | None = None, password: str | None = None, timeout_s: float = 10.0
    ):
        self.calendar_url = calendar_url.rstrip("/") + "/"
        self.auth = aiohttp.BasicAuth(username, password or "") if username else None
        self.timeout_s = timeout_s

    @classmethod
    def from_settings(cls, settings: Any) -> Self:
        """From ``caldav_calendar_url``, ``caldav_username``, ``caldav_password`` and ``calendar_timeout``. Raises
        ValueError when the calendar's URL is not set."""
        if not settings.caldav_calendar_url:
            raise ValueError("calendar_provider is caldav but CLOSER_CALDAV_CALENDAR_URL is not set")
        return cls(
            settings.caldav_calendar_url, settings.caldav_username, settings.caldav_password, settings.calendar_timeout
        )

    def href(self, event_id: str) -> str:
        """The URL of the event's calendar object resource."""
        return f"{self.calendar_url}{quote(event_id, safe='')}.ics"

    async def busy(self, start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
        lo, hi = as_utc(start), as_utc(end)
        body = FREE_BUSY_QUERY.format(start=_stamp(lo), end=_stamp(hi))
        headers = {"Depth": "1", "Content-Type": "application/xml; charset=utf-8"}
        text = await self._request("REPORT", self.calendar_url, body, headers, ok=(200,))
        try:
            answer = icalendar.Calendar.from_ical(text)
        except ValueError as exc:
            raise CalendarError(PROVIDER, 200, f"CalDAV 200 on REPORT free-busy-query: not iCalendar ({exc})") from exc
        periods: list[tuple[datetime, datetime]] = []
        try:
            for component in answer.walk("VFREEBUSY"):
                for prop in _as_list(component.get("FREEBUSY")):
                    if str(prop.params.get("FBTYPE", "BUSY")).upper() not in BUSY_TYPES:
                        continue
                    first, second = prop.dt  # a vPeriod: (start, end) or (start, duration)
                    finish = second if isinstance(second, datetime) else first + second
                    periods.append((max(as_utc(first), lo), min(as_utc(finish), hi)))
        except (AttributeError, TypeError, ValueError) as exc:
            raise CalendarError(PROVIDER, 200, f"CalDAV 200 on REPORT free-busy-query: bad FREEBUSY ({exc})") from exc
        return merge(periods)

    async def create(self, event: CallEvent) -> str:
        body = calendar(event.vevent()).to_ical()
        await self._request("PUT", self.href(event.uid), body, _ICS | {"If-None-Match": "*"}, ok=(200, 201, 204, 412))
        return event.uid

    async def move(self, event_id: str, event: CallEvent) -> None:
        body = calendar(event.vevent()).to_ical()
        await self._request("PUT", self.href(event_id), body, _ICS | {"If-Match": "*"}, ok=(200, 201, 204))

    async def cancel(self, event_id: str) -> None:
        await self._request("DELETE", self.href(event_id), None, {}, ok=(200, 204, 404))

    async def _request(
        self, method: str, url: str, body: str | bytes | None, headers: dict[str, str], ok: tuple[int, ...]
    ) -> str:
        """The answer's text; raises CalendarError for a status not in ``ok`` or no answer in time."""
        shown = url.removeprefix(self.calendar_url) or "calendar"
        try:
            async with (
                aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout_s)) as client,
                client.request(method, url, data=body, headers=headers, auth=self.auth) as response,
            ):
                status, text = response.status, await response.text()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise CalendarError(
                PROVIDER, None, f"CalDAV: no answer on {method} {shown} ({type(exc).__name__} {exc})".strip()
            ) from exc
        if status not in ok:
            reason = " ".join(text.split())[:300] or "(empty answer)"
            raise CalendarError(PROVIDER, status, f"CalDAV {status} on {method} {shown}: {reason}")
        return text


_ICS = {"Content-Type": "text/calendar; charset=utf-8"}


def _stamp(moment: datetime) -> str:
    """An iCalendar UTC date-time (``20260309T060000Z``), as a time-range attribute takes it."""
    return as_utc(moment).strftime("%Y%m%dT%H%M%SZ")


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]
