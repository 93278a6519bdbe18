"""Texts and buttons that show catalog facts, in the active language (:mod:`bot.texts.i18n`; the msgids are
the English texts). Every price and stock figure comes from the DB row; products are named by
:attr:`~bot.core.models.Product.display_name`, warehouses and SKUs as the catalog has them."""

import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from bot.commerce.pricing import PricingRules
from bot.commerce.search import SearchResult
from bot.core.models import Product
from bot.texts import messages
from bot.texts.i18n import _, format_money

MAX_BUTTONS = 5


def stock_summary(product: Product) -> str:
    """``"in stock: Abu Dhabi 8, Dubai 30"`` or ``"out of stock (made to order, 3–5 weeks)"``."""
    levels = product.stock_by_warehouse()
    if not any(levels.values()):
        return _("out of stock (made to order, 3–5 weeks)")
    return _("in stock: %(levels)s") % {"levels": ", ".join(f"{warehouse} {qty}" for warehouse, qty in levels.items())}


def total_stock(product: Product) -> int:
    """Units on hand across all warehouses."""
    return sum(product.stock_by_warehouse().values())


def product_line(product: Product) -> str:
    """``"• ErgoPro Ergonomic Chair, black (OC-1006): AED 1,290.00, in stock: Abu Dhabi 8, Dubai 30"``."""
    price = format_money(product.price_minor, product.currency)
    return f"• {product.display_name} ({product.sku}): {price}, {stock_summary(product)}"


def price_line(product: Product) -> str:
    """``"• ErgoPro Ergonomic Chair, black (OC-1006): AED 1,290.00 per unit, excluding VAT"``."""
    price = format_money(product.price_minor, product.currency)
    return "• " + _("%(product)s: %(price)s per unit, excluding VAT") % {
        "product": f"{product.display_name} ({product.sku})",
        "price": price,
    }


def stock_line(product: Product) -> str:
    """``"ErgoPro Ergonomic Chair, black (OC-1006) — Abu Dhabi: 8, Dubai: 30 (total 38)."``"""
    levels = product.stock_by_warehouse()
    per_warehouse = ", ".join(f"{warehouse}: {qty}" for warehouse, qty in levels.items()) or _("no stock records")
    return _("%(product)s — %(levels)s (total %(total)s).") % {
        "product": f"{product.display_name} ({product.sku})",
        "levels": per_warehouse,
        "total": sum(levels.values()),
    }


def quantity_note(product: Product, quantity: int | None) -> str:
    """Whether the stock covers ``quantity`` units; empty when no quantity was asked."""
    if not quantity:
        return ""
    available = total_stock(product)
    if available >= quantity:
        return _("We have enough %(sku)s in stock for %(quantity)s.") % {"sku": product.sku, "quantity": quantity}
    return _("We have %(available)s of %(sku)s in stock; the other %(missing)s would be made to order (3–5 weeks).") % {
        "available": available,
        "sku": product.sku,
        "missing": quantity - available,
    }


def product_buttons(products: list[Product]) -> list[dict[str, str]]:
    """Buttons that ask for a product's details by SKU (Rasa payload syntax)."""
    return [
        {"title": f"{p.display_name} ({p.sku})", "payload": "/ask_product_details" + json.dumps({"sku": p.sku})}
        for p in products[:MAX_BUTTONS]
    ]


def choice_buttons(intent: str, products: list[Product], quantity: int | None = None) -> list[dict[str, str]]:
    """Buttons that repeat ``intent`` for one of ``products`` by SKU (with ``quantity`` when given), e.g.
    ``/add_to_cart{"sku": "OC-1006", "quantity": "2"}``."""

    def payload(p: Product) -> str:
        entities = {"sku": p.sku, **({"quantity": str(quantity)} if quantity else {})}
        return f"/{intent}{json.dumps(entities)}"

    return [{"title": f"{p.display_name} ({p.sku})", "payload": payload(p)} for p in products[:MAX_BUTTONS]]


def compare_buttons(product: Product, others: list[Product]) -> list[dict[str, str]]:
    """Buttons that ask to compare ``product`` with one of ``others``; the payload is the customer's words in
    their language ("compare OC-1006 and OC-1009"), understood by NLU as the customer typing them."""
    return [
        {
            "title": f"{o.display_name} ({o.sku})",
            "payload": _("compare %(sku)s and %(other)s") % {"sku": product.sku, "other": o.sku},
        }
        for o in others[:MAX_BUTTONS]
    ]


def show_category_buttons(categories: list[str], labels: dict[str, str]) -> list[dict[str, str]]:
    """``Show <label>`` buttons asking for the products of each of ``categories`` (cross-sell)."""
    return [
        {
            "title": _("Show %(category)s") % {"category": labels.get(c, c).lower()},
            "payload": f'/ask_products{{"category": "{c}"}}',
        }
        for c in categories
    ]


def category_buttons(labels: dict[str, str]) -> list[dict[str, str]]:
    """One button per catalog category, asking for its products."""
    return [
        {"title": label, "payload": "/ask_products" + json.dumps({"category": category})}
        for category, label in labels.items()
    ]


def dimensions(attributes: dict[str, Any]) -> str:
    """``"W 68 cm × D 65 cm × H 105-118 cm"`` from the width/depth/height attributes present, or ``""``."""
    labels = {"width_cm": _("W %(cm)s cm"), "depth_cm": _("D %(cm)s cm"), "height_cm": _("H %(cm)s cm")}
    return " × ".join(
        label % {"cm": attributes[key]} for key, label in labels.items() if attributes.get(key) is not None
    )


def product_details(product: Product) -> str:
    """A product's full card: name, SKU, price, colour, material, dimensions, features, description, stock."""
    a = product.attributes or {}
    lines = [
        f"{product.display_name} ({product.sku})",
        _("Price: %(price)s per unit, excluding VAT") % {"price": format_money(product.price_minor, product.currency)},
    ]
    if a.get("colour") or a.get("material"):
        lines.append(
            _("Finish: %(finish)s") % {"finish": ", ".join(str(a[k]) for k in ("colour", "material") if a.get(k))}
        )
    if dimensions(a):
        lines.append(_("Size: %(size)s") % {"size": dimensions(a)})
    if a.get("features"):
        lines.append(_("Features: %(features)s") % {"features": ", ".join(a["features"])})
    if product.description:
        lines.append(product.description)
    stock = stock_summary(product)
    lines.append(stock[:1].upper() + stock[1:])  # not str.capitalize: it would lower "Abu Dhabi"
    return "\n".join(lines)


def _sort_order(sort: str | None) -> str | None:
    """How a list in the order of ``sort`` (a key of :data:`bot.commerce.search.SORTS`) is introduced:
    ``"cheapest first"``; None for no sort."""
    orders = {
        "cheapest": _("cheapest first"),
        "dearest": _("most expensive first"),
        "largest": _("largest first"),
        "smallest": _("smallest first"),
    }
    return orders.get(sort or "")


def _intro(what: str, budget: str | None, order: str | None) -> str:
    """``"Here are office chairs within AED 1,500.00 per unit from our catalog, cheapest first:"``."""
    values = {"what": what, "budget": budget, "order": order}
    if budget and order:
        return _("Here are %(what)s within %(budget)s per unit from our catalog, %(order)s:") % values
    if budget:
        return _("Here are %(what)s within %(budget)s per unit from our catalog:") % values
    if order:
        return _("Here are %(what)s from our catalog, %(order)s:") % values
    return _("Here are %(what)s from our catalog:") % values


def _closest(dropped: str, what: str, budget: str | None, order: str | None) -> str:
    """What a relaxed search left out (``dropped``: a step of :meth:`bot.commerce.search.ProductQuery.relaxed`)
    and what it found instead: ``"Nothing matched every detail, so I left out the budget. The closest desks:"``."""
    left_out = {
        "colour, material and features": _(
            "Nothing matched every detail, so I left out the colour, material and features."
        ),
        "budget": _("Nothing matched every detail, so I left out the budget."),
    }[dropped]
    values = {"what": what, "budget": budget, "order": order}
    if budget and order:
        closest = _("The closest %(what)s within %(budget)s per unit, %(order)s:") % values
    elif budget:
        closest = _("The closest %(what)s within %(budget)s per unit:") % values
    elif order:
        closest = _("The closest %(what)s, %(order)s:") % values
    else:
        closest = _("The closest %(what)s:") % values
    return f"{left_out} {closest}"


def _search_lines(result: SearchResult, labels: dict[str, str]) -> list[str]:
    """The intro (what was searched, within which budget, in which order, what was relaxed) and one line per
    product."""
    query = result.query
    what = ", ".join(labels.get(c, c).lower() for c in query.categories) or _("products")
    currency = result.products[0].currency
    budget = format_money(query.max_price_minor, currency) if query.max_price_minor is not None else None
    order = _sort_order(query.sort)
    intro = _closest(result.dropped, what, budget, order) if result.dropped else _intro(what, budget, order)
    return [intro, *map(product_line, result.products)]


def search_reply(result: SearchResult, labels: dict[str, str], vat_rate: Decimal) -> str:
    """The answer to a product search that found something: intro (budget, order, what was relaxed),
    one line per product, whether stock covers the quantity asked, and the VAT note."""
    return search_replies([result], labels, vat_rate)


def search_replies(results: list[SearchResult], labels: dict[str, str], vat_rate: Decimal) -> str:
    """The answer to a search of one or several categories (one :class:`SearchResult` each, all non-empty):
    each as :func:`search_reply`'s, then the VAT note once."""
    lines = []
    for result in results:
        lines += _search_lines(result, labels)
        note = quantity_note(result.products[0], result.query.quantity)
        if note:
            lines.append(note)
    lines.append(
        _("Prices are per unit and exclude %(vat)s VAT. Tap a product for details.") % {"vat": f"{vat_rate:.0%}"}
    )
    return "\n".join(lines)


def _compared() -> list[tuple[str, Callable[[Product], str]]]:
    """The rows of a comparison, price first: (label, a product's value as shown)."""
    return [
        (_("Price"), lambda p: format_money(p.price_minor, p.currency)),
        (_("Colour"), lambda p: (p.attributes or {}).get("colour") or "–"),
        (_("Material"), lambda p: (p.attributes or {}).get("material") or "–"),
        (_("Size"), lambda p: dimensions(p.attributes or {}) or "–"),
        (_("Features"), lambda p: ", ".join((p.attributes or {}).get("features") or []) or "–"),
        (
            _("Stock"),
            lambda p: _("%(count)s in stock") % {"count": total_stock(p)} if total_stock(p) else _("made to order"),
        ),
    ]


def comparison(products: list[Product]) -> str:
    """Products side by side: one row per attribute whose values differ (price always first), each value
    after its SKU, then what they share (``templates/messages/compare.txt.j2``)."""
    differ, same = [], []
    for row, (label, value) in enumerate(_compared()):
        values = [value(p) for p in products]
        if row == 0 or len(set(values)) > 1:  # the price always
            differ.append((label, [(p.sku, v) for p, v in zip(products, values, strict=True)]))
        elif values[0] != "–":
            same.append((label, values[0]))
    return messages.render("compare", products=products, differ=differ, same=same)


def volume_pricing_note(rules: PricingRules) -> str | None:
    """``"For 10 or more units we also offer volume pricing."``: the smallest of ``rules.volume_tiers`` in
    ``templates/messages/volume_pricing.txt.j2``; None when ``pricing.yml`` has no volume tiers."""
    if not rules.volume_tiers:
        return None
    return messages.render("volume_pricing", min_quantity=rules.volume_tiers[0].min_quantity)
