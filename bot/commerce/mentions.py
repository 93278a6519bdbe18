"""Which products a customer message refers to: the one resolver for every action that takes products.

A message names products by SKU (``sku`` entities), by product name (``product`` entities), or refers to
some of the products in play:

- by position or as a group (``mention`` entities, made canonical by the synonyms in
  ``data/nlu/references.yml``: ``first`` … ``fifth``, ``last``, ``both``, ``all``): "the second one",
  "both of them", resolved against the list last shown (slot ``listed_skus``, else ``shown_skus``);
- by a superlative (``sort`` entities, :data:`bot.commerce.search.SORTS`): "the cheaper one", "the biggest of
  those" picks from that list; with a category named ("the cheapest chair") from the catalog;
- by category ("remove the chairs") or not at all ("add it", "how much is it?"): the candidates (the products
  of the last answer, or the cart's lines) narrowed to the categories named.

One product named several times (NLU's regex extractor and its CRF both tag the SKU, or the customer repeats it)
is one product.

Products come from the catalog (table ``products``) through the ``AsyncSession`` a function is given; nothing is
written. A failing DB raises SQLAlchemy's errors; nothing else is raised here.
"""

import difflib
import re
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.commerce.search import SORTS, ProductQuery, find_by_name, get_product, search_products, sorted_by
from bot.core.business import get_vocabulary
from bot.core.models import Product
from bot.core.turn import Outcome, Turn
from bot.texts import messages, replies

SHOWN = 10  # the products a reference can mean: the first ten last shown
ORDINALS = {"first": 0, "second": 1, "third": 2, "fourth": 3, "fifth": 4, "last": -1}
GROUPS = {"both": 2, "all": SHOWN}  # how many of the list a group reference takes
NEAREST = 3  # products offered instead of an unknown SKU


@dataclass(frozen=True)
class Mentioned:
    """What a message refers to. ``products`` in the order named, each once. ``exact`` when the message picked
    them one by one (SKUs, "the first one", "both of them"): act on every one; otherwise they are matches of
    a name, a category or "it", and several mean the customer should choose. ``unknown`` holds the SKUs named
    that the catalog does not have, upper-cased, in the order named."""

    products: list[Product]
    exact: bool = False
    unknown: tuple[str, ...] = ()


def _distinct(products: list[Product]) -> list[Product]:
    return list({p.sku: p for p in reversed(products)}.values())[::-1]


async def products_of(session: AsyncSession, skus: list[str]) -> list[Product]:
    """The catalog products of ``skus`` (case-insensitive) in that order, each once; unknown SKUs left out."""
    return _distinct([p for p in [await get_product(session, sku) for sku in skus] if p])


async def shown_products(session: AsyncSession, turn: Turn) -> list[Product]:
    """The products of the last answer (slot ``shown_skus``, the first :data:`SHOWN`) still in the catalog."""
    return await products_of(session, (turn.slot("shown_skus") or [])[:SHOWN])


async def listed_products(session: AsyncSession, turn: Turn) -> list[Product]:
    """The list "the second one" counts in: the last answer that showed several products (slot ``listed_skus``),
    else the products of the last answer."""
    listed = turn.slot("listed_skus") or turn.slot("shown_skus") or []
    return await products_of(session, listed[:SHOWN])


def shown(products: list[Product]) -> list[tuple[str, list[str]]]:
    """The slots an answer showing ``products`` sets, as (slot, SKUs in the order shown): ``shown_skus`` and, for
    several, ``listed_skus``."""
    skus = [p.sku for p in products]
    return [("shown_skus", skus), *([("listed_skus", skus)] if len(skus) > 1 else [])]


async def _referenced(session: AsyncSession, turn: Turn, listed: list[Product], categories: set[str]) -> list[Product]:
    """The products ``turn`` picks by position, group or superlative (see the module docstring)."""
    picked: list[Product] = []
    for value in turn.entity("mention"):
        value = value.lower()
        if value in ORDINALS and listed and ORDINALS[value] < len(listed):
            picked.append(listed[ORDINALS[value]])
        elif value in GROUPS:
            picked += listed[: GROUPS[value]]
    for value in turn.entity("sort"):
        if value not in SORTS:
            continue
        if categories:
            query = ProductQuery(categories=tuple(sorted(categories)), sort=value)
            picked += (await search_products(session, query, limit=1)).products
        elif listed:
            picked.append(sorted_by(listed, value)[0])
    return picked


async def mentioned_products(
    session: AsyncSession, turn: Turn, candidates: list[Product], listed: list[Product] | None = None
) -> Mentioned:
    """The products ``turn``'s message refers to (its ``sku``, ``product``, ``mention``, ``sort`` and ``category``
    entities, and catalog words in its text), in this order of precedence:

    1. SKUs and references to ``listed`` (default ``candidates``) by position, group or superlative — exact
       (none when a position is beyond the list);
    2. a product name: the matches among ``candidates`` when some are, else every catalog match;
    3. ``candidates`` narrowed to the categories the message names (entities or catalog words), all of them
       when it names none.
    """
    vocabulary = await get_vocabulary(session)
    categories = {c for c in map(vocabulary.category_of, turn.entity("category")) if c} - vocabulary.shadowed(turn.text)
    categories |= set(vocabulary.extract(turn.text).categories)
    skus = list(dict.fromkeys(s.strip().upper() for s in turn.entity("sku")))
    found = await products_of(session, skus)
    unknown = tuple(s for s in skus if s not in {p.sku.upper() for p in found})
    picked = _distinct(found + await _referenced(session, turn, candidates if listed is None else listed, categories))
    if picked or unknown or turn.entity("mention"):  # "the fifth one" of three is none of them
        return Mentioned(picked, exact=True, unknown=unknown)
    names = turn.entity("product")
    if names:
        named = await find_by_name(session, names[0])
        in_candidates = [p for p in named if p.sku in {c.sku for c in candidates}]
        return Mentioned(in_candidates or named)
    return Mentioned([p for p in candidates if p.category in categories] if categories else candidates)


def named_product(turn: Turn) -> str | None:
    """The SKU or product name the message gives (for "I don't know <it>"), if any."""
    return (turn.entity("sku") or turn.entity("product") or [None])[0]


async def nearest_products(session: AsyncSession, turn: Turn, sku: str) -> list[Product]:
    """Catalog products to offer instead of the unknown ``sku``: the SKUs spelt most like it (a typo,
    "OC-1O06"), else the search the rest of the message asks for ("ZZ-1 in black oak"), else the cheapest of
    the category in play (slot ``category``); at most :data:`NEAREST`, possibly none."""
    skus = (await session.scalars(select(Product.sku))).all()
    close = difflib.get_close_matches(sku.upper(), [s.upper() for s in skus], n=NEAREST, cutoff=0.75)
    if close:
        return await products_of(session, close)
    vocabulary = await get_vocabulary(session)
    query = vocabulary.extract(re.sub(re.escape(sku), " ", turn.text, flags=re.IGNORECASE))
    if not query.has_criteria() and turn.slot("category"):
        query = ProductQuery(categories=(turn.slot("category"),))
    if not query.has_criteria():
        return []
    return (await search_products(session, query, limit=NEAREST)).products


async def not_found(session: AsyncSession, turn: Turn, mentioned: Mentioned) -> Outcome:
    """The reply when ``mentioned`` holds no product: an unknown SKU named as unknown with the
    :func:`nearest_products` (or the categories when there are none), an unknown name, or "which product?"."""
    if mentioned.unknown:
        sku = mentioned.unknown[0]
        nearest = await nearest_products(session, turn, sku)
        if not nearest:
            labels = (await get_vocabulary(session)).labels
            return Outcome().say(
                response="utter_unknown_product", product=sku, buttons=replies.category_buttons(labels)
            )
        outcome = Outcome().say(
            text=messages.render("unknown_sku", sku=sku, lines=[replies.product_line(p) for p in nearest]),
            buttons=replies.product_buttons(nearest),
        )
        for slot, value in shown(nearest):
            outcome.set(slot, value)
        return outcome
    named = named_product(turn)
    if named:
        return Outcome().say(response="utter_unknown_product", product=named)
    return Outcome().say(response="utter_which_product")
