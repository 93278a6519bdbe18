"""Booking a call in the conversation (bot.booking.calls, what action_book_call and action_cancel_call do) with a real
CalDAV server (Radicale) as the manager's calendar and a real SMTP server: the free slots offered as buttons in the
customer's time zone, one booked for the contact the lead form saved (invitation e-mailed, noted on the deal), moved,
cancelled; a customer without contact details, and a business without a calendar, are told what happens instead."""

from dataclasses import replace
from zoneinfo import ZoneInfo

import pytest

from bot.booking import calls
from bot.booking.slots import parse_slot
from bot.commerce.leads import Lead, save_lead
from bot.core import caches, db
from bot.core.models import Deal
from bot.core.turn import Turn

CONVERSATION = "web-call-customer"


@pytest.fixture
def calendar_settings(monkeypatch, caldav, smtp):
    controller, mailbox = smtp
    for name, value in {
        "CLOSER_CALENDAR_PROVIDER": "caldav",
        "CLOSER_CALDAV_CALENDAR_URL": caldav.calendar_url,
        "CLOSER_CALDAV_USERNAME": caldav.auth.login,
        "CLOSER_CALDAV_PASSWORD": caldav.auth.password,
        "CLOSER_SMTP_HOST": controller.hostname,
        "CLOSER_SMTP_PORT": str(controller.port),
        "CLOSER_SMTP_STARTTLS": "false",
        "CLOSER_BOOKING_NOTICE_S": "0",
    }.items():
        monkeypatch.setenv(name, value)
    caches.reset()
    yield mailbox
    caches.reset()


async def _contact_id() -> tuple[int, int]:
    lead = Lead("Sara Al Marzooqi", None, "sara@example.com", "+971501234567", None, None, "AED", None, "web", "")
    lead = replace(lead, sender_id=CONVERSATION)
    async with db.session_scope() as session:
        contact, deal, _ = await save_lead(session, lead)
        return contact.id, deal.id


def _turn(contact_id: int | None, chosen: str | None = None, **slots) -> Turn:
    entities = {"call_slot": (chosen,)} if chosen else {}
    return Turn(
        CONVERSATION,
        "web",
        entities=entities,
        slots={"contact_id": contact_id, "language": "en", **slots},
        metadata={"timezone": "Asia/Vladivostok"},
    )


async def test_a_call_is_offered_in_the_customers_time_zone_booked_moved_and_cancelled(db_url, calendar_settings):
    mailbox = calendar_settings
    contact_id, deal_id = await _contact_id()

    offer = await calls.book_call(_turn(contact_id))
    [message] = offer.messages
    assert message["text"].startswith("When would suit you for a call with a manager?")
    assert "Vladivostok" in message["text"]
    first = message["buttons"][0]
    key = first["payload"].removeprefix('/book_call{"call_slot": "').removesuffix('"}')
    start = parse_slot(key, 1800).start.astimezone(ZoneInfo("Asia/Vladivostok"))
    assert f"{start:%-I:%M}" in first["title"]  # labelled in the customer's time, not the business's
    assert ("customer_timezone", "Asia/Vladivostok") in offer.slots

    booked = await calls.book_call(_turn(contact_id, key))
    assert booked.messages[0]["text"].startswith("Your call is booked for ")
    assert "sara@example.com" in booked.messages[0]["text"]
    assert ("call_slot", None) in booked.slots
    assert len(mailbox.messages) == 1 and "sara@example.com" in mailbox.messages[0]["To"]
    async with db.session_scope() as session:
        deal = await session.get(Deal, deal_id)
        assert any(note.body.startswith("Call booked for ") for note in deal.notes)

    again = await calls.book_call(_turn(contact_id))
    assert again.messages[0]["text"].startswith("Your call is booked for ")
    assert "Choose another time to move it" in again.messages[0]["text"]
    other = next(b for b in again.messages[0]["buttons"] if key not in b["payload"])
    other_key = other["payload"].removeprefix('/book_call{"call_slot": "').removesuffix('"}')
    moved = await calls.book_call(_turn(contact_id, other_key))
    assert moved.messages[0]["text"].startswith("Done: your call has moved to ")
    assert len(mailbox.messages) == 2

    cancelled = await calls.cancel_call(_turn(contact_id))
    assert cancelled.messages[0]["text"].startswith("Your call of ") and "is cancelled" in cancelled.messages[0]["text"]
    assert len(mailbox.messages) == 3
    none = await calls.cancel_call(_turn(contact_id))
    assert none.messages[0]["text"] == "You have no call booked with us."


async def test_a_time_that_is_not_a_slot_gets_the_free_ones_again(db_url, calendar_settings):
    contact_id, _ = await _contact_id()
    outcome = await calls.book_call(_turn(contact_id, "tomorrow at noon"))
    assert outcome.messages[0]["text"].startswith("That time cannot be booked. Please choose one of these:")
    assert outcome.messages[0]["buttons"]


async def test_without_contact_details_the_customer_is_asked_for_them_first(db_url, calendar_settings):
    offer = await calls.book_call(_turn(None))
    key = offer.messages[0]["buttons"][0]["payload"].removeprefix('/book_call{"call_slot": "').removesuffix('"}')
    outcome = await calls.book_call(_turn(None, key))
    assert outcome.messages[0]["text"].startswith("To send you the invitation I need your contact details")
    assert len(calendar_settings.messages) == 0


async def test_without_a_calendar_a_manager_arranges_the_call(db_url, monkeypatch):
    monkeypatch.setenv("CLOSER_CALENDAR_PROVIDER", "none")
    caches.reset()
    contact_id, deal_id = await _contact_id()
    outcome = await calls.book_call(_turn(contact_id))
    assert outcome.messages[0]["text"] == "I can't book calls right now. A manager will write to you to arrange one."
    async with db.session_scope() as session:  # the promise is kept where managers look: on the deal
        deal = await session.get(Deal, deal_id)
        assert deal.notes[-1].body.startswith("The customer asked for a call; it could not be booked")
