"""Catalog turns: product search, prices, stock, a product's details, objections. Every figure comes
from the DB's rows."""

from bot.commerce import deals, inputs, quotes
from bot.commerce.mentions import mentioned_products, named_product, shown_products
from bot.commerce.pricing import load_pricing
from bot.commerce.product_search import find_products
from bot.commerce.search import cheaper_alternatives, query_from
from bot.core import db
from bot.core.business import get_company, get_vocabulary
from bot.core.models import Product
from bot.core.turn import Outcome, Turn
from bot.texts import messages, replies


async def _products(turn: Turn) -> tuple[list[Product], Outcome | None]:
    """The products the message names (:func:`bot.commerce.mentions.mentioned_products` among those last
    shown), or none and the reply saying why (an unknown SKU or name, or nothing to refer to)."""
    async with db.session_scope() as session:
        products = await mentioned_products(session, turn, await shown_products(session, turn))
    if products:
        return products, None
    named = named_product(turn)
    if named:
        return [], Outcome().say(response="utter_unknown_product", product=named)
    return [], Outcome().say(response="utter_which_product")


async def search_products(turn: Turn) -> Outcome:
    """Products matching the message (entities + catalog vocabulary) with DB prices and stock; sets
    shown_skus, category, sales_stage (and quantity, when NLU took an amount of money for one)."""
    company = get_company()
    entities = {name: turn.entity(name) for name in ("category", "colour", "material", "budget", "quantity", "product")}
    async with db.session_scope() as session:
        vocabulary = await get_vocabulary(session)
        query = query_from(
            vocabulary, turn.text, entities, company.currency, turn.slot("category"), turn.slot("quantity")
        )
        if not query.has_criteria() and not vocabulary.free_words(turn.text):
            return (
                Outcome()
                .say(response="utter_ask_what_products", buttons=replies.category_buttons(vocabulary.labels))
                .set("sales_stage", "qualifying")
            )
        result = await find_products(session, vocabulary, query, turn.text)
    if not result.products and not query.has_criteria():  # free words matched nothing closely
        return (
            Outcome()
            .say(response="utter_ask_what_products", buttons=replies.category_buttons(vocabulary.labels))
            .set("sales_stage", "qualifying")
        )
    if not result.products:
        return (
            Outcome()
            .say(response="utter_no_products", buttons=replies.category_buttons(vocabulary.labels))
            .set("sales_stage", "needs_analysis")
        )
    outcome = Outcome().say(
        text=replies.search_reply(result, vocabulary.labels, company.vat_rate),
        buttons=replies.product_buttons(result.products),
    )
    outcome.set("shown_skus", [p.sku for p in result.products]).set("sales_stage", "solution")
    outcome.set("category", query.categories[0] if query.categories else result.products[0].category)
    if str(query.quantity or "") != str(turn.slot("quantity") or ""):  # NLU took an amount for a quantity
        outcome.set("quantity", str(query.quantity) if query.quantity else None)
    return outcome


async def show_price(turn: Turn) -> Outcome:
    """Unit prices (excl. VAT) of the products named by SKU or name, else of the last shown."""
    products, refusal = await _products(turn)
    if refusal:
        return refusal
    return (
        Outcome()
        .say(text="\n".join(map(replies.price_line, products)), buttons=replies.product_buttons(products))
        .set("shown_skus", [p.sku for p in products])
        .set("sales_stage", "solution")
    )


async def show_stock(turn: Turn) -> Outcome:
    """Units on hand per warehouse, and whether they cover a quantity the customer named."""
    quantities = turn.entity("quantity")
    quantity = inputs.quantity(quantities[0]) if quantities else None
    products, refusal = await _products(turn)
    if refusal:
        return refusal
    lines = []
    for p in products:
        lines.append(replies.stock_line(p))
        note = replies.quantity_note(p, quantity)
        if note:
            lines.append(note)
    return (
        Outcome()
        .say(text="\n".join(lines), buttons=replies.product_buttons(products) if len(products) > 1 else None)
        .set("shown_skus", [p.sku for p in products])
        .set("sales_stage", "solution")
    )


async def product_details(turn: Turn) -> Outcome:
    """One product's card: price, finish, size in cm, features, description, stock; buttons to pick one
    when the message means several."""
    products, refusal = await _products(turn)
    if refusal:
        return refusal
    if len(products) > 1:
        return (
            Outcome()
            .say(text=messages.render("which_product_details"), buttons=replies.product_buttons(products))
            .set("sales_stage", "needs_analysis")
        )
    product = products[0]
    return (
        Outcome()
        .say(text=replies.product_details(product))
        .set("shown_skus", [product.sku])
        .set("category", product.category)
        .set("sales_stage", "needs_analysis")
    )


async def handle_objection(turn: Turn) -> Outcome:
    """Price objections get cheaper alternatives from the catalog (and a deal with a quote moves to
    negotiation); the other objections their ``utter_<intent>`` response."""
    if turn.intent != "objection_price":
        return Outcome().say(response=f"utter_{turn.intent}").set("sales_stage", "objection_handling")
    shown = turn.slot("shown_skus") or []
    async with db.session_scope() as session:
        cheaper = await cheaper_alternatives(session, shown)
        await quotes.negotiating(session, await deals.open_deal(session, contact_id=turn.contact_id))
    if cheaper:
        lines = [
            "I understand. Here are more affordable options from our catalog:",
            *map(replies.product_line, cheaper),
        ]
        if note := replies.volume_pricing_note(load_pricing()):
            lines.append(note)
        return (
            Outcome()
            .say(text="\n".join(lines), buttons=replies.product_buttons(cheaper))
            .set("shown_skus", [p.sku for p in cheaper])
            .set("sales_stage", "objection_handling")
        )
    return (
        Outcome()
        .say(response="utter_no_cheaper" if shown else "utter_ask_price_range")
        .set("sales_stage", "objection_handling")
    )
