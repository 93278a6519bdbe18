"""A service configured in the conversation and priced by the business's formula (:mod:`bot.commerce.formula`).

The business's domain declares a form whose slots are ``package`` (a package id; NLU's ``package`` entity or a
button) and one slot per factor of the formula, named as the factor, holding a level id (buttons send them as
entities), and a slot ``options`` the form does not ask for: option ids separated by commas (the website's
calculator sends them with the rest, :mod:`bot.web.calculator`). :func:`required_slots` gives the form the
package's own factors; :func:`clean` keeps a value only when the formula knows it; :func:`price_configuration`
prices the filled slots; :func:`send_proposal` issues them as a commercial proposal (a quote). Without a formula in
pricing.yml the form asks for nothing and the customer is told prices are quoted by a manager.
"""

from decimal import Decimal
from typing import Any

from bot.commerce import deals, quotes
from bot.commerce.formula import PricedPackage, PriceFormula, load_formula, name_in
from bot.commerce.pricing import PricedCart, PricedLine
from bot.commerce.quoting import quote_document
from bot.core import db
from bot.core.business import get_company
from bot.core.models import Contact
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
    return Outcome().say(text=describe(formula, _price(formula, turn), i18n.current()))


def _price(formula: PriceFormula, turn: Turn) -> PricedPackage:
    """The conversation's configuration (its ``package``, factor and ``options`` slots) priced by ``formula``."""
    package = formula.packages[turn.slot(PACKAGE)]
    levels = {factor: turn.slot(factor) for factor in package.factors if turn.slot(factor)}
    options = [o for o in (turn.slot(OPTIONS) or "").split(",") if o and package.id in formula.options[o].packages]
    return formula.price(package.id, levels, options)


async def send_proposal(turn: Turn) -> Outcome:
    """The configured package as a commercial proposal: a quote (:mod:`bot.commerce.quotes`, numbered with the
    business's ``quote_prefix``) of the package and its options priced by the formula, its PDF link and document
    card, the customer's open deal (if any) moved to ``proposal``. Without a package priced yet, the customer is asked
    to choose one first."""
    formula = load_formula()
    if formula is None or turn.slot(PACKAGE) not in formula.packages:
        return Outcome().say(text=_("Choose a package first and I'll price it, then prepare the proposal."))
    priced = _price(formula, turn)
    company = get_company()
    async with db.session_scope() as session:
        contact = await session.get(Contact, turn.contact_id) if turn.contact_id else None
        deal = await deals.open_deal(session, contact_id=turn.contact_id, conversation_id=turn.conversation_id)
        quote = await quotes.issue(
            session,
            turn.conversation_id,
            as_cart(formula, priced, i18n.current()),
            company.quote_validity_days,
            contact=contact,
            deal=deal,
            prefix=company.quote_prefix,
        )
    valid_until = i18n.format_date(quote.valid_until.date())
    text = messages.render("quote_sent", quote=quote, url=quotes.url(quote), valid_until=valid_until)
    return Outcome().say(text=text).say(json_message=quote_document(quote)).set("sales_stage", "closing")


def as_cart(formula: PriceFormula, priced: PricedPackage, language: str) -> PricedCart:
    """``priced`` as the priced cart a quote is issued from: the package (one unit at the package price; a retainer's
    name says it is per month) and each option, none discounted; the same net, VAT and total."""
    package = formula.packages[priced.package]
    name = name_in(package.names, language)
    if priced.billing == "monthly":
        name = _("%(package)s, per month") % {"package": name}
    items = [(package.id, name, priced.package_minor)]
    items += [(o, name_in(formula.options[o].names, language), amount) for o, amount in priced.options]
    lines = tuple(
        PricedLine(sku, name, "service", 1, amount, amount, Decimal(0), 0, amount) for sku, name, amount in items
    )
    return PricedCart(
        lines=lines,
        currency=priced.currency,
        subtotal_minor=priced.net_minor,
        discount_minor=0,
        net_minor=priced.net_minor,
        vat_rate=priced.vat_rate,
        vat_minor=priced.vat_minor,
        total_minor=priced.total_minor,
        extra_discount_pct=Decimal(0),
    )


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
