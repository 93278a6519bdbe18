"""The customer's language for every text Closer composes: gettext catalogs and Babel's locale formats.

The language is per turn: ``actions.base`` activates ``Turn.language`` around an action's run
(:data:`bot.core.language.ACTIVE`, a ``ContextVar``), and the functions here read it. Unset or not one of
``company.yml``'s ``languages``, it is the business's ``default_language``. The msgids in the code and templates
are English (:data:`SOURCE_LANGUAGE`); every other language the business serves has a catalog, the default one
too (a business selling in Russian first has ``default_language: ru``).

Catalogs: ``bot/texts/locale/<language>/LC_MESSAGES/closer.po`` (editable by a translator),
compiled to ``closer.mo`` by ``make translations`` (``scripts/setup.sh`` runs it); ``make
translations-extract`` refreshes ``closer.pot`` and merges new msgids into every ``.po``.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from decimal import Decimal
from functools import cache
from gettext import GNUTranslations, NullTranslations
from pathlib import Path

from babel import Locale
from babel.dates import format_date as babel_format_date
from babel.numbers import format_currency, format_decimal, get_currency_symbol
from num2words import CONVERTER_CLASSES, num2words

from bot.core.business import get_company
from bot.core.caches import on_reset, process_cache
from bot.core.language import ACTIVE
from bot.core.money import exponent
from bot.core.money import format_money as format_money_plain

LOCALE_DIR = Path(__file__).parent / "locale"
DOMAIN = "closer"
SOURCE_LANGUAGE = "en"  # the language of the msgids


def current() -> str:
    """The active language (ISO 639-1): the one activated for this turn if the business serves it, else
    ``company.yml``'s ``default_language``."""
    company = get_company()
    language = ACTIVE.get()
    return language if language in company.languages else company.default_language


@contextmanager
def use(language: str | None) -> Iterator[str]:
    """Activate ``language`` (None: the default) for the texts composed inside the block; yields the
    language in effect (see :func:`current`)."""
    token = ACTIVE.set(language)
    try:
        yield current()
    finally:
        ACTIVE.reset(token)


@process_cache
def _catalogs() -> dict[str, NullTranslations]:
    """The compiled catalog of every language the business serves but English, the msgids'. Raises
    FileNotFoundError naming the missing ``.mo`` (run ``make translations``)."""
    catalogs: dict[str, NullTranslations] = {SOURCE_LANGUAGE: NullTranslations()}
    for language in get_company().languages:
        if language == SOURCE_LANGUAGE:
            continue
        path = LOCALE_DIR / language / "LC_MESSAGES" / f"{DOMAIN}.mo"
        if not path.is_file():
            raise FileNotFoundError(f"no compiled catalog {path}: run `make translations`")
        with path.open("rb") as fp:
            catalogs[language] = GNUTranslations(fp)
    return catalogs


def gettext(message: str) -> str:
    """``message`` (an English msgid) in the active language; the msgid itself while a
    catalog lacks it."""
    return _catalogs()[current()].gettext(message)


_ = gettext


def ngettext(singular: str, plural: str, n: int) -> str:
    """The form of ``singular``/``plural`` for ``n`` in the active language (Russian and Arabic have
    more than two; the catalog's ``Plural-Forms`` decides). Not formatted: callers fill in ``n``."""
    return _catalogs()[current()].ngettext(singular, plural, n)


@cache
def _locale(language: str) -> Locale:
    return Locale.parse(get_company().locales.get(language, language))


on_reset(_locale.cache_clear)  # it depends on the business (company.yml's locales)


def locale() -> Locale:
    """Babel's locale of the active language (``company.yml``'s ``locales``, e.g. ``ar`` → ``ar_AE``)."""
    return _locale(current())


def format_money(minor: int, currency: str) -> str:
    """Integer minor units of ISO 4217 ``currency`` for the active language: in English
    ``"AED 1,290.00"`` (:func:`bot.core.money.format_money`), otherwise Babel's currency format of the
    language's locale with the symbol ``company.yml``'s ``currency_symbols`` gives for it (Arabic:
    ``1,290.00 درهم`` between right-to-left marks; Russian: ``1 290,00 AED``). Raises MoneyError for an
    unknown currency."""
    company = get_company()
    language = current()
    if language == SOURCE_LANGUAGE:
        return format_money_plain(minor, currency)
    major = Decimal(minor).scaleb(-exponent(currency))
    text = format_currency(major, currency, locale=locale())
    symbol = company.currency_symbols.get(language)
    return text.replace(get_currency_symbol(currency, locale()), symbol) if symbol else text


def amount_in_words(minor: int, currency: str) -> str | None:
    """Integer minor units of ISO 4217 ``currency`` in words in the active language, as documents write them
    (``63074000, "RUB"`` in Russian → ``"Шестьсот тридцать тысяч семьсот сорок рублей 00 копеек"``), from num2words;
    None when num2words has no words for that currency in that language. Raises MoneyError for an unknown
    currency."""
    converter = CONVERTER_CLASSES.get(current())
    if converter is None or currency not in getattr(converter, "CURRENCY_FORMS", {}):
        return None
    major = Decimal(minor).scaleb(-exponent(currency))
    words = num2words(major, lang=current(), to="currency", currency=currency, cents=False, separator="")
    return words[:1].upper() + words[1:]


def format_number(value: int | Decimal) -> str:
    """A number with the active locale's grouping and decimal signs and every digit it has (``1,290`` / ``1 290``,
    ``2.1528`` / ``2,1528``)."""
    return format_decimal(value, locale=locale(), decimal_quantization=False)


def format_date(day: date) -> str:
    """A date in the active locale's long format: ``30 November 2026``, ``30 نوفمبر 2026``, ``30 ноября 2026 г.``"""
    return babel_format_date(day, "long", locale=locale())
