"""A service configured in the conversation and priced by the business's formula (:mod:`bot.commerce.formula`).

The business's domain declares a form whose slots are ``package`` (a package id; NLU's ``package`` entity or a
button) and one slot per factor of the formula, named as the factor, holding a level id (buttons send them as
entities), and a slot ``options`` the form does not ask for: option ids separated by commas (the website's
calculator sends them with the rest, :mod:`bot.web.calculator`). :func:`required_slots` gives the form the
package's own factors; :func:`clean` keeps a value only when the formula knows it; :func:`price_configuration`
prices the filled slots. Without a formula in pricing.yml the form asks for nothing and the customer is told prices
are quoted by a manager.
"""

from decimal import Decimal
from typing import Any

from bot.commerce.formula import PricedPackage, PriceFormula, load_formula, name_in
from bot.core.turn import Outcome, Turn
from bot.texts import i18n, messages
from bot.texts.i18n import gettext as _

PACKAGE = "package"
OPTIONS = "options"


def required_slots(slots: dict[str, Any]) -> list[str]:
    """The form's slots for the conversation's ``slots``: ``package``, then the factors of the package chosen
    (none until one is). Empty when the business has no formula."""
    formula = load_formula()
    if formula is None:
        return []
    package = formula.packages.get(slots.get(PACKAGE) or "")
    return [PACKAGE, *(package.factors if package else ())]


def clean(slot: str, value: Any) -> str | None:
    """``value`` for ``slot`` when the formula knows it — a package id for ``package``, a level id of the factor
    ``slot`` — else None (the form asks again)."""
    formula = load_formula()
    if formula is None or not isinstance(value, str):
        return None
    if slot == PACKAGE:
        return value if value in formula.packages else None
    if slot == OPTIONS:
        wanted = [option.strip() for option in value.split(",") if option.strip()]
        return ",".join(wanted) if wanted and all(option in formula.options for option in wanted) else None
    factor = formula.factors.get(slot)
    return value if factor and value in {level.id for level in factor.levels} else None


def price_configuration(turn: Turn) -> Outcome:
    """The filled form's package priced by the formula, line by line in the customer's language (factors with
    their levels and coefficients, the package price, options, net, VAT, total), or a note that prices come from
    a manager when the business has no formula. Raises PricingError for slots the form did not clean."""
    formula = load_formula()
    if formula is None:
        return Outcome().say(text=_("A manager will work out the price for you: ask me to call one in."))
    package = formula.packages[turn.slot(PACKAGE)]
    levels = {factor: turn.slot(factor) for factor in package.factors if turn.slot(factor)}
    options = [o for o in (turn.slot(OPTIONS) or "").split(",") if o and package.id in formula.options[o].packages]
    priced = formula.price(package.id, levels, options)
    return Outcome().say(text=describe(formula, priced, i18n.current()))


def describe(formula: PriceFormula, priced: PricedPackage, language: str) -> str:
    """``priced`` step by step in ``language`` (active in :mod:`bot.texts.i18n`): the package, each factor's level
    and coefficient, the package price and how it was reached, each option, net, VAT and total."""
    factors = formula.factors
    levels = [
        (name_in(factors[f].names, language), name_in(factors[f].level(level).names, language), _number(coefficient))
        for f, level, coefficient in priced.levels
    ]
    options = [(name_in(formula.options[o].names, language), amount) for o, amount in priced.options]
    return messages.render(
        "configuration",
        package=name_in(formula.packages[priced.package].names, language),
        levels=levels,
        options=options,
        coefficient=_number(priced.coefficient),
        priced=priced,
    )


def _number(value: Decimal) -> str:
    """A coefficient in the active language's format, without trailing zeros (1.2, 2,1528)."""
    return i18n.format_number(value.normalize())
