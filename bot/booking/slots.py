"""Free call slots: the sales manager's working hours less the calendar's busy time, as pure functions.

Working hours are the business's (``knowledge/company.yml`` ``business_hours``: ``timezone``, ``days`` like
``Mon-Fri``, ``open``, ``close``, as :func:`bot.core.business.get_company` parses them into a
:class:`~bot.core.business.Company`). Within them calls start on a grid: at opening time and every ``step_s`` seconds
after (default: the call's length, so 09:00, 09:30, … for 30-minute calls), ending by closing time. A slot is
offered when it starts at least ``notice_s`` seconds from now, ends within ``horizon_s`` seconds from now, and
overlaps no busy interval (half-open intervals: a call may start when a busy one ends). The rules come from settings
(:meth:`SlotRules.from_settings`).

Times are aware; slots are in UTC and shown to the customer in their time zone (IANA name, default the business's)
and language, in Babel's formats of the language's locale (:mod:`bot.texts.i18n`): ``"Mon, Mar 9, 10:00 – 10:30
AM"``, ``"пн, 9 мар., 10:00–10:30"``.
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel.dates import format_datetime, format_interval, format_skeleton, get_timezone_location

from bot.booking.base import as_utc
from bot.core.business import Company
from bot.texts import i18n

Interval = tuple[datetime, datetime]


@dataclass(frozen=True)
class SlotRules:
    """How calls are offered: ``call_s`` seconds long, starting on a grid of ``step_s`` seconds from opening time
    (None: ``call_s``), at least ``notice_s`` seconds from now, ending within ``horizon_s`` seconds from now; at most
    ``max_offered`` offered at once. Raises ValueError for a length, step or count below 1 or a negative notice."""

    call_s: int = 1800
    notice_s: int = 7200
    horizon_s: int = 7 * 86400
    max_offered: int = 6
    step_s: int | None = None

    def __post_init__(self) -> None:
        for name in ("call_s", "max_offered", "horizon_s"):
            if getattr(self, name) < 1:
                raise ValueError(f"SlotRules.{name} must be at least 1, not {getattr(self, name)}")
        if self.notice_s < 0:
            raise ValueError(f"SlotRules.notice_s must not be negative, not {self.notice_s}")
        if self.step_s is not None and self.step_s < 1:
            raise ValueError(f"SlotRules.step_s must be at least 1, not {self.step_s}")

    @property
    def grid_s(self) -> int:
        return self.step_s or self.call_s

    @classmethod
    def from_settings(cls, settings: Any) -> "SlotRules":
        """From ``booking_call_s``, ``booking_notice_s``, ``booking_horizon_s``, ``booking_max_offered`` and
        ``booking_step_s``."""
        return cls(
            settings.booking_call_s,
            settings.booking_notice_s,
            settings.booking_horizon_s,
            settings.booking_max_offered,
            settings.booking_step_s,
        )


@dataclass(frozen=True, order=True)
class Slot:
    """A call's time: ``start`` and ``end``, aware (normalised to UTC; naive raises ValueError). ``key`` (the start
    in ISO 8601, UTC) names it in a button's payload or a Rasa slot; :func:`parse_slot` reads it back."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("slot: start and end must be timezone-aware")
        object.__setattr__(self, "start", self.start.astimezone(UTC))
        object.__setattr__(self, "end", self.end.astimezone(UTC))

    @property
    def key(self) -> str:
        return self.start.astimezone(UTC).isoformat()

    def overlaps(self, start: datetime, end: datetime) -> bool:
        """Whether ``[start, end)`` and the slot share any time."""
        return self.start < end and start < self.end


def parse_slot(key: str, call_s: int) -> Slot:
    """The slot of ``call_s`` seconds starting at ``key`` (ISO 8601 with an offset, as :attr:`Slot.key` writes it).
    Raises ValueError naming ``slot`` for a text that is not such a time."""
    try:
        start = datetime.fromisoformat(key.strip())
    except (AttributeError, ValueError) as exc:
        raise ValueError(f"slot: {key!r} is not an ISO 8601 time") from exc
    if start.tzinfo is None:
        raise ValueError(f"slot: {key!r} has no UTC offset")
    start = start.astimezone(UTC)
    return Slot(start, start + timedelta(seconds=call_s))


def zone(name: str | None, company: Company) -> ZoneInfo:
    """The IANA time zone ``name`` (None or empty: the business's). Raises ValueError naming ``customer_timezone``
    for an unknown name."""
    try:
        return ZoneInfo(name or company.timezone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"customer_timezone: {name!r} is not an IANA time zone") from exc


def working_windows(company: Company, start: datetime, end: datetime) -> list[Interval]:
    """The business's working hours (``open_days``, ``opens``–``closes`` in ``timezone``) that overlap
    ``[start, end)``, each as a whole day's window ``(opening, closing)``, aware UTC, in order."""
    local = ZoneInfo(company.timezone)
    windows = []
    day = start.astimezone(local).date() - timedelta(days=1)
    while day <= end.astimezone(local).date():
        if day.weekday() in company.open_days:
            opens = datetime.combine(day, company.opens, tzinfo=local).astimezone(UTC)
            closes = datetime.combine(day, company.closes, tzinfo=local).astimezone(UTC)
            if opens < closes and opens < end and start < closes:
                windows.append((opens, closes))
        day += timedelta(days=1)
    return windows


def candidate_slots(company: Company, now: datetime, rules: SlotRules) -> list[Slot]:
    """Every slot on the grid of the working hours that starts ``notice_s`` or more after ``now`` and ends within
    ``horizon_s`` of it, busy or not, in order."""
    earliest = as_utc(now) + timedelta(seconds=rules.notice_s)
    latest = as_utc(now) + timedelta(seconds=rules.horizon_s)
    call, step, tick = timedelta(seconds=rules.call_s), timedelta(seconds=rules.grid_s), timedelta(microseconds=1)
    slots = []
    for opens, closes in working_windows(company, earliest, latest):
        start = opens
        if start < earliest:  # skip to the first grid point at or after the notice
            start += step * -((opens - earliest) // step)
        while start + call <= min(closes, latest):
            # the working-hours test of Company itself (a window may straddle a DST change)
            if company.is_open(start) and company.is_open(start + call - tick):
                slots.append(Slot(start, start + call))
            start += step
    return slots


def free_slots(company: Company, busy: Iterable[Interval], now: datetime, rules: SlotRules) -> list[Slot]:
    """The grid slots of :func:`candidate_slots` that overlap none of ``busy`` (aware ``(start, end)`` pairs), in
    order: every one, not limited to ``max_offered`` (see :func:`spread`)."""
    taken = sorted((as_utc(s), as_utc(e)) for s, e in busy if e > s)
    return [slot for slot in candidate_slots(company, now, rules) if not any(slot.overlaps(s, e) for s, e in taken)]


def spread(slots: Sequence[Slot], limit: int) -> list[Slot]:
    """At most ``limit`` of ``slots`` (in order), picked evenly across them so that the offer holds the earliest one
    and reaches into later days and hours rather than only the next morning; all of them when they are few."""
    if len(slots) <= limit:
        return list(slots)
    if limit <= 1:
        return list(slots[:limit])
    picked = sorted({round(i * (len(slots) - 1) / (limit - 1)) for i in range(limit)})
    return [slots[i] for i in picked]


def on_day(slots: Iterable[Slot], day: date, timezone: ZoneInfo) -> list[Slot]:
    """The slots starting on ``day`` in ``timezone`` (the customer's "on Tuesday")."""
    return [slot for slot in slots if slot.start.astimezone(timezone).date() == day]


def check_slot(slot: Slot, company: Company, now: datetime, rules: SlotRules) -> None:
    """Whether ``slot`` is one the customer may book at ``now``, busy time aside: ``call_s`` long, on the grid of the
    working hours, with the notice and within the horizon. Raises ValueError naming ``slot`` and what is wrong."""
    if slot.end - slot.start != timedelta(seconds=rules.call_s):
        raise ValueError(f"slot: {slot.key} is not {rules.call_s} s long")
    if slot.start < as_utc(now) + timedelta(seconds=rules.notice_s):
        raise ValueError(f"slot: {slot.key} starts less than {rules.notice_s} s from now")
    if slot.end > as_utc(now) + timedelta(seconds=rules.horizon_s):
        raise ValueError(f"slot: {slot.key} ends more than {rules.horizon_s} s from now")
    if slot not in candidate_slots(company, now, rules):
        raise ValueError(f"slot: {slot.key} is not a call time within the business hours ({company.hours})")


def label(slot: Slot, timezone: ZoneInfo, language: str | None) -> str:
    """The slot as the customer reads it, in ``timezone`` and the locale of ``language`` (None or one the business
    does not serve: its default): the day (Babel skeleton ``MMMEd``) and the times from–to in the locale's hour
    cycle, joined by the locale's date-time pattern: ``"Mon, Mar 9, 10:00 – 10:30 AM"``."""
    with i18n.use(language):
        locale = i18n.locale()
    day = format_skeleton("MMMEd", slot.start, tzinfo=timezone, locale=locale)
    skeleton = "hm" if "h" in locale.time_formats["short"].pattern else "Hm"
    times = format_interval(slot.start, slot.end, skeleton, tzinfo=timezone, locale=locale)
    return str(locale.datetime_formats["medium"]).replace("{1}", day).replace("{0}", times)


def zone_label(timezone: ZoneInfo, language: str | None, at: datetime) -> str:
    """The time zone as the customer reads it: its city in the locale of ``language`` and its UTC offset at ``at``:
    ``"Dubai, GMT+04:00"``, ``"Москва, GMT+03:00"``."""
    with i18n.use(language):
        locale = i18n.locale()
    city = get_timezone_location(timezone, locale=locale, return_city=True)
    return f"{city}, {format_datetime(at, 'ZZZZ', tzinfo=timezone, locale=locale)}"
