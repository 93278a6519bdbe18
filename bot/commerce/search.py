"""Product search: filters pulled from free text and NLU entities, applied as SQL on the catalog.

The vocabulary comes from the business itself: category words from ``knowledge/vocabulary.yml`` (and
``vocabulary.<language>.yml`` for each other language it serves),
colours, materials and features from the ``products`` table. Matching is a spaCy ``PhraseMatcher``
on a blank English pipeline (no model download).
"""

import asyncio
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

import spacy
import yaml
from spacy.matcher import PhraseMatcher
from spacy.util import filter_spans
from sqlalchemy import String, cast, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.commerce import inputs
from bot.core.language import ACTIVE
from bot.core.models import Product

_NLP = spacy.blank("en")
_WORD = re.compile(r"[\w-]{3,}")
# A category word after one of these names where the product goes, not what is wanted:
# "a lamp for the desk" is fine, but "comfortable at the desk" or "a mat under the chair" is not a desk or a chair.
_PLACE_WORDS = {"at", "on", "under", "beside", "near", "behind", "around", "by", "with", "to", "from"}
_DETERMINERS = {"the", "a", "an", "my", "our", "your", "his", "her", "their", "this", "that", "its"}
# Words of asking and shopping that say nothing about the product itself.
_SHOPPING_WORDS = {
    "need",
    "want",
    "looking",
    "look",
    "show",
    "buy",
    "get",
    "find",
    "like",
    "something",
    "anything",
    "please",
    "hello",
    "thanks",
    "recommend",
    "suggest",
    "options",
    "office",
    "furnish",
    "furnishing",
    "new",
    "equip",
    "fit",
    "setting",
    "budget",
    "price",
    "cheap",
    "units",
    "pieces",
    "team",
    "people",
}


@dataclass(frozen=True)
class ProductQuery:
    """What the customer asked for. ``max_price_minor`` is per unit, in the catalog currency's
    minor units; ``quantity`` is how many units they need."""

    categories: tuple[str, ...] = ()
    colours: tuple[str, ...] = ()
    materials: tuple[str, ...] = ()
    features: tuple[str, ...] = ()
    name: str | None = None
    max_price_minor: int | None = None
    quantity: int | None = None
    sort: str | None = None  # one of SORTS: the order the customer asked for ("cheapest", "biggest")

    def has_criteria(self) -> bool:
        """Whether the customer named anything to search for (a budget or quantity alone is not enough)."""
        return bool(self.categories or self.colours or self.materials or self.features or self.name)

    def relaxed(self) -> list[tuple[str, "ProductQuery"]]:
        """Looser versions of this query to try, in order, when it finds nothing: (what was dropped, query)."""
        steps = []
        if self.colours or self.materials or self.features:
            steps.append(("colour, material and features", replace(self, colours=(), materials=(), features=())))
        if self.max_price_minor is not None:
            last = steps[-1][1] if steps else self
            steps.append(("budget", replace(last, max_price_minor=None)))
        return steps


# Superlatives a customer can sort by (NLU ``sort`` entity values, canonical through data/nlu synonyms) → the
# catalog column or attribute expression and whether the biggest comes first. Size is the footprint, width × depth.
SORTS = {
    "cheapest": (Product.price_minor, False),
    "dearest": (Product.price_minor, True),
    "largest": (Product.attributes["width_cm"].as_float() * Product.attributes["depth_cm"].as_float(), True),
    "smallest": (Product.attributes["width_cm"].as_float() * Product.attributes["depth_cm"].as_float(), False),
}


def sort_value(product: Product, sort: str) -> float | None:
    """``product``'s value for ``sort``: its price in minor units, or its footprint in cm² (None when its
    width or depth is unknown)."""
    if sort in ("cheapest", "dearest"):
        return product.price_minor
    attributes = product.attributes or {}
    width, depth = attributes.get("width_cm"), attributes.get("depth_cm")
    return float(width) * float(depth) if width and depth else None


def sorted_by(products: list[Product], sort: str) -> list[Product]:
    """``products`` in ``sort``'s order (a key of :data:`SORTS`) as the SQL of :func:`search_products` orders
    them: unknown sizes last, ties by SKU."""
    descending = SORTS[sort][1]

    def key(product: Product) -> tuple[bool, float, str]:
        value = sort_value(product, sort)
        return (value is None, -(value or 0) if descending else (value or 0), product.sku)

    return sorted(products, key=key)


def _plural(term: str) -> str:
    if term.endswith(("s", "x", "ch", "sh")):
        return term + "es"
    if term.endswith("y") and not term.endswith(("ay", "ey", "oy")):
        return term[:-1] + "ies"
    return term + "s"


class CategoryLabels(Mapping[str, str]):
    """Category id → the label customers see, in the turn's language (:data:`bot.core.language.ACTIVE`), the
    default language's label where a language's vocabulary has none (or the turn has no language)."""

    def __init__(self, by_language: dict[str, dict[str, str]], default_language: str):
        self._by_language = by_language
        self._default = by_language[default_language]

    def __getitem__(self, category: str) -> str:
        return self._by_language.get(ACTIVE.get() or "", {}).get(category) or self._default[category]

    def __iter__(self) -> Iterator[str]:
        return iter(self._default)

    def __len__(self) -> int:
        return len(self._default)


@dataclass
class Vocabulary:
    """Catalog words → filter values, in every language the business serves. ``labels`` maps category id →
    label shown to customers (in the customer's language); ``money_words`` (lower case) mark an amount as
    money of the business's currency (``Company.money_words``)."""

    labels: CategoryLabels
    money_words: tuple[str, ...]
    _categories: PhraseMatcher = field(repr=False)
    _attributes: PhraseMatcher = field(repr=False)
    _values: dict[str, tuple[str, str]] = field(repr=False)  # match id → (kind, canonical value)

    @classmethod
    async def load(
        cls,
        session: AsyncSession,
        vocabulary_file: Path,
        money_words: tuple[str, ...],
        languages: tuple[str, ...] = (),
        default_language: str = "en",
    ) -> "Vocabulary":
        """Build from ``vocabulary.yml`` (the default language's words, English plurals added), each other
        language's ``vocabulary.<language>.yml`` beside it when there is one (its words as written: list every
        form customers type), the catalog's distinct colours, materials and features, and the words of the
        business's currency. A business without a catalog may have no ``vocabulary.yml``: no categories then.
        Raises OSError or yaml.YAMLError for an unreadable file, KeyError when a language's file names a category
        ``vocabulary.yml`` lacks."""
        raw = {"categories": {}}
        if await asyncio.to_thread(vocabulary_file.is_file):
            raw = yaml.safe_load(await asyncio.to_thread(vocabulary_file.read_text, encoding="utf-8"))
        others = {}
        for language in languages:
            path = vocabulary_file.with_name(f"{vocabulary_file.stem}.{language}{vocabulary_file.suffix}")
            if language != default_language and path.is_file():
                others[language] = yaml.safe_load(await asyncio.to_thread(path.read_text, encoding="utf-8")) or {}
        values: dict[str, tuple[str, str]] = {}
        categories = PhraseMatcher(_NLP.vocab, attr="LOWER")
        attributes = PhraseMatcher(_NLP.vocab, attr="LOWER")

        def add(matcher: PhraseMatcher, kind: str, value: str, terms: list[str], plurals: bool = True) -> None:
            key = f"{kind}:{value}"
            values[key] = (kind, value)
            forms = {form for term in terms for form in (term.lower(), _plural(term.lower()) if plurals else "")}
            matcher.add(key, [_NLP.make_doc(form) for form in sorted(forms - {""})])

        for category, spec in raw["categories"].items():
            add(categories, "category", category, [category.replace("_", " "), *spec["terms"]])
        for language, spec in others.items():
            for category, words in (spec.get("categories") or {}).items():
                if category not in raw["categories"]:
                    raise KeyError(f"vocabulary.{language}.yml: category {category!r} is not in {vocabulary_file.name}")
                add(categories, "category", category, list(words.get("terms") or ()), plurals=False)
        rows = (await session.execute(select(Product.attributes))).scalars().all()
        catalog = {
            "colour": {a["colour"] for a in rows if a.get("colour")},
            "material": {a["material"] for a in rows if a.get("material")},
            "feature": {f for a in rows for f in a.get("features", [])},
        }
        synonyms = {str(k).lower(): str(v) for k, v in (raw.get("synonyms") or {}).items()}
        for spec in others.values():
            synonyms |= {str(k).lower(): str(v) for k, v in (spec.get("synonyms") or {}).items()}
        for kind, known in catalog.items():
            for value in known:
                terms = [value] + [word for word, target in synonyms.items() if target == value]
                add(attributes, kind, value, terms)
        labels = {default_language: {category: spec["label"] for category, spec in raw["categories"].items()}}
        for language, spec in others.items():
            labels[language] = {
                c: words["label"] for c, words in (spec.get("categories") or {}).items() if "label" in words
            }
        return cls(CategoryLabels(labels, default_language), money_words, categories, attributes, values)

    def extract(self, text: str) -> ProductQuery:
        """Categories, colours, materials and features named in ``text`` (longest match wins)."""
        doc = _NLP.make_doc(text or "")
        found: dict[str, list[str]] = {"category": [], "colour": [], "material": [], "feature": []}
        for matcher in (self._categories, self._attributes):
            spans = filter_spans(matcher(doc, as_spans=True))
            for span in spans:
                kind, value = self._values[span.label_]
                if kind == "category" and _names_a_place(doc, span.start):
                    continue
                if value not in found[kind]:
                    found[kind].append(value)
        return ProductQuery(
            categories=tuple(found["category"]),
            colours=tuple(found["colour"]),
            materials=tuple(found["material"]),
            features=tuple(found["feature"]),
        )

    def shadowed(self, text: str) -> set[str]:
        """Categories whose words occur in ``text`` only inside a longer catalog term ("desk" in "desk lamps")
        or naming a place ("at the desk"): words NLU may tag that do not say what the customer wants."""
        doc = _NLP.make_doc(text or "")
        every = {self._values[span.label_][1] for span in self._categories(doc, as_spans=True)}
        return every - set(self.extract(text).categories)

    def free_words(self, text: str) -> list[str]:
        """Content words of ``text`` that no filter took: what only semantic ranking can use
        ("comfortable", "long", "hours" in "something comfortable for long hours at the desk")."""
        doc = _NLP.make_doc(text or "")
        taken = {
            i
            for matcher in (self._categories, self._attributes)
            for span in filter_spans(matcher(doc, as_spans=True))
            if not _names_a_place(doc, span.start)
            for i in range(span.start, span.end)
        }
        return [
            t.lower_
            for t in doc
            if t.i not in taken
            and t.is_alpha
            and len(t) > 2
            and not t.is_stop
            and t.lower_ not in _SHOPPING_WORDS
            and t.lower_ not in self.money_words
        ]

    def category_of(self, text: str) -> str | None:
        """The category id an entity value or word names (``"chairs"`` → ``"office_chair"``), if any."""
        if text in self.labels:
            return text
        categories = self.extract(text).categories
        return categories[0] if categories else None


def _names_a_place(doc, start: int) -> bool:
    """Whether the words before token ``start`` are a place preposition ("at the", "under my")."""
    i = start - 1
    while i >= 0 and doc[i].lower_ in _DETERMINERS:
        i -= 1
    return i >= 0 and doc[i].lower_ in _PLACE_WORDS


def query_from(
    vocabulary: Vocabulary,
    text: str,
    entities: dict[str, list[str]],
    currency: str,
    last_category: str | None = None,
    known_quantity: str | None = None,
) -> ProductQuery:
    """The search a customer message asks for: filters found in ``text`` by the vocabulary merged
    with NLU ``entities`` (entity name → values; a category whose words the vocabulary reads as part of another
    term, "desk" in "desk lamps", left out: :meth:`Vocabulary.shadowed`). A message that names only attributes ("in
    black") refines ``last_category``; the budget (per unit, in minor units of ``currency``) comes
    from this message (an NLU ``budget`` entity, else an amount written like money: next to one of the
    vocabulary's ``money_words``, "1500 AED", or after a budget word, "under 700"), the quantity from it
    or from ``known_quantity``; a number written like money is never taken as a quantity, whatever NLU
    tagged."""
    found = vocabulary.extract(text)
    money = inputs.money_amounts(text, vocabulary.money_words)
    shadowed = vocabulary.shadowed(text)
    named = [c for c in map(vocabulary.category_of, entities.get("category", [])) if c and c not in shadowed]
    categories = tuple(dict.fromkeys([*named, *found.categories]))
    if not categories and last_category and (found.colours or found.materials or found.features):
        categories = (last_category,)
    budgets = entities.get("budget", []) or money
    quantities = [q for q in entities.get("quantity", []) if q not in money]
    known_quantity = None if known_quantity in money else known_quantity
    names = entities.get("product", [])
    sort = next((value for value in entities.get("sort", []) if value in SORTS), None)
    if not categories and last_category and sort and not names:  # "show me the cheapest ones"
        categories = (last_category,)
    return replace(
        found,
        categories=categories,
        colours=tuple(dict.fromkeys([*entities.get("colour", []), *found.colours])),
        materials=tuple(dict.fromkeys([*entities.get("material", []), *found.materials])),
        name=names[0] if names and not categories else None,
        max_price_minor=inputs.budget(budgets[0], currency) if budgets else None,
        quantity=inputs.quantity(quantities[0] if quantities else known_quantity or ""),
        sort=sort,
    )


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _statement(query: ProductQuery, limit: int):
    stmt = select(Product)
    if query.categories:
        stmt = stmt.where(Product.category.in_(query.categories))
    if query.colours:
        stmt = stmt.where(Product.attributes["colour"].as_string().in_(query.colours))
    if query.materials:
        stmt = stmt.where(Product.attributes["material"].as_string().in_(query.materials))
    for feature in query.features:
        stmt = stmt.where(
            cast(Product.attributes["features"], String).like(f'%"{_like_escape(feature)}"%', escape="\\")
        )
    for word in _WORD.findall(query.name or ""):
        stmt = stmt.where(func.lower(Product.name).like(f"%{_like_escape(word.lower())}%", escape="\\"))
    if query.max_price_minor is not None:
        stmt = stmt.where(Product.price_minor <= query.max_price_minor)
    if query.sort in SORTS:
        column, descending = SORTS[query.sort]
        stmt = stmt.order_by((column.desc() if descending else column.asc()).nulls_last())
    elif query.max_price_minor is not None:
        stmt = stmt.order_by(Product.price_minor.desc())
    else:
        stmt = stmt.order_by(Product.price_minor)
    return stmt.order_by(Product.sku).limit(limit)


@dataclass
class SearchResult:
    """Products found (at most the limit) and what had to be dropped from the query to find them."""

    products: list[Product]
    query: ProductQuery
    dropped: str | None = None


async def search_products(session: AsyncSession, query: ProductQuery, limit: int = 5) -> SearchResult:
    """Catalog products matching ``query``: in ``query.sort``'s order when the customer asked for one
    ("cheapest", "biggest"), else within a budget the dearest first (closest to what the customer wants to
    spend), otherwise the cheapest first. When nothing matches, the query is
    relaxed step by step (see :meth:`ProductQuery.relaxed`) and ``dropped`` says what went."""
    products = list((await session.scalars(_statement(query, limit))).all())
    if products or not query.has_criteria():
        return SearchResult(products, query)
    for dropped, looser in query.relaxed():
        products = list((await session.scalars(_statement(looser, limit))).all())
        if products:
            return SearchResult(products, looser, dropped)
    return SearchResult([], query)


async def get_product(session: AsyncSession, sku: str) -> Product | None:
    """The product with this SKU (case-insensitive), or None."""
    return await session.scalar(select(Product).where(func.upper(Product.sku) == sku.strip().upper()))


async def find_by_name(session: AsyncSession, name: str, limit: int = 5) -> list[Product]:
    """Products whose name contains every word (3+ letters) of ``name``, cheapest first."""
    if not _WORD.findall(name or ""):
        return []
    return list((await session.scalars(_statement(ProductQuery(name=name), limit))).all())


async def cheaper_alternatives(session: AsyncSession, shown_skus: list[str], limit: int = 5) -> list[Product]:
    """Products in the categories of ``shown_skus`` priced below the cheapest of them: those sharing
    the most features with the shown ones first (an ergonomic chair for an ergonomic chair), then
    the dearest (the smallest step down). Empty if nothing cheaper exists."""
    shown = list((await session.scalars(select(Product).where(Product.sku.in_(shown_skus)))).all())
    if not shown:
        return []
    cheapest = min(p.price_minor for p in shown)
    features = {f for p in shown for f in (p.attributes or {}).get("features", [])}
    stmt = select(Product).where(Product.category.in_({p.category for p in shown}), Product.price_minor < cheapest)
    cheaper = (await session.scalars(stmt)).all()

    def rank(product: Product) -> tuple[int, int, str]:
        shared = len(features & set((product.attributes or {}).get("features", [])))
        return (-shared, -product.price_minor, product.sku)

    return sorted(cheaper, key=rank)[:limit]
