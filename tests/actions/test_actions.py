"""Actions run as the action server runs them, on the real domain and a real SQLite catalog."""

import logging

import pytest
import yaml
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy import select

from actions.conversation import ActionGreet
from actions.knowledge import ActionAnswerQuestion
from actions.leads import ActionSaveLead, ValidateLeadForm
from actions.products import (
    ActionHandleObjection,
    ActionProductDetails,
    ActionSearchProducts,
    ActionShowPrice,
    ActionShowStock,
)
from bot.core import db
from bot.core.models import Contact, Product
from bot.core.money import format_money
from bot.core.settings import ROOT

DOMAIN = yaml.safe_load((ROOT / "domain.yml").read_text())


def tracker(text="", intent="ask_products", entities=(), slots=None, events=None, channel="rest") -> Tracker:
    message = {"text": text, "intent": {"name": intent, "confidence": 0.99}, "entities": list(entities)}
    user = {"event": "user", "text": text, "parse_data": message, "input_channel": channel}
    return Tracker("web-test1234", slots or {}, message, [user, *(events or [])], False, None, None, "action_listen")


def ent(entity, value):
    return {"entity": entity, "value": value}


async def run(action, t: Tracker):
    dispatcher = CollectingDispatcher()
    events = await action.run(dispatcher, t, DOMAIN)
    return dispatcher.messages, {e["name"]: e["value"] for e in events if e.get("event") == "slot"}


def responses_of(messages):
    return [m.get("response") for m in messages]


async def test_every_response_an_action_utters_exists_in_the_domain():
    import inspect
    import re

    import actions.base
    import actions.leads
    from bot.answering import knowledge, questions
    from bot.commerce import browsing, qualifying, quoting, shopping
    from bot.handoff import handover
    from bot.privacy import forget_me

    used = set()
    for module in (
        actions.base,
        actions.leads,
        browsing,
        qualifying,
        quoting,
        shopping,
        handover,
        questions,
        knowledge,
        forget_me,
    ):
        used |= set(re.findall(r'"(utter_[a-z_]+)"', inspect.getsource(module)))
    used |= {f"utter_{intent}" for intent in ("objection_delivery", "objection_competitor", "objection_think")}
    used |= {f"utter_invalid_{slot}" for slot in DOMAIN["forms"]["lead_form"]["required_slots"]}
    assert used - set(DOMAIN["responses"]) == set()


async def test_search_shows_catalog_prices_and_stock_within_budget(loaded_db):
    text = "I need 12 ergonomic chairs for our office, around 1500 AED each"
    messages, slots = await run(
        ActionSearchProducts(),
        tracker(text, entities=[ent("quantity", "12"), ent("budget", "1500"), ent("category", "office_chair")]),
    )
    reply = messages[0]
    assert "within AED 1,500.00 per unit" in reply["text"]
    async with db.session_scope(loaded_db) as session:
        for sku in slots["shown_skus"]:
            product = await session.get(Product, sku)
            assert product.price_minor <= 150000 and product.category == "office_chair"
            line = next(row for row in reply["text"].splitlines() if f"({sku})" in row)
            assert format_money(product.price_minor, "AED") in line
            for warehouse, qty in product.stock_by_warehouse().items():
                assert f"{warehouse} {qty}" in line
    assert slots["sales_stage"] == "solution" and slots["category"] == "office_chair"
    assert [b["payload"] for b in reply["buttons"]] == [
        f'/ask_product_details{{"sku": "{s}"}}' for s in slots["shown_skus"]
    ]
    assert "for 12" in reply["text"]


async def test_vague_request_asks_what_with_category_buttons(loaded_db):
    messages, slots = await run(ActionSearchProducts(), tracker("I'm furnishing a new office"))
    assert responses_of(messages) == ["utter_ask_what_products"] and len(messages[0]["buttons"]) == 6
    assert slots == {"sales_stage": "qualifying"}


async def test_free_text_request_is_ranked_semantically_with_db_prices(loaded_db):
    messages, slots = await run(ActionSearchProducts(), tracker("something comfortable for long hours at the desk"))
    async with db.session_scope(loaded_db) as session:
        products = [await session.get(Product, s) for s in slots["shown_skus"]]
    assert len(products) >= 3 and all(
        p.category == "office_chair" and "ergonomic" in p.attributes["features"] for p in products[:3]
    )
    for p in products:
        assert f"({p.sku}): {format_money(p.price_minor, 'AED')}" in messages[0]["text"]
    assert slots["category"] == "office_chair" and slots["sales_stage"] == "solution"
    _, slots = await run(ActionSearchProducts(), tracker("a mat under the chair so the floor does not get scratched"))
    assert slots["shown_skus"][:2] == ["AC-6005", "AC-6006"]  # chair mats, not chairs


async def test_filters_still_apply_and_free_words_order_the_rest(loaded_db):
    text = "a black chair for long night shifts"
    _, slots = await run(ActionSearchProducts(), tracker(text, entities=[ent("colour", "black")]))
    async with db.session_scope(loaded_db) as session:
        products = [await session.get(Product, s) for s in slots["shown_skus"]]
    assert products and all(p.category == "office_chair" and p.attributes["colour"] == "black" for p in products)
    assert "24-hour" in products[0].name.lower() or "24-hour" in products[0].description.lower()


async def test_knowledge_question_gets_a_sourced_answer_and_a_feedback_request(loaded_db):
    t = tracker("how long does delivery to Abu Dhabi take?", "ask_delivery")
    messages, slots = await run(ActionAnswerQuestion(), t)
    assert messages[0]["text"].endswith("Source: Delivery — Delivery areas and lead times") and slots == {}
    custom = messages[1]["custom"]
    assert custom["feedback"] is True and custom["sources"] == ["policies/delivery.md#delivery-areas-and-lead-times"]
    assert len(custom["answer_id"]) == 32


async def test_a_topic_button_answers_the_question_asked_before_it(loaded_db):
    question = {"event": "user", "text": "can I send back a desk I no longer want?", "parse_data": {}}
    t = tracker(
        '/ask_knowledge{"topic": "policies/returns.md#change-of-mind-returns"}',
        "ask_knowledge",
        [ent("topic", "policies/returns.md#change-of-mind-returns")],
        events=[question],
    )
    t.events.reverse()  # the question came first, then the button
    messages, _ = await run(ActionAnswerQuestion(), t)
    assert messages[0]["text"].endswith("Source: Returns and Refunds — Change of mind returns")


async def test_refinement_keeps_the_category_from_earlier(loaded_db):
    _, slots = await run(ActionSearchProducts(), tracker("in black leather", slots={"category": "office_chair"}))
    async with db.session_scope(loaded_db) as session:
        products = [await session.get(Product, s) for s in slots["shown_skus"]]
    assert products and all(
        p.category == "office_chair" and p.attributes["colour"] == "black" and p.attributes["material"] == "leather"
        for p in products
    )


async def test_a_slot_already_holding_the_value_gets_no_event(loaded_db):
    text = "show me ergonomic chairs under 1500"
    first_messages, first = await run(ActionSearchProducts(), tracker(text))
    assert {"shown_skus", "sales_stage", "category"} <= first.keys()
    again_messages, again = await run(ActionSearchProducts(), tracker(text, slots=first))
    assert again == {} and again_messages == first_messages  # the same answer, no event Rasa would replay for ever
    changed = {**first, "sales_stage": "qualifying"}
    changed_messages, changed_slots = await run(ActionSearchProducts(), tracker(text, slots=changed))
    assert changed_messages == first_messages and changed_slots == {"sales_stage": "solution"}


def test_a_slot_reset_sets_every_slot_again():
    from actions.base import events_of
    from bot.core.turn import Outcome

    outcome = Outcome(reset_slots=True).set("sales_stage", "greeting")
    assert [e["event"] for e in events_of(outcome, {"sales_stage": "greeting"})] == ["reset_slots", "slot"]


async def test_stock_per_warehouse_for_a_sku(loaded_db):
    messages, _ = await run(
        ActionShowStock(), tracker("is oc-1006 in stock?", "ask_stock", [ent("sku", "oc-1006"), ent("quantity", "50")])
    )
    async with db.session_scope(loaded_db) as session:
        levels = (await session.get(Product, "OC-1006")).stock_by_warehouse()
    text = messages[0]["text"]
    for warehouse, qty in levels.items():
        assert f"{warehouse}: {qty}" in text
    assert f"total {sum(levels.values())}" in text
    assert ("enough" in text) == (sum(levels.values()) >= 50)


@pytest.mark.parametrize("action", [ActionShowStock(), ActionShowPrice(), ActionProductDetails()])
async def test_unknown_sku_gets_a_clear_answer(loaded_db, action):
    messages, _ = await run(action, tracker("ZZ-9999?", "ask_stock", [ent("sku", "ZZ-9999")]))
    assert responses_of(messages) == ["utter_unknown_product"] and messages[0]["product"] == "ZZ-9999"


async def test_price_and_details_use_the_last_shown_products(loaded_db):
    messages, _ = await run(ActionShowPrice(), tracker("price?", "ask_price", slots={"shown_skus": ["DK-2001"]}))
    assert "DK-2001" in messages[0]["text"] and "AED 690.00" in messages[0]["text"]
    messages, slots = await run(
        ActionProductDetails(),
        tracker("details", "ask_product_details", [ent("product", "Atlas Executive Desk with Return")]),
    )
    assert (
        "DK-" in messages[0]["text"]
        and "W 220 cm × D 180 cm × H 75 cm" in messages[0]["text"]
        and slots["sales_stage"] == "needs_analysis"
    )


async def test_price_objection_offers_cheaper_catalog_alternatives(loaded_db):
    messages, slots = await run(
        ActionHandleObjection(),
        tracker("too expensive", "objection_price", slots={"shown_skus": ["OC-1009", "OC-1006"]}),
    )
    assert slots["sales_stage"] == "objection_handling"
    assert messages[0]["text"].endswith(
        "\nFor 10 or more units we also offer volume pricing."
    )  # pricing.yml's first tier
    async with db.session_scope(loaded_db) as session:
        cheaper = [await session.get(Product, s) for s in slots["shown_skus"]]
    assert cheaper and all(p.price_minor < 129000 and p.category == "office_chair" for p in cheaper)
    messages, _ = await run(ActionHandleObjection(), tracker("let me think", "objection_think"))
    assert responses_of(messages) == ["utter_objection_think"]


async def test_a_crash_inside_an_action_gets_a_polite_reply_and_a_log_line(loaded_db, monkeypatch, caplog):
    async def broken(*args, **kwargs):
        raise RuntimeError("database on fire")

    monkeypatch.setattr("bot.commerce.browsing.find_products", broken)
    with caplog.at_level(logging.ERROR):
        messages, slots = await run(
            ActionSearchProducts(), tracker("chairs", entities=[ent("category", "office_chair")])
        )
    assert responses_of(messages) == ["utter_error"] and slots == {}
    assert (
        "action_search_products failed in conversation web-test1234" in caplog.text
        and "database on fire" in caplog.text
    )


async def test_stage_actions(loaded_db):
    assert (await run(ActionGreet(), tracker("hi", "greet")))[1] == {"sales_stage": "greeting"}
    assert (await run(ActionGreet(), tracker("hi", "greet", slots={"sales_stage": "solution"})))[1] == {}


async def validate(slot, value):
    events = [{"event": "slot", "name": slot, "value": value}]
    t = tracker(value, "give_contact_details", events=events, slots={slot: value, "requested_slot": slot})
    t.active_loop = {"name": "lead_form"}
    dispatcher = CollectingDispatcher()
    result = await ValidateLeadForm().run(dispatcher, t, DOMAIN)
    slots = {e["name"]: e["value"] for e in result if e.get("event") == "slot"}
    return slots.get(slot), responses_of(dispatcher.messages)


@pytest.mark.parametrize(
    "slot, value, expected",
    [
        ("email", "my mail is Sara@GulfCo.ae", "Sara@gulfco.ae"),
        ("phone", "050 123 4567", "+971501234567"),
        ("customer_name", "sara khan", "Sara Khan"),
        ("quantity", "twelve", "12"),
        ("company", "private", ""),
    ],
)
async def test_lead_form_accepts_and_normalises(loaded_db, slot, value, expected):
    assert await validate(slot, value) == (expected, [])


@pytest.mark.parametrize(
    "slot, value",
    [
        ("email", "sara@"),
        ("phone", "123"),
        ("customer_name", "is OC-1006 in stock?"),
        ("quantity", "lots"),
        ("budget", "cheap"),
    ],
)
async def test_lead_form_re_asks_politely(loaded_db, slot, value):
    assert await validate(slot, value) == (None, [f"utter_invalid_{slot}"])


async def test_saved_lead_lands_in_contacts(loaded_db):
    slots = {
        "customer_name": "Sara Khan",
        "company": "Gulf Co",
        "email": "sara@gulfco.ae",
        "phone": "+971501234567",
        "quantity": "12",
        "budget": "18000",
        "timeline": "next month",
    }
    messages, set_slots = await run(ActionSaveLead(), tracker("next month", "inform", slots=slots))
    assert set_slots["sales_stage"] == "closing" and responses_of(messages) == ["utter_lead_saved"]
    async with db.session_scope(loaded_db) as session:
        contact = await session.scalar(select(Contact))
    assert (contact.name, contact.phone, contact.channel, contact.sender_id) == (
        "Sara Khan",
        "+971501234567",
        "web",
        "web-test1234",
    )
    assert contact.deals[0].budget_minor == 1800000 and contact.deals[0].quantity == 12


def test_the_turn_is_read_once_from_the_tracker():
    from actions.base import read_turn

    earlier = {"event": "user", "text": "hello", "parse_data": {"intent": {"name": "greet"}}}
    said = {"event": "bot", "text": "Hi!"}
    t = tracker(
        "add 2 OC-1006 and oc-1006",
        "add_to_cart",
        [
            ent("sku", "OC-1006"),
            ent("quantity", "2"),
            ent("sku", "OC-1006"),
            {"entity": "sku", "value": "DK-2001", "role": "other"},
        ],
        slots={"contact_id": 7.0, "granted_discount": "0.05"},
        events=[earlier, said],
    )
    t.events.reverse()
    turn = read_turn(t)
    assert (turn.conversation_id, turn.channel, turn.intent) == ("web-test1234", "web", "add_to_cart")
    assert turn.entity("sku") == ["OC-1006"] and turn.entity("quantity") == ["2"] and turn.entity("product") == []
    assert turn.contact_id == 7 and str(turn.granted_discount) == "0.05"
    assert turn.user_messages == (("hello", "greet"), ("add 2 OC-1006 and oc-1006", "add_to_cart"))
    assert turn.said == (("bot", "Hi!"), ("customer", "hello"), ("customer", "add 2 OC-1006 and oc-1006"))


async def test_a_quote_turn_reads_the_cart_once_and_prices_it_once(loaded_db, monkeypatch):
    from actions.cart import ActionAddToCart
    from actions.quotes import ActionSendQuote
    from bot.commerce import cart as carts
    from bot.commerce.leads import Lead, save_lead
    from bot.commerce.pricing import PricingRules

    await run(
        ActionAddToCart(), tracker("add 50 OC-1006", "add_to_cart", [ent("sku", "OC-1006"), ent("quantity", "50")])
    )
    async with db.session_scope(loaded_db) as session:
        contact, _, _ = await save_lead(
            session,
            Lead("Sara Khan", None, "sara@gulfco.ae", "+971501234567", 50, None, "AED", None, "web", "web-test1234"),
        )
    calls = []

    def counting(original, name):
        def counted(*args, **kwargs):
            calls.append(name)
            return original(*args, **kwargs)

        return counted

    for owner, name in ((carts, "get_cart"), (PricingRules, "price")):
        monkeypatch.setattr(owner, name, counting(getattr(owner, name), name))
    messages, slots = await run(
        ActionSendQuote(), tracker("", "request_quote", slots={"sales_stage": "quoting", "contact_id": contact.id})
    )
    assert (
        "utter_big_order" in responses_of(messages) and slots["sales_stage"] == "handoff"
    )  # a manager is called in too
    assert sorted(calls) == ["get_cart", "price"]
