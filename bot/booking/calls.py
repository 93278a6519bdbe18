"""Booking a call in the conversation: what ``action_book_call`` and ``action_cancel_call`` do
(:mod:`bot.booking.bookings` does the booking).

A customer asking for a call gets the free slots as buttons, labelled in their time zone and language (the web chat
sends the browser's time zone with each message, ``Turn.metadata["timezone"]``, kept in the ``customer_timezone``
slot; else the business's); each button says ``/book_call{"call_slot": "<start, ISO 8601 UTC>"}``, which books that
slot, or moves the call already booked to it. The invitation goes to the e-mail of the contact the lead form saved
(``contact_id``); the call is noted on the customer's open deal (so the CRM sees it). What can go wrong is said to the
customer in their language: the slot was taken meanwhile (new slots offered), booking is not set up or the calendar
does not answer (a manager will arrange it), no e-mail known yet.
"""

import logging

from sqlalchemy.ext.asyncio import AsyncSession

from bot.booking import bookings
from bot.booking.base import CalendarError, as_utc
from bot.booking.slots import Slot, label, parse_slot, zone, zone_label
from bot.commerce import deals
from bot.core import db
from bot.core.business import get_company
from bot.core.models import Booking, Contact, Deal
from bot.core.settings import get_settings
from bot.core.turn import Outcome, Turn
from bot.texts import i18n
from bot.texts.i18n import gettext as _

log = logging.getLogger(__name__)

CALL_SLOT, TIMEZONE = "call_slot", "customer_timezone"


def _timezone(turn: Turn) -> str | None:
    """The customer's IANA time zone: the one the channel sent with this message, else the one kept, else None."""
    return turn.metadata.get("timezone") or turn.slot(TIMEZONE) or None


def _when(booking: Booking) -> str:
    """The booked call's time and time zone, in the customer's."""
    timezone, slot = (
        zone(booking.customer_timezone, get_company()),
        Slot(as_utc(booking.starts_at), as_utc(booking.ends_at)),
    )
    return f"{label(slot, timezone, i18n.current())} ({zone_label(timezone, i18n.current(), slot.start)})"


async def _offer(session: AsyncSession, turn: Turn, intro: str) -> Outcome:
    """``intro`` and the free slots as buttons (none: a manager will propose a time)."""
    offer = await bookings.offer(session, _timezone(turn), i18n.current())
    outcome = Outcome().set(TIMEZONE, offer.timezone)
    if not offer.slots:
        return outcome.say(
            text=_("I see no free time in the next days. A manager will write to you to arrange a call.")
        )
    buttons = [{"title": s.label, "payload": f'/book_call{{"{CALL_SLOT}": "{s.key}"}}'} for s in offer.slots]
    text = intro + "\n" + _("Times are in %(zone)s.") % {"zone": offer.zone_label}
    return outcome.say(text=text, buttons=buttons)


async def book_call(turn: Turn) -> Outcome:
    """Without a chosen slot (entity ``call_slot``): the free slots (and the call already booked, if any). With one:
    that slot booked (or the booked call moved to it), confirmed with the time in the customer's time zone; the slot
    ``call_slot`` cleared either way. Raises nothing the customer should not hear about: the booking's own errors
    become a reply."""
    chosen = next(iter(turn.entity(CALL_SLOT)), None)
    try:
        async with db.session_scope() as session:
            booked = await bookings.current(session, turn.conversation_id)
            if chosen is None:
                intro = (
                    _("Your call is booked for %(when)s. Choose another time to move it:") % {"when": _when(booked)}
                    if booked
                    else _("When would suit you for a call with a manager? Choose a time:")
                )
                return (await _offer(session, turn, intro)).set(CALL_SLOT, None)
            return (await _book(session, turn, chosen, booked)).set(CALL_SLOT, None)
    except bookings.SlotTaken:
        async with db.session_scope() as session:
            intro = _("Sorry, that time has just been taken. Here are the free ones:")
            return (await _offer(session, turn, intro)).set(CALL_SLOT, None)
    except bookings.InvalidBooking as error:
        log.info("booking refused in %s: %s", turn.conversation_id, error)
        async with db.session_scope() as session:
            intro = _("That time cannot be booked. Please choose one of these:")
            return (await _offer(session, turn, intro)).set(CALL_SLOT, None)
    except (bookings.BookingUnavailable, CalendarError) as error:
        log.error("booking a call in %s failed: %s", turn.conversation_id, error)
        await deals.note_for_managers(
            turn.contact_id,
            turn.conversation_id,
            f"The customer asked for a call; it could not be booked ({error}): arrange it.",
        )
        return Outcome().say(text=_("I can't book calls right now. A manager will write to you to arrange one."))


async def _book(session: AsyncSession, turn: Turn, chosen: str, booked: Booking | None) -> Outcome:
    """Book ``chosen`` (a slot's key), or move ``booked`` to it. Raises what bookings.book / reschedule raise."""
    try:
        slot = parse_slot(chosen, get_settings().booking_call_s)
    except ValueError as error:
        raise bookings.InvalidBooking(str(error)) from error
    if booked is not None:
        booking = await bookings.reschedule(session, turn.conversation_id, slot)
        text = _("Done: your call has moved to %(when)s. The updated invitation is on its way to %(email)s.")
    else:
        contact = await session.get(Contact, turn.contact_id) if turn.contact_id else None
        if contact is None or not contact.email:
            return Outcome().say(
                text=_("To send you the invitation I need your contact details: ask me for a proposal first.")
            )
        deal = await deals.open_deal(session, contact_id=contact.id)
        booking = await bookings.book(
            session,
            turn.conversation_id,
            slot,
            contact.email,
            contact.name,
            _timezone(turn),
            i18n.current(),
            deal.id if deal else None,
        )
        text = _("Your call is booked for %(when)s. The invitation is on its way to %(email)s.")
        if deal is not None:
            await deals.record(session, deal, f"Call booked for {booking.starts_at.isoformat()} (booking {booking.id})")
    outcome = Outcome().say(text=text % {"when": _when(booking), "email": booking.customer_email})
    if booking.invite_error:
        outcome.say(
            text=_("I could not send the e-mail invitation, but the call is booked: a manager will remind you.")
        )
    return outcome.set(TIMEZONE, booking.customer_timezone)


async def cancel_call(turn: Turn) -> Outcome:
    """The conversation's booked call cancelled (the calendar event removed, a cancellation e-mailed, a note on the
    deal), or the customer told there is none."""
    try:
        async with db.session_scope() as session:
            booking = await bookings.cancel(session, turn.conversation_id)
            when = _when(booking)
            if booking.deal_id is not None and (deal := await session.get(Deal, booking.deal_id)) is not None:
                await deals.record(session, deal, f"Call of {booking.starts_at.isoformat()} cancelled by the customer")
    except bookings.NoBooking:
        return Outcome().say(text=_("You have no call booked with us."))
    except (bookings.BookingUnavailable, CalendarError) as error:
        log.error("cancelling the call in %s failed: %s", turn.conversation_id, error)
        await deals.note_for_managers(
            turn.contact_id,
            turn.conversation_id,
            f"The customer cancelled the call; the calendar could not ({error}): cancel it.",
        )
        return Outcome().say(text=_("I can't cancel the call right now. A manager will take care of it."))
    return Outcome().say(text=_("Your call of %(when)s is cancelled.") % {"when": when})
