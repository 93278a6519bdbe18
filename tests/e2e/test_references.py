"""References to products through the real stack (console → Rasa server → action server), with no LLM: a SKU
said once is one product, "the second one" and "both of them" count in the list last shown, superlatives sort
the search, several categories get products of each, comparisons side by side, unknown SKUs named as such,
pasted code searches for nothing. Every price in a reply is checked against the catalog.

Each row is one customer message in a conversation: (message, expected intent, expected entities (name →
value, a subset of NLU's), check of the reply). The rows of one conversation run in order; every failing row
is reported at the end, not just the first."""

from collections.abc import Callable
from dataclasses import dataclass

import pytest

from bot.commerce.pricing import CartItem, load_pricing
from bot.core.models import Product
from bot.core.money import format_money
from tests.e2e.test_conversation import Chat, assert_true_to_catalog, catalog, products_in

pytestmark = pytest.mark.e2e


@dataclass
class Said:
    """What the stack answered to one message: the reply's text, NLU's parse and the slots afterwards."""

    text: str
    intent: str
    entities: dict[str, set[str]]
    slots: dict


Check = Callable[[Said, "Context"], None]


@dataclass
class Context:
    stack: object
    listed: list[str]  # the list last shown, as the test saw it


def turn(chat: Chat, message: str) -> Said:
    text = chat.text(message)
    tracker = chat.tracker()
    latest = tracker["latest_message"]
    entities: dict[str, set[str]] = {}
    for e in latest.get("entities") or []:
        entities.setdefault(e["entity"], set()).add(str(e["value"]))
    return Said(text, latest["intent"]["name"], entities, tracker["slots"])


def shown_in_order(said: Said) -> list[str]:
    return list(products_in(said.text))


# --- checks of a reply ------------------------------------------------------------------------------------


def lists_products(*categories: str, sort: str | None = None, at_least: int = 1) -> Check:
    """Product lines true to the catalog, of each of ``categories``, in ``sort``'s order within each."""

    def check(said: Said, ctx: Context) -> None:
        shown = products_in(said.text)
        products = assert_true_to_catalog(ctx.stack, shown)
        assert len(shown) >= at_least, said.text
        assert {p.category for p in products.values()} == set(categories), said.text
        ctx.listed = list(shown)
        if sort:
            for category in categories:
                values = [_sort_value(products[s], sort) for s in shown if products[s].category == category]
                assert values == sorted(values, reverse=sort in ("dearest", "largest")), (sort, said.text)

    return check


def _sort_value(product, sort: str) -> float:
    if sort in ("cheapest", "dearest"):
        return product.price_minor
    return product.attributes["width_cm"] * product.attributes["depth_cm"]


def listed(ctx: Context, position: int) -> Product:
    """The catalog's product at ``position`` of the list last shown."""
    sku = ctx.listed[position]
    return catalog(ctx.stack, [sku])[sku]


def cheapest_listed(ctx: Context) -> Product:
    """The catalog's cheapest product of the list last shown (the lower SKU on a tie)."""
    return min(catalog(ctx.stack, ctx.listed).values(), key=lambda p: (p.price_minor, p.sku))


def details_of(position: int) -> Check:
    """The card of the product at ``position`` of the list last shown (its SKU and its catalog price)."""

    def check(said: Said, ctx: Context) -> None:
        product = listed(ctx, position)
        assert f"({product.sku})" in said.text and format_money(product.price_minor, "AED") in said.text, said.text

    return check


def cheapest_of_listed(said: Said, ctx: Context) -> None:
    cheapest = cheapest_listed(ctx)
    assert f"({cheapest.sku})" in said.text and format_money(cheapest.price_minor, "AED") in said.text, said.text


def adds_cheapest_of_listed(quantity: int) -> Check:
    def check(said: Said, ctx: Context) -> None:
        assert f"({cheapest_listed(ctx).sku}) × {quantity}" in said.text, said.text

    return check


def price_of(position: int) -> Check:
    def check(said: Said, ctx: Context) -> None:
        product = listed(ctx, position)
        assert f"({product.sku}): {format_money(product.price_minor, 'AED')} per unit" in said.text, said.text

    return check


def in_cart(*lines: tuple[str | int, int]) -> Check:
    """The cart reply has each (SKU or position in the list last shown, quantity) and the catalog's total."""

    def check(said: Said, ctx: Context) -> None:
        for what, quantity in lines:
            sku = ctx.listed[what] if isinstance(what, int) else what
            assert f"({sku}) × {quantity}" in said.text, said.text

    return check


def cart_total(*lines: tuple[str, int]) -> Check:
    def check(said: Said, ctx: Context) -> None:
        products = catalog(ctx.stack, [sku for sku, _ in lines])
        priced = load_pricing().price(
            [CartItem(s, products[s].name, products[s].category, products[s].price_minor, q) for s, q in lines]
        )
        assert f"Total: {format_money(priced.total_minor, 'AED')}" in said.text, said.text

    return check


def side_by_side(*what: str | int) -> Check:
    """A comparison of these SKUs (or positions in the list last shown) with their catalog prices."""

    def check(said: Said, ctx: Context) -> None:
        skus = [ctx.listed[w] if isinstance(w, int) else w for w in what]
        products = catalog(ctx.stack, skus)
        prices = " | ".join(f"{s} {format_money(products[s].price_minor, 'AED')}" for s in skus)
        assert f"• Price: {prices}" in said.text, said.text

    return check


def stock_of(position: int) -> Check:
    def check(said: Said, ctx: Context) -> None:
        product = listed(ctx, position)
        total = sum(product.stock_by_warehouse().values())
        assert f"({product.sku}) — " in said.text and f"(total {total})" in said.text

    return check


def unknown(sku: str, nearest: str | None = None) -> Check:
    def check(said: Said, ctx: Context) -> None:
        assert sku in said.text and "catalog" in said.text, said.text
        assert "company" not in said.text.lower() and "payment" not in said.text.lower(), said.text
        if nearest:
            assert nearest in products_in(said.text), said.text

    return check


def out_of_scope(said: Said, ctx: Context) -> None:
    assert said.text.startswith("I'm afraid I can't help with that"), said.text


def no_products(said: Said, ctx: Context) -> None:
    assert not products_in(said.text) and "MT-" not in said.text, said.text


# --- the conversations --------------------------------------------------------------------------------------

D14 = [("DK-2014", 3)]
CONVERSATIONS = {
    "a SKU said once is one product": [
        ("add 3 DK-2014 to my cart", "add_to_cart", {"sku": "DK-2014", "quantity": "3"}, in_cart(*D14)),
        ("what's my total?", "show_cart", {}, cart_total(*D14)),
    ],
    "several categories, then references to what was shown": [
        (
            "Need 20 desks and 20 chairs. Budget is tight.",
            "ask_products",
            {"category": "desk"},
            lists_products("desk", "office_chair", at_least=4),
        ),
        ("need 6 lockers and 6 desk lamps", "ask_products", {}, lists_products("storage", "accessory", at_least=2)),
        ("the second one", "ask_product_details", {"mention": "second"}, details_of(1)),
        ("how much is the last one?", "ask_price", {"mention": "last"}, price_of(-1)),
        ("is the first one in stock?", "ask_stock", {"mention": "first"}, stock_of(0)),
        ("compare the first and the second", "compare_products", {"mention": "first"}, side_by_side(0, 1)),
        ("add both of them to my cart", "add_to_cart", {"mention": "both"}, in_cart((0, 1), (1, 1))),
    ],
    "superlatives sort, ordinals and anaphora pick": [
        (
            "5 of your cheapest standing desk",
            "ask_products",
            {"sort": "cheapest"},
            lists_products("desk", sort="cheapest", at_least=5),
        ),
        ("the cheapest of those", "ask_product_details", {"sort": "cheapest"}, cheapest_of_listed),
        ("how much is the second one?", "ask_price", {"mention": "second"}, price_of(1)),
        ("tell me more about the third one", "ask_product_details", {"mention": "third"}, details_of(2)),
        ("add the first one to my cart", "add_to_cart", {"mention": "first"}, in_cart((0, 1))),
        (
            "show me your biggest meeting tables",
            "ask_products",
            {"sort": "largest"},
            lists_products("meeting_table", sort="largest"),
        ),
        ("what colour is the first one", "ask_product_details", {"mention": "first"}, details_of(0)),
        ("add 2 of the cheaper one", "add_to_cart", {"sort": "cheapest"}, adds_cheapest_of_listed(2)),
        ("most expensive sofas please", "ask_products", {"sort": "dearest"}, lists_products("lounge", sort="dearest")),
        (
            "which is the smallest desk you have?",
            "ask_products",
            {"sort": "smallest"},
            lists_products("desk", sort="smallest"),
        ),
        ("show me the cheapest ones", "ask_products", {"sort": "cheapest"}, lists_products("desk", sort="cheapest")),
    ],
    "comparisons, unknown SKUs and pasted code": [
        (
            "what's the difference between OC-1006 and OC-1009?",
            "compare_products",
            {"sku": "OC-1009"},
            side_by_side("OC-1006", "OC-1009"),
        ),
        (
            "which is better, OC-1004 or OC-1006?",
            "compare_products",
            {"sku": "OC-1004"},
            side_by_side("OC-1004", "OC-1006"),
        ),
        ("DK-2001 vs DK-2014", "compare_products", {"sku": "DK-2014"}, side_by_side("DK-2001", "DK-2014")),
        ("do you have product ZZ-99999?", None, {"sku": "ZZ-99999"}, unknown("ZZ-99999")),
        ("is OC-10066 in stock?", "ask_stock", {"sku": "OC-10066"}, unknown("OC-10066", nearest="OC-1006")),
        ("do you have XY-777?", None, {"sku": "XY-777"}, unknown("XY-777")),
        ("'; DROP TABLE products; --", None, {}, out_of_scope),
        ("select * from customers;", None, {}, no_products),
    ],
}


@pytest.mark.parametrize("name", CONVERSATIONS)
def test_references_to_products(stack, name):
    chat, ctx, failures = Chat(stack), Context(stack, []), []
    for message, intent, entities, check in CONVERSATIONS[name]:
        said = turn(chat, message)
        problems = []
        if intent and said.intent != intent:
            problems.append(f"intent {said.intent}, expected {intent}")
        for entity, value in entities.items():
            if value not in said.entities.get(entity, set()):
                problems.append(f"entity {entity}={value} missing from {said.entities}")
        if check:
            try:
                check(said, ctx)
            except AssertionError as exc:
                problems.append(f"reply: {exc}")
        if said.slots.get("listed_skus"):
            ctx.listed = said.slots["listed_skus"]
        if problems:
            failures.append(f"{message!r}: " + "; ".join(problems) + f"\n    reply: {said.text!r}")
    assert not failures, "\n".join(failures)
