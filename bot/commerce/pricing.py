"""Pricing rules from ``knowledge/pricing.yml``: segment and volume discounts, VAT, the bot's
discount limit, manager approval and cross-sell suggestions.

Units: money is integer minor units of ``PricingRules.currency`` (ISO 4217; AED 1,290.00 is
``129000``), prices excluding VAT. Percentages are ``Decimal`` fractions (``Decimal("0.05")`` = 5%).

Discounts: a line's discount fraction is its customer segment's fraction + the volume tier
fraction for the line's quantity + the extra discount granted in the conversation, capped at
``max_bot_discount``. The bot never goes above the cap on its own: a request that would take any
line above it needs manager approval (:meth:`PricingRules.discount_request`), and so does an order
whose net total excl. VAT is above ``approval_order_amount`` (:meth:`PricingRules.needs_approval`).
Discounts beyond the cap are quoted by a manager, not by :meth:`PricingRules.price`.

Rounding rule: amounts are rounded to a whole minor unit, halves up (ROUND_HALF_UP: AED 0.005 →
AED 0.01), exactly twice:

- line subtotal = unit price × quantity (exact);
- line discount = round(line subtotal × line discount fraction);
- line net = line subtotal − line discount;
- VAT = round(Σ line net × VAT rate), once on the order's net total, as on a UAE tax invoice;
- total = Σ line net + VAT.

Errors: :class:`PricingError` (a ``ValueError``). For ``pricing.yml`` the message names the file
and the field (``segments.vip``, ``volume_tiers[1].min_quantity``); for a request it names the
argument or the SKU at fault.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import yaml

from bot.core.business import get_company
from bot.core.caches import process_cache
from bot.core.money import MoneyError, exponent, to_minor
from bot.core.settings import get_settings


class PricingError(ValueError):
    """An invalid ``pricing.yml`` (the message names the field) or an invalid pricing request."""


def round_half_up(amount: Decimal) -> int:
    """A non-negative ``amount`` of minor units rounded to a whole minor unit, halves up (2.5 → 3)."""
    return int(amount.quantize(Decimal(1), rounding=ROUND_HALF_UP))


@dataclass(frozen=True)
class CartItem:
    """One line to price: ``unit_price_minor`` ≥ 0 excl. VAT, ``quantity`` ≥ 1; ``category`` is a
    category id from ``vocabulary.yml``."""

    sku: str
    name: str
    category: str
    unit_price_minor: int
    quantity: int


@dataclass(frozen=True)
class PricedLine:
    """A priced line: ``subtotal_minor = unit_price_minor × quantity``, ``discount_minor =
    round(subtotal_minor × discount_pct)``, ``net_minor = subtotal_minor − discount_minor``."""

    sku: str
    name: str
    category: str
    quantity: int
    unit_price_minor: int
    subtotal_minor: int
    discount_pct: Decimal
    discount_minor: int
    net_minor: int


@dataclass(frozen=True)
class PricedCart:
    """A priced order. ``subtotal_minor``, ``discount_minor`` and ``net_minor`` are the sums over
    ``lines``; ``vat_minor = round(net_minor × vat_rate)``; ``total_minor = net_minor + vat_minor``.
    ``extra_discount_pct`` is the extra discount as asked for; each line shows what it got after
    the cap."""

    lines: tuple[PricedLine, ...]
    currency: str
    subtotal_minor: int
    discount_minor: int
    net_minor: int
    vat_rate: Decimal
    vat_minor: int
    total_minor: int
    extra_discount_pct: Decimal

    @property
    def discount_pct(self) -> Decimal:
        """The effective discount over the whole order, ``discount_minor / subtotal_minor`` (0 when
        the subtotal is 0). Not rounded: for display only."""
        return Decimal(self.discount_minor) / self.subtotal_minor if self.subtotal_minor else Decimal(0)


@dataclass(frozen=True)
class VolumeTier:
    """Lines of ``min_quantity`` units or more get ``discount_pct``."""

    min_quantity: int
    discount_pct: Decimal


@dataclass(frozen=True)
class Suggestion:
    """A category to suggest next, with ``reasons``: the sentence the bot may say about it, by language (ISO 639-1;
    empty when there is none). In pricing.yml ``reason`` is a sentence in the business's default language or a map
    of languages to sentences."""

    category: str
    reasons: tuple[tuple[str, str], ...] = ()  # (language, sentence) pairs: hashable, as the rules are

    def reason(self, language: str) -> str | None:
        """The sentence in ``language``, None when pricing.yml has none in it (never another language's)."""
        return dict(self.reasons).get(language)


@dataclass(frozen=True)
class DiscountDecision:
    """The answer to a customer asking for an extra discount.

    ``granted`` True: the bot gives ``granted_pct`` (the request) on top of the automatic discounts.
    ``granted`` False means *needs manager approval*, never a refusal; ``granted_pct`` is then 0.
    ``max_extra_pct`` is the most the bot could grant on its own for this cart (0 when some line is
    already at the cap), for a counter-offer. ``reason`` is one English sentence for logs and the
    manager's hand-off note."""

    granted: bool
    granted_pct: Decimal
    max_extra_pct: Decimal
    reason: str


@dataclass(frozen=True)
class PricingRules:
    """The rules of ``pricing.yml``. ``segments`` maps a segment name to its discount fraction and
    always holds ``"new"``; ``volume_tiers`` ascend; ``approval_order_minor`` is
    ``approval_order_amount`` in minor units; ``cross_sell_by_category`` maps a category id to its
    suggestions in file order; ``prepayment_pct`` is ``prepayment``, the share of a quote's total (incl. VAT) paid in
    advance through a payment link (:mod:`bot.payments`), None when pricing.yml has none (or "0"). Treat the mappings
    as read-only."""

    currency: str
    vat_rate: Decimal
    quote_validity_days: int
    segments: Mapping[str, Decimal]
    volume_tiers: tuple[VolumeTier, ...]
    max_bot_discount: Decimal
    approval_order_minor: int
    cross_sell_by_category: Mapping[str, tuple[Suggestion, ...]]
    prepayment_pct: Decimal | None = None

    @classmethod
    def load(cls, path: Path | str) -> "PricingRules":
        """Read and check a ``pricing.yml``. Raises PricingError naming the file and the field."""
        try:
            raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
            if not isinstance(raw, dict):
                raise PricingError("the file must be a YAML mapping of fields")
            return _parse(raw)
        except (OSError, yaml.YAMLError, PricingError) as exc:
            raise PricingError(f"{path}: {exc}") from exc

    def price(
        self, items: Iterable[CartItem], segment: str = "new", extra_discount_pct: Decimal = Decimal(0)
    ) -> PricedCart:
        """Price ``items`` for a customer of ``segment`` with an extra discount fraction granted in
        the conversation; every line's discount is capped at ``max_bot_discount``. An empty cart
        prices to zeros. Raises PricingError for an unknown segment, a negative extra discount, a
        quantity below 1 or a negative price."""
        extra = _requested(extra_discount_pct, "extra_discount_pct")
        lines = tuple(
            _priced_line(item, min(auto + extra, self.max_bot_discount))
            for item, auto in self._automatic(items, segment)
        )
        net = sum(line.net_minor for line in lines)
        vat = round_half_up(net * self.vat_rate)
        return PricedCart(
            lines=lines,
            currency=self.currency,
            subtotal_minor=sum(line.subtotal_minor for line in lines),
            discount_minor=sum(line.discount_minor for line in lines),
            net_minor=net,
            vat_rate=self.vat_rate,
            vat_minor=vat,
            total_minor=net + vat,
            extra_discount_pct=extra,
        )

    def discount_request(self, items: Iterable[CartItem], segment: str, requested_pct: Decimal) -> DiscountDecision:
        """Decide on a request for ``requested_pct`` extra, on top of the segment and volume
        discounts. Granted when every line's automatic discount (already capped) + the requested
        fraction stays within ``max_bot_discount`` (an empty cart: the requested fraction alone);
        otherwise it needs manager approval. Asking for 0 is always granted. Raises PricingError
        as :meth:`price` does."""
        requested = _requested(requested_pct, "requested_pct")
        automatic = [auto for _, auto in self._automatic(items, segment)]
        highest = min(max(automatic, default=Decimal(0)), self.max_bot_discount)
        room = self.max_bot_discount - highest
        cap = _percent(self.max_bot_discount)
        if requested <= room:
            return DiscountDecision(
                True, requested, room, f"{_percent(requested)} extra keeps every line within the bot's {cap} limit"
            )
        return DiscountDecision(
            False,
            Decimal(0),
            room,
            f"{_percent(requested)} extra would take a line to "
            f"{_percent(highest + requested)}, above the bot's {cap} limit: needs manager approval",
        )

    def needs_approval(self, cart: PricedCart) -> bool:
        """True when the order's net total excl. VAT is above ``approval_order_amount``."""
        return cart.net_minor > self.approval_order_minor

    def cross_sell(self, categories_in_cart: set[str]) -> list[Suggestion]:
        """Suggestions for the categories in the cart, in file order, each category once, leaving
        out categories already in the cart."""
        seen = set(categories_in_cart)
        suggestions = []
        for category, candidates in self.cross_sell_by_category.items():
            if category in categories_in_cart:
                for suggestion in candidates:
                    if suggestion.category not in seen:
                        seen.add(suggestion.category)
                        suggestions.append(suggestion)
        return suggestions

    def _automatic(self, items: Iterable[CartItem], segment: str) -> list[tuple[CartItem, Decimal]]:
        """Each item with its uncapped segment + volume discount fraction, after checking both."""
        if segment not in self.segments:
            raise PricingError(f"segment: {segment!r} is not one of {sorted(self.segments)}")
        result = []
        for item in items:
            if not isinstance(item.quantity, int) or item.quantity < 1:
                raise PricingError(f"{item.sku}: quantity must be a whole number of at least 1, not {item.quantity!r}")
            if not isinstance(item.unit_price_minor, int) or item.unit_price_minor < 0:
                raise PricingError(
                    f"{item.sku}: unit_price_minor must be a whole number of at least 0, not {item.unit_price_minor!r}"
                )
            tiers = [t.discount_pct for t in self.volume_tiers if item.quantity >= t.min_quantity]
            tier = max(tiers, default=Decimal(0))
            result.append((item, self.segments[segment] + tier))
        return result


def _reasons(value: Any) -> tuple[tuple[str, str], ...]:
    """A cross-sell ``reason`` of pricing.yml as (language, sentence) pairs: a sentence is the default language's."""
    if value is None:
        return ()
    if isinstance(value, dict):
        return tuple((str(language), str(text)) for language, text in value.items())
    return ((get_company().default_language, str(value)),)


@process_cache
def load_pricing() -> PricingRules:
    """The business's rules from ``<knowledge_dir>/pricing.yml``, read once per process. Raises
    PricingError."""
    return PricingRules.load(get_settings().knowledge_dir / "pricing.yml")


def _priced_line(item: CartItem, pct: Decimal) -> PricedLine:
    subtotal = item.unit_price_minor * item.quantity
    discount = round_half_up(subtotal * pct)
    return PricedLine(
        item.sku,
        item.name,
        item.category,
        item.quantity,
        item.unit_price_minor,
        subtotal,
        pct,
        discount,
        subtotal - discount,
    )


def _requested(pct: Decimal, name: str) -> Decimal:
    if not isinstance(pct, Decimal) or not pct.is_finite() or pct < 0:
        raise PricingError(f"{name}: must be a Decimal fraction of at least 0, not {pct!r}")
    return pct


def _percent(pct: Decimal) -> str:
    """``Decimal("0.05")`` → ``"5%"``."""
    return f"{(pct * 100).normalize():f}%"


def _parse(raw: dict) -> PricingRules:
    currency = required(raw, "currency")
    try:
        exponent(currency)
    except (MoneyError, TypeError) as exc:
        raise PricingError(f"currency: {currency!r} is not an ISO 4217 code") from exc

    segments_raw = required(raw, "segments")
    if not isinstance(segments_raw, dict):
        raise PricingError('segments: must map each segment name to its discount, e.g. regular: "0.05"')
    segments = {str(name): fraction(pct, f"segments.{name}") for name, pct in segments_raw.items()}
    if "new" not in segments:
        raise PricingError("segments.new: missing (every customer starts in segment new)")

    tiers_raw = required(raw, "volume_tiers")
    if not isinstance(tiers_raw, list):
        raise PricingError("volume_tiers: must be a list of {min_quantity, discount}")
    tiers: list[VolumeTier] = []
    for i, tier_raw in enumerate(tiers_raw):
        where = f"volume_tiers[{i}]"
        tier = VolumeTier(
            whole(required(tier_raw, "min_quantity", where), f"{where}.min_quantity", 1),
            fraction(required(tier_raw, "discount", where), f"{where}.discount"),
        )
        if tiers and (tier.min_quantity <= tiers[-1].min_quantity or tier.discount_pct < tiers[-1].discount_pct):
            raise PricingError(
                f"{where}: tiers must ascend: a larger min_quantity than the tier before, and no smaller discount"
            )
        tiers.append(tier)

    amount = required(raw, "approval_order_amount")
    try:
        approval_minor = to_minor(number(amount, "approval_order_amount"), currency)
    except MoneyError as exc:
        raise PricingError(f"approval_order_amount: {exc}") from exc

    cross_raw = required(raw, "cross_sell")
    if not isinstance(cross_raw, dict):
        raise PricingError("cross_sell: must map a category id to a list of {category, reason}")
    cross_sell = {}
    for category, suggestions in cross_raw.items():
        if not isinstance(suggestions, list):
            raise PricingError(f"cross_sell.{category}: must be a list of {{category, reason}}")
        cross_sell[str(category)] = tuple(
            Suggestion(str(required(s, "category", f"cross_sell.{category}[{i}]")), _reasons(s.get("reason")))
            for i, s in enumerate(suggestions)
        )

    prepayment = raw.get("prepayment")  # optional: no payment link without it
    return PricingRules(
        currency=currency,
        vat_rate=fraction(required(raw, "vat_rate"), "vat_rate"),
        quote_validity_days=whole(required(raw, "quote_validity_days"), "quote_validity_days", 1),
        segments=segments,
        volume_tiers=tuple(tiers),
        max_bot_discount=fraction(required(raw, "max_bot_discount"), "max_bot_discount"),
        approval_order_minor=approval_minor,
        cross_sell_by_category=cross_sell,
        prepayment_pct=(fraction(prepayment, "prepayment") or None) if prepayment is not None else None,
    )


def required(raw: Any, key: str, where: str = "") -> Any:
    """``raw[key]`` of a pricing.yml mapping at ``where`` (a dotted path). Raises PricingError when ``raw`` is not a
    mapping or the key is missing or null."""
    name = f"{where}.{key}" if where else key
    if not isinstance(raw, dict):
        raise PricingError(f"{where}: must be a mapping with {key}")
    if raw.get(key) is None:
        raise PricingError(f"{name}: missing")
    return raw[key]


def number(value: Any, name: str) -> Decimal:
    """A finite number of pricing.yml's field ``name`` as a Decimal. Raises PricingError otherwise."""
    try:
        parsed = Decimal(str(value))
    except InvalidOperation:
        parsed = Decimal("NaN")
    if isinstance(value, bool) or not parsed.is_finite():
        raise PricingError(f"{name}: {value!r} is not a number")
    return parsed


def fraction(value: Any, name: str) -> Decimal:
    """A fraction from 0 to 1 (``"0.05"`` = 5%) of pricing.yml's field ``name``. Raises PricingError otherwise."""
    pct = number(value, name)
    if not 0 <= pct <= 1:
        raise PricingError(f'{name}: {value!r} is not a fraction from 0 to 1 (write 5% as "0.05")')
    return pct


def whole(value: Any, name: str, minimum: int) -> int:
    """A whole number of at least ``minimum`` of pricing.yml's field ``name``. Raises PricingError otherwise."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise PricingError(f"{name}: {value!r} is not a whole number of at least {minimum}")
    return value
