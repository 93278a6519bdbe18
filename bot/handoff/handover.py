"""Handing a conversation to a manager from a turn: the situation a manager needs (from the turn, the
cart, the latest quote and the open deal), the escalation recorded and notified
(:func:`bot.handoff.escalation.escalate`), the customer told what happens next and the bot paused."""

from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from bot.commerce import cart as carts
from bot.commerce import deals, quotes
from bot.core import db
from bot.core.business import get_company
from bot.core.models import Cart, Quote
from bot.core.money import format_money
from bot.core.turn import Outcome, Turn
from bot.handoff.escalation import Situation, escalate, what_happens_next

LAST_MESSAGES = 6


async def situation(
    session: AsyncSession, turn: Turn, reason: str, quote: Quote | None = None, cart: Cart | None = None
) -> Situation:
    """What the manager needs, from the turn's slots and messages and the DB. ``quote`` defaults to the
    conversation's latest, ``cart`` (with its lines' products loaded) to the conversation's cart."""
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


async def hand_over(turn: Turn, reason: str, quote: Quote | None = None, cart: Cart | None = None) -> Outcome:
    """Escalate for ``reason`` (a key of :data:`bot.handoff.escalation.REASONS`), tell the customer what
    happens next, and pause the bot (sales_stage ``handoff``). ``quote`` and ``cart`` as in :func:`situation`."""
    async with db.session_scope() as session:
        await escalate(session, await situation(session, turn, reason, quote, cart))
    return (
        Outcome(pause=True).say(text=what_happens_next(get_company(), datetime.now(UTC))).set("sales_stage", "handoff")
    )


async def escalate_on_request(turn: Turn) -> Outcome:
    """Hands the conversation to a manager: "requested" for a request for a person, "complaint"
    after a complaint (the reason follows the intent)."""
    return await hand_over(turn, "complaint" if turn.intent == "complain" else "requested")
