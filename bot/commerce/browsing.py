"""Catalog turns: product search, prices, stock, a product's details, objections. Every figure comes
from the DB's rows."""

from dataclasses import replace

from bot.commerce import deals, inputs, quotes
from bot.commerce.mentions import listed_products, mentioned_products, not_found, shown, shown_products
from bot.commerce.pricing import load_pricing
from bot.commerce.product_search import find_products
from bot.commerce.search import cheaper_alternatives, query_from
from bot.core import db
from bot.core.business import get_company, get_vocabulary
from bot.core.models import Product
from bot.core.turn import Outcome, Turn
from bot.texts import messages, replies
from bot.texts.i18n import _

PER_CATEGORY = 3  # products shown for each category when a message names several
MAX_COMPARED = 3  # products side by side


def _showing(outcome: Outcome, products: list[Product]) -> Outcome:
    """``outcome`` with the slots of showing ``products`` (:func:`bot.commerce.mentions.shown`)."""
    for slot, value in shown(products):
        outcome.set(slot, value)
    return outcome


async def _products(turn: Turn) -> tuple[list[Product], Outcome | None]:
    """The products the message refers to (:func:`bot.commerce.mentions.mentioned_products` among those of
    the last answer, counting in the last list shown), or none and the reply saying why (an unknown SKU with
    the nearest products, an unknown name, or nothing to refer to)."""
    async with db.session_scope() as session:
        mentioned = await mentioned_products(
            session, turn, await shown_products(session, turn), await listed_products(session, turn)
        )
        if mentioned.products:
            return mentioned.products, None
        return [], await not_found(session, turn, mentioned)


async def search_products(turn: Turn) -> Outcome:
    """Products matching the message (entities + catalog vocabulary) with DB prices and stock — for each
    category when it names several, in the order of a superlative it names ("cheapest") —, or, with nothing
    else to search for, the products it names by SKU (an unknown SKU named as such, with the nearest); sets
    shown_skus (and listed_skus), category, sales_stage (and quantity, when NLU took an amount of money for
    one). Code pasted into the chat gets the out-of-scope answer."""
    company = get_company()
    if inputs.looks_like_code(turn.text):  # "'; DROP TABLE products; --" asks for no meeting table
        return Outcome().say(response="utter_out_of_scope")
    names = ("category", "colour", "material", "budget", "quantity", "product", "sort")
    entities = {name: turn.entity(name) for name in names}
    async with db.session_scope() as session:
        vocabulary = await get_vocabulary(session)
        query = query_from(
            vocabulary, turn.text, entities, company.currency, turn.slot("category"), turn.slot("quantity")
        )
        if turn.entity("sku") and not query.has_criteria():  # "do you have OC-1006?": it, or "ZZ-1 is unknown"
            mentioned = await mentioned_products(session, turn, [])
            if not mentioned.products:
                return await not_found(session, turn, mentioned)
            outcome = Outcome().say(
                text="\n".join(map(replies.product_line, mentioned.products)),
                buttons=replies.product_buttons(mentioned.products),
            )
            return _showing(outcome, mentioned.products).set("sales_stage", "solution")
        if not query.has_criteria() and not vocabulary.free_words(turn.text):
            return (
                Outcome()
                .say(response="utter_ask_what_products", buttons=replies.category_buttons(vocabulary.labels))
                .set("sales_stage", "qualifying")
            )
        queries = [replace(query, categories=(c,)) for c in query.categories] if len(query.categories) > 1 else [query]
        limit = PER_CATEGORY if len(queries) > 1 else 5
        results = [r for q in queries if (r := await find_products(session, vocabulary, q, turn.text, limit)).products]
        result = results[0] if results else None
    if not result and not query.has_criteria():  # free words matched nothing closely
        return (
            Outcome()
            .say(response="utter_ask_what_products", buttons=replies.category_buttons(vocabulary.labels))
            .set("sales_stage", "qualifying")
        )
    if not result:
        return (
            Outcome()
            .say(response="utter_no_products", buttons=replies.category_buttons(vocabulary.labels))
            .set("sales_stage", "needs_analysis")
        )
    products = [p for r in results for p in r.products]
    outcome = Outcome().say(
        text=replies.search_replies(results, vocabulary.labels, company.vat_rate),
        buttons=replies.product_buttons(products),
    )
    _showing(outcome, products).set("sales_stage", "solution")
    outcome.set("category", query.categories[0] if query.categories else products[0].category)
    if str(query.quantity or "") != str(turn.slot("quantity") or ""):  # NLU took an amount for a quantity
        outcome.set("quantity", str(query.quantity) if query.quantity else None)
    return outcome


async def show_price(turn: Turn) -> Outcome:
    """Unit prices (excl. VAT) of the products named by SKU or name, else of the last shown."""
    products, refusal = await _products(turn)
    if refusal:
        return refusal
    outcome = Outcome().say(
        text="\n".join(map(replies.price_line, products)), buttons=replies.product_buttons(products)
    )
    return _showing(outcome, products).set("sales_stage", "solution")


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
    outcome = Outcome().say(
        text="\n".join(lines), buttons=replies.product_buttons(products) if len(products) > 1 else None
    )
    return _showing(outcome, products).set("sales_stage", "solution")


async def product_details(turn: Turn) -> Outcome:
    """One product's card: price, finish, size in cm, features, description, stock; several products picked
    one by one ("OC-1006 and OC-1009", "both") side by side (:func:`compare_products`); buttons to pick one
    when the message matches several."""
    products, refusal = await _products(turn)
    if refusal:
        return refusal
    if 1 < len(products) <= MAX_COMPARED and (turn.entity("sku") or turn.entity("mention")):
        return await compare_products(turn)
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


async def compare_products(turn: Turn) -> Outcome:
    """The products the message refers to side by side (at most :data:`MAX_COMPARED`; with no reference, the
    last list shown): real prices, stock and the attributes that differ; with fewer than two, a question
    with buttons for the products in play."""
    async with db.session_scope() as session:
        listed = await listed_products(session, turn)
        mentioned = await mentioned_products(session, turn, listed)
        if not mentioned.products:
            return await not_found(session, turn, mentioned)
    products = mentioned.products[:MAX_COMPARED]
    if len(products) < 2:
        others = [p for p in listed if p.sku != products[0].sku]
        return _showing(
            Outcome().say(
                response="utter_which_to_compare",
                product=products[0].sku,
                buttons=replies.compare_buttons(products[0], others),
            ),
            products,
        )
    outcome = Outcome().say(text=replies.comparison(products), buttons=replies.product_buttons(products))
    return _showing(outcome, products).set("sales_stage", "solution")


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
            _("I understand. Here are more affordable options from our catalog:"),
            *map(replies.product_line, cheaper),
        ]
        if note := replies.volume_pricing_note(load_pricing()):
            lines.append(note)
        return (
            Outcome()
            .say(text="\n".join(lines), buttons=replies.product_buttons(cheaper))
            .set("sales_stage", "objection_handling")
        ).then(_showing(Outcome(), cheaper))
    return (
        Outcome()
        .say(response="utter_no_cheaper" if shown else "utter_ask_price_range")
        .set("sales_stage", "objection_handling")
    )
