"""The customer's cart turns: add, remove, change a quantity (products by SKU, name, category or "it"),
show the cart. Prices and totals come from the catalog through the pricing rules (knowledge/pricing.yml),
for the customer's segment and the discount granted in the conversation."""

from collections.abc import Iterable

from babel.lists import format_list
from sqlalchemy.ext.asyncio import AsyncSession

from bot.commerce import cart as carts
from bot.commerce import inputs
from bot.commerce.leads import speaks_for
from bot.commerce.mentions import listed_products, mentioned_products, not_found, shown_products
from bot.commerce.pricing import load_pricing
from bot.core import db
from bot.core.business import get_vocabulary
from bot.core.models import Cart, Contact, Product
from bot.core.turn import Outcome, Turn
from bot.texts import i18n, messages, replies


def quantity_said(turn: Turn) -> int | None:
    """The quantity the latest message names; 0 when it names one outside 1…100,000; None when none."""
    values = turn.entity("quantity")
    return (inputs.quantity(values[0]) or 0) if values else None


async def customer_segment(session: AsyncSession, turn: Turn) -> str:
    """The pricing segment of the customer saved in this conversation (slot contact_id), else "new"; only
    for a conversation that :func:`bot.commerce.leads.speaks_for` the contact."""
    contact = await session.get(Contact, turn.contact_id) if turn.contact_id else None
    return contact.segment if contact is not None and speaks_for(contact, turn.conversation_id) else "new"


def _listed(items: Iterable[str]) -> str:
    """``items`` as a list in the active language: ``"2 × Desk and 2 × Chair"``, ``"2 × Desk و2 × Chair"``."""
    return format_list(list(items), locale=i18n.locale())


async def _cart_text(session: AsyncSession, turn: Turn, cart: Cart, **heading) -> str:
    """The cart priced for this customer, under the ``cart_heading`` template rendered with ``heading``."""
    priced = load_pricing().price(carts.items(cart), await customer_segment(session, turn), turn.granted_discount)
    return messages.render("cart", cart=priced, heading=messages.render("cart_heading", **heading))


async def add_to_cart(turn: Turn) -> Outcome:
    """Adds the products the message refers to (or the one just shown) with the quantity said (default 1)
    each — several when picked one by one ("add OC-1006 and DK-2001", "add both") —, shows the cart with line
    totals and suggests what goes with it (pricing.yml cross-sell); sets shown_skus and sales_stage
    ``solution``. Several matches get buttons to choose, an unknown or missing product a question."""
    quantity = quantity_said(turn)
    if quantity == 0:
        return Outcome().say(response="utter_cart_error", reason=carts.quantity_rule())
    quantity = quantity or 1
    async with db.session_scope() as session:
        mentioned = await mentioned_products(
            session, turn, await shown_products(session, turn), await listed_products(session, turn)
        )
        products = mentioned.products
        if not products:
            return await not_found(session, turn, mentioned)
        if len(products) > 1 and not mentioned.exact:
            return Outcome().say(
                response="utter_which_to_add", buttons=replies.choice_buttons("add_to_cart", products, quantity)
            )
        try:
            for product in products:
                cart = await carts.add(session, turn.conversation_id, product, quantity)
        except carts.CartError as exc:
            return Outcome().say(response="utter_cart_error", reason=str(exc))
        categories = {line.product.category for line in cart.lines}
        outcome = Outcome().say(
            text=await _cart_text(
                session, turn, cart, change="added", items=_listed(f"{quantity} × {p.display_name}" for p in products)
            )
        )
        labels = (await get_vocabulary(session)).labels
    suggestions = load_pricing().cross_sell(categories)[:1]
    if suggestions:
        outcome.say(
            text=messages.render("cross_sell", suggestions=suggestions, labels=labels, language=i18n.current()),
            buttons=replies.show_category_buttons([s.category for s in suggestions], labels),
        )
    return outcome.set("shown_skus", [p.sku for p in products]).set("sales_stage", "solution")


async def _chosen_lines(
    session: AsyncSession, turn: Turn, intent: str, several: bool
) -> tuple[Cart, list[Product]] | Outcome:
    """The cart and the products of its lines the message names (one unless ``several``), or the reply
    when there are none: the empty cart, or buttons (repeating ``intent``) to pick a line."""
    cart = await carts.get_cart(session, turn.conversation_id)
    in_cart = [line.product for line in cart.lines]
    if not in_cart:
        return Outcome().say(text=messages.render("cart", cart=load_pricing().price([]), heading=""))
    mentioned = (await mentioned_products(session, turn, in_cart)).products
    chosen = [p for p in mentioned if p.sku in {q.sku for q in in_cart}]
    if not chosen or (len(chosen) > 1 and not several):
        return Outcome().say(
            response="utter_which_cart_line", buttons=replies.choice_buttons(intent, in_cart, quantity_said(turn))
        )
    return cart, chosen


async def remove_from_cart(turn: Turn) -> Outcome:
    """Removes the named lines ("remove the chairs" removes every chair line) and shows the cart."""
    async with db.session_scope() as session:
        found = await _chosen_lines(session, turn, "remove_from_cart", several=True)
        if isinstance(found, Outcome):
            return found
        _, chosen = found
        cart = await carts.remove(session, turn.conversation_id, [p.sku for p in chosen])
        return Outcome().say(
            text=await _cart_text(session, turn, cart, change="removed", names=_listed(p.display_name for p in chosen))
        )


async def change_quantity(turn: Turn) -> Outcome:
    """Sets the quantity of the named cart line (or the only one) to the number said, and shows the cart."""
    quantity = quantity_said(turn)
    if quantity is None:
        return Outcome().say(response="utter_ask_new_quantity")
    if quantity == 0:
        return Outcome().say(response="utter_cart_error", reason=carts.quantity_rule())
    async with db.session_scope() as session:
        found = await _chosen_lines(session, turn, "change_quantity", several=False)
        if isinstance(found, Outcome):
            return found
        _, [product] = found
        try:
            cart = await carts.set_quantity(session, turn.conversation_id, product.sku, quantity)
        except carts.CartError as exc:
            return Outcome().say(response="utter_cart_error", reason=str(exc))
        return Outcome().say(
            text=await _cart_text(session, turn, cart, change="quantity", quantity=quantity, product=product)
        )


async def show_cart(turn: Turn) -> Outcome:
    """The cart with line totals, discounts, VAT and total."""
    async with db.session_scope() as session:
        cart = await carts.get_cart(session, turn.conversation_id)
        return Outcome().say(text=await _cart_text(session, turn, cart, change="shown"))
