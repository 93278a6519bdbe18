"""Which products a customer message refers to: the one resolver for every action that takes products.

A message names products by SKU (``sku`` entities), by product name (``product`` entities), or refers
to some of the products in play (those just shown, or the cart's) by category ("remove the chairs")
or not at all ("add it", "how much is it?").
"""

from sqlalchemy.ext.asyncio import AsyncSession

from bot.commerce.search import find_by_name, get_product
from bot.core.business import get_vocabulary
from bot.core.models import Product
from bot.core.turn import Turn

SHOWN = 5  # the products a reference like "it" can mean: the first five last shown


async def shown_products(session: AsyncSession, turn: Turn) -> list[Product]:
    """The products last shown (slot ``shown_skus``, the first five) that are still in the catalog."""
    return [p for p in [await get_product(session, sku) for sku in (turn.slot("shown_skus") or [])[:SHOWN]] if p]


async def mentioned_products(session: AsyncSession, turn: Turn, candidates: list[Product]) -> list[Product]:
    """The products ``turn``'s message names: by SKU (unknown SKUs left out); else by product name, those
    among ``candidates`` when some are, else every catalog match; else ``candidates`` narrowed to the
    categories the message names (entities or catalog words), all of them when it names none."""
    skus, names = turn.entity("sku"), turn.entity("product")
    if skus:
        return [p for p in [await get_product(session, sku) for sku in skus] if p]
    if names:
        named = await find_by_name(session, names[0])
        in_candidates = [p for p in named if p.sku in {c.sku for c in candidates}]
        return in_candidates or named
    vocabulary = await get_vocabulary(session)
    categories = {c for c in map(vocabulary.category_of, turn.entity("category")) if c}
    categories |= set(vocabulary.extract(turn.text).categories)
    return [p for p in candidates if p.category in categories] if categories else candidates


def named_product(turn: Turn) -> str | None:
    """The SKU or product name the message gives (for "I don't know <it>"), if any."""
    return (turn.entity("sku") or turn.entity("product") or [None])[0]
