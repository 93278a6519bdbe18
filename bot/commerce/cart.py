"""The customer's cart: one per conversation (Rasa sender id), stored in the business DB so that
it survives turns, sessions and restarts. Quantities are whole units; prices are never stored
here — :func:`items` reads them from the catalog when the cart is priced. Limits (settings):
``cart_max_quantity`` units of one product, ``cart_max_lines`` different products."""

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.commerce.pricing import CartItem
from bot.core.models import Cart, CartLine, Product
from bot.core.settings import get_settings
from bot.texts.i18n import _, format_number, ngettext


class CartError(ValueError):
    """A cart change that cannot be made (e.g. a quantity outside 1…100,000); the message says why, to the
    customer, in the active language (:mod:`bot.texts.i18n`)."""


def quantity_rule() -> str:
    """What a valid quantity is, for the customer in the active language: "a quantity must be between 1 and
    100,000"."""
    return _("a quantity must be between 1 and %(max)s") % {"max": format_number(get_settings().cart_max_quantity)}


async def get_cart(session: AsyncSession, conversation_id: str) -> Cart:
    """The conversation's cart, created empty when it has none."""
    cart = await session.scalar(select(Cart).where(Cart.conversation_id == conversation_id))
    if cart is None:
        cart = Cart(conversation_id=conversation_id, lines=[])
        session.add(cart)
        await session.flush()
    return cart


def _check(quantity: int) -> None:
    if not 1 <= quantity <= get_settings().cart_max_quantity:
        raise CartError(quantity_rule())


async def add(session: AsyncSession, conversation_id: str, product: Product, quantity: int) -> Cart:
    """Add ``quantity`` units of ``product`` (on top of any already in the cart). Raises CartError,
    also for a new product when the cart already holds ``cart_max_lines`` products."""
    _check(quantity)
    cart = await get_cart(session, conversation_id)
    line = next((x for x in cart.lines if x.sku == product.sku), None)
    if line is None:
        max_lines = get_settings().cart_max_lines
        if len(cart.lines) >= max_lines:
            raise CartError(
                ngettext(
                    "a cart holds at most %(count)s different product",
                    "a cart holds at most %(count)s different products",
                    max_lines,
                )
                % {"count": max_lines}
            )
        cart.lines.append(CartLine(sku=product.sku, quantity=quantity, product=product))
    else:
        _check(line.quantity + quantity)
        line.quantity += quantity
    await session.flush()
    return cart


async def set_quantity(session: AsyncSession, conversation_id: str, sku: str, quantity: int) -> Cart:
    """Make the line of ``sku`` exactly ``quantity`` units; 0 removes it. Raises CartError, also
    when the SKU is not in the cart."""
    cart = await get_cart(session, conversation_id)
    line = next((x for x in cart.lines if x.sku == sku), None)
    if line is None:
        raise CartError(_("%(sku)s is not in the cart") % {"sku": sku})
    if quantity == 0:
        cart.lines.remove(line)
    else:
        _check(quantity)
        line.quantity = quantity
    await session.flush()
    return cart


async def remove(session: AsyncSession, conversation_id: str, skus: list[str]) -> Cart:
    """Remove the lines of ``skus`` (SKUs not in the cart are ignored)."""
    cart = await get_cart(session, conversation_id)
    for line in [x for x in cart.lines if x.sku in skus]:
        cart.lines.remove(line)
    await session.flush()
    return cart


def items(cart: Cart) -> list[CartItem]:
    """The cart as pricing input, with today's catalog prices, in the order lines were added; each named as the
    customer reads it (:attr:`bot.core.models.Product.display_name`, in the active language)."""
    return [
        CartItem(x.sku, x.product.display_name, x.product.category, x.product.price_minor, x.quantity)
        for x in cart.lines
    ]
