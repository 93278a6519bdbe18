"""Pricing rules: the real knowledge/pricing.yml, worked examples checked to the fils, properties
over random carts, and invalid pricing files."""

import copy
import math
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from bot.commerce.pricing import CartItem, PricingError, PricingRules, Suggestion, load_pricing
from bot.core import caches
from bot.core.settings import ROOT
from bot.texts import i18n, messages

KNOWLEDGE = ROOT / "knowledge"
RULES = PricingRules.load(KNOWLEDGE / "pricing.yml")
CATEGORIES = ["office_chair", "desk", "meeting_table", "storage", "lounge", "accessory"]

DESK = CartItem("DK-2001", "Desk", "desk", 129000, 12)  # 12 × AED 1,290.00
CHAIR = CartItem("OC-1001", "Chair", "office_chair", 62000, 2)  # 2 × AED 620.00


def half_up(x: Fraction) -> int:
    """Round a non-negative exact amount to a whole minor unit, halves up (independent of bot.commerce.pricing)."""
    return math.floor(x + Fraction(1, 2))


def test_real_pricing_file():
    assert RULES.currency == "AED" and RULES.vat_rate == Decimal("0.05")
    assert RULES.segments == {"new": 0, "regular": Decimal("0.05"), "vip": Decimal("0.10")}
    assert [t.min_quantity for t in RULES.volume_tiers] == [10, 25, 50]
    assert RULES.max_bot_discount == Decimal("0.20")
    assert RULES.approval_order_minor == 5_000_000  # AED 50,000.00
    caches.reset()
    assert load_pricing() == RULES


def test_real_pricing_file_agrees_with_company_and_vocabulary():
    company = yaml.safe_load((KNOWLEDGE / "company.yml").read_text(encoding="utf-8"))
    assert (RULES.currency, str(RULES.vat_rate), RULES.quote_validity_days) == (
        company["currency"],
        company["vat_rate"],
        company["quote_validity_days"],
    )
    vocabulary = set(yaml.safe_load((KNOWLEDGE / "vocabulary.yml").read_text(encoding="utf-8"))["categories"])
    assert set(RULES.cross_sell_by_category) <= vocabulary
    assert {s.category for group in RULES.cross_sell_by_category.values() for s in group} <= vocabulary


def test_new_customer_volume_tier_on_one_line():
    cart = RULES.price([DESK, CHAIR])
    desk, chair = cart.lines
    # Desk: 12 × 1,290.00 = 15,480.00; 10+ tier 5% = 774.00; net 14,706.00.
    assert (desk.subtotal_minor, desk.discount_pct, desk.discount_minor, desk.net_minor) == (
        1548000,
        Decimal("0.05"),
        77400,
        1470600,
    )
    # Chair: 2 × 620.00 = 1,240.00, no discount.
    assert (chair.subtotal_minor, chair.discount_minor, chair.net_minor) == (124000, 0, 124000)
    # Net 15,946.00; VAT 5% = 797.30; total 16,743.30.
    assert (cart.subtotal_minor, cart.discount_minor, cart.net_minor) == (1672000, 77400, 1594600)
    assert (cart.vat_minor, cart.total_minor) == (79730, 1674330)
    assert cart.discount_pct == Decimal(77400) / 1672000
    assert not RULES.needs_approval(cart)


def test_halves_round_up_for_discount_and_vat():
    cart = RULES.price([CartItem("X", "X", "desk", 74530, 3)], segment="regular")
    # 3 × 745.30 = 2,235.90; 5% = 111.795 → 111.80; net 2,124.10; VAT 106.205 → 106.21.
    assert (cart.subtotal_minor, cart.discount_minor, cart.net_minor) == (223590, 11180, 212410)
    assert (cart.vat_minor, cart.total_minor) == (10621, 223031)


def test_automatic_discounts_are_capped():
    cart = RULES.price([CartItem("OC", "Chair", "office_chair", 62000, 50)], segment="vip")
    # vip 10% + 50+ tier 12% = 22%, capped at 20%: 31,000.00 − 6,200.00 = 24,800.00; VAT 1,240.00.
    line = cart.lines[0]
    assert (line.discount_pct, line.discount_minor, cart.net_minor) == (Decimal("0.20"), 620000, 2480000)
    assert (cart.vat_minor, cart.total_minor) == (124000, 2604000)


def test_extra_discount_within_and_above_the_cap():
    items = [DESK]  # regular 5% + 10+ tier 5% = 10%, so the bot can add up to 10%
    decision = RULES.discount_request(items, "regular", Decimal("0.05"))
    assert (decision.granted, decision.granted_pct, decision.max_extra_pct) == (True, Decimal("0.05"), Decimal("0.10"))
    cart = RULES.price(items, "regular", decision.granted_pct)
    # 15% of 15,480.00 = 2,322.00; net 13,158.00; VAT 657.90; total 13,815.90.
    assert (cart.discount_minor, cart.net_minor, cart.vat_minor, cart.total_minor) == (232200, 1315800, 65790, 1381590)

    decision = RULES.discount_request(items, "regular", Decimal("0.12"))
    assert (decision.granted, decision.granted_pct, decision.max_extra_pct) == (False, 0, Decimal("0.10"))
    assert "manager approval" in decision.reason
    assert RULES.price(items, "regular", Decimal("0.12")).lines[0].discount_pct == Decimal("0.20")


def test_large_order_needs_approval():
    cart = RULES.price([CartItem("MT", "Table", "meeting_table", 250000, 25)])
    # 25 × 2,500.00 = 62,500.00; 25+ tier 8% = 5,000.00; net 57,500.00 > 50,000.00.
    assert cart.net_minor == 5750000 and RULES.needs_approval(cart)
    assert not RULES.needs_approval(RULES.price([CartItem("MT", "Table", "meeting_table", 5_000_000, 1)]))


def test_empty_cart_is_all_zeros():
    cart = RULES.price([])
    assert (cart.lines, cart.subtotal_minor, cart.discount_minor, cart.vat_minor, cart.total_minor) == ((), 0, 0, 0, 0)
    assert cart.discount_pct == 0
    assert RULES.discount_request([], "new", Decimal("0.20")).granted


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: RULES.price([DESK], segment="gold"), "segment"),
        (lambda: RULES.price([CartItem("X", "X", "desk", 100, 0)]), "X: quantity"),
        (lambda: RULES.price([CartItem("X", "X", "desk", -1, 1)]), "X: unit_price_minor"),
        (lambda: RULES.price([DESK], extra_discount_pct=Decimal("-0.01")), "extra_discount_pct"),
        (lambda: RULES.discount_request([DESK], "new", Decimal("-0.01")), "requested_pct"),
    ],
)
def test_invalid_requests(call, message):
    with pytest.raises(PricingError, match=message):
        call()


def test_cross_sell_skips_categories_in_cart():
    assert [s.category for s in RULES.cross_sell({"desk"})] == ["office_chair", "storage", "accessory"]
    assert [s.category for s in RULES.cross_sell({"desk", "office_chair"})] == ["storage", "accessory"]
    assert [s.category for s in RULES.cross_sell({"meeting_table", "office_chair"})] == ["accessory"]
    assert RULES.cross_sell({"storage"}) == [Suggestion("desk")]
    assert RULES.cross_sell(set()) == []


carts = st.lists(
    st.builds(
        CartItem,
        sku=st.just("SKU"),
        name=st.just("Item"),
        category=st.sampled_from(CATEGORIES),
        unit_price_minor=st.integers(0, 10_000_000),
        quantity=st.integers(1, 500),
    ),
    max_size=8,
)
segments = st.sampled_from(sorted(RULES.segments))
extras = st.decimals(0, "0.5", places=4)


def automatic(item: CartItem, segment: str) -> Decimal:
    """Segment + volume tier fraction of a line, before the cap."""
    tier = max([t.discount_pct for t in RULES.volume_tiers if item.quantity >= t.min_quantity], default=Decimal(0))
    return RULES.segments[segment] + tier


@given(carts, segments, extras)
def test_priced_cart_properties(items, segment, extra):
    cart = RULES.price(items, segment, extra)
    assert cart.total_minor == cart.net_minor + cart.vat_minor >= 0
    assert cart.net_minor == cart.subtotal_minor - cart.discount_minor == sum(x.net_minor for x in cart.lines)
    assert cart.subtotal_minor == sum(x.subtotal_minor for x in cart.lines)
    assert cart.discount_minor == sum(x.discount_minor for x in cart.lines)
    assert cart.vat_minor == half_up(Fraction(cart.net_minor) * Fraction(RULES.vat_rate))
    for item, line in zip(items, cart.lines, strict=True):
        assert line.subtotal_minor == item.unit_price_minor * item.quantity
        assert line.discount_pct <= RULES.max_bot_discount
        assert line.discount_pct == min(automatic(item, segment) + extra, RULES.max_bot_discount)
        assert line.discount_minor == half_up(Fraction(line.subtotal_minor) * Fraction(line.discount_pct))
        assert 0 <= line.net_minor == line.subtotal_minor - line.discount_minor


@given(carts, segments, extras)
def test_discount_request_grants_within_the_cap_and_escalates_above(items, segment, requested):
    decision = RULES.discount_request(items, segment, requested)
    automatic_capped = [min(automatic(item, segment), RULES.max_bot_discount) for item in items]
    within = all(pct + requested <= RULES.max_bot_discount for pct in [*automatic_capped, 0])  # 0: an empty cart
    assert decision.granted == within
    assert decision.granted_pct == (requested if within else 0)
    assert (requested <= decision.max_extra_pct) == within
    if within:  # what the bot grants is priced in full, never cut back by the cap
        cart = RULES.price(items, segment, decision.granted_pct)
        assert [x.discount_pct for x in cart.lines] == [pct + requested for pct in automatic_capped]


def _without(key):
    return lambda raw: raw.pop(key)


def _set(value, *path):
    def mutate(raw):
        *parents, last = path
        for key in parents:
            raw = raw[key]
        raw[last] = value

    return mutate


@pytest.mark.parametrize(
    "mutate, field",
    [
        (_without("currency"), "currency: missing"),
        (_set("XYZ", "currency"), "currency"),
        (_set("five percent", "vat_rate"), "vat_rate"),
        (_without("segments"), "segments: missing"),
        (_set("-0.05", "segments", "vip"), "segments.vip"),
        (_set(5, "segments", "regular"), "segments.regular"),
        (lambda raw: raw["segments"].pop("new"), "segments.new: missing"),
        (_set("1.5", "max_bot_discount"), "max_bot_discount"),
        (_set(10, "volume_tiers", 1, "min_quantity"), r"volume_tiers\[1\]"),
        (_set("0.01", "volume_tiers", 2, "discount"), r"volume_tiers\[2\]"),
        (_set(0, "volume_tiers", 0, "min_quantity"), r"volume_tiers\[0\]\.min_quantity"),
        (_set("lots", "approval_order_amount"), "approval_order_amount"),
        (_set("50000.001", "approval_order_amount"), "approval_order_amount"),
        (_set({"reason": "no category"}, "cross_sell", "desk", 0), r"cross_sell\.desk\[0\]\.category"),
        (_set("office_chair", "cross_sell", "desk"), r"cross_sell\.desk"),
        (_set(0, "quote_validity_days"), "quote_validity_days"),
    ],
)
def test_invalid_pricing_file_names_the_field(tmp_path: Path, mutate, field):
    raw = copy.deepcopy(yaml.safe_load((KNOWLEDGE / "pricing.yml").read_text(encoding="utf-8")))
    mutate(raw)
    path = tmp_path / "pricing.yml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    with pytest.raises(PricingError, match=f"pricing.yml: {field}"):
        PricingRules.load(path)


@pytest.mark.parametrize("text", [None, "- just\n- a list\n", "currency: [unclosed\n"])
def test_unreadable_pricing_file(tmp_path: Path, text):
    path = tmp_path / "pricing.yml"
    if text is not None:
        path.write_text(text, encoding="utf-8")
    with pytest.raises(PricingError, match=r"pricing\.yml"):
        PricingRules.load(path)


def test_a_cross_sell_reason_is_said_in_the_customers_language_or_not_at_all(tmp_path):
    chair = RULES.cross_sell({"office_chair"})[0]
    assert (
        chair.reason("ru")
        == "Коврик под кресло бережёт пол, а подставка для ног помогает невысоким коллегам сидеть удобно."
    )
    assert chair.reason("en").startswith("A chair mat protects the floor")
    labels = {"accessory": "Аксессуары"}
    with i18n.use("ru"):
        said = messages.render("cross_sell", suggestions=[chair], labels=labels, language="ru")
        untranslated = messages.render(
            "cross_sell",
            suggestions=[Suggestion("accessory", (("en", "Only English."),))],
            labels=labels,
            language="ru",
        )
    assert said == chair.reason("ru")
    assert "Only English" not in untranslated and "аксессуары" in untranslated  # the generic sentence, in Russian
