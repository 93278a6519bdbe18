"""Cart actions: add, remove, change quantities (by SKU, product name, category or "it"), show.
Prices and totals come from the catalog through the pricing rules (knowledge/pricing.yml)."""

import json
from decimal import Decimal
from typing import Any

from rasa_sdk import Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.base import SafeAction, entity_values
from bot.commerce import cart as carts
from bot.core import db
from bot.texts import messages
from bot.core.business import get_vocabulary
from bot.commerce import inputs
from bot.commerce.leads import speaks_for
from bot.core.models import Cart, Contact, Product
from bot.commerce.pricing import load_pricing
from bot.commerce.search import find_by_name, get_product

Events = list[dict[str, Any]]


def _quantity(tracker: Tracker) -> int | None:
    """The quantity the latest message names; 0 when it names one outside 1…100,000; None when none."""
    values = entity_values(tracker, "quantity")
    return (inputs.quantity(values[0]) or 0) if values else None


def _buttons(intent: str, products: list[Product], quantity: int | None = None) -> list[dict[str, str]]:
    def payload(p: Product) -> str:
        entities = {"sku": p.sku, **({"quantity": str(quantity)} if quantity else {})}
        return f"/{intent}{json.dumps(entities)}"

    return [{"title": f"{p.name} ({p.sku})", "payload": payload(p)} for p in products[:5]]


async def _mentioned(session, tracker: Tracker, candidates: list[Product]) -> list[Product]:
    """Products the latest message names: by SKU, by product name, else ``candidates`` narrowed
    to a category the message names (all of them when it names none)."""
    skus, names = entity_values(tracker, "sku"), entity_values(tracker, "product")
    if skus:
        return [p for p in [await get_product(session, s) for s in skus] if p]
    if names:
        named = await find_by_name(session, names[0])
        in_candidates = [p for p in named if p.sku in {c.sku for c in candidates}]
        return in_candidates or named
    vocabulary = await get_vocabulary(session)
    categories = {c for c in map(vocabulary.category_of, entity_values(tracker, "category")) if c}
    categories |= set(vocabulary.extract(tracker.latest_message.get("text") or "").categories)
    return [p for p in candidates if p.category in categories] if categories else candidates


async def customer_segment(session, tracker: Tracker) -> str:
    """The pricing segment of the customer saved in this conversation (slot contact_id), else "new"; only
    for a conversation that :func:`bot.commerce.leads.speaks_for` the contact."""
    contact_id = tracker.get_slot("contact_id")
    contact = await session.get(Contact, int(contact_id)) if contact_id else None
    return contact.segment if contact is not None and speaks_for(contact, tracker.sender_id) else "new"


def granted_discount(tracker: Tracker) -> Decimal:
    """The extra discount (a fraction) the bot granted in this conversation, 0 if none."""
    return Decimal(tracker.get_slot("granted_discount") or "0")


async def _cart_reply(dispatcher: CollectingDispatcher, tracker: Tracker, session, cart: Cart, heading: str) -> None:
    priced = load_pricing().price(carts.items(cart), await customer_segment(session, tracker), granted_discount(tracker))
    dispatcher.utter_message(text=messages.render("cart", cart=priced, heading=heading))


class ActionAddToCart(SafeAction):
    """Adds the named product (or the one just shown) with the quantity said (default 1), shows the
    cart with line totals and suggests what goes with it (pricing.yml cross-sell)."""

    def name(self) -> str:
        return "action_add_to_cart"

    async def act(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> Events:
        quantity = _quantity(tracker)
        if quantity == 0:
            dispatcher.utter_message(response="utter_cart_error", reason=carts.quantity_rule())
            return []
        quantity = quantity or 1
        async with db.session_scope() as session:
            shown = [p for p in [await get_product(session, s) for s in (tracker.get_slot("shown_skus") or [])[:5]] if p]
            products = await _mentioned(session, tracker, shown)
            if not products:
                named = (entity_values(tracker, "sku") or entity_values(tracker, "product") or [None])[0]
                if named:
                    dispatcher.utter_message(response="utter_unknown_product", product=named)
                else:
                    dispatcher.utter_message(response="utter_which_product")
                return []
            if len(products) > 1:
                dispatcher.utter_message(response="utter_which_to_add", buttons=_buttons("add_to_cart", products, quantity))
                return []
            product = products[0]
            try:
                cart = await carts.add(session, tracker.sender_id, product, quantity)
            except carts.CartError as exc:
                dispatcher.utter_message(response="utter_cart_error", reason=str(exc))
                return []
            categories = {line.product.category for line in cart.lines}
            await _cart_reply(dispatcher, tracker, session, cart, f"Added {quantity} × {product.name}. Your cart:")
            labels = (await get_vocabulary(session)).labels
        suggestions = load_pricing().cross_sell(categories)[:1]
        if suggestions:
            dispatcher.utter_message(text=messages.render("cross_sell", suggestions=suggestions, labels=labels),
                                     buttons=[{"title": f"Show {labels.get(s.category, s.category).lower()}",
                                               "payload": f'/ask_products{{"category": "{s.category}"}}'} for s in suggestions])
        return [SlotSet("shown_skus", [product.sku]), SlotSet("sales_stage", "solution")]


class _CartLineAction(SafeAction):
    """Base for actions on one or more lines already in the cart."""

    intent = ""

    async def lines(self, dispatcher: CollectingDispatcher, tracker: Tracker, session) -> tuple[Cart, list[Product]] | None:
        cart = await carts.get_cart(session, tracker.sender_id)
        in_cart = [line.product for line in cart.lines]
        if not in_cart:
            dispatcher.utter_message(text=messages.render("cart", cart=load_pricing().price([]), heading=""))
            return None
        mentioned = await _mentioned(session, tracker, in_cart)
        chosen = [p for p in mentioned if p.sku in {q.sku for q in in_cart}]
        if not chosen or (len(chosen) > 1 and not self.several_allowed(tracker)):
            dispatcher.utter_message(response="utter_which_cart_line", buttons=_buttons(self.intent, in_cart, _quantity(tracker)))
            return None
        return cart, chosen

    def several_allowed(self, tracker: Tracker) -> bool:
        return False


class ActionRemoveFromCart(_CartLineAction):
    """Removes the named lines ("remove the chairs" removes every chair line) and shows the cart."""

    intent = "remove_from_cart"

    def name(self) -> str:
        return "action_remove_from_cart"

    def several_allowed(self, tracker: Tracker) -> bool:
        return True

    async def act(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> Events:
        async with db.session_scope() as session:
            found = await self.lines(dispatcher, tracker, session)
            if found is None:
                return []
            cart, chosen = found
            cart = await carts.remove(session, tracker.sender_id, [p.sku for p in chosen])
            await _cart_reply(dispatcher, tracker, session, cart, "Removed " + ", ".join(p.name for p in chosen) + ". Your cart:")
        return []


class ActionChangeQuantity(_CartLineAction):
    """Sets the quantity of the named cart line (or the only one) to the number said."""

    intent = "change_quantity"

    def name(self) -> str:
        return "action_change_quantity"

    async def act(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> Events:
        quantity = _quantity(tracker)
        if quantity is None:
            dispatcher.utter_message(response="utter_ask_new_quantity")
            return []
        if quantity == 0:
            dispatcher.utter_message(response="utter_cart_error", reason=carts.quantity_rule())
            return []
        async with db.session_scope() as session:
            found = await self.lines(dispatcher, tracker, session)
            if found is None:
                return []
            _, [product] = found
            try:
                cart = await carts.set_quantity(session, tracker.sender_id, product.sku, quantity)
            except carts.CartError as exc:
                dispatcher.utter_message(response="utter_cart_error", reason=str(exc))
                return []
            await _cart_reply(dispatcher, tracker, session, cart, f"Now {quantity} × {product.name}. Your cart:")
        return []


class ActionShowCart(SafeAction):
    """The cart with line totals, discounts, VAT and total."""

    def name(self) -> str:
        return "action_show_cart"

    async def act(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> Events:
        async with db.session_scope() as session:
            cart = await carts.get_cart(session, tracker.sender_id)
            await _cart_reply(dispatcher, tracker, session, cart, "Your cart:")
        return []
