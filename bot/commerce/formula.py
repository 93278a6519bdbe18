"""Prices worked out by a formula, for a business that sells configured services rather than catalog items:
the ``formula`` section of ``knowledge/pricing.yml`` (a business without one has no formula; :func:`load_formula`
gives None).

A configuration is a package, one level of each of the package's complexity factors (integrations, data volume,
languages, SLA… as the business names them; a factor left out is at its first level) and any of the options
offered with the package. Its price, in integer minor units of ``pricing.yml``'s ``currency``, excluding VAT:

- coefficient = the product of the chosen levels' coefficients (exact);
- package price = base × coefficient, rounded to a multiple of ``rounding`` (halves up), then raised to the
  package's ``minimum`` if it is below it;
- net = package price + the price of each chosen option (options are not multiplied);
- VAT = round(net × ``vat_rate``) to a whole minor unit, halves up (``vat_rate`` "0" under a tax regime
  without VAT); total = net + VAT.

Names of packages, factors, levels and options are a plain string (every language) or a map of ISO 639-1 codes to
strings (a language without one gets the first). One implementation prices for the bot and for the website's
calculator. Errors: :class:`~bot.commerce.pricing.PricingError`, naming the field of ``pricing.yml`` or the
configuration's part at fault.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml

from bot.commerce.pricing import PricingError, PricingRules, number, required, round_half_up
from bot.core.caches import process_cache
from bot.core.money import MoneyError, to_minor
from bot.core.settings import get_settings

Names = tuple[tuple[str, str], ...]  # (language, text) pairs; ("", text) for a name in every language


def name_in(names: Names, language: str) -> str:
    """The name in ``language`` (ISO 639-1), else the first one given."""
    return dict(names).get(language) or dict(names).get("") or names[0][1]


@dataclass(frozen=True)
class Level:
    """One level of a factor: its id, names and ``coefficient`` (a positive Decimal, 1 = no change)."""

    id: str
    names: Names
    coefficient: Decimal


@dataclass(frozen=True)
class Factor:
    """A complexity factor and its levels, in file order; the first level is the default."""

    id: str
    names: Names
    levels: tuple[Level, ...]

    def level(self, level_id: str) -> Level:
        """The level ``level_id``. Raises PricingError naming the levels there are."""
        for level in self.levels:
            if level.id == level_id:
                return level
        raise PricingError(f"{self.id}: no level {level_id!r} (one of {[level.id for level in self.levels]})")


@dataclass(frozen=True)
class Option:
    """An option with a fixed ``price_minor`` excl. VAT, offered with ``packages`` (ids)."""

    id: str
    names: Names
    price_minor: int
    packages: tuple[str, ...]


@dataclass(frozen=True)
class Package:
    """A package: ``base_minor`` before coefficients, ``minimum_minor`` the least it is sold for, the ``factors``
    (ids) that apply to it; ``billing`` is ``"one_off"`` or ``"monthly"`` (a retainer's price is per month)."""

    id: str
    names: Names
    base_minor: int
    minimum_minor: int
    factors: tuple[str, ...]
    billing: str


@dataclass(frozen=True)
class PricedPackage:
    """A priced configuration. ``levels`` holds every factor of the package as (factor id, level id, coefficient),
    in the formula's order; ``coefficient`` is their product; ``package_minor`` is ``base_minor × coefficient``
    rounded, or ``minimum_minor`` when ``minimum_applied``; ``options`` are (option id, price) in the formula's
    order; ``net_minor = package_minor + Σ option prices``; ``vat_minor = round(net_minor × vat_rate)``;
    ``total_minor = net_minor + vat_minor``. All money in minor units of ``currency``, per month when ``billing``
    is ``"monthly"``."""

    package: str
    currency: str
    billing: str
    base_minor: int
    levels: tuple[tuple[str, str, Decimal], ...]
    coefficient: Decimal
    package_minor: int
    minimum_applied: bool
    options: tuple[tuple[str, int], ...]
    net_minor: int
    vat_rate: Decimal
    vat_minor: int
    total_minor: int


@dataclass(frozen=True)
class PriceFormula:
    """The ``formula`` section of pricing.yml, with the currency and VAT rate of the same file. ``rounding_minor``
    is the step package prices are rounded to (1 = a whole minor unit)."""

    currency: str
    vat_rate: Decimal
    rounding_minor: int
    packages: Mapping[str, Package]
    factors: Mapping[str, Factor]
    options: Mapping[str, Option]

    def price(
        self, package: str, levels: Mapping[str, str] | None = None, options: Iterable[str] = ()
    ) -> PricedPackage:
        """Price ``package`` with ``levels`` (factor id → level id; a factor not given is at its first level) and
        ``options`` (ids, in any order, each once). Raises PricingError for an unknown package, factor, level or
        option, a factor or option the package does not have, or an option given twice."""
        chosen = self.packages.get(package)
        if chosen is None:
            raise PricingError(f"package: no package {package!r} (one of {sorted(self.packages)})")
        levels = dict(levels or {})
        foreign = sorted(set(levels) - set(chosen.factors))
        if foreign:
            raise PricingError(f"levels: {package} has no factor {foreign[0]!r} (its factors: {list(chosen.factors)})")
        applied = []
        coefficient = Decimal(1)
        for factor_id in chosen.factors:
            factor = self.factors[factor_id]
            level = factor.level(levels[factor_id]) if factor_id in levels else factor.levels[0]
            applied.append((factor_id, level.id, level.coefficient))
            coefficient *= level.coefficient
        wanted = list(options)
        if len(set(wanted)) != len(wanted):
            raise PricingError(f"options: given twice: {sorted({o for o in wanted if wanted.count(o) > 1})}")
        for option_id in wanted:
            if option_id not in self.options:
                raise PricingError(f"options: no option {option_id!r} (one of {sorted(self.options)})")
            if package not in self.options[option_id].packages:
                raise PricingError(f"options: {option_id} is not offered with {package}")
        steps = round_half_up(chosen.base_minor * coefficient / self.rounding_minor)
        rounded = steps * self.rounding_minor
        package_minor = max(rounded, chosen.minimum_minor)
        priced_options = tuple((o.id, o.price_minor) for o in self.options.values() if o.id in wanted)
        net = package_minor + sum(price for _, price in priced_options)
        vat = round_half_up(net * self.vat_rate)
        return PricedPackage(
            package=package,
            currency=self.currency,
            billing=chosen.billing,
            base_minor=chosen.base_minor,
            levels=tuple(applied),
            coefficient=coefficient,
            package_minor=package_minor,
            minimum_applied=rounded < chosen.minimum_minor,
            options=priced_options,
            net_minor=net,
            vat_rate=self.vat_rate,
            vat_minor=vat,
            total_minor=net + vat,
        )

    @classmethod
    def parse(cls, raw: Any, rules: PricingRules) -> "PriceFormula":
        """The ``formula`` mapping of a pricing.yml whose other fields gave ``rules``. Raises PricingError naming
        the field (``formula.packages.chatbot.base``)."""
        currency = rules.currency

        def money(value: Any, name: str) -> int:
            try:
                return to_minor(number(value, name), currency)
            except MoneyError as exc:
                raise PricingError(f"{name}: {exc}") from exc

        if not isinstance(raw, dict):
            raise PricingError("formula: must be a mapping of rounding, factors, packages and options")
        rounding = money(raw.get("rounding", 0), "formula.rounding") or 1
        factors = {}
        for factor_id, factor_raw in _mapping(required(raw, "factors", "formula"), "formula.factors").items():
            where = f"formula.factors.{factor_id}"
            levels_raw = required(factor_raw, "levels", where)
            if not isinstance(levels_raw, list) or not levels_raw:
                raise PricingError(f"{where}.levels: must be a list of {{id, name, coefficient}}, the default first")
            levels = []
            for i, level_raw in enumerate(levels_raw):
                at = f"{where}.levels[{i}]"
                coefficient = number(required(level_raw, "coefficient", at), f"{at}.coefficient")
                if coefficient <= 0:
                    raise PricingError(f"{at}.coefficient: must be above 0, not {coefficient}")
                levels.append(Level(str(required(level_raw, "id", at)), _names(level_raw, at), coefficient))
            if len({level.id for level in levels}) != len(levels):
                raise PricingError(f"{where}.levels: two levels with one id")
            factors[str(factor_id)] = Factor(str(factor_id), _names(factor_raw, where), tuple(levels))
        packages = {}
        for package_id, package_raw in _mapping(required(raw, "packages", "formula"), "formula.packages").items():
            where = f"formula.packages.{package_id}"
            base = money(required(package_raw, "base", where), f"{where}.base")
            minimum = money(package_raw.get("minimum", 0), f"{where}.minimum")
            applies = package_raw.get("factors", list(factors))
            unknown = [f for f in applies if f not in factors] if isinstance(applies, list) else [applies]
            if unknown:
                raise PricingError(f"{where}.factors: {unknown[0]!r} is not one of formula.factors {list(factors)}")
            billing = package_raw.get("billing", "one_off")
            if billing not in ("one_off", "monthly"):
                raise PricingError(f'{where}.billing: {billing!r} is not "one_off" or "monthly"')
            package = Package(str(package_id), _names(package_raw, where), base, minimum, tuple(applies), billing)
            packages[package.id] = package
        options = {}
        for option_id, option_raw in _mapping(raw.get("options", {}), "formula.options").items():
            where = f"formula.options.{option_id}"
            offered = option_raw.get("packages", list(packages)) if isinstance(option_raw, dict) else []
            unknown = [p for p in offered if p not in packages] if isinstance(offered, list) else [offered]
            if unknown:
                raise PricingError(f"{where}.packages: {unknown[0]!r} is not one of formula.packages {list(packages)}")
            price = money(required(option_raw, "price", where), f"{where}.price")
            options[str(option_id)] = Option(str(option_id), _names(option_raw, where), price, tuple(offered))
        return cls(currency, rules.vat_rate, rounding, packages, factors, options)


def _mapping(value: Any, name: str) -> dict:
    if not isinstance(value, dict) or not value:
        raise PricingError(f"{name}: must be a mapping of ids to their fields")
    return value


def _names(raw: dict, where: str) -> Names:
    value = required(raw, "name", where)
    if isinstance(value, dict) and value and all(isinstance(text, str) and text for text in value.values()):
        return tuple((str(language), text) for language, text in value.items())
    if isinstance(value, str) and value:
        return (("", value),)
    raise PricingError(f"{where}.name: must be a text or a map of languages to texts")


def read_formula(path: Path) -> PriceFormula | None:
    """The formula of the pricing.yml at ``path``, None when it has no ``formula`` section. Raises PricingError
    naming the file and the field."""
    rules = PricingRules.load(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        return None if raw.get("formula") is None else PriceFormula.parse(raw["formula"], rules)
    except PricingError as exc:
        raise PricingError(f"{path}: {exc}") from exc


@process_cache
def load_formula() -> PriceFormula | None:
    """The business's formula from ``<knowledge_dir>/pricing.yml``, read once per process; None when it has none.
    Raises PricingError."""
    return read_formula(get_settings().knowledge_dir / "pricing.yml")
