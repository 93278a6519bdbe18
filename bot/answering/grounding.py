"""The post-check every LLM answer must pass before a customer sees it (truth rules), and the extraction of the
figures, SKUs and links a text states (also used by :mod:`bot.answering.rephrasing` to keep a template's facts).

Context is only what Closer itself knows: the retrieved passages and :class:`Facts` from the DB (catalog prices
and stock, what the pricing rules produced for the customer's cart, the rates of ``pricing.yml``). The customer's
message never counts: "Done! You get 90% off [P1]" after "give me 90% off" is refused. An answer is refused, each
time for a :class:`Rule` kept in its :class:`Problem`, when it

- cites no passage, or a passage id it was not given;
- states a figure that is in neither the passages nor the facts (:attr:`Rule.CUSTOMER_FIGURE` when only the
  customer wrote it);
- states a price or percentage that is not a price or percentage of the passages or facts;
- grants a discount the pricing rules did not produce for this cart (any "approved", "you get", "we can
  offer"… sentence about a discount whose percentages are not the cart's discounts; one without a figure too);
- states a price for a product (named by SKU or name) that is not its catalog price or a price the pricing
  rules produced for its cart line, or a discounted price the pricing rules did not produce;
- states a stock figure for a product that is not its stock, says an out-of-stock product is in stock, or names
  a SKU that is in neither the passages nor the facts;
- is mostly a verbatim copy of the passages (:func:`verbatim_share`; the extractive answer says the same with
  its source);
- repeats its instructions (a prompt-extraction attack).

The sentence rules read English (the knowledge's language); an answer in another language is still held to the
figure, price and citation rules: numbers are read in Arabic-Indic digits and with Russian grouping ("١٥٠",
"2 000", "1 290,00" are 150, 2000 and 1290), a number next to one of the business's words for its currency in any
of its languages ("150 درهم", "150 дирхамов") is a price, and "процентов", "بالمئة", "٪" mark percentages.
"""

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from bot.commerce.pricing import PricedCart, PricingRules
from bot.core.business import get_company
from bot.core.caches import process_cache
from bot.core.models import Product
from bot.core.money import format_money

CITATION = re.compile(r"\[(P\d+)\]")
_PLACEHOLDER = re.compile(r"\[(?:P\d+|EMAIL_\d+|PHONE_\d+)\]")
_NUMBER = re.compile(r"\d[\d,]*(?:\.\d+)?")
# Arabic-Indic and Eastern Arabic-Indic digits, the Arabic thousands and decimal separators and percent sign
_WESTERN = str.maketrans("٠١٢٣٤٥٦٧٨٩۰۱۲۳۴۵۶۷۸۹٬٫٪", "01234567890123456789,.%")
_SPACE_GROUPED = re.compile(r"(?<!\d)\d{1,3}(?:[ \u00a0\u202f]\d{3})+(?!\d)")  # "2 000", "1 290,00" (Russian)
_DECIMAL_COMMA = re.compile(r"(?<=\d),(?=\d{1,2}(?!\d))")  # "1290,00", "99,5" (Russian); "1,290" groups
_PERCENT_WORDS = r"%|percent\b|per cent\b|процент\w*|بالمئة|بالمائة|في المئة|في المائة"
# A number with a percent sign or word after it, or a currency code or sign before or after it.
_PRICE_LIKE = re.compile(
    rf"(?:\b[A-Z]{{3}}|[$€£])\s?(\d[\d,]*(?:\.\d+)?)|(\d[\d,]*(?:\.\d+)?)\s?(?:{_PERCENT_WORDS}|[A-Z]{{3}}\b)"
)
_PERCENT = re.compile(rf"(\d[\d,]*(?:\.\d+)?)\s?(?:{_PERCENT_WORDS})", re.IGNORECASE)
_MONEY = re.compile(r"(?:\b[A-Z]{3}|[$€£])\s?(\d[\d,]*(?:\.\d+)?)|(\d[\d,]*(?:\.\d+)?)\s?[A-Z]{3}\b")
SKU = re.compile(r"\b[A-Za-z]{2}-\d{4}\b")  # the sku regex of data/nlu/synonyms.yml
LINK = re.compile(r"https?://[^\s<>\"'()\[\]]*[^\s<>\"'()\[\].,;:!?]")
_WORD = re.compile(r"\w+")
_SENTENCE = re.compile(r"(?<=[.!?؟])\s+|\n+")
ECHO_WORDS = 8  # this many consecutive words of the instructions in an answer are an echo of them

# A sentence grants a discount when it has a discount word and a grant phrase, and is neither a question, a
# negation nor a deferral to a manager.
_DISCOUNT = re.compile(
    r"discount|rebate|reduction|markdown|special price|lower price|price cut|(?:%|\bpercent|\bper cent)\s+off\b"
    r"|\boff (?:the|your|each|all|every|this|that)\b",
    re.IGNORECASE,
)
_GRANT = re.compile(
    r"\b(?:approv\w*|grant\w*|appl(?:y|ied|ies)|give you|giving you|gave you|you(?:'ll|'ve| will| have)? "
    r"(?:get|got|receive|have|are getting)|(?:i|we) can (?:do|offer|give)|(?:i|we)(?:'ll|'ve| will| have) "
    r"(?:offer\w*|give|given|take|taken|appl\w+)|offer you|agreed|deal|done|unlocked|is yours|for you|confirm\w*)\b",
    re.IGNORECASE,
)
_NOT_A_GRANT = re.compile(
    r"\b(?:not|no|never|cannot|can't|won't|don't|isn't|unable|only (?:a|our|the) (?:sales )?manager"
    r"|managers? (?:can|could|will|would|may|must|has to|have to|needs? to|to)|needs? (?:a |the )?(?:manager|approval)"
    r"|(?:by|from) (?:a|our|the|your) (?:sales |account )?manager|approval from)\b",
    re.IGNORECASE,
)
# A bare number said to be a price: "costs 620", "the price is 1", "now 999", "only 99".
_PRICE_NUMBER = re.compile(
    r"\b(?:price[ds]?|costs?|costing|now|only|just)\b(?:\s+(?:is|of|at|be|just|only|for))*\s*:?\s*(\d[\d,]*(?:\.\d+)?)",
    re.IGNORECASE,
)
# A number said to be on hand: "12 in stock", "12 units available", "we have 12"; and after "in stock" or
# "stock:", each "<Warehouse> <n>" ("in stock: Abu Dhabi 8, Dubai 30").
_STOCK_NUMBER = re.compile(
    r"(\d[\d,]*)\s+(?:[a-z]+\s+){0,2}?(?:in stock|available|left|on hand)\b"
    r"|\b(?:stock of|stock level|we have|there are)\b[:\s]*(\d[\d,]*)",
)
_STOCK_LIST = re.compile(r"\b(?:in stock|stock)\b\s*[:(]?(.*)", re.IGNORECASE)
_WAREHOUSE_COUNT = re.compile(r"\b[A-Z][a-z]+:?\s+(\d[\d,]*)\b")
_IN_STOCK = re.compile(r"\b(?:in stock|available now|ready to ship|on hand)\b", re.IGNORECASE)
_OUT_OF_STOCK = re.compile(r"\b(?:out of stock|not in stock|no stock|made to order|not available)\b", re.IGNORECASE)

VERBATIM_NGRAM = 6
"""Word run length that counts as copied: six words in a row of a passage in the answer are a quotation; shorter
runs ("2–4 business days of order") are how any faithful paraphrase names a fact."""
VERBATIM_MAX_SHARE = 0.7
"""The largest share of an answer's words that may lie in copied runs (:data:`VERBATIM_NGRAM` words or more of the
passages). Above it the answer is mostly a copy: it adds nothing the extractive answer (the passage's best
sentences with their source) does not give, costs a call, and may quote a sentence out of its condition. An answer
that names facts in its own words stays well below (the test answers: under 0.5)."""
VERBATIM_MIN_WORDS = 12
"""Answers shorter than this are not measured: one short sentence quoting a fact is an answer, not a copy."""


class Rule(StrEnum):
    """Why an answer was refused; the value is what logs and the recorded ``fallback_reason`` count by."""

    NO_CITATION = "no citation"
    UNKNOWN_CITATION = "unknown citation"
    UNGROUNDED_FIGURE = "ungrounded figure"
    CUSTOMER_FIGURE = "customer's figure"
    UNGROUNDED_PRICE = "ungrounded price or percentage"
    DISCOUNT_GRANT = "discount grant"
    PRODUCT_PRICE = "product price"
    PRODUCT_STOCK = "product stock"
    UNKNOWN_SKU = "unknown sku"
    VERBATIM = "verbatim copy"
    INSTRUCTIONS = "repeats its instructions"


@dataclass(frozen=True)
class Problem:
    """One reason an answer may not be shown: its ``rule`` and a sentence for logs (``str()`` gives it)."""

    rule: Rule
    detail: str

    def __str__(self) -> str:
        return self.detail


@dataclass(frozen=True)
class ProductFacts:
    """What the DB says of one product, as normalised figures (:func:`figures`): ``prices`` its unit price excl.
    VAT, and, when it is in the cart, the net unit price, line subtotal and line net the pricing rules produced;
    ``stock`` units per warehouse and in total."""

    sku: str
    name: str
    prices: frozenset[str]
    stock: frozenset[str]

    @property
    def in_stock(self) -> bool:
        return bool(self.stock - {"0"})

    def named_in(self, sentence: str) -> bool:
        """Whether ``sentence`` names this product: its SKU, or its name up to the first comma ("ErgoPro
        Ergonomic Chair" of "ErgoPro Ergonomic Chair, black")."""
        base = self.name.split(",")[0].strip()
        return bool(
            re.search(rf"\b{re.escape(self.sku)}\b", sentence, re.IGNORECASE)
            or (base and re.search(rf"\b{re.escape(base)}\b", sentence, re.IGNORECASE))
        )


@dataclass(frozen=True)
class Facts:
    """The DB's side of the context. ``lines`` are the product lines the LLM was shown; ``products`` their facts;
    ``discounts`` the percentages the pricing rules produced for the cart's lines (what may be stated as granted);
    ``amounts`` the money figures the pricing rules produced (cart subtotal, discount, net, VAT, total; each cart
    line's unit price, net unit price, subtotal and net);
    ``rates`` the percentages, amounts and quantities of ``pricing.yml`` (segments, volume tiers, cap, VAT,
    approval amount), which may be stated as policy but are never granted by saying them."""

    lines: tuple[str, ...] = ()
    products: tuple[ProductFacts, ...] = ()
    discounts: frozenset[str] = frozenset()
    amounts: frozenset[str] = frozenset()
    rates: frozenset[str] = frozenset()

    @classmethod
    def of(
        cls, lines: Iterable[str], products: Iterable[Product], priced: PricedCart | None, rules: PricingRules
    ) -> "Facts":
        """The facts of ``products`` (the cart's and those shown), the cart as the pricing rules ``priced`` it
        (None: no cart) and ``rules``."""
        lines_by_sku = {line.sku: line for line in (priced.lines if priced else ())}
        facts = []
        for product in {p.sku: p for p in products}.values():
            prices = {_money(product.price_minor, product.currency)}
            line = lines_by_sku.get(product.sku)
            if line is not None:
                prices |= {
                    _money(line.subtotal_minor, product.currency),
                    _money(line.net_minor, product.currency),
                    _money(line.net_minor // line.quantity, product.currency),
                    _money(-(-line.net_minor // line.quantity), product.currency),
                }
            levels = product.stock_by_warehouse()
            stock = {str(q) for q in levels.values()} | {str(sum(levels.values()))}
            facts.append(ProductFacts(product.sku, product.name, frozenset(prices), frozenset(stock)))
        discounts, amounts = set(), set()
        if priced is not None:
            discounts = {_pct(line.discount_pct) for line in priced.lines if line.discount_pct}
            totals = (priced.subtotal_minor, priced.discount_minor, priced.net_minor, priced.vat_minor)
            amounts = {_money(m, priced.currency) for m in (*totals, priced.total_minor)}
            amounts |= {f for p in facts if p.sku in lines_by_sku for f in p.prices}
        rates = {_pct(p) for p in (*rules.segments.values(), rules.max_bot_discount, rules.vat_rate)}
        rates |= {_pct(t.discount_pct) for t in rules.volume_tiers} | {str(t.min_quantity) for t in rules.volume_tiers}
        rates |= {_money(rules.approval_order_minor, rules.currency), str(rules.quote_validity_days)}
        return cls(tuple(lines), tuple(facts), frozenset(discounts), frozenset(amounts), frozenset(rates - {"0"}))

    def figures(self) -> set[str]:
        """Every figure the facts hold."""
        found = figures("\n".join(self.lines)) | set(self.discounts) | set(self.amounts) | set(self.rates)
        for product in self.products:
            found |= product.prices | product.stock | figures(product.sku)
        return found

    def prices(self) -> set[str]:
        """Every price and percentage the facts hold."""
        found = price_figures("\n".join(self.lines)) | set(self.discounts) | set(self.amounts) | set(self.rates)
        for product in self.products:
            found |= product.prices
        return found


def _money(minor: int, currency: str) -> str:
    [figure] = figures(format_money(minor, currency))
    return figure


def _pct(fraction: Decimal) -> str:
    [figure] = figures(f"{fraction * 100:f}")
    return figure


def _western(text: str) -> str:
    """``text`` with its numbers written as :data:`_NUMBER` reads them: Western digits, "," grouping, "." decimals.
    Numbers gathered from several places are joined by newlines, never spaces, which group digits here."""
    grouped = _SPACE_GROUPED.sub(lambda m: re.sub(r"\s", "", m.group()), text.translate(_WESTERN))
    return _DECIMAL_COMMA.sub(".", grouped)


@process_cache
def _local_money() -> re.Pattern[str]:
    """A number before or after one of the business's words for its currency in any of its languages
    (:attr:`bot.core.business.Company.money_words`: "150 درهم", "150 дирхамов", "1500 dirhams")."""
    words = "|".join(map(re.escape, sorted(get_company().money_words, key=len, reverse=True)))
    number = r"(\d[\d,]*(?:\.\d+)?)"
    return re.compile(rf"{number}\s?(?:{words})(?!\w)|(?<!\w)(?:{words})\s?{number}", re.IGNORECASE)


def figures(text: str) -> set[str]:
    """Numbers in ``text``, normalised so that "1,290.00", "1290", "1290.0", "1 290,00" and "١٢٩٠" compare equal
    and "08" equals "8"; citation markers and PII placeholders are not figures."""
    found = set()
    for raw in _NUMBER.findall(_PLACEHOLDER.sub(" ", _western(text))):
        number = raw.replace(",", "").rstrip(".")
        if "." in number:
            number = number.rstrip("0").rstrip(".")
        found.add(number.lstrip("0") or "0")
    return found


def price_figures(text: str) -> set[str]:
    """The figures of ``text`` (as :func:`figures` normalises them) that are prices or percentages:
    "AED 1,290.00", "1290 AED", "$5", "150 درهم", "35%", "35 percent", "35 процентов"."""
    plain = _PLACEHOLDER.sub(" ", _western(text))
    return figures("\n".join(a or b for a, b in [*_PRICE_LIKE.findall(plain), *_local_money().findall(plain)]))


def money_figures(text: str) -> set[str]:
    """The figures of ``text`` with a currency code, sign or word: "AED 1,290.00", "1290 AED", "$5", "150 درهم"."""
    plain = _PLACEHOLDER.sub(" ", _western(text))
    return figures("\n".join(a or b for a, b in [*_MONEY.findall(plain), *_local_money().findall(plain)]))


def percent_figures(text: str) -> set[str]:
    """The figures of ``text`` followed by a percent sign or word: "35%", "35 percent", "35 процентов"."""
    return figures("\n".join(_PERCENT.findall(_western(text))))


def skus(text: str) -> set[str]:
    """The SKUs ``text`` names, upper-cased ("oc-1006" → "OC-1006")."""
    return {s.upper() for s in SKU.findall(text)}


def links(text: str) -> set[str]:
    """The http(s) links of ``text``, without trailing punctuation."""
    return set(LINK.findall(text))


def sentences(text: str) -> list[str]:
    """``text`` cut at sentence ends and line breaks, citation markers kept."""
    return [s.strip() for s in _SENTENCE.split(text) if s.strip()]


def repeats(answer: str, instructions: str, words: int = ECHO_WORDS) -> bool:
    """Whether ``answer`` has ``words`` consecutive words of ``instructions`` (case and punctuation aside)."""
    said = " ".join(_WORD.findall(answer.lower()))
    told = _WORD.findall(instructions.lower())
    return any(f" {' '.join(told[i : i + words])} " in f" {said} " for i in range(len(told) - words + 1))


def verbatim_share(answer: str, passages: Sequence[str], n: int = VERBATIM_NGRAM) -> float:
    """The share (0–1) of ``answer``'s words that lie in a run of ``n`` or more consecutive words also found, in
    that order, in one of ``passages`` (case and punctuation aside; citation markers and placeholders left out).
    0 for an answer shorter than ``n`` words."""
    said = _WORD.findall(_PLACEHOLDER.sub(" ", answer).lower())
    if len(said) < n:
        return 0.0
    grams = {
        tuple(words[i : i + n])
        for passage in passages
        for words in [_WORD.findall(passage.lower())]
        for i in range(len(words) - n + 1)
    }
    copied = [False] * len(said)
    for i in range(len(said) - n + 1):
        if tuple(said[i : i + n]) in grams:
            copied[i : i + n] = [True] * n
    return sum(copied) / len(said)


def _grants(sentence: str) -> bool:
    return (
        not sentence.rstrip().endswith("?")
        and bool(_DISCOUNT.search(sentence) and _GRANT.search(sentence))
        and not _NOT_A_GRANT.search(sentence)
    )


def _claims(sentence: str, facts: Facts, passage_skus: set[str]) -> list[Problem]:
    """The problems of one sentence's claims about discounts, product prices and stock."""
    found = []
    bare = re.sub(r"\s+(?=[.!?,;:])", "", _PLACEHOLDER.sub("", sentence)).strip()
    if _grants(sentence):
        granted = percent_figures(sentence)
        if not granted or not granted <= facts.discounts:
            found.append(Problem(Rule.DISCOUNT_GRANT, f"grants a discount the pricing rules did not produce: {bare!r}"))
    money = money_figures(sentence)
    named = [p for p in facts.products if p.named_in(sentence)]
    produced = set(facts.amounts).union(*(p.prices for p in named))  # a named product's list price may be said
    if _DISCOUNT.search(sentence) and money - produced:
        wrong = ", ".join(sorted(money - produced))
        found.append(
            Problem(Rule.PRODUCT_PRICE, f"states a discounted price the pricing rules did not produce: {wrong}")
        )
    for sku in sorted(skus(sentence) - {p.sku.upper() for p in facts.products}):
        if sku not in passage_skus:
            found.append(Problem(Rule.UNKNOWN_SKU, f"names {sku}, which is not in the passages or products"))
        elif money or _PRICE_NUMBER.search(sentence) or _IN_STOCK.search(sentence):
            found.append(Problem(Rule.PRODUCT_PRICE, f"states a price or stock of {sku}, which is not in the products"))
    if not named:
        return found
    who = ", ".join(p.sku for p in named)
    prices = set(facts.amounts).union(*(p.prices for p in named))
    quoted = money | figures("\n".join(_PRICE_NUMBER.findall(bare)))
    found.extend(
        Problem(Rule.PRODUCT_PRICE, f"states {figure} for {who}, which is not its price")
        for figure in sorted(quoted - prices)
    )
    stock = set().union(*(p.stock for p in named))
    plain = SKU.sub(" ", bare)
    said = [a or b for a, b in _STOCK_NUMBER.findall(plain)]
    for listed in _STOCK_LIST.findall(plain):
        said += _WAREHOUSE_COUNT.findall(listed)
    on_hand = figures("\n".join(said))
    found.extend(
        Problem(Rule.PRODUCT_STOCK, f"states a stock of {figure} for {who}, which is not its stock")
        for figure in sorted(on_hand - stock)
    )
    if _IN_STOCK.search(sentence) and not _OUT_OF_STOCK.search(sentence) and not any(p.in_stock for p in named):
        found.append(Problem(Rule.PRODUCT_STOCK, f"says {who} is in stock; the catalog has none"))
    return found


def check(
    answer: str,
    passage_ids: set[str],
    passages: Sequence[str],
    facts: Facts | None = None,
    question: str = "",
    instructions: str = "",
) -> list[Problem]:
    """Why ``answer`` may not be shown (empty when it may), by the rules of the module docstring. ``passages``
    are the retrieved texts the LLM was given (in their ``[P<n>]`` order, ids in ``passage_ids``); ``facts`` the
    DB's; ``question`` the customer's message (it names a figure's source, never grounds one); ``instructions``
    the system prompt's rules."""
    facts = facts or Facts()
    found = []
    cited = set(CITATION.findall(answer))
    if not cited:
        found.append(Problem(Rule.NO_CITATION, "no citation"))
    found.extend(Problem(Rule.UNKNOWN_CITATION, f"cites unknown passage {c}") for c in sorted(cited - passage_ids))
    text = "\n".join(passages)
    known = figures(text) | facts.figures()
    unknown = figures(answer) - known
    asked = figures(question)
    for figure in sorted(unknown):
        if figure in asked:
            detail = f"figure {figure} is only in the customer's message, not in the passages or products"
            found.append(Problem(Rule.CUSTOMER_FIGURE, detail))
        else:
            found.append(Problem(Rule.UNGROUNDED_FIGURE, f"figure {figure} is not in the context"))
    found.extend(
        Problem(Rule.UNGROUNDED_PRICE, f"price or percentage {f} is not in the passages or products")
        for f in sorted(price_figures(answer) - price_figures(text) - facts.prices() - unknown)
    )
    for sentence in sentences(answer):
        found.extend(p for p in _claims(sentence, facts, skus(text)) if p not in found)
    share = verbatim_share(answer, passages)
    if len(_WORD.findall(_PLACEHOLDER.sub(" ", answer))) >= VERBATIM_MIN_WORDS and share > VERBATIM_MAX_SHARE:
        found.append(Problem(Rule.VERBATIM, f"copies the passages verbatim ({share:.0%} of its words)"))
    if instructions and repeats(answer, instructions):
        found.append(Problem(Rule.INSTRUCTIONS, "repeats its instructions"))
    return found
