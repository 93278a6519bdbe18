"""The website's price calculator: the business's price formula (:mod:`bot.commerce.formula`) as JSON for the web
chat page's form, priced by the same implementation the bot uses (:func:`bot.commerce.configuring.describe` gives
the same text the chat shows). :func:`setup` mounts it in the console's application.

Routes (404 ``{"error": …}`` when the business's pricing.yml has no formula):

- ``GET /api/price-formula?language=<code>``: ``{"language", "currency", "packages": [{"id", "name", "billing",
  "factors": [ids], "options": [ids]}], "factors": {id: {"name", "levels": [{"id", "name", "coefficient"}]}},
  "options": {id: {"name", "price"}}, "texts": {…}}``, names and formatted prices in ``language`` (one of the
  business's, else its default); ``coefficient`` is a decimal string ("1.2").
- ``POST /api/price-formula``: JSON ``{"package": id, "levels": {factor: level}, "options": [ids], "language":
  code}`` → ``{"total_minor", "net_minor", "vat_minor", "currency", "billing", "text", "payload"}``: money in minor
  units of ``currency``; ``text`` the priced configuration step by step; ``payload`` the message that continues in
  the chat with this configuration (Rasa's ``/ask_price{…}``). 400 ``{"error": …}`` for a malformed body or a
  configuration the formula does not have (the message names what), with nothing stored.
"""

import json
import logging
from typing import Any

from aiohttp import web

from bot.commerce.configuring import OPTIONS, PACKAGE, describe
from bot.commerce.formula import PriceFormula, load_formula, name_in
from bot.commerce.pricing import PricingError
from bot.core.business import get_company
from bot.texts import i18n
from bot.texts.i18n import gettext as _

log = logging.getLogger(__name__)


def _language(value: object) -> str:
    company = get_company()
    return value if isinstance(value, str) and value in company.languages else company.default_language


def _formula() -> PriceFormula:
    formula = load_formula()
    if formula is None:
        raise web.HTTPNotFound(
            text=json.dumps({"error": "this business has no price formula"}), content_type="application/json"
        )
    return formula


def formula_json(formula: PriceFormula, language: str) -> dict[str, Any]:
    """The formula for the calculator's form in ``language`` (the module docstring's GET body)."""
    with i18n.use(language):
        return {
            "language": language,
            "currency": formula.currency,
            "packages": [
                {
                    "id": package.id,
                    "name": name_in(package.names, language),
                    "billing": package.billing,
                    "factors": list(package.factors),
                    "options": [o.id for o in formula.options.values() if package.id in o.packages],
                }
                for package in formula.packages.values()
            ],
            "factors": {
                factor.id: {
                    "name": name_in(factor.names, language),
                    "levels": [
                        {"id": level.id, "name": name_in(level.names, language), "coefficient": str(level.coefficient)}
                        for level in factor.levels
                    ],
                }
                for factor in formula.factors.values()
            },
            "options": {
                option.id: {
                    "name": name_in(option.names, language),
                    "price": i18n.format_money(option.price_minor, formula.currency),
                }
                for option in formula.options.values()
            },
            "texts": {
                "title": _("Price calculator"),
                "package": _("Package"),
                "options": _("Options"),
                "continue": _("Continue in the chat"),
            },
        }


async def formula_api(request: web.Request) -> web.Response:
    """``GET /api/price-formula`` (the module docstring)."""
    return web.json_response(formula_json(_formula(), _language(request.query.get("language"))))


def _error(message: str) -> web.Response:
    return web.json_response({"error": message}, status=400)


async def price_api(request: web.Request) -> web.Response:
    """``POST /api/price-formula`` (the module docstring)."""
    formula = _formula()
    try:
        body = await request.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        return _error("the body must be a JSON object with package, levels and options")
    package, levels, options = body.get("package"), body.get("levels") or {}, body.get("options") or []
    if not isinstance(package, str) or not isinstance(levels, dict) or not isinstance(options, list):
        return _error("package must be a text, levels an object of factor to level, options a list of ids")
    if not all(isinstance(v, str) for v in (*levels.keys(), *levels.values(), *options)):
        return _error("levels and options must hold texts")
    language = _language(body.get("language"))
    try:
        priced = formula.price(package, levels, options)
    except PricingError as exc:
        log.info("calculator: a configuration the formula does not have: %s", exc)
        return _error(str(exc))
    with i18n.use(language):
        text = describe(formula, priced, language)
    entities = {PACKAGE: package, **{factor: level for factor, level, _ in priced.levels}}
    if priced.options:
        entities[OPTIONS] = ",".join(option for option, _ in priced.options)
    return web.json_response(
        {
            "total_minor": priced.total_minor,
            "net_minor": priced.net_minor,
            "vat_minor": priced.vat_minor,
            "currency": priced.currency,
            "billing": priced.billing,
            "text": text,
            "payload": "/ask_price" + json.dumps(entities, ensure_ascii=False),
        }
    )


def setup(app: web.Application) -> None:
    """Serve the calculator's routes (the module docstring) in ``app``."""
    app.router.add_get("/api/price-formula", formula_api)
    app.router.add_post("/api/price-formula", price_api)
