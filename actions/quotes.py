"""Quote actions: send the quote once the lead form is done, accept it, and discount requests
(granted up to the pricing cap, otherwise a manager approval with a draft quote)."""

from typing import Any

from rasa_sdk import Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.base import SafeAction, entity_values
from actions.cart import customer_segment, granted_discount
from actions.escalation import hand_over, open_deal, quote_url
from bot.commerce import cart as carts
from bot.commerce import inputs, quotes
from bot.core import db
from bot.texts import messages
from bot.core.business import get_company
from bot.core.models import Contact
from bot.commerce.pricing import load_pricing

Events = list[dict[str, Any]]


def quote_document(quote) -> dict[str, Any]:
    """The quote PDF as a document message: Telegram and WhatsApp send the file, the widget a link."""
    return {"document": {"url": quote_url(quote), "filename": f"{quote.number}.pdf",
                         "caption": f"Quote {quote.number}"}}


class ActionSendQuote(SafeAction):
    """After the lead form of a quote request: issue the quote from the cart, send the PDF link,
    move the deal to ``proposal``; an order above the approval amount also calls a manager in."""

    def name(self) -> str:
        return "action_send_quote"

    async def act(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> Events:
        if tracker.get_slot("sales_stage") != "quoting":
            return []
        rules, company = load_pricing(), get_company()
        async with db.session_scope() as session:
            cart = await carts.get_cart(session, tracker.sender_id)
            if not cart.lines:
                dispatcher.utter_message(response="utter_quote_cart_empty")
                return [SlotSet("sales_stage", "needs_analysis")]
            contact_id = tracker.get_slot("contact_id")
            contact = await session.get(Contact, int(contact_id)) if contact_id else None
            deal = await open_deal(session, tracker)
            segment = await customer_segment(session, tracker)
            quote = await quotes.issue(session, tracker.sender_id, rules, company.quote_validity_days, contact, deal,
                                       segment, granted_discount(tracker))
            big = rules.needs_approval(rules.price(carts.items(cart), segment, granted_discount(tracker)))
        dispatcher.utter_message(text=messages.render("quote_sent", quote=quote, url=quote_url(quote)))
        dispatcher.utter_message(json_message=quote_document(quote))
        events = [SlotSet("sales_stage", "closing")]
        if big:
            dispatcher.utter_message(response="utter_big_order")
            events += await hand_over(dispatcher, tracker, "order_amount", quote)
        return events


class ActionAcceptQuote(SafeAction):
    """"I accept the quote": the latest quote becomes accepted and the deal won; an expired one is
    refused with its date and an offer of a fresh quote."""

    def name(self) -> str:
        return "action_accept_quote"

    async def act(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> Events:
        async with db.session_scope() as session:
            try:
                quote = await quotes.accept(session, tracker.sender_id)
            except quotes.QuoteError as exc:
                dispatcher.utter_message(response="utter_quote_not_accepted", reason=str(exc))
                return []
        dispatcher.utter_message(response="utter_quote_accepted", number=quote.number)
        return [SlotSet("sales_stage", "closing")]


class ActionHandleDiscount(SafeAction):
    """A discount request: within the bot's cap (pricing.yml) it is granted and the cart re-priced;
    above it, never a yes or no from the bot: a draft quote goes to a manager for approval."""

    def name(self) -> str:
        return "action_handle_discount"

    async def act(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> Events:
        wanted = inputs.discount(entity_values(tracker, "discount"), tracker.latest_message.get("text") or "")
        rules, company = load_pricing(), get_company()
        async with db.session_scope() as session:
            cart = await carts.get_cart(session, tracker.sender_id)
            if not cart.lines:
                dispatcher.utter_message(response="utter_discount_needs_cart")
                return []
            if wanted is None:
                dispatcher.utter_message(response="utter_ask_discount_amount")
                return []
            segment = await customer_segment(session, tracker)
            decision = rules.discount_request(carts.items(cart), segment, wanted)
            deal = await open_deal(session, tracker)
            await quotes.negotiating(session, deal)
            if not decision.granted:
                draft = await quotes.issue(session, tracker.sender_id, rules, company.quote_validity_days, deal=deal,
                                           segment=segment, extra_discount_pct=granted_discount(tracker), status="draft")
        if not decision.granted:
            dispatcher.utter_message(response="utter_discount_needs_approval", discount=f"{wanted * 100:.0f}%")
            return await hand_over(dispatcher, tracker, "discount", draft)
        priced = rules.price(carts.items(cart), segment, decision.granted_pct)
        dispatcher.utter_message(text=messages.render("cart", cart=priced, heading=f"I can do that: {decision.granted_pct * 100:.0f}% off. Your cart now:"))
        return [SlotSet("granted_discount", str(decision.granted_pct)), SlotSet("sales_stage", "objection_handling")]
