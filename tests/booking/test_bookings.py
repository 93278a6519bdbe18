"""Booking a call end to end (bot.booking.bookings) on the real business DB (migrated by Alembic), a real CalDAV
server (Radicale) as the manager's calendar and a real SMTP server (aiosmtpd) for the invitations: offer, book,
reschedule, cancel; a slot taken meanwhile in the calendar or by another customer; bad input named; no calendar
configured; the customer's e-mail encrypted at rest; the model and the migration agree."""

from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import icalendar
import pytest
import sqlalchemy as sa

from bot.booking import bookings
from bot.booking.base import CalendarError, CallEvent
from bot.booking.caldav import CalDAVCalendar
from bot.booking.slots import Slot, parse_slot
from bot.commerce.leads import Lead, save_lead
from bot.contracts.database import synchronous
from bot.core import db
from bot.core.models import Booking
from bot.core.settings import Settings
from tests.contracts.test_channel_tables import differences

NOW = datetime(2026, 3, 8, 6, 0, tzinfo=UTC)  # Sunday 10:00 in Dubai: the first call is Monday 09:00 there
MONDAY_9 = Slot(datetime(2026, 3, 9, 5, 0, tzinfo=UTC), datetime(2026, 3, 9, 5, 30, tzinfo=UTC))
MONDAY_930 = Slot(MONDAY_9.end, MONDAY_9.end + timedelta(minutes=30))
TUESDAY_14 = Slot(datetime(2026, 3, 10, 10, 0, tzinfo=UTC), datetime(2026, 3, 10, 10, 30, tzinfo=UTC))


def settings_for(url: str, calendar: CalDAVCalendar, smtp=None) -> Settings:
    values: dict = {
        "database_url": url,
        "public_url": "https://closer.example",
        "calendar_provider": "caldav",
        "caldav_calendar_url": calendar.calendar_url,
        "booking_organizer_email": "sales@shop.example",
    }
    if smtp is not None:
        values |= {"smtp_host": smtp.hostname, "smtp_port": smtp.port, "smtp_starttls": False, "smtp_timeout": 5.0}
    return Settings(**values)


async def stored_event(calendar: CalDAVCalendar, uid: str) -> icalendar.Component | None:
    async with aiohttp.ClientSession() as client, client.get(calendar.href(uid), auth=calendar.auth) as response:
        if response.status == 404:
            return None
        (event,) = icalendar.Calendar.from_ical(await response.text()).walk("VEVENT")
        return event


def invitation(message) -> tuple[Any, ...]:
    """The iTIP method, UID, SEQUENCE and start of an invitation e-mail."""
    (part,) = [p for p in message.walk() if p.get_content_type() == "text/calendar"]
    (event,) = icalendar.Calendar.from_ical(part.get_content()).walk("VEVENT")
    return part.get_param("method"), str(event["UID"]), event["SEQUENCE"], event.decoded("DTSTART")


async def test_a_call_is_offered_booked_moved_and_cancelled(db_url, caldav, smtp):
    controller, mailbox = smtp
    settings = settings_for(db_url, caldav, controller)
    kw = {"now": NOW, "calendar": caldav, "settings": settings}
    async with db.session_scope(db_url) as session:
        offer = await bookings.offer(session, "Europe/Moscow", "ru", **kw)
    assert (offer.timezone, offer.zone_label) == ("Europe/Moscow", "Москва, GMT+03:00")
    assert len(offer.slots) == 6 and offer.slots[0].slot == MONDAY_9
    assert offer.slots[0].label == "пн, 9 мар., 08:00–08:30"  # 09:00 in Dubai is 08:00 in Moscow
    assert parse_slot(offer.slots[0].key, 1800) == MONDAY_9

    async with db.session_scope(db_url) as session:
        booking = await bookings.book(
            session, "web-ann", MONDAY_9, " ann.lee@Example.ORG ", "Ann Lee", "Europe/Moscow", "ru", **kw
        )
    assert (booking.status, booking.sequence, booking.invite_error) == ("booked", 0, None)
    assert (booking.provider, booking.event_id, booking.customer_email) == (
        "caldav",
        booking.uid,
        "ann.lee@example.org",
    )
    event = await stored_event(caldav, booking.uid)
    assert event is not None and event.decoded("DTSTART") == MONDAY_9.start
    assert "Customer: Ann Lee <ann.lee@example.org>" in str(event["DESCRIPTION"])
    assert "https://closer.example/console/conversations/web-ann" in str(event["DESCRIPTION"])
    assert invitation(mailbox.messages[-1]) == ("REQUEST", booking.uid, 0, MONDAY_9.start)
    assert mailbox.messages[-1]["To"] == "Ann Lee <ann.lee@example.org>"

    async with db.session_scope(db_url) as session:
        assert (await bookings.current(session, "web-ann", now=NOW)).id == booking.id
        assert MONDAY_9 not in [o.slot for o in (await bookings.offer(session, **kw)).slots]  # busy now
        with pytest.raises(bookings.AlreadyBooked) as caught:
            await bookings.book(session, "web-ann", TUESDAY_14, "ann.lee@example.org", None, None, "en", **kw)
        assert caught.value.booking.id == booking.id
        with pytest.raises(bookings.SlotTaken, match=r"^slot: 2026-03-09T05:00:00\+00:00 is no longer free"):
            await bookings.book(session, "web-bob", MONDAY_9, "bob@example.org", "Bob", None, "en", **kw)

    async with db.session_scope(db_url) as session:
        moved = await bookings.reschedule(session, "web-ann", TUESDAY_14, **kw)
    assert (moved.id, moved.status, moved.sequence) == (booking.id, "moved", 1)
    event = await stored_event(caldav, booking.uid)
    assert event is not None and event.decoded("DTSTART") == TUESDAY_14.start and event["SEQUENCE"] == 1
    assert await caldav.busy(MONDAY_9.start, TUESDAY_14.end) == [(TUESDAY_14.start, TUESDAY_14.end)]
    assert invitation(mailbox.messages[-1]) == ("REQUEST", booking.uid, 1, TUESDAY_14.start)
    assert "пн" not in mailbox.messages[-1]["Subject"] and "вт, 10 мар., 13:00–13:30" in mailbox.messages[-1]["Subject"]

    async with db.session_scope(db_url) as session:
        cancelled = await bookings.cancel(session, "web-ann", **kw)
        assert (cancelled.status, cancelled.sequence) == ("cancelled", 2)
        assert await bookings.current(session, "web-ann", now=NOW) is None
        with pytest.raises(bookings.NoBooking):
            await bookings.cancel(session, "web-ann", **kw)
    assert await stored_event(caldav, booking.uid) is None
    assert invitation(mailbox.messages[-1]) == ("CANCEL", booking.uid, 2, TUESDAY_14.start)
    assert len(mailbox.messages) == 3

    async with db.session_scope(db_url) as session:  # the cancelled slot is free for another customer
        other = await bookings.book(session, "web-bob", TUESDAY_14, "bob@example.org", "Bob", None, "en", **kw)
    assert other.status == "booked"


async def test_the_customers_email_and_name_are_encrypted_at_rest_in_the_table_migration_0020_made(db_url, caldav):
    kw = {"now": NOW, "calendar": caldav, "settings": settings_for(db_url, caldav)}
    async with db.session_scope(db_url) as session:
        booking = await bookings.book(session, "web-ann", MONDAY_9, "ann@example.org", "Ann Lee", None, "en", **kw)
    assert booking.invite_error == "e-mail is not configured (CLOSER_SMTP_HOST is not set): no invitation sent"
    engine = sa.create_engine(synchronous(db_url))
    try:
        assert differences(Booking.__table__, sa.inspect(engine)) == []  # the model is what the migration creates
        with engine.connect() as connection:
            email, name = connection.execute(sa.text("SELECT customer_email, customer_name FROM bookings")).one()
    finally:
        engine.dispose()
    assert email.startswith("enc:v1:") and name.startswith("enc:v1:") and "ann@" not in email


async def test_a_slot_that_became_busy_in_the_calendar_since_the_offer_is_taken(db_url, caldav, smtp):
    controller, mailbox = smtp
    kw = {"now": NOW, "calendar": caldav, "settings": settings_for(db_url, caldav, controller)}
    async with db.session_scope(db_url) as session:
        assert (await bookings.offer(session, **kw)).slots[0].slot == MONDAY_9
    # the manager puts a meeting across 09:15–09:45 (Dubai) in their calendar app
    await caldav.create(
        CallEvent(
            "0" * 32, MONDAY_9.start + timedelta(minutes=15), MONDAY_930.start + timedelta(minutes=15), "Supplier"
        )
    )
    async with db.session_scope(db_url) as session:
        for slot in (MONDAY_9, MONDAY_930):
            with pytest.raises(bookings.SlotTaken):
                await bookings.book(session, "web-ann", slot, "ann@example.org", "Ann", None, "en", **kw)
        assert (await session.scalars(sa.select(Booking))).all() == []
    assert mailbox.messages == []


class Racing(CalDAVCalendar):
    """A calendar during whose create() another customer's booking of the same slot is recorded and committed."""

    def __init__(self, inner: CalDAVCalendar, url: str, rival: Booking):
        super().__init__(inner.calendar_url, timeout_s=5.0)
        self.auth, self.url, self.rival = inner.auth, url, rival

    async def create(self, event: CallEvent) -> str:
        created = await super().create(event)
        async with db.session_scope(self.url) as other:
            other.add(self.rival)
        return created


async def test_losing_a_race_for_the_slot_removes_the_event_written_and_says_slot_taken(db_url, caldav):
    rival = Booking(
        conversation_id="web-bob",
        provider="caldav",
        event_id="f" * 32,
        uid="f" * 32,
        starts_at=MONDAY_9.start,
        ends_at=MONDAY_9.end,
        customer_timezone="Asia/Dubai",
        customer_email="bob@example.org",
        status="booked",
        sequence=0,
    )
    racing = Racing(caldav, db_url, rival)
    kw = {"now": NOW, "calendar": racing, "settings": settings_for(db_url, caldav)}
    async with db.session_scope(db_url) as session:
        with pytest.raises(bookings.SlotTaken, match="was just booked by another customer"):
            await bookings.book(session, "web-ann", MONDAY_9, "ann@example.org", "Ann", None, "en", **kw)
        assert [b.conversation_id for b in (await session.scalars(sa.select(Booking))).all()] == ["web-bob"]
    assert await caldav.busy(MONDAY_9.start, MONDAY_9.end) == []  # Ann's event was removed again


async def test_bad_input_is_named_and_records_nothing_and_a_real_deal_is_linked(db_url, caldav):
    kw = {"now": NOW, "calendar": caldav, "settings": settings_for(db_url, caldav)}
    off_grid = Slot(MONDAY_9.start + timedelta(minutes=10), MONDAY_9.end + timedelta(minutes=10))
    cases = [
        ("customer_email", MONDAY_9, "ann at example", None, None),
        ("customer_timezone", MONDAY_9, "ann@example.org", "Mars/Olympus", None),
        ("slot", off_grid, "ann@example.org", None, None),
        ("deal_id", MONDAY_9, "ann@example.org", None, 999),
    ]
    async with db.session_scope(db_url) as session:
        for field, slot, email, zone, deal_id in cases:
            with pytest.raises(bookings.InvalidBooking, match=rf"^{field}: "):
                await bookings.book(session, "web-ann", slot, email, "Ann", zone, "en", deal_id, **kw)
        assert (await session.scalars(sa.select(Booking))).all() == []
    assert await caldav.busy(NOW, NOW + timedelta(days=7)) == []

    lead = Lead("Ann Lee", "Lee Trading", "ann@example.org", "+971501234567", None, None, "AED", None, "web", "web-ann")
    async with db.session_scope(db_url) as session:  # a deal that exists is linked and named in the manager's event
        _, deal, _ = await save_lead(session, lead)
        booking = await bookings.book(session, "web-ann", MONDAY_9, "ann@example.org", "Ann", None, "en", deal.id, **kw)
    assert booking.deal_id == deal.id
    event = await stored_event(caldav, booking.uid)
    assert event is not None and f"Deal: #{deal.id}" in str(event["DESCRIPTION"])


async def test_without_a_calendar_booking_is_unavailable(db_url, caldav, radicale):
    async with db.session_scope(db_url) as session:
        with pytest.raises(bookings.BookingUnavailable, match=r"calendar_provider is 'none'"):
            await bookings.offer(session, now=NOW, settings=Settings(database_url=db_url))
        with pytest.raises(bookings.BookingUnavailable, match="CLOSER_CALDAV_CALENDAR_URL is not set"):
            await bookings.book(
                session, "web-ann", MONDAY_9, "ann@example.org", None, None, None, now=NOW,
                settings=Settings(database_url=db_url, calendar_provider="caldav"),
            )  # fmt: skip
    wrong = CalDAVCalendar(caldav.calendar_url, radicale.username, "wrong-password")
    kw = {"now": NOW, "calendar": wrong, "settings": settings_for(db_url, caldav)}
    async with db.session_scope(db_url) as session:
        with pytest.raises(CalendarError, match=r"^CalDAV 401"):
            await bookings.book(session, "web-ann", MONDAY_9, "ann@example.org", None, None, None, **kw)
        assert (await session.scalars(sa.select(Booking))).all() == []
