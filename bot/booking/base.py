"""What every calendar adapter shares: the call event Closer writes to a sales manager's calendar, the one error an
adapter raises, and :class:`CalendarProvider`, the base class of an adapter (one file per adapter in this package:
:mod:`bot.booking.google`, :mod:`bot.booking.caldav`; listed in :data:`bot.booking.bookings.PROVIDERS`).

Times are aware UTC; durations are in seconds.
"""

from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Self

import icalendar

PRODID = "-//Closer//Booking a call//EN"


class CalendarError(Exception):
    """A calendar call failed. ``provider`` names the adapter (``google``, ``caldav``); ``status`` is the HTTP status
    the calendar answered, or None when it could not be reached or timed out. The message names both, with the
    calendar's own reason when it sent one: ``"Google Calendar 404 on PATCH /calendar/v3/…: Not Found"``."""

    def __init__(self, provider: str, status: int | None, message: str):
        super().__init__(message)
        self.provider, self.status = provider, status

    @property
    def retryable(self) -> bool:
        """True when trying again later may help: no answer, 429 or a 5xx."""
        return self.status is None or self.status == 429 or self.status >= 500


def as_utc(moment: datetime) -> datetime:
    """Aware UTC; a naive time (SQLite hands those back) is taken as UTC."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


@dataclass(frozen=True)
class CallEvent:
    """A call as written to the manager's calendar. ``uid`` is the iCalendar UID (RFC 5545) shared by the manager's
    event and the customer's invite, 32 lower-case hex digits (also a valid Google Calendar event id); ``start`` and
    ``end`` are aware (normalised to UTC); ``sequence`` counts the changes the customer was sent (RFC 5545 SEQUENCE);
    ``summary`` and ``description`` are the event's title and text for the manager (who the customer is, how to reach
    them). Raises ValueError for a naive time or an end not after the start."""

    uid: str
    start: datetime
    end: datetime
    summary: str
    description: str = ""
    sequence: int = 0

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("CallEvent: start and end must be timezone-aware")
        if self.end <= self.start:
            raise ValueError(f"CallEvent: end {self.end.isoformat()} is not after start {self.start.isoformat()}")
        object.__setattr__(self, "start", self.start.astimezone(UTC))
        object.__setattr__(self, "end", self.end.astimezone(UTC))

    @property
    def duration_s(self) -> int:
        return int((self.end - self.start).total_seconds())

    def vevent(self, stamp: datetime | None = None, status: str = "CONFIRMED") -> icalendar.Event:
        """The event as an iCalendar VEVENT: UID, DTSTAMP (``stamp``, default now), DTSTART/DTEND in UTC, SUMMARY,
        DESCRIPTION, SEQUENCE, STATUS (``CONFIRMED`` or ``CANCELLED``) and TRANSP:OPAQUE (it makes the time busy)."""
        event = icalendar.Event()
        event.add("uid", self.uid)
        event.add("dtstamp", as_utc(stamp or datetime.now(UTC)))
        event.add("dtstart", self.start)
        event.add("dtend", self.end)
        event.add("summary", self.summary)
        if self.description:
            event.add("description", self.description)
        event.add("sequence", self.sequence)
        event.add("status", status)
        event.add("transp", "OPAQUE")
        return event


def calendar(*components: icalendar.Component, method: str | None = None) -> icalendar.Calendar:
    """A VCALENDAR (VERSION 2.0, Closer's PRODID) holding ``components``, with ``METHOD`` when given (an iTIP message,
    RFC 5546: ``REQUEST``, ``CANCEL``; a CalDAV calendar object resource has none, RFC 4791 §4.1)."""
    cal = icalendar.Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    if method:
        cal.add("method", method)
    for component in components:
        cal.add_component(component)
    return cal


class CalendarProvider(ABC):
    """A sales manager's calendar Closer books calls in: subclass it in a file of its own, set ``name`` (stored with
    each booking, and the ``calendar_provider`` setting that picks the adapter) and add it to
    :data:`bot.booking.bookings.PROVIDERS`. Every method raises :class:`CalendarError`; every request is bounded by
    the adapter's timeout (seconds, a setting)."""

    name: str

    @classmethod
    @abstractmethod
    def from_settings(cls, settings: Any) -> Self:
        """The adapter configured by ``settings`` (:class:`bot.core.settings.Settings`). Raises ValueError naming a
        missing or bad setting."""

    @abstractmethod
    async def busy(self, start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
        """The busy intervals ``(start, end)`` (aware UTC, sorted) of the calendar that overlap ``[start, end)``
        (aware), clipped to it."""

    @abstractmethod
    async def create(self, event: CallEvent) -> str:
        """Write ``event`` to the calendar; returns the calendar's id of it. Creating the same ``event.uid`` again
        (a retry after a lost answer) returns the same id rather than a second event."""

    @abstractmethod
    async def move(self, event_id: str, event: CallEvent) -> None:
        """Give the event ``event_id`` the times, texts and sequence of ``event``. Raises CalendarError (404 or 412)
        when it is not in the calendar."""

    @abstractmethod
    async def cancel(self, event_id: str) -> None:
        """Remove the event ``event_id`` from the calendar; one that is already gone is not an error."""


def merge(intervals: list[tuple[datetime, datetime]]) -> list[tuple[datetime, datetime]]:
    """``intervals`` (aware) sorted and with overlapping or touching ones joined, in UTC."""
    merged: list[tuple[datetime, datetime]] = []
    for start, end in sorted((as_utc(s), as_utc(e)) for s, e in intervals if e > s):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged
