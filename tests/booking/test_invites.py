"""The customer's invitation (bot.booking.invites) sent to a real local SMTP server (aiosmtpd) and read back as a mail
client would: a text/calendar part with method=REQUEST (or CANCEL) whose iCalendar object carries the call's UID,
SEQUENCE, UTC times, organizer and attendee; the text in the customer's language and time zone; e-mail not
configured or refused as InviteError."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import icalendar
import pytest

from bot.booking import invites
from bot.booking.base import CallEvent
from bot.core.business import get_company
from bot.core.settings import Settings
from tests.servers import free_port

START = datetime(2026, 3, 9, 5, 0, tzinfo=UTC)  # Monday 09:00 in Dubai, 08:00 in Moscow
UID = "3c1d5e7f9a0b4c2d8e6f1a3b5c7d9e0f"


def smtp_settings(controller) -> Settings:
    return Settings(
        smtp_host=controller.hostname,
        smtp_port=controller.port,
        smtp_starttls=False,
        smtp_timeout=5.0,
        smtp_from="closer@shop.example",
        booking_organizer_email="sales@shop.example",
    )


def invitation(kind: invites.Kind, sequence: int, language: str = "en", zone: str = "Asia/Dubai", start=START):
    event = CallEvent(UID, start, start + timedelta(minutes=30), "Call: Ann Lee", "Internal: discount 15%", sequence)
    return invites.invitation(
        event,
        kind,
        "ann.lee@example.org",
        "Ann Lee",
        ZoneInfo(zone),
        language,
        get_company(),
        Settings(booking_organizer_email="sales@shop.example"),
    )


def calendar_part(message) -> tuple[str, icalendar.Calendar]:
    """The text/calendar part's method parameter and its parsed object; the attachment must carry the same."""
    (part,) = [p for p in message.walk() if p.get_content_type() == "text/calendar"]
    (attached,) = [p for p in message.walk() if p.get_filename() == "invite.ics"]
    assert attached.get_content() == part.get_content().encode()
    return part.get_param("method"), icalendar.Calendar.from_ical(part.get_content())


async def test_a_booked_call_is_an_itip_request_the_customers_mail_client_understands(smtp):
    controller, mailbox = smtp
    await invites.send(invitation("booked", 0), smtp_settings(controller))
    (message,) = mailbox.messages
    assert message["To"] == "Ann Lee <ann.lee@example.org>" and message["From"] == "closer@shop.example"
    assert "sales@shop.example" in message["Reply-To"]
    brand = get_company().brand
    assert message["Subject"] == f"Call with {brand}: Mon, 9 Mar, 9:00\u2009–\u20099:30\u202fAM"
    text = message.get_body(("plain",)).get_content()
    assert "Hello Ann Lee," in text and "is booked for Mon, 9 Mar, 9:00" in text and "(Dubai, GMT+04:00)" in text

    method, calendar = calendar_part(message)
    assert method == "REQUEST" and calendar["METHOD"] == "REQUEST"
    (event,) = calendar.walk("VEVENT")
    assert str(event["UID"]) == UID and event["SEQUENCE"] == 0 and str(event["STATUS"]) == "CONFIRMED"
    assert str(event["SUMMARY"]) == f"Call with {brand}" and "DESCRIPTION" not in event  # not the manager's notes
    assert "Internal" not in message.as_string() and "discount" not in text
    assert event.decoded("DTSTART") == START and event.decoded("DTEND") == START + timedelta(minutes=30)
    assert str(event["ORGANIZER"]) == "mailto:sales@shop.example" and event["ORGANIZER"].params["CN"] == brand
    attendee = event["ATTENDEE"]
    assert str(attendee) == "mailto:ann.lee@example.org"
    assert (attendee.params["CN"], attendee.params["RSVP"], attendee.params["PARTSTAT"]) == (
        "Ann Lee",
        "TRUE",
        "NEEDS-ACTION",
    )


async def test_a_move_keeps_the_uid_with_a_higher_sequence_and_a_cancel_says_cancel(smtp):
    controller, mailbox = smtp
    later = START + timedelta(days=1, hours=2)
    await invites.send(invitation("moved", 1, start=later), smtp_settings(controller))
    await invites.send(invitation("cancelled", 2, start=later), smtp_settings(controller))
    moved, cancelled = mailbox.messages
    assert moved["Subject"].startswith("Moved: call with")
    assert "has moved to Tue, 10 Mar, 11:00" in moved.get_body(("plain",)).get_content()
    method, calendar = calendar_part(moved)
    (event,) = calendar.walk("VEVENT")
    assert (method, str(event["UID"]), event["SEQUENCE"]) == ("REQUEST", UID, 1)
    assert event.decoded("DTSTART") == later

    assert cancelled["Subject"].startswith("Cancelled: call with")
    assert "is cancelled" in cancelled.get_body(("plain",)).get_content()
    method, calendar = calendar_part(cancelled)
    (event,) = calendar.walk("VEVENT")
    assert (method, calendar["METHOD"], str(event["UID"]), event["SEQUENCE"]) == ("CANCEL", "CANCEL", UID, 2)
    assert str(event["STATUS"]) == "CANCELLED" and "RSVP" not in event["ATTENDEE"].params


async def test_the_text_is_in_the_customers_language_and_time_zone(smtp):
    controller, mailbox = smtp
    await invites.send(invitation("booked", 0, language="ru", zone="Europe/Moscow"), smtp_settings(controller))
    (message,) = mailbox.messages
    assert message["Subject"].endswith("пн, 9 мар., 08:00–08:30")
    assert "пн, 9 мар., 08:00–08:30 (Москва, GMT+03:00)" in message.get_body(("plain",)).get_content()


async def test_without_smtp_or_with_a_refusing_server_the_invitation_is_an_invite_error():
    with pytest.raises(invites.InviteError, match=r"CLOSER_SMTP_HOST is not set"):
        await invites.send(invitation("booked", 0), Settings(smtp_host=None))
    nobody = Settings(smtp_host="127.0.0.1", smtp_port=free_port(), smtp_starttls=False, smtp_timeout=2.0)
    with pytest.raises(invites.InviteError, match=r"^invitation e-mail not sent: SMTPConnect"):
        await invites.send(invitation("booked", 0), nobody)
