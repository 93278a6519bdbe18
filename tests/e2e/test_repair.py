"""Conversation repair (issue 14) through the real stack (console → Rasa server → action server, and the
Telegram and WhatsApp channels against their local fake platforms), no LLM configured: discount requests in
any phrasing reach the approval path, a question about an existing order gets an honest answer and a
manager, a delivery question before ordering gets the delivery policy, questions in the middle of the lead
form are answered and the form resumes, "stop" leaves it, and a customer of a conversation paused for a
manager gets one holding message per interval on every channel, also once Rasa has started a new session;
phone numbers, local or international, reach the lead form as E.164."""

import json
from datetime import UTC, datetime

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy import select

from bot.commerce.leads import clean_phone
from bot.contracts.database import synchronous
from bot.core import caches, db
from bot.core.business import get_company
from bot.core.models import Escalation
from tests.e2e.test_channels import TelegramCustomer, WhatsAppCustomer, _ids
from tests.e2e.test_conversation import Chat

pytestmark = pytest.mark.e2e

HOLDING = "Thanks for your message. A sales manager has your conversation"
FORM_QUESTIONS = {  # the lead form's questions (domain.yml utter_ask_<slot>) → an answer
    "full name": "Omar Haddad",
    "which company": "Falcon Office LLC",
    "email address": "omar@falconoffice.ae",
    "phone number": "+971504445566",
    "how many items": "12",
    "what budget": "20000",
    "when do you need": "next month",
}


def escalations(stack, conversation_id: str) -> list[Escalation]:
    async def load():
        async with db.session_scope(stack.database_url) as session:
            rows = await session.scalars(
                select(Escalation).where(Escalation.conversation_id == conversation_id).order_by(Escalation.id)
            )
            return list(rows.all())

    return stack.run(load())


def expected_holding() -> str:
    """The part of the holding message that depends on business hours, now."""
    caches.reset()
    return "will reply here shortly" if get_company().is_open(datetime.now(UTC)) else "we're closed right now"


def pending_question(reply: str) -> str | None:
    """The key of FORM_QUESTIONS the bot's reply asks in its last line (the form's question comes last), if any."""
    lines = reply.strip().lower().splitlines()
    lowered = lines[-1] if lines else ""
    return next((key for key in FORM_QUESTIONS if key in lowered), None)


def test_forty_chairs_only_with_35_percent_off_reach_the_approval_path_then_hold_on_web(stack):
    chat = Chat(stack)
    reply = chat.text("we're a school and want 40 chairs but only if you give us 35% off")
    assert "AED" in reply and "OC-" in reply, reply  # the chairs, with real prices, before the approval
    assert "35% off is more than I'm allowed to approve myself" in reply and "sales manager" in reply, reply
    assert chat.tracker()["paused"] is True
    [escalation] = escalations(stack, f"web-{chat.sender}")
    assert escalation.reason == "discount" and "discount asked: 35%" in escalation.summary
    assert "want 40 chairs" in escalation.summary  # the request, word for word, for the manager

    first = chat.text("hello? is anyone there?")
    assert HOLDING in first and expected_holding() in first, first
    assert chat.text("I'll wait then") == ""  # one holding message per interval, and no other text
    said = [e.get("text") or "" for e in chat.tracker()["events"] if e["event"] == "bot"]
    assert sum(HOLDING in text for text in said) == 1  # in the transcript, once


def age_conversation(stack, conversation_id: str, seconds: float) -> None:
    """Move every event of ``conversation_id`` in the stack's tracker store ``seconds`` into the past, as if the
    customer had been away that long (Rasa reads the tracker from the store on each message)."""
    engine = sa.create_engine(synchronous(stack.tracker_database_url))
    with engine.begin() as connection:
        query = sa.text("SELECT id, data FROM events WHERE sender_id = :id")
        for event_id, data in connection.execute(query, {"id": conversation_id}).all():
            event = json.loads(data)
            event["timestamp"] -= seconds
            connection.execute(
                sa.text("UPDATE events SET timestamp = timestamp - :seconds, data = :data WHERE id = :id"),
                {"seconds": seconds, "data": json.dumps(event), "id": event_id},
            )
    engine.dispose()


def test_a_conversation_waiting_for_a_manager_stays_paused_in_a_new_session(stack):
    chat = Chat(stack)
    assert "sales manager" in chat.text("I want to talk to a real person")
    conversation_id = f"web-{chat.sender}"
    age_conversation(stack, conversation_id, 2 * 3600)  # past domain.yml's session_expiration_time (60 minutes)

    [holding] = chat.say("hello? is anyone there? can you show me chairs?")  # Rasa starts a new session first
    assert HOLDING in holding["text"] and expected_holding() in holding["text"], holding
    assert chat.text("show me office chairs") == ""  # within the interval: nothing, and no bot answer
    tracker = chat.tracker()
    kinds = [(e["event"], e.get("name")) for e in tracker["events"]]
    started = kinds.index(("action", "action_session_start"))
    assert kinds[started + 1 : started + 2] == [("session_started", None)] and ("pause", None) in kinds[started:]
    assert tracker["paused"] is True and tracker["slots"]["sales_stage"] == "handoff"  # slots carried over
    [escalation] = escalations(stack, conversation_id)
    assert escalation.status == "pending"


def test_a_question_about_an_existing_order_is_answered_honestly_and_goes_to_a_manager(stack):
    chat = Chat(stack)
    reply = chat.text("I already ordered last week, order number 4471, where is it?")
    assert "can't see orders" in reply and "4471" in reply and "sales manager" in reply, reply
    [escalation] = escalations(stack, f"web-{chat.sender}")
    assert escalation.reason == "order_status" and "order number: 4471" in escalation.summary
    assert chat.tracker()["paused"] is True


def test_delivery_time_before_ordering_gets_the_delivery_policy_not_the_lead_form(stack):
    chat = Chat(stack)
    reply = chat.text("if I order today when would the stuff reach Fujairah?")
    assert "full name" not in reply and "business days" in reply, reply


def test_questions_in_the_middle_of_the_lead_form_are_answered_and_the_form_resumes(stack):
    chat = Chat(stack)
    assert "OC-1006" in chat.text("add 2 OC-1006 to my cart")
    reply = chat.text("send me a quote")
    interruptions = [  # (question, what the answer contains)
        ("how long does delivery to abu dhabi take?", "business days"),
        ("can I pay by bank transfer?", "transfer"),
        ("what's the warranty on your chairs?", "warranty"),
        ("how much is OC-1009?", "OC-1009"),
        ("are you a bot?", "virtual sales assistant"),
        ("how are you today?", "furniture"),
    ]
    answered = 0
    for _ in range(len(FORM_QUESTIONS) + len(interruptions)):
        if "Here is your quote" in reply:
            break
        asked = pending_question(reply)
        assert asked, reply
        if interruptions:
            question, expected = interruptions.pop(0)
            reply = chat.text(question)
            assert expected.lower() in reply.lower(), (question, reply)
            assert pending_question(reply) == asked, (question, reply)  # the same question again
            answered += 1
        reply = chat.text(FORM_QUESTIONS[asked])
    assert "Here is your quote" in reply and answered == 6, reply
    slots = chat.tracker()["slots"]
    assert (slots["customer_name"], slots["company"], slots["email"]) == (
        "Omar Haddad",
        "Falcon Office LLC",
        "omar@falconoffice.ae",
    )


PHONES = [  # (as the customer writes it, E.164 with the default region AE)
    ("+971 50 444 5566", "+971504445566"),
    ("+971504445566", "+971504445566"),
    ("050 444 5566", "+971504445566"),
    ("+44 20 7946 0958", "+442079460958"),
    ("my mobile is +1 (415) 555-0132", "+14155550132"),
]


def test_phone_numbers_local_and_international_reach_the_lead_form_as_e164(stack):
    for written, expected in PHONES:  # the phone entity that fills the slot (Rasa takes the last one) keeps the "+"
        parsed = httpx.post(
            f"{stack.rasa_url}/model/parse", json={"text": written}, headers=stack.rasa_headers(), timeout=30
        ).json()
        values = [e["value"] for e in parsed["entities"] if e["entity"] == "phone"]
        assert values and clean_phone(values[-1], "AE") == expected, (written, parsed["entities"])
    for written, expected in (PHONES[0], PHONES[3]):
        chat = Chat(stack)
        reply = chat.text("send me a quote")
        while (asked := pending_question(reply)) != "phone number":
            assert asked, reply
            reply = chat.text(FORM_QUESTIONS[asked])
        reply = chat.text(written)
        assert pending_question(reply) not in (None, "phone number"), reply  # accepted: the next question
        assert chat.tracker()["slots"]["phone"] == expected


def test_stop_leaves_the_lead_form(stack):
    chat = Chat(stack)
    assert pending_question(chat.text("send me a quote"))
    reply = chat.text("stop")
    assert "won't ask for more details" in reply, reply
    tracker = chat.tracker()
    assert tracker["active_loop"] in ({}, None) or not tracker["active_loop"].get("name")
    assert "AED" in chat.text("show me standing desks")  # the form does not come back


def test_the_holding_message_on_telegram_and_whatsapp_after_asking_for_a_person(stack):
    telegram = TelegramCustomer(stack, 740_000_000 + next(_ids) % 1000)
    whatsapp = WhatsAppCustomer(stack, f"97155{next(_ids) % 10_000_000:07d}")
    for say in (lambda text: telegram.say(text=text), whatsapp.say):
        escalated = say("I want to talk to a real person")
        assert "sales manager" in escalated and HOLDING not in escalated, escalated
        first = say("hello? when will someone answer?")
        assert HOLDING in first and expected_holding() in first, first
        assert say("ok, waiting") == ""  # no second holding message within the interval, and no bot answer
    for conversation_id in (f"telegram-{telegram.chat_id}", f"whatsapp-{whatsapp.wa_id}"):
        [escalation] = escalations(stack, conversation_id)
        assert escalation.reason == "requested"
        tracker = httpx.get(
            f"{stack.rasa_url}/conversations/{conversation_id}/tracker", headers=stack.rasa_headers(), timeout=30
        ).json()
        assert tracker["paused"] is True
        assert sum(HOLDING in (e.get("text") or "") for e in tracker["events"] if e["event"] == "bot") == 1


# Unscripted utterances of this area, none of them in the training data: (utterance, expected intent, expected
# entities (each value found within NLU's), what the reply says).
UNSCRIPTED = [
    ("could we get 5 percent off?", "ask_discount", {"discount": "5"}, "I can give you 5% off"),
    ("knock 1000 dirhams off and we have a deal", "ask_discount", {}, "I can't agree a price of AED 1,000.00"),
    (
        "can you do 25% off if we buy 30 desks",
        "ask_discount",
        {"discount": "25", "category": "desk"},
        "25% off is more than I'm allowed to approve",
    ),
    ("where's my order? it's been 2 weeks", "ask_order_status", {}, "can't see orders"),
    (
        "order #SO-1043 still not delivered, what's going on",
        "ask_order_status",
        {"order_number": "SO-1043"},
        "where order SO-1043 is",
    ),
    ("has order 55012 shipped yet?", "ask_order_status", {}, "where order 55012 is"),  # NLU: 55012 a quantity
    ("i paid for 12 chairs last month and nothing arrived", "ask_order_status", {}, "can't see orders"),
    ("how soon can you deliver to sharjah if I buy now?", "ask_delivery", {}, "business days"),
    ("do you deliver to fujairah", "ask_delivery", {}, "we deliver across the uae"),
    ("can I pay by bank transfer?", "ask_payment", {}, "transfer"),
    ("how long is the warranty on desks?", "ask_warranty", {}, "warranty"),
    ("can I return a chair if it doesn't fit?", "ask_returns", {}, "return"),
    ("we need 20 meeting chairs, what's your best discount?", "ask_discount", {"quantity": "20"}, "Volume pricing"),
]


def test_unscripted_utterances_get_the_right_intent_entities_and_outcome(stack):
    failures = []
    with httpx.Client(timeout=60) as client:
        for text, intent, entities, outcome in UNSCRIPTED:
            parsed = client.post(
                f"{stack.rasa_url}/model/parse", json={"text": text}, headers=stack.rasa_headers()
            ).json()
            found: dict[str, list[str]] = {}
            for e in parsed["entities"]:
                found.setdefault(e["entity"], []).append(str(e["value"]))
            reply = Chat(stack).text(text)
            if (
                parsed["intent"]["name"] != intent
                or any(not any(v in f for f in found.get(k, [])) for k, v in entities.items())  # "#SO-1043"
                or outcome.lower() not in reply.lower()
            ):
                failures.append((text, parsed["intent"]["name"], found, reply[:300]))
    assert failures == [], "\n".join(map(repr, failures))


# Measured NLU misses of this area (sparse pipeline, this branch's data): intent nlu_fallback. Until the NLU
# work of issue 14 lands they get the clarifying question, never silence or an error.
NLU_MISSES = [
    "do you do bulk pricing if we buy a lot?",  # ask_discount
    "what do you charge if we take 3 of OC-1006",  # ask_price
    "my invoice INV-20931 says delivery today but nothing came",  # ask_order_status
]


def test_nlu_misses_still_get_a_polite_reply(stack):
    for text in NLU_MISSES:
        reply = Chat(stack).text(text)
        assert reply and "went wrong" not in reply, (text, reply)
