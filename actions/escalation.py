"""Escalation to a manager: records it with a summary, notifies the managers' Telegram chat, tells
the customer what happens next and pauses the bot (Rasa's ConversationPaused)."""

from datetime import datetime, timezone
from typing import Any

from rasa_sdk import Tracker
from rasa_sdk.events import ConversationPaused, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.base import SafeAction
from bot.commerce import cart as carts
from bot.commerce import quotes
from bot.core import db
from bot.core.business import get_company
from bot.handoff.escalation import Situation, escalate, what_happens_next
from bot.core.models import Contact, Deal, Quote
from bot.core.money import format_money
from bot.core.settings import get_settings

LAST_MESSAGES = 6


def quote_url(quote: Quote) -> str:
    """The customer's link to the quote PDF, served by the console."""
    return f"{get_settings().public_url}/quotes/{quote.token}.pdf"


async def open_deal(session, tracker: Tracker) -> Deal | None:
    """The open deal of the customer saved in this conversation (slot contact_id), if any."""
    contact_id = tracker.get_slot("contact_id")
    contact = await session.get(Contact, int(contact_id)) if contact_id else None
    return next((d for d in contact.deals if d.stage not in ("won", "lost")), None) if contact else None


async def situation(session, tracker: Tracker, reason: str, quote: Quote | None = None) -> Situation:
    """What the manager needs, from the tracker's slots and events and the DB."""
    slot = tracker.get_slot
    cart = await carts.get_cart(session, tracker.sender_id)
    said = [("customer" if e["event"] == "user" else "bot", e.get("text") or "")
            for e in tracker.events if e.get("event") in ("user", "bot") and e.get("text")]
    quote = quote or await quotes.latest(session, tracker.sender_id)
    return Situation(
        conversation_id=tracker.sender_id,
        reason=reason,
        customer={"name": slot("customer_name"), "company": slot("company"), "email": slot("email"), "phone": slot("phone")},
        needs={"category": slot("category"), "quantity": slot("quantity"), "budget": slot("budget"), "timeline": slot("timeline")},
        cart=[f"{line.quantity} × {line.product.name} ({line.sku}) at {format_money(line.product.price_minor, line.product.currency)}"
              for line in cart.lines],
        quote=quote,
        quote_url=quote_url(quote) if quote else None,
        messages=said[-LAST_MESSAGES:],
        deal=await open_deal(session, tracker),
    )


async def hand_over(dispatcher: CollectingDispatcher, tracker: Tracker, reason: str, quote: Quote | None = None) -> list[dict[str, Any]]:
    """Escalate for ``reason``, tell the customer what happens next, and pause the bot."""
    async with db.session_scope() as session:
        await escalate(session, await situation(session, tracker, reason, quote))
    dispatcher.utter_message(text=what_happens_next(get_company(), datetime.now(timezone.utc)))
    return [SlotSet("sales_stage", "handoff"), ConversationPaused()]


class ActionEscalate(SafeAction):
    """Hands the conversation to a manager: "requested" for a request for a person, "complaint"
    after a complaint (the reason follows the intent)."""

    def name(self) -> str:
        return "action_escalate"

    async def act(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[dict[str, Any]]:
        intent = (tracker.latest_message.get("intent") or {}).get("name")
        return await hand_over(dispatcher, tracker, "complaint" if intent == "complain" else "requested")
