"""The price formula: the example business pack's pricing.yml (examples/ai-studio) priced by hand to the kopeck,
properties over random configurations checked against an independent computation with exact fractions, and
invalid formula sections."""

import copy
import math
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from bot.commerce.formula import PriceFormula, load_formula, name_in, read_formula
from bot.commerce.pricing import PricingError, PricingRules
from bot.core import caches
from bot.core.settings import ROOT

PACK_PRICING = ROOT / "examples" / "ai-studio" / "knowledge" / "pricing.yml"
FORMULA = read_formula(PACK_PRICING)
assert FORMULA is not None
RUB = 100  # kopecks in a rouble


@pytest.mark.parametrize(
    ("package", "levels", "options", "package_rub", "net_rub", "vat_kopecks"),
    [
        # The worked example in pricing.yml: 240,000 × 1.2 × 1.3 × 1.15 × 1.2 = 516,672 → 517,000; + voice + analytics.
        (
            "chatbot",
            {"integrations": "few", "data_volume": "large", "languages": "two", "sla": "extended"},
            ["voice", "analytics"],
            517_000,
            697_000,
            15_334_000,
        ),
        # Every factor at its first level: 240,000 × 0.85 × 0.8 = 163,200 → 163,000, below the minimum 180,000.
        ("chatbot", {}, [], 180_000, 180_000, 3_960_000),
        # 360,000 × 0.85 × 1.3 × 1.3 × 1.5 = 775,710 → 776,000 (710 rounds up to the next thousand).
        (
            "document_search",
            {"data_volume": "large", "languages": "three_plus", "sla": "round_the_clock"},
            ["training"],
            776_000,
            816_000,
            17_952_000,
        ),
        # 300,000 × 1.45 × 1.7 = 739,500 → 740,000 (exactly half a thousand rounds up).
        ("automation", {"integrations": "many", "data_volume": "very_large"}, [], 740_000, 740_000, 16_280_000),
        # No factors: the base; a retainer is priced per month.
        ("audit", {}, [], 90_000, 90_000, 1_980_000),
        ("support", {"sla": "extended"}, [], 54_000, 54_000, 1_188_000),
    ],
)
def test_the_packs_prices_worked_out_by_hand(package, levels, options, package_rub, net_rub, vat_kopecks):
    priced = FORMULA.price(package, levels, options)
    assert (priced.currency, priced.vat_rate) == ("RUB", Decimal("0.22"))
    assert priced.package_minor == package_rub * RUB
    assert priced.net_minor == net_rub * RUB
    assert priced.vat_minor == vat_kopecks
    assert priced.total_minor == net_rub * RUB + vat_kopecks
    assert priced.minimum_applied == (package == "chatbot" and not levels)
    assert [factor for factor, _, _ in priced.levels] == list(FORMULA.packages[package].factors)


def test_the_monthly_package_says_so_and_options_come_in_the_formulas_order():
    assert FORMULA.price("support").billing == "monthly"
    priced = FORMULA.price("chatbot", options=["fast_launch", "analytics"])
    assert priced.billing == "one_off"
    assert priced.options == (("analytics", 60_000 * RUB), ("fast_launch", 80_000 * RUB))


def test_names_in_the_customers_language_fall_back_to_the_first():
    chatbot = FORMULA.packages["chatbot"]
    assert name_in(chatbot.names, "ru") == "Чат-бот для продаж и поддержки"
    assert name_in(chatbot.names, "en") == "Sales and support chatbot"
    assert name_in(chatbot.names, "ar") == "Чат-бот для продаж и поддержки"
    assert name_in((("", "Any"),), "en") == "Any"


@pytest.mark.parametrize(
    ("package", "levels", "options", "error"),
    [
        ("website", {}, [], r"package: no package 'website' \(one of \['audit', 'automation'"),
        ("audit", {"sla": "standard"}, [], r"levels: audit has no factor 'sla'"),
        ("chatbot", {"sla": "platinum"}, [], r"sla: no level 'platinum' \(one of \['standard', 'extended'"),
        ("chatbot", {}, ["discount"], r"options: no option 'discount'"),
        ("audit", {}, ["voice"], r"options: voice is not offered with audit"),
        ("chatbot", {}, ["voice", "voice"], r"options: given twice: \['voice'\]"),
    ],
)
def test_a_configuration_that_is_not_in_the_formula_is_refused_by_name(package, levels, options, error):
    with pytest.raises(PricingError, match=error):
        FORMULA.price(package, levels, options)


def _exact(formula: PriceFormula, package: str, levels: dict[str, str], options: list[str]) -> tuple[int, int]:
    """(net, VAT) in minor units by the rule in pricing.yml, with exact fractions (independent of the module)."""
    chosen = formula.packages[package]
    coefficient = Fraction(1)
    for factor in chosen.factors:
        level = formula.factors[factor].level(levels.get(factor, formula.factors[factor].levels[0].id))
        coefficient *= Fraction(level.coefficient)
    steps = math.floor(Fraction(chosen.base_minor) * coefficient / formula.rounding_minor + Fraction(1, 2))
    package_minor = max(steps * formula.rounding_minor, chosen.minimum_minor)
    net = package_minor + sum(formula.options[o].price_minor for o in options)
    return net, math.floor(net * Fraction(formula.vat_rate) + Fraction(1, 2))


@st.composite
def configurations(draw: st.DrawFn) -> tuple[str, dict[str, str], list[str]]:
    package = draw(st.sampled_from(sorted(FORMULA.packages)))
    factors = FORMULA.packages[package].factors
    levels = {
        factor: draw(st.sampled_from([level.id for level in FORMULA.factors[factor].levels]))
        for factor in draw(st.lists(st.sampled_from(factors), unique=True) if factors else st.just([]))
    }
    offered = [o.id for o in FORMULA.options.values() if package in o.packages]
    options = draw(st.lists(st.sampled_from(offered), unique=True)) if offered else []
    return package, levels, options


@given(configurations())
def test_every_configuration_is_priced_by_the_written_rule(configuration):
    package, levels, options = configuration
    priced = FORMULA.price(package, levels, options)
    assert (priced.net_minor, priced.vat_minor) == _exact(FORMULA, package, levels, options)
    assert priced.total_minor == priced.net_minor + priced.vat_minor
    assert priced.package_minor >= FORMULA.packages[package].minimum_minor
    assert priced.minimum_applied or priced.package_minor % FORMULA.rounding_minor == 0
    assert FORMULA.price(package, levels, list(reversed(options))) == priced  # the order options are given in


@given(configurations(), st.data())
def test_a_higher_coefficient_never_lowers_the_price_and_an_option_adds_exactly_its_price(configuration, data):
    package, levels, options = configuration
    priced = FORMULA.price(package, levels, options)
    factors = FORMULA.packages[package].factors
    if factors:
        factor = data.draw(st.sampled_from(factors))
        other = data.draw(st.sampled_from(FORMULA.factors[factor].levels))
        current = FORMULA.factors[factor].level(levels.get(factor, FORMULA.factors[factor].levels[0].id))
        changed = FORMULA.price(package, {**levels, factor: other.id}, options)
        if other.coefficient >= current.coefficient:
            assert changed.net_minor >= priced.net_minor
    missing = [o.id for o in FORMULA.options.values() if package in o.packages and o.id not in options]
    if missing:
        option = data.draw(st.sampled_from(missing))
        added = FORMULA.price(package, levels, [*options, option])
        assert added.net_minor - priced.net_minor == FORMULA.options[option].price_minor


def _broken(tmp_path: Path, change) -> Path:
    raw = yaml.safe_load(PACK_PRICING.read_text(encoding="utf-8"))
    raw = copy.deepcopy(raw)
    change(raw["formula"])
    path = tmp_path / "pricing.yml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("change", "error"),
    [
        (lambda f: f["packages"]["chatbot"].pop("base"), r"formula\.packages\.chatbot\.base: missing"),
        (
            lambda f: f["packages"]["chatbot"].update(base="12.345"),
            r"formula\.packages\.chatbot\.base: 12\.345 is not a valid RUB amount",
        ),
        (
            lambda f: f["factors"]["sla"]["levels"][0].update(coefficient="0"),
            r"formula\.factors\.sla\.levels\[0\]\.coefficient: must be above 0",
        ),
        (lambda f: f["factors"]["sla"].update(levels=[]), r"formula\.factors\.sla\.levels: must be a list"),
        (
            lambda f: f["packages"]["audit"].update(factors=["speed"]),
            r"formula\.packages\.audit\.factors: 'speed' is not one of formula\.factors",
        ),
        (
            lambda f: f["options"]["voice"].update(packages=["website"]),
            r"formula\.options\.voice\.packages: 'website' is not one of formula\.packages",
        ),
        (lambda f: f["packages"]["support"].update(billing="yearly"), r"formula\.packages\.support\.billing"),
        (lambda f: f["options"]["voice"].update(name={}), r"formula\.options\.voice\.name: must be a text or a map"),
    ],
)
def test_a_broken_formula_names_the_file_and_the_field(tmp_path, change, error):
    path = _broken(tmp_path, change)
    with pytest.raises(PricingError, match=error) as raised:
        read_formula(path)
    assert str(path) in str(raised.value)


def test_a_business_without_a_formula_has_none(monkeypatch):
    assert read_formula(ROOT / "knowledge" / "pricing.yml") is None
    monkeypatch.setenv("CLOSER_KNOWLEDGE_DIR", str(PACK_PRICING.parent))
    caches.reset()
    try:
        assert load_formula() == FORMULA
        assert FORMULA.vat_rate == PricingRules.load(PACK_PRICING).vat_rate
    finally:
        monkeypatch.delenv("CLOSER_KNOWLEDGE_DIR")
        caches.reset()
