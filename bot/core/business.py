"""The business Closer sells for, read from ``knowledge/`` once per process."""

import asyncio
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import yaml
from sqlalchemy.ext.asyncio import AsyncSession

from bot.commerce.search import Vocabulary
from bot.core.caches import on_reset, process_cache
from bot.core.money import currency_words
from bot.core.settings import get_settings

SALES_STAGES = (
    "greeting",
    "qualifying",
    "needs_analysis",
    "solution",
    "objection_handling",
    "quoting",
    "closing",
    "handoff",
)


@dataclass(frozen=True)
class Company:
    """Company facts from ``knowledge/company.yml``; ``vat_rate`` is a fraction (0.05 = 5%), ``languages``
    ISO 639-1 codes (``default_language`` among them), ``quote_terms`` language → format strings with ``{currency}``,
    ``{vat}`` and ``{valid_until}``."""

    name: str
    brand: str
    assistant_name: str
    currency: str
    vat_rate: Decimal
    phone: str
    email: str
    hours: str
    warehouses: tuple[str, ...]
    trn: str = ""
    trn_label: str = ""  # what the tax registration number is called on quotes ("TRN")
    address: str = ""
    website: str = ""
    timezone: str = "UTC"
    open_days: frozenset[int] = frozenset(range(7))  # weekday numbers, Monday = 0
    opens: time = time(0, 0)
    closes: time = time(23, 59)
    quote_validity_days: int = 30
    languages: tuple[str, ...] = ("en",)
    default_language: str = "en"  # a new customer's language, and that of the domain's unconditioned responses
    locales: dict[str, str] = field(default_factory=dict)  # language → Babel locale for formats ("ar" → "ar_AE")
    currency_symbols: dict[str, str] = field(default_factory=dict)  # language → how money is marked ("ar" → "د.إ.")
    currency_words: tuple[str, ...] = ()  # the business's own words for its currency ("dirhams", "dhs")
    quote_terms: dict[str, tuple[str, ...]] = field(default_factory=dict)
    taglines: dict[str, str] = field(default_factory=dict)  # language → the web chat header's line under the brand
    chat_placeholders: dict[str, str] = field(default_factory=dict)  # language → the web chat's empty message box
    requisites: tuple[str, ...] = ()  # lines under the seller on documents (registration numbers, bank details)
    amounts_in_words: bool = False  # documents also write the total in words (bot.texts.i18n.amount_in_words)
    quote_prefix: str = "Q"  # quotes are numbered <prefix>-<year>-<NNNN>
    invoice_prefix: str = "INV"  # invoices issued after a payment (bot.commerce.invoicing), numbered the same way
    contract_prefix: str = "C"  # and contracts

    @property
    def money_words(self) -> tuple[str, ...]:
        """Every word that marks an amount in a message as money of ``currency``, lower case: the code and
        its symbols in ``languages`` (:func:`bot.core.money.currency_words`), then ``currency_words``."""
        return tuple(
            dict.fromkeys(
                [*currency_words(self.currency, self.languages), *(word.lower() for word in self.currency_words)]
            )
        )

    def is_open(self, moment: datetime) -> bool:
        """Whether ``moment`` (timezone-aware) falls within business hours."""
        local = moment.astimezone(ZoneInfo(self.timezone))
        return local.weekday() in self.open_days and self.opens <= local.time() < self.closes

    def business_seconds(self, start: datetime, end: datetime) -> float:
        """Seconds of business hours between ``start`` and ``end`` (timezone-aware; 0 when ``end`` is not later)."""
        zone = ZoneInfo(self.timezone)
        start, end = start.astimezone(zone), end.astimezone(zone)
        total = 0.0
        day = start.date()
        while day <= end.date():
            if day.weekday() in self.open_days:
                opens = datetime.combine(day, self.opens, tzinfo=zone)
                closes = datetime.combine(day, self.closes, tzinfo=zone)
                total += max(0.0, (min(closes, end) - max(opens, start)).total_seconds())
            day += timedelta(days=1)
        return total

    def next_opening(self, moment: datetime) -> datetime:
        """The next time business hours begin after ``moment``, in the company's timezone."""
        local = moment.astimezone(ZoneInfo(self.timezone))
        for days in range(8):
            day = (local + timedelta(days=days)).date()
            start = datetime.combine(day, self.opens, tzinfo=local.tzinfo)
            if day.weekday() in self.open_days and start > local:
                return start
        raise ValueError("business_hours in company.yml has no open day")


@process_cache
def get_company() -> Company:
    """Raises OSError / KeyError / ValueError at start-up when ``company.yml`` is missing or incomplete."""
    raw = yaml.safe_load((get_settings().knowledge_dir / "company.yml").read_text(encoding="utf-8"))
    hours = raw["business_hours"]
    languages = tuple(raw.get("languages") or ("en",))
    default_language = raw.get("default_language", languages[0])
    if default_language not in languages:
        raise ValueError(f"company.yml: default_language {default_language!r} is not one of languages {languages}")
    return Company(
        name=raw["name"],
        brand=raw["brand"],
        assistant_name=raw.get("assistant_name", "Closer"),
        currency=raw["currency"],
        vat_rate=Decimal(str(raw["vat_rate"])),
        phone=raw["phone"],
        email=raw["email"],
        hours=f"{hours['days']} {hours['open']}–{hours['close']}",
        warehouses=tuple(raw["warehouses"]),
        trn=str(raw.get("trn", "")),
        trn_label=str(raw.get("trn_label", "")),
        address=(raw.get("showrooms") or [{}])[0].get("address", ""),
        website=raw.get("website", ""),
        timezone=hours["timezone"],
        open_days=_days(hours["days"]),
        opens=time.fromisoformat(hours["open"]),
        closes=time.fromisoformat(hours["close"]),
        quote_validity_days=int(raw["quote_validity_days"]),
        languages=languages,
        default_language=default_language,
        locales={str(k): str(v) for k, v in (raw.get("locales") or {}).items()},
        currency_symbols={str(k): str(v) for k, v in (raw.get("currency_symbols") or {}).items()},
        currency_words=tuple(raw.get("currency_words") or ()),
        quote_terms=_quote_terms(raw.get("quote_terms") or [], languages, default_language),
        taglines=_by_language(raw.get("tagline") or {}, default_language),
        chat_placeholders=_by_language(raw.get("chat_placeholder") or {}, default_language),
        requisites=tuple(str(line) for line in raw.get("requisites") or ()),
        amounts_in_words=bool(raw.get("amounts_in_words", False)),
        quote_prefix=str(raw.get("quote_prefix") or "Q"),
        invoice_prefix=str(raw.get("invoice_prefix") or "INV"),
        contract_prefix=str(raw.get("contract_prefix") or "C"),
    )


def _by_language(raw: str | dict, default_language: str) -> dict[str, str]:
    """A company.yml text given per language (a mapping) or in the default language (a plain text)."""
    return {str(k): str(v) for k, v in raw.items()} if isinstance(raw, dict) else {default_language: str(raw)}


def _quote_terms(raw: list | dict, languages: tuple[str, ...], default_language: str) -> dict[str, tuple[str, ...]]:
    """``quote_terms`` of company.yml, a list (the default language's terms) or a mapping language → list, as
    language → terms. Raises ValueError for a language the business does not serve."""
    by_language = raw if isinstance(raw, dict) else {default_language: raw}
    unknown = set(by_language) - set(languages)
    if unknown:
        raise ValueError(f"company.yml: quote_terms in {sorted(unknown)}, not one of languages {languages}")
    return {str(language): tuple(terms or ()) for language, terms in by_language.items()}


_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _days(spec: str) -> frozenset[int]:
    """``"Mon-Sat"`` or ``"Mon,Wed,Fri"`` → weekday numbers (Monday = 0). Raises ValueError."""
    days: set[int] = set()
    for part in spec.lower().replace(" ", "").split(","):
        first, _, last = part.partition("-")
        start, end = _WEEKDAYS.index(first[:3]), _WEEKDAYS.index((last or first)[:3])
        days.update(range(start, end + 1) if start <= end else [*range(start, 7), *range(end + 1)])
    return frozenset(days)


_vocabulary: Vocabulary | None = None
_vocabulary_lock = asyncio.Lock()


async def get_vocabulary(session: AsyncSession) -> Vocabulary:
    """The catalog vocabulary, built on first use and kept for the process (restart the action
    server after a catalog import that adds colours, materials or features; tests: caches.reset)."""
    global _vocabulary
    async with _vocabulary_lock:
        if _vocabulary is None:
            company = get_company()
            _vocabulary = await Vocabulary.load(
                session,
                get_settings().knowledge_dir / "vocabulary.yml",
                company.money_words,
                company.languages,
                company.default_language,
            )
    return _vocabulary


@on_reset
def _forget_vocabulary() -> None:
    global _vocabulary
    _vocabulary = None
