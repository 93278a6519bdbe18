"""Money: integer minor units plus an ISO 4217 code; ``Decimal`` for parsing, never float."""

import re
from collections.abc import Iterable
from decimal import Decimal, InvalidOperation

from babel.numbers import get_currency_precision, get_currency_symbol, list_currencies

_CURRENCIES = frozenset(list_currencies())
# A thousand after the number: "1.5k", Russian "2 тыс."/"5 тысяч"/"3к", Arabic "5 آلاف"/"2 ألف"/"الف".
_THOUSAND = r"k|к|тыс[а-я]*\.?|[أاآ]لف|آلاف"
# A million after the number: "1.5 million", Russian "2 млн"/"3 миллиона", Arabic "2 مليون"/"ملايين".
_MILLION = r"million|mln|млн\.?|миллион[а-я]*|مليون|ملايين"
# Digits grouped by commas ("1,500") or, as Russian writes them, by spaces ("500 000", also no-break and thin spaces).
_GROUPED = r"\d{1,3}(?:[ \u00a0\u202f]\d{3})+(?![\d,.])"
_AMOUNT = re.compile(rf"({_GROUPED}|\d[\d,]*(?:\.\d+)?)\s*(?:({_THOUSAND})|({_MILLION}))?(?!\w)", re.IGNORECASE)


class MoneyError(ValueError):
    """Raised for an unknown currency code or an amount that cannot be money."""


def exponent(currency: str) -> int:
    """Number of minor-unit digits of an ISO 4217 currency (AED → 2). Raises MoneyError if unknown."""
    if currency not in _CURRENCIES:
        raise MoneyError(f"unknown ISO 4217 currency code {currency!r}")
    return get_currency_precision(currency)


def to_minor(amount: Decimal, currency: str) -> int:
    """Major-unit ``amount`` → integer minor units. Raises MoneyError if negative or more precise
    than the currency allows (AED 12.345)."""
    scaled = amount.scaleb(exponent(currency))
    if amount < 0 or scaled != scaled.to_integral_value():
        raise MoneyError(f"{amount} is not a valid {currency} amount")
    return int(scaled)


def parse_amount(text: str, currency: str) -> int:
    """The first amount in free text (``"1,500"``, ``"around 1.5k AED"``, ``"SR 2,375"``, ``"до 2 тыс"``,
    ``"500 000 ₽"``, ``"1.5 млн"``, ``"5 آلاف درهم"``; digits already Western) in minor units of ``currency``.
    Raises MoneyError when there is none."""
    match = _AMOUNT.search(text or "")
    if not match:
        raise MoneyError(f"no amount in {text!r}")
    try:
        value = Decimal(re.sub(r"[,\s]", "", match.group(1)))
    except InvalidOperation as exc:
        raise MoneyError(f"no amount in {text!r}") from exc
    if match.group(2):
        value *= 1000
    elif match.group(3):
        value *= 1_000_000
    return to_minor(value.quantize(Decimal(1).scaleb(-exponent(currency))), currency)


def currency_words(currency: str, languages: Iterable[str]) -> tuple[str, ...]:
    """How an amount of ``currency`` may be marked in a message written in any of ``languages``
    (ISO 639-1 codes): its ISO 4217 code and its symbol in each language (Babel's CLDR data), lower
    case, without bidirectional marks. ``"AED", ["en", "ar"]`` → ``("aed", "د.إ.")``; ``"RUB", ["ru"]``
    → ``("rub", "₽")``. Raises MoneyError for an unknown currency, babel's UnknownLocaleError for an
    unknown language."""
    exponent(currency)
    symbols = (get_currency_symbol(currency, language).strip("\u200e\u200f\u061c ") for language in languages)
    return tuple(dict.fromkeys(word.lower() for word in (currency, *symbols) if word))


def format_money(minor: int, currency: str) -> str:
    """``129000, "AED"`` → ``"AED 1,290.00"``."""
    digits = exponent(currency)
    major = Decimal(minor).scaleb(-digits)
    return f"{currency} {major:,.{digits}f}"
