"""Handing a conversation to a manager from a turn: the situation a manager needs (from the turn, the
cart, the latest quote and the open deal), the escalation recorded and notified
(:func:`bot.handoff.escalation.escalate`), the customer told what happens next and the bot paused."""

from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from bot.commerce import cart as carts
from bot.commerce import deals, inputs, quotes
from bot.contracts.paused import REPLIED_AT_SLOT
from bot.core import db
from bot.core.business import get_company
from bot.core.models import Cart, Quote
from bot.core.money import format_money
from bot.core.turn import Outcome, Turn
from bot.handoff.escalation import Situation, escalate, has_open_escalation, next_opening, what_happens_next

LAST_MESSAGES = 6


async def situation(
    session: AsyncSession,
    turn: Turn,
    reason: str,
    quote: Quote | None = None,
    cart: Cart | None = None,
    needs: dict[str, str] | None = None,
) -> Situation:
    """What the manager needs, from the turn's slots and messages and the DB. ``quote`` defaults to the
    conversation's latest, ``cart`` (with its lines' products loaded) to the conversation's cart; ``needs``
    (label → what the customer asked for, e.g. ``{"order number": "4471"}``) is added to the needs from the slots."""
    cart = cart if cart is not None else await carts.get_cart(session, turn.conversation_id)
    quote = quote or await quotes.latest(session, turn.conversation_id)
    slot = turn.slot
    return Situation(
        conversation_id=turn.conversation_id,
        reason=reason,
        customer={
            "name": slot("customer_name"),
            "company": slot("company"),
            "email": slot("email"),
            "phone": slot("phone"),
        },
        needs={
            "category": slot("category"),
            "quantity": slot("quantity"),
            "budget": slot("budget"),
            "timeline": slot("timeline"),
            **(needs or {}),
        },
        cart=[
            f"{line.quantity} × {line.product.name} ({line.sku}) at "
            f"{format_money(line.product.price_minor, line.product.currency)}"
            for line in cart.lines
        ],
        quote=quote,
        quote_url=quotes.url(quote) if quote else None,
        messages=list(turn.said[-LAST_MESSAGES:]),
        deal=await deals.open_deal(session, contact_id=turn.contact_id),
    )


async def hand_over(
    turn: Turn,
    reason: str,
    quote: Quote | None = None,
    cart: Cart | None = None,
    needs: dict[str, str] | None = None,
) -> Outcome:
    """Escalate for ``reason`` (a key of :data:`bot.handoff.escalation.REASONS`), tell the customer what
    happens next, and pause the bot (sales_stage ``handoff``). ``quote``, ``cart`` and ``needs`` as in
    :func:`situation`."""
    async with db.session_scope() as session:
        await escalate(session, await situation(session, turn, reason, quote, cart, needs))
    return (
        Outcome(pause=True)
        .say(**what_happens_next(get_company(), datetime.now(UTC)))
        .set("sales_stage", "handoff")
        .set(REPLIED_AT_SLOT, None)
    )


async def order_status(turn: Turn) -> Outcome:
    """A question about an existing order: the chat cannot see orders, so the customer is told so honestly and
    a manager gets it (reason ``order_status``, the order number in the summary's needs when one was given:
    one written after "order", "ref" or "invoice", else the NLU entity ``order_number``)."""
    tagged = (inputs.clean_order_number(value) for value in turn.entity("order_number"))
    number = inputs.order_number(turn.text) or next((value for value in tagged if value), None)
    if number is None:
        outcome = Outcome().say(response="utter_order_status_no_number")
    else:
        outcome = Outcome().say(response="utter_order_status", order_number=number)
    return outcome.then(await hand_over(turn, "order_status", needs={"order number": number} if number else None))


async def escalate_on_request(turn: Turn) -> Outcome:
    """Hands the conversation to a manager: "requested" for a request for a person, "complaint"
    after a complaint (the reason follows the intent)."""
    return await hand_over(turn, "complaint" if turn.intent == "complain" else "requested")


async def awaits_manager(conversation_id: str) -> bool:
    """Whether ``conversation_id`` waits for a manager: it has an escalation in the business DB that no manager
    has handed back (pending or in progress). Its bot stays paused in a new Rasa session
    (``actions.escalation.ActionSessionStart``). Raises SQLAlchemy's errors when the DB cannot be read."""
    async with db.session_scope() as session:
        return await has_open_escalation(session, conversation_id)


def holding_reply(now: datetime) -> Outcome:
    """The holding message for a customer who writes while the bot is paused for a manager, at ``now``
    (timezone-aware; the Rasa server asks for it when one is due, :mod:`bot.contracts.paused`): within business
    hours ``utter_holding_open`` (a manager replies shortly), outside them ``utter_holding_closed`` with the
    :func:`~bot.handoff.escalation.next_opening` (``knowledge/company.yml``); slot ``handoff_replied_at`` set to
    ``now``. The bot stays paused."""
    company = get_company()
    if company.is_open(now):
        outcome = Outcome().say(response="utter_holding_open", hours=company.hours, phone=company.phone)
    else:
        outcome = Outcome().say(
            response="utter_holding_closed", opening=next_opening(company, now), timezone=company.timezone
        )
    return outcome.set(REPLIED_AT_SLOT, now.timestamp())
