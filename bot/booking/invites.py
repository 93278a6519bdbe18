"""The customer's invitation to a booked call, by e-mail: an iCalendar iTIP message (RFC 5546) in an iMIP e-mail
(RFC 6047) sent through the SMTP server of the ``smtp_*`` settings (the managers' digest uses the same, see
:mod:`bot.review.digest`): STARTTLS unless ``smtp_starttls`` is off, every phase bounded by ``smtp_timeout`` seconds.

The iCalendar object: ``METHOD:REQUEST`` for a new or moved call (the same UID, SEQUENCE one higher per move, so the
customer's calendar updates the event it has) and ``METHOD:CANCEL`` (STATUS:CANCELLED, SEQUENCE one higher again)
for a cancelled one; one VEVENT with ORGANIZER (the business: ``booking_organizer_email``, default company.yml's
``email``, named by its ``brand``) and the customer as ATTENDEE (REQ-PARTICIPANT, RSVP on requests), times in UTC.

The e-mail: ``multipart/mixed`` of a ``multipart/alternative`` (the text in the customer's language from the
``booking_invite`` message template, then the iCalendar object as ``text/calendar; method=REQUEST`` or
``method=CANCEL``, which mail clients show as an invitation with accept/decline) and the same object attached as
``invite.ics`` (``application/ics``) for clients that only offer attachments. ``Reply-To`` is the organizer. The
customer's copy of the event is titled ``Call with <brand>`` and carries none of the manager's notes.
"""

import logging
from dataclasses import dataclass, replace
from datetime import datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import formataddr
from typing import Literal
from zoneinfo import ZoneInfo

import aiosmtplib
import icalendar

from bot.booking import slots
from bot.booking.base import CallEvent, calendar
from bot.core import mail
from bot.core.business import Company
from bot.core.settings import Settings
from bot.texts import i18n, messages

log = logging.getLogger(__name__)

Kind = Literal["booked", "moved", "cancelled"]


class InviteError(Exception):
    """The invitation was not sent: e-mail is not configured (``smtp_host`` unset), or the SMTP server refused it
    or could not be reached in time; the message says which, with the server's answer."""


@dataclass(frozen=True)
class Invitation:
    """What the customer is sent: ``event`` (the call, its UID and SEQUENCE), ``kind`` (``booked``, ``moved`` or
    ``cancelled``), the customer's ``email`` and ``name`` (None: unknown), the ``timezone`` and ``language`` the
    e-mail's text gives the time in, and the organizer (the business) as ``organizer_email`` and
    ``organizer_name``."""

    event: CallEvent
    kind: Kind
    email: str
    name: str | None
    timezone: ZoneInfo
    language: str | None
    organizer_email: str
    organizer_name: str

    @property
    def method(self) -> str:
        """The iTIP method: ``CANCEL`` for a cancelled call, else ``REQUEST``."""
        return "CANCEL" if self.kind == "cancelled" else "REQUEST"


def invitation(
    event: CallEvent,
    kind: Kind,
    email: str,
    name: str | None,
    timezone: ZoneInfo,
    language: str | None,
    company: Company,
    settings: Settings,
) -> Invitation:
    """The invitation from the business (``booking_organizer_email`` or company.yml's ``email``, its ``brand``)."""
    return Invitation(
        event, kind, email, name, timezone, language, settings.booking_organizer_email or company.email, company.brand
    )


def summary(invite: Invitation) -> str:
    """The event's title as the customer's calendar shows it, in the invitation's language: ``"Call with
    <brand>"``."""
    with i18n.use(invite.language):
        return i18n.gettext("Call with {brand}").format(brand=invite.organizer_name)


def ics(invite: Invitation, stamp: datetime | None = None) -> bytes:
    """The iTIP iCalendar object of ``invite`` (CRLF lines, UTF-8), DTSTAMP ``stamp`` (default now). Its SUMMARY is
    the customer's (:func:`summary`) and it has no DESCRIPTION: the manager's notes on the event stay in the
    manager's calendar."""
    status = "CANCELLED" if invite.kind == "cancelled" else "CONFIRMED"
    event = replace(invite.event, summary=summary(invite), description="").vevent(stamp, status=status)
    organizer = icalendar.vCalAddress(f"mailto:{invite.organizer_email}")
    organizer.params["CN"] = invite.organizer_name
    event.add("organizer", organizer)
    attendee = icalendar.vCalAddress(f"mailto:{invite.email}")
    if invite.name:
        attendee.params["CN"] = invite.name
    attendee.params["ROLE"] = "REQ-PARTICIPANT"
    attendee.params["CUTYPE"] = "INDIVIDUAL"
    if invite.method == "REQUEST":
        attendee.params["PARTSTAT"] = "NEEDS-ACTION"
        attendee.params["RSVP"] = "TRUE"
    event.add("attendee", attendee)
    return calendar(event, method=invite.method).to_ical()


def subject(invite: Invitation) -> str:
    """The e-mail's subject in the invitation's language: ``"Call with <brand>: <when>"``, prefixed ``Moved`` or
    ``Cancelled`` for a change."""
    when = slots.label(slots.Slot(invite.event.start, invite.event.end), invite.timezone, invite.language)
    with i18n.use(invite.language):
        if invite.kind == "cancelled":
            return i18n.gettext("Cancelled: call with {brand}, {when}").format(brand=invite.organizer_name, when=when)
        if invite.kind == "moved":
            return i18n.gettext("Moved: call with {brand}, {when}").format(brand=invite.organizer_name, when=when)
        return i18n.gettext("Call with {brand}: {when}").format(brand=invite.organizer_name, when=when)


def body(invite: Invitation) -> str:
    """The e-mail's text in the invitation's language (template ``booking_invite``), with the call's time in the
    customer's time zone."""
    event = invite.event
    when = slots.label(slots.Slot(event.start, event.end), invite.timezone, invite.language)
    zone = slots.zone_label(invite.timezone, invite.language, event.start)
    with i18n.use(invite.language):
        return messages.render(
            "booking_invite", kind=invite.kind, name=invite.name, brand=invite.organizer_name, when=when, zone=zone
        )


def email(invite: Invitation, sender: str, stamp: datetime | None = None) -> EmailMessage:
    """The iMIP e-mail of ``invite`` from ``sender`` (see the module docstring for its parts)."""
    calendar_object = ics(invite, stamp)
    message = EmailMessage()
    message["From"] = sender
    message["To"] = formataddr((invite.name or "", invite.email)) if invite.name else invite.email
    message["Reply-To"] = str(Address(invite.organizer_name, addr_spec=invite.organizer_email))
    message["Subject"] = subject(invite)
    message.set_content(body(invite))
    message.add_alternative(
        calendar_object.decode("utf-8"), subtype="calendar", params={"method": invite.method}, charset="utf-8"
    )
    message.add_attachment(calendar_object, maintype="application", subtype="ics", filename="invite.ics")
    return message


async def send(invite: Invitation, settings: Settings) -> None:
    """Send ``invite`` by e-mail from ``smtp_from`` through ``smtp_host``. Raises :class:`InviteError` when
    ``smtp_host`` is not set, or the server refuses the message or does not answer within ``smtp_timeout``."""
    if not settings.smtp_host:
        raise InviteError("e-mail is not configured (CLOSER_SMTP_HOST is not set): no invitation sent")
    message = email(invite, settings.smtp_from)
    try:
        await mail.send(message, settings)
    except (aiosmtplib.SMTPException, OSError) as exc:
        raise InviteError(f"invitation e-mail not sent: {type(exc).__name__}: {exc}") from exc
    log.info("%s invitation %s (sequence %d) sent", invite.method, invite.event.uid, invite.event.sequence)
