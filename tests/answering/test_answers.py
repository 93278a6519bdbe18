"""Knowledge answers on the real index: extractive by default, the LLM path against a local server
speaking the OpenAI chat-completions protocol, the post-check, PII masking and what is stored."""

import logging
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from bot.answering import grounding
from bot.answering.knowledge import answer_question
from bot.commerce import cart as carts
from bot.core import caches, db
from bot.core.business import get_company
from bot.core.models import KnowledgeAnswer, Product
from bot.core.settings import get_settings
from bot.handoff.escalation import Situation, structured_summary, summarize
from bot.privacy.pii import Masker
from tests.fakes.llm_server import closer_on_a_fake_llm

POLICY_QUESTIONS = [  # phrased unlike knowledge/policies/*.md; (question, a fact of the answer, its source)
    ("how long does delivery to Abu Dhabi take?", "2–4 business days", "Delivery — Delivery areas and lead times"),
    ("can I pay with a credit card?", "Visa, Mastercard and American Express", "Payment — Accepted payment methods"),
    (
        "can you deliver to Al Ain on Friday?",
        "On Friday we deliver only after 14:00",
        "Delivery — Delivery days and times",
    ),
    ("what if the chair breaks after a year?", "Warranty: 5 years", "Warranty — Warranty periods"),
    ("is there a showroom I can visit in abu dhabi?", "Mussafah", "About Desert Oak — Our showrooms"),
    ("who pays VAT on delivery?", "VAT at 5% applies to them", "Delivery — Delivery charges"),
]
DELIVERY = "how long does delivery to Abu Dhabi take?"


async def _stored(answer_id: str) -> KnowledgeAnswer:
    async with db.session_scope() as session:
        return await session.scalar(select(KnowledgeAnswer).where(KnowledgeAnswer.id == answer_id))


@pytest.mark.parametrize("question, fact, source", POLICY_QUESTIONS)
async def test_extractive_answers_name_their_source(loaded_db, question, fact, source):
    reply = await answer_question("web-x1", question, get_company())
    assert fact in reply.text and reply.text.endswith(f"Source: {source}")
    assert reply.feedback and reply.sources and reply.response is None
    row = await _stored(reply.answer_id)
    assert (row.mode, row.conversation_id, row.question, row.answer) == ("extractive", "web-x1", question, reply.text)
    assert row.llm_model is None and row.similarity >= get_settings().answer_min_similarity


async def test_a_question_without_a_close_passage_gets_topics_or_a_person(loaded_db):
    vague = await answer_question(
        "web-x1", "I changed my mind about a desk I bought, can I send it back?", get_company()
    )
    assert vague.response == "utter_clarify_question" and not vague.feedback
    titles = [b["title"] for b in vague.buttons]
    assert "Change of mind returns" in titles and titles[-1] == "Talk to a person"
    topic = vague.buttons[titles.index("Change of mind returns")]["payload"]
    assert topic == '/ask_knowledge{"topic": "policies/returns.md#change-of-mind-returns"}'
    picked = await answer_question(
        "web-x1",
        "I changed my mind about a desk I bought, can I send it back?",
        get_company(),
        topic="policies/returns.md#change-of-mind-returns",
    )
    assert picked.text.endswith("Source: Returns and Refunds — Change of mind returns")
    unknown = await answer_question("web-x1", "what's the meaning of life", get_company())
    assert unknown.response == "utter_no_answer" and unknown.buttons == []
    assert (await _stored(unknown.answer_id)).mode == "unanswered"


@pytest.fixture
async def llm(loaded_db, monkeypatch):
    async with closer_on_a_fake_llm(monkeypatch, "openai/gpt-4o-mini", timeout_s=3) as server:
        yield server


@pytest.mark.parametrize("question, fact, source", POLICY_QUESTIONS)
async def test_llm_answers_pass_the_post_check_and_are_recorded(llm, question, fact, source):
    llm.reply = f"Here is what our policy says: {fact} [P1]."
    async with db.session_scope() as session:
        await carts.add(session, "web-x2", await session.get(Product, "DK-2001"), 3)
    reply = await answer_question("web-x2", question, get_company(), stage="solution", shown_skus=["OC-1006"])
    assert reply.text.startswith(f"Here is what our policy says: {fact}.") and "[P1]" not in reply.text
    assert "\nSource: " in reply.text and reply.feedback
    prompt = llm.system_prompt()
    assert "Closer" in prompt and "Desert Oak" in prompt and "sales stage: solution" in prompt and "[P1] (" in prompt
    assert "(OC-1006): AED " in prompt  # the product the customer looks at, price from the DB
    assert "in the cart: 3 × " in prompt and "(DK-2001): AED " in prompt
    assert llm.requests[-1]["messages"][-1] == {"role": "user", "content": question}
    row = await _stored(reply.answer_id)
    assert row.mode == "llm" and row.fallback_reason is None and row.llm_model == "gpt-4o-mini"
    assert row.prompt_tokens > 100 and row.completion_tokens > 5 and row.latency_s > 0 and row.cost_usd > 0


@pytest.mark.parametrize(
    "reply, reason",
    [
        (
            "Delivery to Abu Dhabi costs AED 999 and takes 2–4 business days [P1].",
            "post-check: figure 999 is not in the context",
        ),
        (
            "We can give you 35% off if you order today [P1].",
            "post-check: figure 35 is not in the context; "
            "grants a discount the pricing rules did not produce: 'We can give you 35% off if you order today.'",
        ),
        ("We have 480 units in stock in Abu Dhabi [P1].", "post-check: figure 480 is not in the context"),
        ("It takes 2–4 business days.", "post-check: no citation"),
        ("It takes 2–4 business days [P9].", "post-check: cites unknown passage P9"),
    ],
)
async def test_an_llm_answer_failing_the_post_check_falls_back_to_extractive(llm, reply, reason):
    llm.reply = reply
    answer = await answer_question("web-x3", DELIVERY, get_company())
    assert "2–4 business days of order confirmation" in answer.text and "999" not in answer.text
    row = await _stored(answer.answer_id)
    assert row.mode == "extractive" and row.fallback_reason == reason
    assert row.llm_model == "gpt-4o-mini" and row.prompt_tokens > 0  # the rejected call is still accounted for


@pytest.mark.parametrize("status, delay_s, reason", [(500, 0, "InternalServerError"), (200, 5, "imeout")])
async def test_provider_errors_and_timeouts_fall_back_to_extractive(llm, status, delay_s, reason):
    llm.status, llm.delay_s = status, delay_s
    answer = await answer_question("web-x4", DELIVERY, get_company())
    assert answer.text.endswith("Source: Delivery — Delivery areas and lead times") and answer.feedback
    row = await _stored(answer.answer_id)
    assert row.mode == "extractive" and row.fallback_reason.startswith("LLM error") and reason in row.fallback_reason
    assert row.llm_model is None and llm.requests


async def test_contact_details_are_masked_for_the_llm_and_restored_in_the_reply(llm):
    question = "My email is jane.doe@corp.ae and my mobile 050 123 4567. How long does delivery to Abu Dhabi take?"
    llm.reply = "We will confirm to [EMAIL_1] or [PHONE_1]: 2–4 business days [P1]."
    answer = await answer_question("web-x5", question, get_company())
    sent = llm.sent_text()
    assert "jane.doe@corp.ae" not in sent and "123 4567" not in sent and "[EMAIL_1]" in sent and "[PHONE_1]" in sent
    assert answer.text.startswith("We will confirm to jane.doe@corp.ae or 050 123 4567: 2–4 business days.")


async def test_over_the_conversations_token_budget_the_answer_is_extractive_without_calling_the_llm(
    llm, monkeypatch, caplog
):
    monkeypatch.setenv("CLOSER_LLM_MAX_TOKENS_PER_CONVERSATION", "100")
    caches.reset()
    llm.reply = "It takes 2–4 business days [P1]."
    first = await answer_question("web-b1", DELIVERY, get_company())
    assert (await _stored(first.answer_id)).prompt_tokens > 100  # one call may cross the budget; the next is refused
    with caplog.at_level(logging.WARNING, logger="bot.answering.budget"):
        later = [await answer_question("web-b1", DELIVERY, get_company()) for _ in range(2)]
    assert len(llm.requests) == 1
    for answer in later:
        row = await _stored(answer.answer_id)
        assert row.mode == "extractive" and row.llm_model is None and row.prompt_tokens is None
        assert row.fallback_reason == "budget: the conversation used its 100 LLM tokens"
        assert answer.text.endswith("Source: Delivery — Delivery areas and lead times")
    [warning] = [r.getMessage() for r in caplog.records if r.name == "bot.answering.budget"]  # logged once
    assert "conversation web-b1 used" in warning
    other = await answer_question("web-b2", DELIVERY, get_company())  # another customer still gets the LLM
    assert (await _stored(other.answer_id)).mode == "llm" and len(llm.requests) == 2


async def test_over_the_days_cost_budget_every_answer_is_extractive(llm, monkeypatch):
    monkeypatch.setenv("CLOSER_LLM_MAX_COST_USD_PER_DAY", "0.50")
    caches.reset()
    llm.reply = "It takes 2–4 business days [P1]."
    now = datetime.now(UTC)
    async with db.session_scope() as session:  # yesterday's (UTC) spending does not count today
        session.add(
            KnowledgeAnswer(
                id=uuid.uuid4().hex,
                conversation_id="web-old",
                question="?",
                answer="!",
                mode="llm",
                similarity=0.9,
                prompt_tokens=10,
                completion_tokens=5,
                cost_usd=9.0,
                created_at=now - timedelta(days=1, hours=now.hour + 1),
            )
        )
    within = await answer_question("web-c1", DELIVERY, get_company())
    assert (await _stored(within.answer_id)).mode == "llm" and len(llm.requests) == 1
    async with db.session_scope() as session:
        session.add(
            KnowledgeAnswer(
                id=uuid.uuid4().hex,
                conversation_id="web-c2",
                question="?",
                answer="!",
                mode="llm",
                similarity=0.9,
                prompt_tokens=10,
                completion_tokens=5,
                cost_usd=0.5,
            )
        )
    over = await answer_question("web-c3", DELIVERY, get_company())
    row = await _stored(over.answer_id)
    assert row.mode == "extractive" and row.fallback_reason == "budget: today's LLM spend reached 0.50 USD"
    assert len(llm.requests) == 1


async def test_over_budget_an_escalation_summary_is_the_structured_one(llm, monkeypatch):
    monkeypatch.setenv("CLOSER_LLM_MAX_TOKENS_PER_CONVERSATION", "100")
    caches.reset()
    situation = Situation("web-e1", "requested", messages=[("customer", "a person please")])
    async with db.session_scope() as session:
        session.add(
            KnowledgeAnswer(
                id=uuid.uuid4().hex,
                conversation_id="web-e1",
                question="?",
                answer="!",
                mode="llm",
                similarity=0.9,
                prompt_tokens=90,
                completion_tokens=10,
                cost_usd=0.01,
            )
        )
        await session.flush()
        assert await summarize(session, situation) == structured_summary(situation)
    assert llm.requests == []


async def test_a_budget_of_0_is_unlimited(llm, monkeypatch):
    monkeypatch.setenv("CLOSER_LLM_MAX_TOKENS_PER_CONVERSATION", "0")
    monkeypatch.setenv("CLOSER_LLM_MAX_COST_USD_PER_DAY", "0")
    caches.reset()
    llm.reply = "It takes 2–4 business days [P1]."
    answers = [await answer_question("web-d1", DELIVERY, get_company()) for _ in range(3)]
    assert [(await _stored(a.answer_id)).mode for a in answers] == ["llm"] * 3 and len(llm.requests) == 3


def test_figures_compare_normalised_numbers():
    assert grounding.figures("AED 1,290.00, 5% and 08:00 [P2] [PHONE_1]") == {"1290", "5", "8", "0"}
    assert grounding.check("Costs AED 1290 [P1].", {"P1"}, ["Price: AED 1,290.00"]) == []


def test_masker_keeps_one_placeholder_per_value_and_ignores_non_contacts():
    masker = Masker("AE")
    text = masker.mask("Call +971 50 123 4567 or +971 50 123 4567, mail a@b.co; order 12 chairs at 1500")
    assert text == "Call [PHONE_1] or [PHONE_1], mail [EMAIL_1]; order 12 chairs at 1500"
    assert masker.restore("Reply to [EMAIL_1] / [PHONE_1]") == "Reply to a@b.co / +971 50 123 4567"
