"""The LLM's understanding of messages NLU could not place (bot/understanding/llm_parse.py): the prompt and
schema built from the domain, the validation of the answer, and every failure of the call (timeout, 500, not
JSON, an intent outside the domain, the budget spent) giving None, and the calls counted in the LLM budget,
against the local fake OpenAI server."""

import json

import pytest
import yaml
from sqlalchemy import select

from bot.answering import budget
from bot.answering.llm import Completion
from bot.core import caches, db
from bot.core.models import KnowledgeAnswer, LlmCall
from bot.core.settings import ROOT
from bot.core.turn import Turn
from bot.understanding import llm_parse
from tests.fakes.llm_server import closer_on_a_fake_llm

DOMAIN = yaml.safe_load((ROOT / "domain.yml").read_text(encoding="utf-8"))
INTENTS, ENTITIES = list(DOMAIN["intents"]), list(DOMAIN["entities"])
LLM_ENTITIES = [name for name in ENTITIES if name != "topic"]  # topic: only buttons send it
TEXT = "if I order today when would the stuff reach Fujairah? we need 40 chairs, mail me at ali@example.com"
TURN = Turn(
    "web-u1",
    "web",
    text=TEXT,
    intent="nlu_fallback",
    said=(("customer", "hi"), ("bot", "Hello! How can I help?"), ("customer", TEXT)),
)


def test_every_domain_intent_and_entity_has_a_description():
    intents, entities = llm_parse.descriptions()
    assert set(intents) == set(INTENTS) and set(entities) == set(ENTITIES) - {"topic"}
    assert llm_parse.choices([*INTENTS, "nlu_fallback"], ENTITIES) == (INTENTS, LLM_ENTITIES)


def test_the_prompt_lists_the_domain_and_keeps_the_system_prompt_stable():
    masker = llm_parse.Masker()
    messages = llm_parse.messages_for(TURN, INTENTS, LLM_ENTITIES, masker)
    system, user = messages[0]["content"], messages[1]["content"]
    assert "- ask_delivery: a question about delivery" in system and "- sku: a product code" in system
    assert TEXT not in system and system == llm_parse.system_prompt(INTENTS, LLM_ENTITIES)
    assert user.startswith("Conversation so far:\ncustomer: hi\nbot: Hello! How can I help?\n\n")
    assert user.endswith("reach Fujairah? we need 40 chairs, mail me at [EMAIL_1]")  # PII masked
    schema = llm_parse.response_format(INTENTS, LLM_ENTITIES)["json_schema"]["schema"]
    assert schema["properties"]["intent"]["enum"] == INTENTS
    assert schema["properties"]["entities"]["items"]["properties"]["entity"]["enum"] == LLM_ENTITIES


def test_validation_keeps_domain_intents_and_entities_written_in_the_message():
    masker = llm_parse.Masker()
    llm_parse.messages_for(TURN, INTENTS, LLM_ENTITIES, masker)
    answer = json.dumps(
        {
            "intent": "ask_delivery",
            "entities": [
                {"entity": "quantity", "value": "40"},
                {"entity": "category", "value": "Chairs"},
                {"entity": "email", "value": "[EMAIL_1]"},
                {"entity": "discount", "value": "35%"},  # not in the message: invented
                {"entity": "city", "value": "Fujairah"},  # not a domain entity
                {"entity": "quantity", "value": "40"},  # repeated
                {"entity": "budget", "value": 40},  # not a string
            ],
        }
    )
    intent, entities = llm_parse.validate(f"```json\n{answer}\n```", TEXT, INTENTS, LLM_ENTITIES, masker)
    assert intent == "ask_delivery"
    start = TEXT.index("40")
    assert entities == [
        {"entity": "quantity", "value": "40", "start": start, "end": start + 2, "extractor": "llm"},
        {"entity": "category", "value": "chairs", "start": start + 3, "end": start + 9, "extractor": "llm"},
        {"entity": "email", "value": "ali@example.com", "start": len(TEXT) - 15, "end": len(TEXT), "extractor": "llm"},
    ]
    assert llm_parse.validate('{"intent": "track_order", "entities": []}', TEXT, INTENTS, LLM_ENTITIES) is None
    assert llm_parse.validate('{"intent": "nlu_fallback", "entities": []}', TEXT, INTENTS, LLM_ENTITIES) is None
    assert llm_parse.validate("ask_delivery", TEXT, INTENTS, LLM_ENTITIES) is None
    assert llm_parse.validate('["ask_delivery"]', TEXT, INTENTS, LLM_ENTITIES) is None


@pytest.fixture
async def fake_llm(db_url, monkeypatch):
    async with closer_on_a_fake_llm(monkeypatch, "openai/qwen-test", timeout_s=2) as server:
        yield server


async def test_without_an_llm_nothing_is_called(db_url):
    assert await llm_parse.understand(TURN, INTENTS, ENTITIES) is None


async def test_the_llm_understands_with_the_schema(fake_llm):
    fake_llm.reply = '{"intent": "ask_delivery", "entities": [{"entity": "quantity", "value": "40"}]}'
    understood = await llm_parse.understand(TURN, INTENTS, ENTITIES)
    assert understood.intent == "ask_delivery" and understood.model == "qwen-test" and understood.latency_s > 0
    assert [(e["entity"], e["value"]) for e in understood.entities] == [("quantity", "40")]
    sent = fake_llm.requests[-1]
    assert sent["response_format"]["type"] == "json_schema" and sent["temperature"] == 0
    assert sent["max_tokens"] == llm_parse.MAX_TOKENS and "ali@example.com" not in fake_llm.sent_text()


@pytest.mark.parametrize(
    "reply, status, delay_s",
    [
        ('{"intent": "ask_delivery", "entities": []}', 500, 0),  # the provider fails
        ('{"intent": "ask_delivery", "entities": []}', 200, 5),  # slower than the 2 s timeout
        ('{"intent": "ask_delivery", "entities": [', 200, 0),  # not JSON
        ('{"intent": "track_order", "entities": []}', 200, 0),  # an intent outside the domain
    ],
    ids=["http-500", "timeout", "invalid-json", "unknown-intent"],
)
async def test_failures_understand_nothing(fake_llm, reply, status, delay_s):
    fake_llm.reply, fake_llm.status, fake_llm.delay_s = reply, status, delay_s
    assert await llm_parse.understand(TURN, INTENTS, ENTITIES) is None
    assert len(fake_llm.requests) >= 1
    answered = status == 200 and not delay_s  # an answer that is not usable still cost its tokens
    assert len(await llm_calls()) == (1 if answered else 0)


async def llm_calls() -> list[LlmCall]:
    async with db.session_scope() as session:
        return list((await session.scalars(select(LlmCall).order_by(LlmCall.id))).all())


async def test_an_understanding_call_counts_in_the_budget_and_a_spent_budget_skips_the_next(fake_llm, monkeypatch):
    fake_llm.reply = '{"intent": "ask_delivery", "entities": []}'
    assert (await llm_parse.understand(TURN, INTENTS, ENTITIES)).intent == "ask_delivery"
    [call] = await llm_calls()
    prompt_tokens = sum(len(m["content"].split()) for m in fake_llm.requests[0]["messages"])  # the fake's usage
    assert (call.conversation_id, call.purpose, call.llm_model) == ("web-u1", "understanding", "qwen-test")
    assert (call.prompt_tokens, call.completion_tokens, call.cost_usd) == (prompt_tokens, 4, None)

    monkeypatch.setenv("CLOSER_LLM_MAX_TOKENS_PER_CONVERSATION", str(prompt_tokens + 4))
    caches.reset()
    async with db.session_scope() as session:
        assert "LLM tokens" in await budget.exceeded(session, "web-u1")
        assert await budget.exceeded(session, "web-u2") is None  # the budget is per conversation
    assert await llm_parse.understand(TURN, INTENTS, ENTITIES) is None
    assert len(fake_llm.requests) == 1 and len(await llm_calls()) == 1

    monkeypatch.setenv("CLOSER_LLM_MAX_COST_USD_PER_DAY", "0.5")  # a priced call of another conversation today
    caches.reset()
    async with db.session_scope() as session:
        priced = Completion('{"intent": "greet", "entities": []}', "gpt-4o-mini", 0.8, 300, 9, 0.5)
        await budget.record(session, "web-u3", "understanding", priced)
    other = Turn("web-u2", "web", text=TEXT, intent="nlu_fallback", said=(("customer", TEXT),))
    assert await llm_parse.understand(other, INTENTS, ENTITIES) is None and len(fake_llm.requests) == 1


async def test_a_spent_budget_skips_the_call(fake_llm, monkeypatch):
    monkeypatch.setenv("CLOSER_LLM_MAX_TOKENS_PER_CONVERSATION", "100")
    caches.reset()
    async with db.session_scope() as session:
        session.add(
            KnowledgeAnswer(
                id="a1",
                conversation_id="web-u1",
                question="q",
                answer="a",
                mode="llm",
                sources=[],
                similarity=0.9,
                prompt_tokens=90,
                completion_tokens=20,
            )
        )
    fake_llm.reply = '{"intent": "ask_delivery", "entities": []}'
    assert await llm_parse.understand(TURN, INTENTS, ENTITIES) is None
    assert fake_llm.requests == []
