"""Catalog actions: product search, price, stock, details, objections. Figures come from the DB."""

from typing import Any

from rasa_sdk import Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.base import SafeAction, entity_values
from actions.escalation import open_deal
from bot.commerce import quotes
from bot.core import db
from bot.texts import replies
from bot.core.business import get_company, get_vocabulary
from bot.commerce import inputs
from bot.core.models import Product
from bot.commerce.product_search import find_products
from bot.commerce.search import cheaper_alternatives, find_by_name, get_product, query_from

Events = list[dict[str, Any]]


def _stage(stage: str) -> dict[str, Any]:
    return SlotSet("sales_stage", stage)


async def _named_products(dispatcher: CollectingDispatcher, tracker: Tracker) -> list[Product]:
    """Products the latest message names by SKU or product name, else the last ones shown. When
    there are none, the customer is told why (unknown SKU or name, or nothing to refer to)."""
    skus, names = entity_values(tracker, "sku"), entity_values(tracker, "product")
    async with db.session_scope() as session:
        if skus:
            products = [p for p in [await get_product(session, sku) for sku in skus] if p]
        elif names:
            products = await find_by_name(session, names[0])
        else:
            shown = tracker.get_slot("shown_skus") or []
            products = [p for p in [await get_product(session, sku) for sku in shown[:5]] if p]
    if not products and (skus or names):
        dispatcher.utter_message(response="utter_unknown_product", product=(skus or names)[0])
    elif not products:
        dispatcher.utter_message(response="utter_which_product")
    return products


class ActionSearchProducts(SafeAction):
    """Products matching the message (entities + catalog vocabulary) with DB prices and stock; sets shown_skus, category, sales_stage."""

    def name(self) -> str:
        return "action_search_products"

    async def act(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> Events:
        company = get_company()
        entities = {name: entity_values(tracker, name) for name in ("category", "colour", "material", "budget", "quantity", "product")}
        async with db.session_scope() as session:
            vocabulary = await get_vocabulary(session)
            text = tracker.latest_message.get("text") or ""
            query = query_from(vocabulary, text, entities, company.currency, tracker.get_slot("category"), tracker.get_slot("quantity"))
            if not query.has_criteria() and not vocabulary.free_words(text):
                dispatcher.utter_message(response="utter_ask_what_products", buttons=replies.category_buttons(vocabulary.labels))
                return [_stage("qualifying")]
            result = await find_products(session, vocabulary, query, text)
        if not result.products and not query.has_criteria():  # free words matched nothing closely
            dispatcher.utter_message(response="utter_ask_what_products", buttons=replies.category_buttons(vocabulary.labels))
            return [_stage("qualifying")]
        if not result.products:
            dispatcher.utter_message(response="utter_no_products", buttons=replies.category_buttons(vocabulary.labels))
            return [_stage("needs_analysis")]
        dispatcher.utter_message(text=replies.search_reply(result, vocabulary.labels, company.vat_rate), buttons=replies.product_buttons(result.products))
        events = [SlotSet("shown_skus", [p.sku for p in result.products]), _stage("solution")]
        category = query.categories[0] if query.categories else result.products[0].category
        events.append(SlotSet("category", category))
        if str(query.quantity or "") != str(tracker.get_slot("quantity") or ""):  # NLU took an amount for a quantity
            events.append(SlotSet("quantity", str(query.quantity) if query.quantity else None))
        return events


class ActionShowPrice(SafeAction):
    """Unit prices (excl. VAT) of the products named by SKU or name, else of the last shown."""

    def name(self) -> str:
        return "action_show_price"

    async def act(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> Events:
        products = await _named_products(dispatcher, tracker)
        if not products:
            return []
        dispatcher.utter_message(text="\n".join(map(replies.price_line, products)), buttons=replies.product_buttons(products))
        return [SlotSet("shown_skus", [p.sku for p in products]), _stage("solution")]


class ActionShowStock(SafeAction):
    """Units on hand per warehouse, and whether they cover a quantity the customer named."""

    def name(self) -> str:
        return "action_show_stock"

    async def act(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> Events:
        quantities = entity_values(tracker, "quantity")
        quantity = inputs.quantity(quantities[0]) if quantities else None
        products = await _named_products(dispatcher, tracker)
        if not products:
            return []
        lines = []
        for p in products:
            lines.append(replies.stock_line(p))
            note = replies.quantity_note(p, quantity)
            if note:
                lines.append(note)
        dispatcher.utter_message(text="\n".join(lines), buttons=replies.product_buttons(products) if len(products) > 1 else None)
        return [SlotSet("shown_skus", [p.sku for p in products]), _stage("solution")]


class ActionProductDetails(SafeAction):
    """One product's card: price, finish, size in cm, features, description, stock."""

    def name(self) -> str:
        return "action_product_details"

    async def act(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> Events:
        products = await _named_products(dispatcher, tracker)
        if not products:
            return []
        if len(products) > 1:
            dispatcher.utter_message(text="Which one would you like to know more about?", buttons=replies.product_buttons(products))
            return [_stage("needs_analysis")]
        dispatcher.utter_message(text=replies.product_details(products[0]))
        return [SlotSet("shown_skus", [products[0].sku]), SlotSet("category", products[0].category), _stage("needs_analysis")]


class ActionHandleObjection(SafeAction):
    """Price objections get cheaper alternatives from the catalog; the others a response."""

    def name(self) -> str:
        return "action_handle_objection"

    async def act(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> Events:
        intent = (tracker.latest_message.get("intent") or {}).get("name")
        if intent != "objection_price":
            dispatcher.utter_message(response=f"utter_{intent}")
            return [_stage("objection_handling")]
        shown = tracker.get_slot("shown_skus") or []
        async with db.session_scope() as session:
            cheaper = await cheaper_alternatives(session, shown)
            await quotes.negotiating(session, await open_deal(session, tracker))
        if cheaper:
            lines = ["I understand. Here are more affordable options from our catalog:", *map(replies.product_line, cheaper)]
            lines.append("For 10 or more units we also offer volume pricing.")
            dispatcher.utter_message(text="\n".join(lines), buttons=replies.product_buttons(cheaper))
            return [SlotSet("shown_skus", [p.sku for p in cheaper]), _stage("objection_handling")]
        dispatcher.utter_message(response="utter_no_cheaper" if shown else "utter_ask_price_range")
        return [_stage("objection_handling")]
