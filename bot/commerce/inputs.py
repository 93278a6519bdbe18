"""What customers type as numbers: quantities, budgets, amounts written like money, discounts asked for,
order numbers; whether a message is code or a question.

Every function reads free text (a whole message, an entity value or a slot) and returns a value or
None; none raises. Money is integer minor units of the given ISO 4217 currency; a discount is a
``Decimal`` fraction (30% → ``Decimal("0.3")``).
"""

import re
from decimal import Decimal, InvalidOperation
from functools import lru_cache

from bot.core.money import MoneyError, parse_amount

MAX_QUANTITY = 100_000
_NUMBER_WORDS = {
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
    "fifteen": 15,
    "twenty": 20,
    "thirty": 30,
    "forty": 40,
    "fifty": 50,
    "hundred": 100,
    "a dozen": 12,
    "dozen": 12,
}
# Amounts of money in a message: "1500 AED", "AED 1,500", "under 700", "budget 2k". NLU sometimes
# tags such a number as a quantity; a number written like money is never a quantity.
_BUDGET_WORDS = (
    r"\b(?:under|below|less than|up to|within|around|about|max(?:imum)?|budget(?: of| is)?)\s+(\d[\d,.]*k?)\b"
)
# "order number 4471", "order #A-2291", "order no. 88120", "my order 4471", "ref: SO-1043"
_ORDER_NUMBER = re.compile(
    r"\b(?:order|ref(?:erence)?|invoice)\s*(?:number|num|no\.?|nr\.?|id|#)?\s*[:#]?\s*([A-Z]{0,4}-?\d[\d-]{2,})",
    re.IGNORECASE,
)
_PERCENT = re.compile(r"(\d{1,2}(?:[.,]\d+)?)\s*(?:%|percent|per cent|pc\b)", re.IGNORECASE)


def quantity(text: str) -> int | None:
    """A whole number of units from 1 to 100,000 (``"12"``, ``"twelve chairs"``, ``"about 1,200 units"``),
    or None (also for 0 or more than 100,000)."""
    lowered = (text or "").lower()
    digits = re.search(r"\d[\d,]*", lowered)
    if digits:
        value = int(digits.group().replace(",", ""))
    else:
        value = next((n for word, n in _NUMBER_WORDS.items() if re.search(rf"\b{word}\b", lowered)), 0)
    return value if 1 <= value <= MAX_QUANTITY else None


def budget(text: str, currency: str) -> int | None:
    """A budget in minor units of ``currency`` (``"around 1.5k"`` → 150000 for AED), or None when
    there is no positive amount."""
    try:
        value = parse_amount(text, currency)
    except MoneyError:
        return None
    return value or None


def money_amounts(text: str, currency_words: tuple[str, ...]) -> list[str]:
    """The numbers ``text`` writes like money, as written: next to one of ``currency_words`` (lower case,
    e.g. ``Company.money_words``) or after a budget word (``"I need 12 chairs, around 1500 AED"`` →
    ``["1500"]``; ``"under 2k"`` → ``["2k"]``)."""
    return [m for groups in _money(currency_words).findall(text or "") for m in groups if m]


@lru_cache(maxsize=8)
def _money(currency_words: tuple[str, ...]) -> re.Pattern[str]:
    words = "|".join(re.escape(word) for word in sorted(currency_words, key=len, reverse=True))
    marked = [rf"(?<!\w)(?:{words})\s*(\d[\d,.]*k?)\b", rf"\b(\d[\d,.]*k?)\s*(?:{words})(?!\w)"] if words else []
    return re.compile("(?i)(?:" + "|".join([*marked, _BUDGET_WORDS]) + ")")


def discount(values: list[str], text: str) -> Decimal | None:
    """The discount asked for as a fraction between 0 and 1 exclusive (``"30"`` → 0.3): the first percentage
    written in ``text`` (``"10%"``, ``"12.5 percent"``, ``"15 pc"``), else the first of ``values`` (NLU
    ``discount`` entities, in percent) that is one; None when there is none. The text comes first because NLU
    may tag another number of the message as a discount ("40 chairs if you give us 35% off": 35%, not 40%)."""
    for raw in [*_PERCENT.findall(text or ""), *values]:
        number = re.sub(r"[^\d.,]", "", raw).replace(",", ".")
        try:
            value = Decimal(number) / 100
        except InvalidOperation:
            continue
        if 0 < value < 1:
            return value
    return None


# Code pasted into a chat (SQL, script tags, shell): a statement keyword with its object and a statement end or
# comment, or a tag. Furniture requests have neither; "'; DROP TABLE products; --" names no meeting table.
_CODE = re.compile(
    r"(\b(?:drop|delete|insert|update|select|union|alter|create|truncate)\b.*\b(?:table|from|into|set|database)\b"
    r".*(?:;|--|/\*))|(?:;\s*--)|(?:</?\s*(?:script|iframe|img|svg)\b)",
    re.IGNORECASE | re.DOTALL,
)


def looks_like_code(text: str) -> bool:
    """Whether ``text`` is code (an SQL statement, a script tag) rather than a customer's request."""
    return bool(_CODE.search(text or ""))


_QUESTION_WORDS = frozenset(
    {"how", "what", "who", "whom", "whose", "why", "where", "when", "which", "are", "is", "do", "does", "did"}
    | {"can", "could", "will", "would", "shall", "should", "may"}
)


def looks_like_question(text: str) -> bool:
    """Whether ``text`` asks something: it ends with "?" or starts with a question word ("how are you",
    "what's up", "are you open today"). "Sara Khan", "within two weeks" and "Gulf Trading LLC" do not."""
    value = (text or "").strip()
    words = value.lower().split(maxsplit=1)
    return value.endswith("?") or bool(words and re.split(r"['’]", words[0])[0].strip(",.!") in _QUESTION_WORDS)


def order_number(text: str) -> str | None:
    """The order number written after "order", "ref" or "invoice" (``"order number 4471"`` → ``"4471"``,
    ``"order #SO-1043"`` → ``"SO-1043"``): at least 3 characters, with a digit first after an optional
    letter prefix; None when there is none."""
    match = _ORDER_NUMBER.search(text or "")
    return match.group(1).upper() if match else None


def clean_order_number(value: str) -> str | None:
    """An order number as NLU tagged it (``"#SO-1043"`` → ``"SO-1043"``): without ``#``, ``:`` or spaces around
    it, upper case; None when nothing is left."""
    cleaned = (value or "").strip().strip("#:.,").strip().upper()
    return cleaned or None
