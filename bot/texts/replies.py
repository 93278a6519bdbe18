"""Texts and buttons that show catalog facts. Every price and stock figure comes from the DB row."""

import json
from decimal import Decimal
from typing import Any

from bot.commerce.pricing import PricingRules
from bot.commerce.search import SearchResult
from bot.core.models import Product
from bot.core.money import format_money
from bot.texts import messages

MAX_BUTTONS = 5


def stock_summary(product: Product) -> str:
    """``"in stock: Abu Dhabi 8, Dubai 30"`` or ``"out of stock"``."""
    levels = product.stock_by_warehouse()
    if not any(levels.values()):
        return "out of stock (made to order, 3–5 weeks)"
    return "in stock: " + ", ".join(f"{warehouse} {qty}" for warehouse, qty in levels.items())


def total_stock(product: Product) -> int:
    """Units on hand across all warehouses."""
    return sum(product.stock_by_warehouse().values())


def product_line(product: Product) -> str:
    """``"• ErgoPro Ergonomic Chair, black (OC-1006): AED 1,290.00, in stock: Abu Dhabi 8, Dubai 30"``."""
    price = format_money(product.price_minor, product.currency)
    return f"• {product.name} ({product.sku}): {price}, {stock_summary(product)}"


def price_line(product: Product) -> str:
    """``"• ErgoPro Ergonomic Chair, black (OC-1006): AED 1,290.00 per unit, excluding VAT"``."""
    price = format_money(product.price_minor, product.currency)
    return f"• {product.name} ({product.sku}): {price} per unit, excluding VAT"


def stock_line(product: Product) -> str:
    """``"ErgoPro Ergonomic Chair, black (OC-1006) — Abu Dhabi: 8, Dubai: 30 (total 38)."``"""
    levels = product.stock_by_warehouse()
    per_warehouse = ", ".join(f"{warehouse}: {qty}" for warehouse, qty in levels.items()) or "no stock records"
    return f"{product.name} ({product.sku}) — {per_warehouse} (total {sum(levels.values())})."


def quantity_note(product: Product, quantity: int | None) -> str:
    """Whether the stock covers ``quantity`` units; empty when no quantity was asked."""
    if not quantity:
        return ""
    available = total_stock(product)
    if available >= quantity:
        return f"We have enough {product.sku} in stock for {quantity}."
    return (
        f"We have {available} of {product.sku} in stock; "
        f"the other {quantity - available} would be made to order (3–5 weeks)."
    )


def product_buttons(products: list[Product]) -> list[dict[str, str]]:
    """Buttons that ask for a product's details by SKU (Rasa payload syntax)."""
    return [
        {"title": f"{p.name} ({p.sku})", "payload": "/ask_product_details" + json.dumps({"sku": p.sku})}
        for p in products[:MAX_BUTTONS]
    ]


def choice_buttons(intent: str, products: list[Product], quantity: int | None = None) -> list[dict[str, str]]:
    """Buttons that repeat ``intent`` for one of ``products`` by SKU (with ``quantity`` when given), e.g.
    ``/add_to_cart{"sku": "OC-1006", "quantity": "2"}``."""

    def payload(p: Product) -> str:
        entities = {"sku": p.sku, **({"quantity": str(quantity)} if quantity else {})}
        return f"/{intent}{json.dumps(entities)}"

    return [{"title": f"{p.name} ({p.sku})", "payload": payload(p)} for p in products[:MAX_BUTTONS]]


def compare_buttons(product: Product, others: list[Product]) -> list[dict[str, str]]:
    """Buttons that ask to compare ``product`` with one of ``others``; the payload is the customer's words
    ("compare OC-1006 and OC-1009"), understood by NLU as the customer typing them."""
    return [
        {"title": f"{o.name} ({o.sku})", "payload": f"compare {product.sku} and {o.sku}"} for o in others[:MAX_BUTTONS]
    ]


def show_category_buttons(categories: list[str], labels: dict[str, str]) -> list[dict[str, str]]:
    """``Show <label>`` buttons asking for the products of each of ``categories`` (cross-sell)."""
    return [
        {"title": f"Show {labels.get(c, c).lower()}", "payload": f'/ask_products{{"category": "{c}"}}'}
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
    parts = [
        f"{label} {attributes[key]} cm"
        for key, label in (("width_cm", "W"), ("depth_cm", "D"), ("height_cm", "H"))
        if attributes.get(key) is not None
    ]
    return " × ".join(parts)


def product_details(product: Product) -> str:
    """A product's full card: name, SKU, price, colour, material, dimensions, features, description, stock."""
    a = product.attributes or {}
    lines = [
        f"{product.name} ({product.sku})",
        f"Price: {format_money(product.price_minor, product.currency)} per unit, excluding VAT",
    ]
    if a.get("colour") or a.get("material"):
        lines.append("Finish: " + ", ".join(str(a[k]) for k in ("colour", "material") if a.get(k)))
    if dimensions(a):
        lines.append(f"Size: {dimensions(a)}")
    if a.get("features"):
        lines.append("Features: " + ", ".join(a["features"]))
    if product.description:
        lines.append(product.description)
    lines.append(stock_summary(product).capitalize())
    return "\n".join(lines)


def _search_lines(result: SearchResult, labels: dict[str, str]) -> list[str]:
    """The intro (what was searched, within which budget, what was relaxed) and one line per product."""
    query = result.query
    what = ", ".join(labels.get(c, c).lower() for c in query.categories) or "products"
    currency = result.products[0].currency
    within = (
        f" within {format_money(query.max_price_minor, currency)} per unit" if query.max_price_minor is not None else ""
    )
    order = f", {SORT_WORDS[query.sort]} first" if query.sort in SORT_WORDS else ""
    intro = f"Here are {what}{within} from our catalog{order}:"
    if result.dropped:
        intro = f"Nothing matched every detail, so I left out the {result.dropped}. The closest {what}{within}{order}:"
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
    lines.append(f"Prices are per unit and exclude {vat_rate:.0%} VAT. Tap a product for details.")
    return "\n".join(lines)


SORT_WORDS = {"cheapest": "cheapest", "dearest": "most expensive", "largest": "largest", "smallest": "smallest"}
_COMPARED = (  # (label, value of a product as shown)
    ("Price", lambda p: format_money(p.price_minor, p.currency)),
    ("Colour", lambda p: (p.attributes or {}).get("colour") or "–"),
    ("Material", lambda p: (p.attributes or {}).get("material") or "–"),
    ("Size", lambda p: dimensions(p.attributes or {}) or "–"),
    ("Features", lambda p: ", ".join((p.attributes or {}).get("features") or []) or "–"),
    ("Stock", lambda p: f"{total_stock(p)} in stock" if total_stock(p) else "made to order"),
)


def comparison(products: list[Product]) -> str:
    """Products side by side: one row per attribute whose values differ (price always first), each value
    after its SKU, then what they share (``templates/messages/compare.txt.j2``)."""
    differ, same = [], []
    for label, value in _COMPARED:
        values = [value(p) for p in products]
        if label == "Price" or len(set(values)) > 1:
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
