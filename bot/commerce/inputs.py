"""What customers type as numbers: quantities, budgets, amounts written like money, discounts asked for,
order numbers; whether a message is code or a question.

Every function reads free text (a whole message, an entity value or a slot) and returns a value or
None; none raises. Money is integer minor units of the given ISO 4217 currency; a discount is a
``Decimal`` fraction (30% → ``Decimal("0.3")``).
"""

import re
from decimal import Decimal, InvalidOperation
from functools import lru_cache

import yaml

from bot.core.caches import process_cache
from bot.core.money import MoneyError, parse_amount

MAX_QUANTITY = 100_000
# Arabic-Indic and Persian digits (١٢ / ۱۲), the Arabic decimal and thousands separators and percent sign
_WESTERN = str.maketrans(
    {**{chr(0x0660 + i): str(i) for i in range(10)}, **{chr(0x06F0 + i): str(i) for i in range(10)}}
    | {"\u066b": ".", "\u066c": ",", "\u066a": "%", "\u060c": ","}
)


def western(text: str) -> str:
    """``text`` with Eastern Arabic digits, separators and percent signs written the Western way
    (``"١٢ كرسي بـ ١٬٥٠٠"`` → ``"12 كرسي بـ 1,500"``)."""
    return (text or "").translate(_WESTERN)


@process_cache
def _number_words() -> dict[str, int]:
    """Number words customers write for quantities, every language's: ``number_words`` of
    ``knowledge/vocabulary.yml`` and of each ``vocabulary.<language>.yml`` (word → value, lower case)."""
    from bot.core.settings import get_settings  # settings read the environment: only on first use

    words: dict[str, int] = {}
    for path in sorted(get_settings().knowledge_dir.glob("vocabulary*.yml")):
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        words |= {str(word).lower(): int(value) for word, value in (raw.get("number_words") or {}).items()}
    return words


def _spelled_number(text: str) -> int:
    """The first number written in words in ``text`` (lower case): consecutive number words add up ("twenty
    five", "двадцать пять", "خمسة وعشرين"), "hundred"/"thousand" multiply what precedes them; 0 when none."""
    words = _number_words()
    phrases = sorted((w for w in words if " " in w), key=len, reverse=True)
    for phrase in phrases:  # "a dozen", "اثنا عشر": one token
        text = re.sub(rf"(?<!\w){re.escape(phrase)}(?!\w)", phrase.replace(" ", "_"), text)
    total, started = 0, False
    for token in re.findall(r"[\w_]+", text):
        word = token.replace("_", " ")
        if word not in words and word.startswith("و") and word[1:] in words:  # Arabic "and" joined to the word
            word = word[1:]
        if word in words:
            value = words[word]
            total = total * value if value in (100, 1000) and 0 < total < value else total + value
            started = True
        elif started and word not in ("and", "и"):
            break
    return total


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
    """A whole number of units from 1 to 100,000 (``"12"``, ``"١٢"``, ``"twelve chairs"``, ``"двенадцать"``,
    ``"اثنا عشر"``, ``"about 1,200 units"``), or None (also for 0 or more than 100,000). Number words come from
    the vocabulary files (:func:`_number_words`)."""
    lowered = western(text).lower()
    digits = re.search(r"\d[\d,]*", lowered)
    value = int(digits.group().replace(",", "")) if digits else _spelled_number(lowered)
    return value if 1 <= value <= MAX_QUANTITY else None


def budget(text: str, currency: str) -> int | None:
    """A budget in minor units of ``currency`` (``"around 1.5k"`` → 150000 for AED), or None when
    there is no positive amount."""
    try:
        value = parse_amount(western(text), currency)
    except MoneyError:
        return None
    return value or None


def money_amounts(text: str, currency_words: tuple[str, ...]) -> list[str]:
    """The numbers ``text`` writes like money, as written: next to one of ``currency_words`` (lower case,
    e.g. ``Company.money_words``) or after a budget word (``"I need 12 chairs, around 1500 AED"`` →
    ``["1500"]``; ``"under 2k"`` → ``["2k"]``)."""
    return [m for groups in _money(currency_words).findall(western(text)) for m in groups if m]


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
    for raw in [*_PERCENT.findall(western(text)), *map(western, values)]:
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
