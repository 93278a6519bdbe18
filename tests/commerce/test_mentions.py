"""References to products (bot.commerce.mentions) and the searches and comparisons they feed, against the
real default catalog in SQLite (and the session's Chroma index for free-text ranking)."""

from dataclasses import replace

import pytest

from bot.commerce import browsing, inputs
from bot.commerce.mentions import mentioned_products, nearest_products, not_found, products_of
from bot.commerce.search import ProductQuery, query_from, search_products
from bot.core import db
from bot.core.business import get_vocabulary
from bot.core.turn import Turn

LISTED = ["OC-1006", "OC-1009", "OC-1001"]  # AED 1,290, 1,480, 620


def turn(text="", intent="ask_product_details", slots=None, **entities) -> Turn:
    return Turn("web-test", "web", text, intent, {k: tuple(v) for k, v in entities.items()}, slots or {})


async def resolve(url, t: Turn, listed=LISTED):
    async with db.session_scope(url) as session:
        products = await products_of(session, listed)
        return await mentioned_products(session, t, products)


async def test_one_sku_mentioned_twice_is_one_candidate(loaded_db):
    # the regex extractor and the entity extractor (DIET then, CRF now) both tag it, in different cases
    found = await resolve(loaded_db, turn("add 3 DK-2014 to my cart", sku=["DK-2014", "dk-2014"]), listed=[])
    assert [p.sku for p in found.products] == ["DK-2014"] and found.exact


@pytest.mark.parametrize(
    "mention, expected",
    [
        (["first"], ["OC-1006"]),
        (["second"], ["OC-1009"]),
        (["last"], ["OC-1001"]),
        (["both"], ["OC-1006", "OC-1009"]),
        (["all"], LISTED),
        (["first", "last"], ["OC-1006", "OC-1001"]),
        (["fifth"], []),  # beyond the list: none of them, not all of them
    ],
)
async def test_positions_and_groups_count_in_the_list_last_shown(loaded_db, mention, expected):
    found = await resolve(loaded_db, turn("the ... one", mention=mention))
    assert [p.sku for p in found.products] == expected and found.exact


@pytest.mark.parametrize(
    "sort, expected", [("cheapest", "OC-1001"), ("dearest", "OC-1009"), ("largest", "OC-1006"), ("smallest", "OC-1001")]
)
async def test_a_superlative_picks_from_the_list(loaded_db, sort, expected):
    found = await resolve(loaded_db, turn("the ... one", sort=[sort]))
    assert [p.sku for p in found.products] == [expected]


async def test_a_superlative_with_a_category_picks_from_the_catalog(loaded_db):
    found = await resolve(loaded_db, turn("how much is your cheapest desk", sort=["cheapest"], category=["desk"]))
    async with db.session_scope(loaded_db) as session:
        desks = (await search_products(session, ProductQuery(categories=("desk",)), limit=200)).products
    assert [p.sku for p in found.products] == [min(desks, key=lambda p: p.price_minor).sku]


async def test_anaphora_without_a_reference_means_the_candidates(loaded_db):
    found = await resolve(loaded_db, turn("how much is it"))
    assert [p.sku for p in found.products] == LISTED and not found.exact


@pytest.mark.parametrize(
    "sort, descending, value",
    [
        ("cheapest", False, lambda p: p.price_minor),
        ("dearest", True, lambda p: p.price_minor),
        ("largest", True, lambda p: p.attributes["width_cm"] * p.attributes["depth_cm"]),
        ("smallest", False, lambda p: p.attributes["width_cm"] * p.attributes["depth_cm"]),
    ],
)
async def test_superlatives_sort_the_search(loaded_db, sort, descending, value):
    async with db.session_scope(loaded_db) as session:
        vocabulary = await get_vocabulary(session)
        query = query_from(vocabulary, "standing desks", {"sort": [sort], "quantity": ["5"]}, "AED")
        result = await search_products(session, query)
        every = await search_products(session, replace(query, sort=None, quantity=None), 200)
    values = [value(p) for p in result.products]
    assert query.sort == sort and len(values) == 5 and values == sorted(values, reverse=descending)
    best = max if descending else min
    assert values[0] == best(value(p) for p in every.products)


async def test_the_cheapest_ones_refine_the_category_in_play(loaded_db):
    vocabulary = await load(loaded_db)
    query = query_from(vocabulary, "show me the cheapest ones", {"sort": ["cheapest"]}, "AED", "lounge")
    assert (query.categories, query.sort) == (("lounge",), "cheapest")


async def test_a_category_word_inside_a_longer_term_is_not_searched(loaded_db):
    vocabulary = await load(loaded_db)
    entities = {"category": ["storage", "desk"], "quantity": ["6"]}  # NLU (DIET) tagged "desk" in "desk lamps"
    query = query_from(vocabulary, "need 6 lockers and 6 desk lamps", entities, "AED")
    assert query.categories == ("storage", "accessory")


async def load(url):
    async with db.session_scope(url) as session:
        return await get_vocabulary(session)


async def test_several_categories_get_products_of_each(loaded_db):
    text = "Need 20 desks and 20 chairs. Budget is tight."
    outcome = await browsing.search_products(turn(text, "ask_products", category=["desk", "office_chair"]))
    slots = dict(outcome.slots)
    async with db.session_scope(loaded_db) as session:
        shown = await products_of(session, slots["shown_skus"])
    assert {p.category for p in shown} == {"desk", "office_chair"} and slots["listed_skus"] == slots["shown_skus"]
    text = outcome.messages[0]["text"]
    assert "Here are desks" in text and "Here are office chairs" in text
    assert all(f"({p.sku}): AED " in text for p in shown)


async def test_products_side_by_side_show_real_prices_and_what_differs(loaded_db):
    outcome = await browsing.compare_products(turn("difference?", "compare_products", sku=["OC-1006", "OC-1009"]))
    text = outcome.messages[0]["text"]
    assert "• Price: OC-1006 AED 1,290.00 | OC-1009 AED 1,480.00" in text
    assert "H 105-118 cm" in text and "H 118-132 cm" in text and "headrest" in text
    assert "In common: colour black; material mesh" in text
    assert dict(outcome.slots)["listed_skus"] == ["OC-1006", "OC-1009"]
    # "compare both of them" counts in the list last shown; one product alone asks what to compare it with
    outcome = await browsing.compare_products(
        turn("compare both", "compare_products", {"listed_skus": LISTED}, mention=["both"])
    )
    assert "OC-1006 AED 1,290.00 | OC-1009 AED 1,480.00" in outcome.messages[0]["text"]
    outcome = await browsing.compare_products(turn("compare OC-1006", "compare_products", {}, sku=["OC-1006"]))
    assert outcome.messages[0]["response"] == "utter_which_to_compare"


async def test_an_unknown_sku_is_named_with_the_nearest_products(loaded_db):
    async with db.session_scope(loaded_db) as session:
        typo = turn("is OC-10066 in stock?", "ask_stock", sku=["OC-10066"])
        nearest = await nearest_products(session, typo, "OC-10066")
        assert nearest[0].sku == "OC-1006"
        invented = turn("do you have ZZ-99999 in black leather?", "ask_stock", sku=["ZZ-99999"])
        found = await mentioned_products(session, invented, [])
        assert found.unknown == ("ZZ-99999",) and not found.products
        outcome = await not_found(session, invented, found)
    text = outcome.messages[0]["text"]
    assert text.startswith("ZZ-99999 is not a product in our catalog") and "AED " in text
    async with db.session_scope(loaded_db) as session:
        bare = turn("do you have product ZZ-99999?", "ask_stock", sku=["ZZ-99999"])
        outcome = await not_found(session, bare, await mentioned_products(session, bare, []))
    assert outcome.messages[0]["response"] == "utter_unknown_product" and outcome.messages[0]["buttons"]


async def test_code_pasted_into_the_chat_searches_for_nothing(loaded_db):
    assert inputs.looks_like_code("'; DROP TABLE products; --")
    assert not inputs.looks_like_code("need a meeting table; for 10 people -- asap")
    outcome = await browsing.search_products(turn("'; DROP TABLE products; --", "ask_products", category=["TABLE"]))
    assert [m.get("response") for m in outcome.messages] == ["utter_out_of_scope"] and not outcome.slots
