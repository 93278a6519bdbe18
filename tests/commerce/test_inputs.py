"""Numbers customers type: quantities, budgets, amounts written like money, discounts asked for; questions."""

from decimal import Decimal

import pytest

from bot.commerce import inputs


@pytest.mark.parametrize(
    "text, expected",
    [
        ("12", 12),
        ("twelve", 12),
        ("twelve chairs", 12),
        ("a dozen", 12),
        ("about 1,200 units", 1200),
        ("100000", 100_000),
        ("0", None),
        ("100001", None),
        ("lots", None),
        ("", None),
        (None, None),
    ],
)
def test_quantities(text, expected):
    assert inputs.quantity(text) == expected


@pytest.mark.parametrize(
    "text, expected",
    [
        ("around 1.5k", 150000),
        ("18000", 1800000),
        ("AED 1,500", 150000),
        ("1500", 150000),
        ("2 тыс", 200000),
        ("до 5 тысяч дирхам", 500000),
        ("3к", 300000),
        ("500 000 ₽", 50000000),  # digits grouped by a space, as Russian writes them
        ("до 300\u202f000", 30000000),  # …or by a thin space
        ("1.5 млн", 150000000),
        ("2 million", 200000000),
        ("٥ آلاف درهم", 500000),
        ("2 ألف", 200000),
        ("12 кресел", 1200),
        ("whatever", None),
        ("cheap", None),
        ("0", None),
        ("", None),
    ],
)
def test_budgets_in_minor_units(text, expected):
    assert inputs.budget(text, "AED") == expected


@pytest.mark.parametrize(
    "text, expected",
    [
        ("I need 12 ergonomic chairs for our office, around 1500 AED each", ["1500"]),
        ("AED 1,500 per chair", ["1,500"]),
        ("under 700", ["700"]),
        ("budget of 2k", ["2k"]),
        ("1200 dirhams", ["1200"]),
        ("I need 12 chairs", []),
        ("", []),
    ],
)
def test_amounts_written_like_money(text, expected):
    assert inputs.money_amounts(text, ("aed", "dirham", "dirhams", "dh", "dhs")) == expected


@pytest.mark.parametrize(
    "values, text, expected",
    [
        (["10"], "can you do 10% off", Decimal("0.10")),
        (["30"], "I want 30% discount", Decimal("0.30")),
        ([], "what about 12.5 percent", Decimal("0.125")),
        ([], "15 pc off?", Decimal("0.15")),
        ([], "7,5% please", Decimal("0.075")),
        (["0"], "5 per cent", Decimal("0.05")),  # an entity that is no discount gives way to the text
        (["40", "35"], "we want 40 chairs but only if you give us 35% off", Decimal("0.35")),  # the written % first
        (["15"], "can you do 15 off", Decimal("0.15")),  # no percentage written: the entity
        (["100"], "", None),
        ([], "any discount?", None),
        ([], "", None),
    ],
)
def test_discounts_asked_for_as_fractions(values, text, expected):
    assert inputs.discount(values, text) == expected


@pytest.mark.parametrize(
    "text, expected",
    [
        ("how are you today?", True),
        ("Are you open on Friday", True),
        ("what's up", True),
        ("How’s your day", True),
        ("lol?", True),
        ("Sara Khan", False),
        ("within two weeks", False),
        ("Gulf Trading LLC", False),
        ("  ", False),
    ],
)
def test_questions_are_told_from_answers(text, expected):
    assert inputs.looks_like_question(text) is expected
