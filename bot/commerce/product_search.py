"""Product search for a free-text request: the SQL filters of :mod:`bot.commerce.search` combined with
semantic ranking over the ``products`` collection ("something comfortable for long hours at the
desk" → ergonomic chairs first). Products, prices and stock are always the DB's rows."""

import asyncio
from dataclasses import replace

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.answering.index import PRODUCTS
from bot.answering.retrieval import get_retriever
from bot.commerce.search import ProductQuery, SearchResult, Vocabulary, search_products, sorted_by
from bot.core.models import Product
from bot.core.settings import get_settings

CANDIDATES = 200  # filtered products ranked semantically


def _doc_id(sku: str) -> str:
    return f"product:{sku}"


async def find_products(
    session: AsyncSession, vocabulary: Vocabulary, query: ProductQuery, text: str, limit: int = 5
) -> SearchResult:
    """Products for ``query`` (filters) and ``text`` (the customer's words).

    - No words beyond the filters, or filters and a sort the customer asked for ("the cheapest standing
      desks"): :func:`bot.commerce.search.search_products` as is (price order, or the sort's).
    - Filters and free words: the filtered products (relaxed as usual when none match), ranked
      by cosine between ``text`` and each product's document.
    - Free words only: hybrid retrieval over the whole products collection, products under
      ``product_min_similarity`` dropped, then the budget applied; an empty result means nothing
      was close enough; in the sort's order when the customer asked for one.
    """
    if not vocabulary.free_words(text) or (query.sort and query.has_criteria()):
        return await search_products(session, query, limit)
    retriever = await asyncio.to_thread(get_retriever, PRODUCTS)
    if query.has_criteria():
        result = await search_products(session, query, CANDIDATES)
        ranked = await retriever.arank(
            text, [_doc_id(p.sku) for p in result.products if _doc_id(p.sku) in retriever.documents]
        )
        order = {doc_id: n for n, (doc_id, _) in enumerate(ranked)}
        products = sorted(result.products, key=lambda p: order.get(_doc_id(p.sku), len(order)))
        return replace(result, products=products[:limit])
    hits = await retriever.asearch(text, k=limit * 4)
    skus = [h.metadata["sku"] for h in hits if h.similarity >= get_settings().product_min_similarity]
    rows = {p.sku: p for p in (await session.scalars(select(Product).where(Product.sku.in_(skus)))).all()}
    products = [
        rows[s]
        for s in skus
        if s in rows and (query.max_price_minor is None or rows[s].price_minor <= query.max_price_minor)
    ]
    return SearchResult(sorted_by(products[:limit], query.sort) if query.sort else products[:limit], query)
