"""Booking a call with a sales manager: what an action calls. Offer free slots, book one, move it, cancel it.

- :func:`offer`: up to ``booking_max_offered`` free slots (:mod:`bot.booking.slots`: the business hours less the
  calendar's busy time and the live bookings in the business DB), each labelled in the customer's time zone and
  language.
- :func:`book`: checks the slot again (the rules, then the calendar's busy time: someone may have taken it since
  it was offered), writes the event to the manager's calendar, records a :class:`~bot.core.models.Booking` and
  e-mails the customer an iCalendar invitation (:mod:`bot.booking.invites`).
- :func:`reschedule`: the same for a new slot, the same event and UID, the invitation's SEQUENCE one higher.
- :func:`cancel`: the event removed, the booking ``cancelled``, a ``METHOD:CANCEL`` e-mailed.
- :func:`current`: the conversation's live booking (booked or moved, not yet over), or None.

The calendar is the ``calendar_provider`` setting's adapter (:data:`PROVIDERS`; ``none``: every call raises
:class:`BookingUnavailable`), built once per process by :func:`get_provider`; tests pass ``calendar=``. A failed
invitation e-mail does not undo a booking: the booking's ``invite_error`` says why it was not sent (e-mail not
configured, or the SMTP server's refusal), and the reply to the customer can say so.

Errors, all :class:`BookingError` but the calendar's own: :class:`BookingUnavailable`, :class:`InvalidBooking` (a
``ValueError`` naming the field: ``slot``, ``customer_email``, ``customer_timezone``, ``deal_id``),
:class:`SlotTaken`, :class:`AlreadyBooked`, :class:`NoBooking`; a calendar that fails raises
:class:`~bot.booking.base.CalendarError` (provider and HTTP status in its message) and nothing is recorded.
Times are aware UTC; the session is the caller's (nothing is committed here; rows are flushed).
"""

import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from bot.booking import invites, slots
from bot.booking.base import CalendarError, CalendarProvider, CallEvent, as_utc
from bot.booking.caldav import CalDAVCalendar
from bot.booking.google import GoogleCalendar
from bot.booking.slots import Slot, SlotRules
from bot.core.business import Company, get_company
from bot.core.caches import process_cache
from bot.core.models import Booking, Deal
from bot.core.settings import Settings, get_settings
from bot.review.conversations import page_url

log = logging.getLogger(__name__)

PROVIDERS: dict[str, type[CalendarProvider]] = {
    GoogleCalendar.name: GoogleCalendar,
    CalDAVCalendar.name: CalDAVCalendar,
}
LIVE = ("booked", "moved")


class BookingError(Exception):
    """Booking a call did not happen; the subclass says why."""


class BookingUnavailable(BookingError):
    """No calendar to book in: ``calendar_provider`` is ``none``, or the chosen one lacks a setting (named)."""


class InvalidBooking(BookingError, ValueError):
    """Bad input; the message names the field (``slot``, ``customer_email``, ``customer_timezone``, ``deal_id``)."""


class SlotTaken(BookingError):
    """The slot is busy in the manager's calendar or booked by another customer: offer others."""


class AlreadyBooked(BookingError):
    """The conversation already has a live booking, ``booking``: reschedule or cancel it instead."""

    def __init__(self, booking: Booking):
        super().__init__(f"conversation {booking.conversation_id} already has booking {booking.id}")
        self.booking = booking


class NoBooking(BookingError):
    """The conversation has no live booking to move or cancel."""


@dataclass(frozen=True)
class OfferedSlot:
    """A slot offered to the customer: ``slot`` (UTC), ``label`` in their time zone and language, and ``key`` for a
    button's payload (:func:`bot.booking.slots.parse_slot` reads it back)."""

    slot: Slot
    label: str

    @property
    def key(self) -> str:
        return self.slot.key


@dataclass(frozen=True)
class Offer:
    """Free slots in order (possibly none), the customer's ``timezone`` (IANA) and ``zone_label`` (``"Dubai,
    GMT+04:00"``) to say once what time zone the labels are in."""

    slots: list[OfferedSlot]
    timezone: str
    zone_label: str


def provider_from_settings(settings: Settings) -> CalendarProvider:
    """The adapter ``calendar_provider`` names, built from its settings. Raises :class:`BookingUnavailable` for
    ``none`` or a missing setting."""
    adapter = PROVIDERS.get(settings.calendar_provider)
    if adapter is None:
        raise BookingUnavailable(
            f"booking a call is off: calendar_provider is {settings.calendar_provider!r} "
            f"(set CLOSER_CALENDAR_PROVIDER to {' or '.join(PROVIDERS)})"
        )
    try:
        return adapter.from_settings(settings)
    except ValueError as exc:
        raise BookingUnavailable(str(exc)) from exc


@process_cache
def get_provider() -> CalendarProvider:
    """The process's calendar adapter (from :func:`~bot.core.settings.get_settings`), kept with its access token
    until :func:`bot.core.caches.reset`. Raises :class:`BookingUnavailable`."""
    return provider_from_settings(get_settings())


def _calendar(calendar: CalendarProvider | None, settings: Settings | None) -> CalendarProvider:
    if calendar is not None:
        return calendar
    return get_provider() if settings is None else provider_from_settings(settings)


def _email(value: str) -> str:
    try:
        return validate_email((value or "").strip(), check_deliverability=False).normalized
    except EmailNotValidError as exc:
        raise InvalidBooking(f"customer_email: {value!r} is not an e-mail address ({exc})") from exc


def _zone(name: str | None, company: Company) -> ZoneInfo:
    try:
        return slots.zone(name, company)
    except ValueError as exc:
        raise InvalidBooking(str(exc)) from exc


def _check(slot: Slot, company: Company, now: datetime, rules: SlotRules) -> None:
    try:
        slots.check_slot(slot, company, now, rules)
    except ValueError as exc:
        raise InvalidBooking(str(exc)) from exc


async def _booked(
    session: AsyncSession, provider: str, start: datetime, end: datetime, besides: int | None = None
) -> list[tuple[datetime, datetime]]:
    """The live bookings in ``provider``'s calendar overlapping ``[start, end)`` (but ``besides``), as intervals."""
    query = select(Booking.starts_at, Booking.ends_at).where(
        Booking.provider == provider,
        Booking.status.in_(LIVE),
        Booking.starts_at < as_utc(end),
        Booking.ends_at > as_utc(start),
    )
    if besides is not None:
        query = query.where(Booking.id != besides)
    return [(as_utc(s), as_utc(e)) for s, e in (await session.execute(query)).all()]


async def _ensure_free(
    session: AsyncSession, calendar: CalendarProvider, slot: Slot, own: Booking | None = None
) -> None:
    """Raise SlotTaken when ``slot`` overlaps busy time in the calendar (but ``own``'s) or another live booking."""
    busy = await calendar.busy(slot.start, slot.end)
    if own is not None:  # the calendar shows the booking being moved as busy: its own time does not count
        busy = _without(busy, as_utc(own.starts_at), as_utc(own.ends_at))
    busy += await _booked(session, calendar.name, slot.start, slot.end, own.id if own else None)
    if any(slot.overlaps(s, e) for s, e in busy):
        raise SlotTaken(f"slot: {slot.key} is no longer free")


def _without(
    intervals: list[tuple[datetime, datetime]], start: datetime, end: datetime
) -> list[tuple[datetime, datetime]]:
    """``intervals`` less ``[start, end)``."""
    rest = []
    for s, e in intervals:
        rest += [(a, b) for a, b in ((s, min(e, start)), (max(s, end), e)) if b > a]
    return rest


def _event(booking: Booking, company: Company, settings: Settings) -> CallEvent:
    """The calendar event of ``booking``: for the manager, who the customer is and where the conversation is."""
    who = f"{booking.customer_name} <{booking.customer_email}>" if booking.customer_name else booking.customer_email
    lines = [
        f"Customer: {who}",
        f"Customer's time zone: {booking.customer_timezone}",
        f"Language: {booking.language or company.default_language}",
        f"Conversation: {settings.public_url.rstrip('/')}{page_url(booking.conversation_id)}",
    ]
    if booking.deal_id is not None:
        lines.append(f"Deal: #{booking.deal_id}")
    return CallEvent(
        booking.uid,
        as_utc(booking.starts_at),
        as_utc(booking.ends_at),
        f"Call: {booking.customer_name or booking.customer_email}",
        "\n".join(lines),
        booking.sequence,
    )


async def _invite(booking: Booking, kind: invites.Kind, company: Company, settings: Settings) -> None:
    """E-mail the invitation of ``booking``; ``invite_error`` records why it was not sent (None: it was)."""
    zone = slots.zone(booking.customer_timezone, company)
    event = _event(booking, company, settings)
    invite = invites.invitation(
        event, kind, booking.customer_email, booking.customer_name, zone, booking.language, company, settings
    )
    try:
        await invites.send(invite, settings)
        booking.invite_error = None
    except invites.InviteError as exc:  # the server's answer may quote the address: kept out of logs and the row
        reason = str(exc).replace(booking.customer_email, "<customer e-mail>")
        log.warning("booking %s: %s", booking.id, reason)
        booking.invite_error = reason


async def current(session: AsyncSession, conversation_id: str, now: datetime | None = None) -> Booking | None:
    """The conversation's live booking (booked or moved) that is not over at ``now`` (default: the current time),
    the latest made if there were several; None when there is none."""
    moment = as_utc(now or datetime.now(UTC))
    query = (
        select(Booking)
        .where(Booking.conversation_id == conversation_id, Booking.status.in_(LIVE), Booking.ends_at > moment)
        .order_by(Booking.id.desc())
        .limit(1)
    )
    return (await session.scalars(query)).first()


async def offer(
    session: AsyncSession,
    customer_tz: str | None = None,
    language: str | None = None,
    day: date | None = None,
    *,
    now: datetime | None = None,
    calendar: CalendarProvider | None = None,
    settings: Settings | None = None,
) -> Offer:
    """Up to ``booking_max_offered`` free slots from ``booking_notice_s`` to ``booking_horizon_s`` after ``now``
    (only those starting on ``day`` in the customer's time zone when given), spread over that time
    (:func:`bot.booking.slots.spread`), labelled in ``customer_tz`` (IANA; None: the business's) and ``language``
    (None: the business's default). Raises BookingUnavailable, InvalidBooking (``customer_timezone``) or
    CalendarError."""
    settings = settings or get_settings()
    company, calendar = get_company(), _calendar(calendar, settings)
    rules = SlotRules.from_settings(settings)
    zone = _zone(customer_tz, company)
    moment = as_utc(now or datetime.now(UTC))
    start = moment + timedelta(seconds=rules.notice_s)
    end = moment + timedelta(seconds=rules.horizon_s)
    busy = await calendar.busy(start, end) if end > start else []
    busy += await _booked(session, calendar.name, start, end)
    free = slots.free_slots(company, busy, moment, rules)
    if day is not None:
        free = slots.on_day(free, day, zone)
    chosen = slots.spread(free, rules.max_offered)
    offered = [OfferedSlot(slot, slots.label(slot, zone, language)) for slot in chosen]
    return Offer(offered, zone.key, slots.zone_label(zone, language, chosen[0].start if chosen else moment))


async def book(
    session: AsyncSession,
    conversation_id: str,
    slot: Slot,
    customer_email: str,
    customer_name: str | None,
    customer_tz: str | None,
    language: str | None,
    deal_id: int | None = None,
    *,
    now: datetime | None = None,
    calendar: CalendarProvider | None = None,
    settings: Settings | None = None,
) -> Booking:
    """Book ``slot`` for the conversation: the slot checked against the rules (:func:`bot.booking.slots.check_slot`)
    and, again, against the calendar's busy time and the live bookings; the event written to the manager's calendar;
    a ``booked`` :class:`~bot.core.models.Booking` flushed (sequence 0); the invitation e-mailed to
    ``customer_email`` (its failure recorded in ``invite_error``, the booking stands).

    Raises BookingUnavailable; InvalidBooking naming ``slot``, ``customer_email``, ``customer_timezone`` or
    ``deal_id`` (no such deal); AlreadyBooked when the conversation has a live booking; SlotTaken when the slot is
    busy or another customer took it meanwhile (the event just written is removed again); CalendarError when the
    calendar fails (nothing recorded)."""
    settings = settings or get_settings()
    company, calendar = get_company(), _calendar(calendar, settings)
    rules = SlotRules.from_settings(settings)
    moment = as_utc(now or datetime.now(UTC))
    email, zone = _email(customer_email), _zone(customer_tz, company)
    _check(slot, company, moment, rules)
    if deal_id is not None and await session.get(Deal, deal_id) is None:
        raise InvalidBooking(f"deal_id: no deal {deal_id}")
    existing = await current(session, conversation_id, moment)
    if existing is not None:
        raise AlreadyBooked(existing)
    await _ensure_free(session, calendar, slot)
    booking = Booking(
        conversation_id=conversation_id,
        deal_id=deal_id,
        provider=calendar.name,
        uid=uuid.uuid4().hex,
        starts_at=slot.start,
        ends_at=slot.end,
        customer_timezone=zone.key,
        customer_email=email,
        customer_name=(customer_name or "").strip() or None,
        language=language,
        status="booked",
        sequence=0,
    )
    booking.event_id = await calendar.create(_event(booking, company, settings))
    try:
        async with session.begin_nested():
            session.add(booking)
    except IntegrityError as exc:  # another conversation recorded the same slot since the check
        await _undo(calendar, booking.event_id)
        raise SlotTaken(f"slot: {slot.key} was just booked by another customer") from exc
    log.info("booking %s: %s at %s in %s", booking.id, conversation_id, slot.key, calendar.name)
    await _invite(booking, "booked", company, settings)
    await session.flush()
    return booking


async def _undo(calendar: CalendarProvider, event_id: str) -> None:
    try:
        await calendar.cancel(event_id)
    except CalendarError as exc:
        log.error("calendar event %s of a lost booking race is left in the calendar: %s", event_id, exc)


async def reschedule(
    session: AsyncSession,
    conversation_id: str,
    slot: Slot,
    *,
    now: datetime | None = None,
    calendar: CalendarProvider | None = None,
    settings: Settings | None = None,
) -> Booking:
    """Move the conversation's live booking to ``slot``: checked as for :func:`book` (its own current time does not
    count as busy), the booking ``moved`` with ``sequence`` one higher, the calendar event moved and the updated
    invitation (``METHOD:REQUEST``, same UID) e-mailed. The same slot again changes nothing.

    Raises BookingUnavailable; NoBooking; InvalidBooking (``slot``); SlotTaken; CalendarError (the booking keeps its
    time)."""
    settings = settings or get_settings()
    company, calendar = get_company(), _calendar(calendar, settings)
    moment = as_utc(now or datetime.now(UTC))
    booking = await _live(session, conversation_id, moment, calendar)
    if (as_utc(booking.starts_at), as_utc(booking.ends_at)) == (slot.start, slot.end):
        return booking
    _check(slot, company, moment, SlotRules.from_settings(settings))
    await _ensure_free(session, calendar, slot, own=booking)
    before = (booking.starts_at, booking.ends_at, booking.status, booking.sequence)
    try:
        async with session.begin_nested():
            booking.starts_at, booking.ends_at = slot.start, slot.end
            booking.status, booking.sequence = "moved", booking.sequence + 1
    except IntegrityError as exc:
        await session.refresh(booking)
        raise SlotTaken(f"slot: {slot.key} was just booked by another customer") from exc
    try:
        await calendar.move(booking.event_id or booking.uid, _event(booking, company, settings))
    except CalendarError:
        booking.starts_at, booking.ends_at, booking.status, booking.sequence = before
        await session.flush()
        raise
    log.info("booking %s: moved to %s", booking.id, slot.key)
    await _invite(booking, "moved", company, settings)
    await session.flush()
    return booking


async def cancel(
    session: AsyncSession,
    conversation_id: str,
    *,
    now: datetime | None = None,
    calendar: CalendarProvider | None = None,
    settings: Settings | None = None,
) -> Booking:
    """Cancel the conversation's live booking: the calendar event removed, the booking ``cancelled`` with
    ``sequence`` one higher (its slot free again), and a ``METHOD:CANCEL`` e-mailed to the customer.

    Raises BookingUnavailable; NoBooking; CalendarError (the booking stays live)."""
    settings = settings or get_settings()
    company, calendar = get_company(), _calendar(calendar, settings)
    booking = await _live(session, conversation_id, as_utc(now or datetime.now(UTC)), calendar)
    await calendar.cancel(booking.event_id or booking.uid)
    booking.status, booking.sequence = "cancelled", booking.sequence + 1
    await session.flush()
    log.info("booking %s: cancelled", booking.id)
    await _invite(booking, "cancelled", company, settings)
    await session.flush()
    return booking


async def _live(session: AsyncSession, conversation_id: str, now: datetime, calendar: CalendarProvider) -> Booking:
    """The conversation's live booking, in ``calendar``. Raises NoBooking, or BookingUnavailable when it was made in
    another calendar than the one configured now."""
    booking = await current(session, conversation_id, now)
    if booking is None:
        raise NoBooking(f"conversation {conversation_id} has no booked call")
    if booking.provider != calendar.name:
        raise BookingUnavailable(
            f"booking {booking.id} is in the {booking.provider} calendar, but calendar_provider is {calendar.name}"
        )
    return booking
