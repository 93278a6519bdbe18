"""Conversation repair on the action server's side (issue 14), run as the action server runs the actions, on a
real SQLite catalog and the real pricing rules: discount requests with and without a cart go to the approval
path, questions about an existing order go to a manager, the holding message of a paused conversation, a new
Rasa session keeping a conversation that waits for a manager paused, and the lead form keeping its sales stage
while a question is answered."""

from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy import select

from actions.cart import ActionAddToCart
from actions.escalation import ActionOrderStatus, ActionPausedReply, ActionSessionStart
from actions.products import ActionShowPrice
from actions.quotes import ActionHandleDiscount
from bot.commerce import inputs
from bot.commerce.pricing import load_pricing
from bot.core import db
from bot.core.models import Escalation, Quote
from bot.handoff import handover
from tests.actions.test_actions import ent, tracker
from tests.commerce.test_sale import DOMAIN, run, slots_of, text_of

DUBAI = ZoneInfo("Asia/Dubai")


async def escalations() -> list[Escalation]:
    async with db.session_scope() as session:
        return list((await session.scalars(select(Escalation).order_by(Escalation.id))).all())


async def test_a_discount_above_the_cap_with_no_cart_goes_to_a_manager_with_the_quantity(loaded_db):
    text = "we're a school and want 40 chairs but only if you give us 35% off"
    t = tracker(
        text,
        "ask_discount",
        [ent("quantity", "40"), ent("category", "office_chair")],
        slots={"quantity": "40", "category": "office_chair"},
    )
    messages, events = await run(ActionHandleDiscount(), t)
    assert "AED" in messages[0]["text"] and "OC-" in messages[0]["text"]  # the chairs with prices, first
    assert (messages[1]["response"], messages[1]["discount"]) == ("utter_discount_needs_approval_no_cart", "35%")
    assert "utter_escalated_" in text_of(messages[2:]) and {"event": "pause", "timestamp": None} in events
    assert slots_of(events)["sales_stage"] == "handoff" and slots_of(events)["handoff_replied_at"] is None
    [escalation] = await escalations()
    assert escalation.reason == "discount" and escalation.quote_id is None
    assert "discount asked: 35%" in escalation.summary and "quantity: 40" in escalation.summary


async def test_a_discount_within_the_cap_with_no_cart_is_kept_for_the_cart(loaded_db):
    messages, events = await run(ActionHandleDiscount(), tracker("could we get 5% off?", "ask_discount"))
    cap = f"{load_pricing().max_bot_discount * 100:.0f}%"
    assert messages[0]["response"] == "utter_discount_granted_for_cart" and messages[0]["cap"] == cap
    assert Decimal(slots_of(events)["granted_discount"]) == Decimal("0.05") and await escalations() == []


@pytest.mark.parametrize("text", ["any discount for bulk?", "do you give discounts for big orders"])
async def test_a_discount_request_without_a_figure_gets_the_volume_tiers(loaded_db, text):
    messages, events = await run(ActionHandleDiscount(), tracker(text, "ask_discount"))
    tiers = load_pricing().volume_tiers
    assert all(f"{t.min_quantity}+ units" in text_of(messages) for t in tiers) and events == []
    assert await escalations() == []


async def test_an_amount_off_goes_to_a_manager_with_a_draft_quote(loaded_db):
    await run(ActionAddToCart(), tracker("add 3 OC-1006", "add_to_cart", [ent("sku", "OC-1006"), ent("quantity", "3")]))
    messages, _ = await run(ActionHandleDiscount(), tracker("can you do 500 dirhams off", "ask_discount"))
    assert (messages[0]["response"], messages[0]["amount"]) == ("utter_price_needs_approval", "AED 500.00")
    [escalation] = await escalations()
    async with db.session_scope() as session:
        draft = await session.get(Quote, escalation.quote_id)
    assert draft.status == "draft" and "discount asked: AED 500.00" in escalation.summary


@pytest.mark.parametrize(
    ("text", "entities", "number"),
    [
        ("I already ordered last week, order number 4471, where is it?", [], "4471"),
        ("SO-1043 still not here", [ent("order_number", "#SO-1043")], "SO-1043"),
    ],
)
async def test_an_order_question_is_answered_honestly_and_goes_to_a_manager(loaded_db, text, entities, number):
    messages, events = await run(ActionOrderStatus(), tracker(text, "ask_order_status", entities))
    assert (messages[0]["response"], messages[0]["order_number"]) == ("utter_order_status", number)
    assert {"event": "pause", "timestamp": None} in events
    [escalation] = await escalations()
    assert escalation.reason == "order_status" and f"order number: {number}" in escalation.summary


async def test_an_order_question_without_a_number_asks_for_it_in_the_handover(loaded_db):
    messages, _ = await run(ActionOrderStatus(), tracker("my order hasn't arrived", "ask_order_status"))
    assert messages[0]["response"] == "utter_order_status_no_number"
    [escalation] = await escalations()
    assert "order number" not in escalation.summary


@pytest.mark.parametrize(
    ("now", "response"),
    [
        (datetime(2026, 12, 7, 11, 0, tzinfo=DUBAI), "utter_holding_open"),  # a Monday, 11:00
        (datetime(2026, 12, 5, 22, 30, tzinfo=DUBAI), "utter_holding_closed"),  # Saturday night → Monday 09:00
        (datetime(2026, 12, 6, 12, 0, tzinfo=DUBAI), "utter_holding_closed"),  # Sunday, closed all day
    ],
)
def test_the_holding_message_says_when_to_expect_an_answer(now, response):
    outcome = handover.holding_reply(now)
    [message] = outcome.messages
    assert message["response"] == response and outcome.slots == [("handoff_replied_at", now.timestamp())]
    if response == "utter_holding_closed":
        assert message["opening"] == "Monday 09:00" and message["timezone"] == "Asia/Dubai"
    assert not outcome.pause


async def test_the_paused_reply_action_says_the_holding_message():
    messages, events = await run(ActionPausedReply(), tracker("hello? anyone?", "greet"))
    assert messages[0]["response"] in ("utter_holding_open", "utter_holding_closed")
    assert isinstance(slots_of(events)["handoff_replied_at"], float)


async def test_a_new_session_stays_paused_while_an_escalation_is_open(loaded_db):
    slots = {"sales_stage": "handoff", "customer_name": "Omar Haddad", "handoff_replied_at": None}
    paused = Tracker("web-test1234", slots, {}, [], True, None, None, "action_listen")
    listen = {"event": "action", "name": "action_listen", "policy": None, "confidence": None, "timestamp": None}

    def kinds(events):
        return [e["event"] for e in events]

    _, events = await run(ActionSessionStart(), paused)  # no escalation in the DB (a manager's own pause ended)
    assert kinds(events) == ["session_started", "slot", "slot", "action"] and events[-1] == listen
    assert slots_of(events) == {"sales_stage": "handoff", "customer_name": "Omar Haddad"}  # carried over

    async with db.session_scope() as session:
        session.add(Escalation(conversation_id="web-test1234", reason="requested", summary="wants a person"))
    _, events = await run(ActionSessionStart(), paused)
    assert kinds(events) == ["session_started", "slot", "slot", "pause", "action"] and events[-1] == listen

    async with db.session_scope() as session:
        [escalation] = (await session.scalars(select(Escalation))).all()
        escalation.status = "in_progress"
    fresh = {**DOMAIN, "session_config": {**DOMAIN["session_config"], "carry_over_slots_to_new_session": False}}
    events = await ActionSessionStart().run(CollectingDispatcher(), paused, fresh)
    assert kinds(events) == ["session_started", "pause", "action"]  # a manager has it: still paused, no slots

    async with db.session_scope() as session:
        (await session.get(Escalation, escalation.id)).status = "resolved"
    _, events = await run(ActionSessionStart(), paused)
    assert "pause" not in kinds(events)  # handed back


async def test_a_question_in_the_middle_of_the_lead_form_keeps_the_forms_sales_stage(loaded_db):
    message = {"text": "how much is OC-1006?", "intent": {"name": "ask_price"}, "entities": [ent("sku", "OC-1006")]}
    user = {"event": "user", "text": message["text"], "parse_data": message}
    during_form = Tracker(
        "web-test1234", {"sales_stage": "quoting"}, message, [user], False, None, {"name": "lead_form"}, "action_listen"
    )
    messages, events = await run(ActionShowPrice(), during_form)
    assert "OC-1006" in text_of(messages) and "sales_stage" not in slots_of(events)
    _, events = await run(ActionShowPrice(), tracker("how much is OC-1006?", "ask_price", [ent("sku", "OC-1006")]))
    assert slots_of(events)["sales_stage"] == "solution"  # outside a form the stage moves as before


@pytest.mark.parametrize(
    ("text", "number"),
    [
        ("I already ordered last week, order number 4471, where is it?", "4471"),
        ("order #so-1043 still not here", "SO-1043"),
        ("my order no. 88120 hasn't arrived", "88120"),
        ("ref: INV-20931", "INV-20931"),
        ("where is my order?", None),
        ("I want to order 12 chairs", None),
    ],
)
def test_order_numbers_written_after_order_ref_or_invoice(text, number):
    assert inputs.order_number(text) == number
