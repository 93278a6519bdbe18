"""The response rephraser (:mod:`bot.answering.rephrasing`) against a local server speaking the OpenAI protocol
(:class:`tests.fakes.llm_server.FakeLLM`), on a real SQLite catalog: a rewrite keeping every figure, SKU, link and
product name is sent; one changing any of them, an LLM error or a timeout sends the template text. Through the
real action (``actions.base.SafeAction``) for the hook; the real local model is measured by bench/grounding.py."""

import pytest
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions.products import ActionShowPrice
from bot.answering import rephrasing
from bot.commerce import catalog
from bot.commerce.search import get_product
from bot.core import caches, db
from bot.core.models import KnowledgeAnswer
from bot.core.settings import get_settings
from bot.core.turn import Outcome, Turn
from bot.texts import replies
from tests.fakes.llm_server import closer_on_a_fake_llm

SAID = (("customer", "Bonjour, combien coûte la chaise OC-1006 ?"),)
QUOTE = "Here is your quote Q-2026-0042: AED 14,280.00 including VAT.\nhttps://shop.example/quotes/ab12cd.pdf"


@pytest.fixture
async def price_line(db_url) -> str:
    """The price line of OC-1006 as the action server sends it, from the real catalog."""
    knowledge = get_settings().knowledge_dir
    async with db.session_scope(db_url) as session:
        await catalog.import_catalog(session, knowledge / "catalog.csv")
        await catalog.import_stock(session, knowledge / "stock.csv")
    async with db.session_scope(db_url) as session:
        return replies.price_line(await get_product(session, "OC-1006")).lstrip("• ")


@pytest.fixture
async def llm(price_line, monkeypatch):
    async with closer_on_a_fake_llm(monkeypatch, "openai/gpt-4o-mini", timeout_s=5, REPHRASE="true") as server:
        yield server


def french(template: str) -> str:
    """A faithful French rewrite of the price line: same name, SKU and price."""
    name, rest = template.split(" (OC-1006): ")
    return f"La chaise {name} (OC-1006) coûte {rest.split(' per unit')[0]} l'unité, hors TVA."


async def test_a_rewrite_keeping_every_figure_sku_and_name_is_sent(llm, price_line):
    llm.reply = french(price_line)
    result = await rephrasing.rephrase(price_line, SAID, "web-r1", ["ErgoPro Ergonomic Chair, black"])
    assert result.rephrased and result.text == french(price_line) and result.reason is None
    [request] = llm.requests
    system, user = request["messages"]
    assert system["content"] == rephrasing.instructions() and "exactly as written" in system["content"]
    assert "Customer: Bonjour, combien coûte la chaise OC-1006 ?" in user["content"]
    assert user["content"].endswith(f"Message to rewrite:\n{price_line}")


@pytest.mark.parametrize(
    "rewrite, reason",
    [
        (lambda t: t.replace("1,290.00", "1,190.00"), "drops figure 1290; adds figure 1190"),
        (lambda t: t.replace(" (OC-1006)", ""), "drops SKU OC-1006"),
        (lambda t: t.replace("ErgoPro Ergonomic Chair, black", "ErgoPro chair"), "drops product name"),
        (lambda t: t + " Order 10 or more for 5% off!", "adds figure 10"),
    ],
)
async def test_a_rewrite_changing_a_price_sku_or_name_sends_the_template(llm, price_line, rewrite, reason):
    llm.reply = rewrite(price_line)
    result = await rephrasing.rephrase(price_line, SAID, "web-r2", ["ErgoPro Ergonomic Chair, black"])
    assert not result.rephrased and result.text == price_line and result.completion is not None
    assert result.reason.startswith(reason), result.reason


async def test_a_changed_link_sends_the_template(llm):
    llm.reply = QUOTE.replace("ab12cd", "ab12ce")
    result = await rephrasing.rephrase(QUOTE, SAID, "web-r3")
    assert (result.text, result.rephrased) == (QUOTE, False)
    assert "drops link https://shop.example/quotes/ab12cd.pdf" in result.reason
    llm.reply = "Voici votre devis Q-2026-0042 : AED 14,280.00 TTC.\nhttps://shop.example/quotes/ab12cd.pdf"
    assert (await rephrasing.rephrase(QUOTE, SAID, "web-r3")).rephrased


@pytest.mark.parametrize("status, delay_s, reason", [(500, 0, "InternalServerError"), (200, 8, "imeout")])
async def test_an_llm_error_or_timeout_sends_the_template(llm, price_line, status, delay_s, reason):
    llm.status, llm.delay_s = status, delay_s
    result = await rephrasing.rephrase(price_line, SAID, "web-r4")
    assert (result.text, result.rephrased) == (price_line, False) and llm.requests
    assert result.reason.startswith("LLM error") and reason in result.reason


async def test_over_budget_or_too_long_nothing_is_asked(llm, price_line, monkeypatch):
    monkeypatch.setenv("CLOSER_LLM_REPHRASE_MAX_CHARS", "20")
    caches.reset()
    assert (await rephrasing.rephrase(price_line, SAID, "web-r5")).reason == "longer than 20 characters"
    monkeypatch.setenv("CLOSER_LLM_REPHRASE_MAX_CHARS", "600")
    monkeypatch.setenv("CLOSER_LLM_MAX_COST_USD_PER_DAY", "0.000001")
    caches.reset()
    async with db.session_scope() as session:
        row = KnowledgeAnswer(id="k1", conversation_id="web-x", question="?", answer="!", mode="llm", similarity=0.9)
        session.add(row)
        row.cost_usd = 1.0
    result = await rephrasing.rephrase(price_line, SAID, "web-r5")
    assert result.reason.startswith("budget: today's LLM spend") and llm.requests == []


async def test_off_by_default_even_with_an_llm(llm, price_line, monkeypatch):
    monkeypatch.delenv("CLOSER_LLM_REPHRASE")
    caches.reset()
    outcome = Outcome().say(text=price_line)
    assert await rephrasing.rephrase_outcome(outcome, Turn("web-r6", "web")) is outcome and llm.requests == []


async def test_the_action_server_sends_the_rewrite_of_its_texts_only(llm, price_line):
    """ActionShowPrice's text goes through the rephraser; responses and JSON messages never do."""
    llm.respond = lambda body: french(body["messages"][-1]["content"].split("Message to rewrite:\n")[1])
    outcome = Outcome().say(text=price_line).say(response="utter_greet").say(json_message={"a": 1})
    rewritten = await rephrasing.rephrase_outcome(outcome, Turn("web-r7", "web", said=SAID))
    assert rewritten.messages == [{"text": french(price_line)}, {"response": "utter_greet"}, {"json_message": {"a": 1}}]
    message = {"text": "combien coûte OC-1006 ?", "intent": {"name": "ask_price"}, "entities": []}
    message["entities"] = [{"entity": "sku", "value": "OC-1006"}]
    user = {"event": "user", "text": message["text"], "parse_data": message, "input_channel": "rest"}
    tracker = Tracker("web-r7", {}, message, [user], False, None, None, "action_listen")
    dispatcher = CollectingDispatcher()
    await ActionShowPrice().run(dispatcher, tracker, {})
    [sent] = [m["text"] for m in dispatcher.messages if m.get("text")]
    assert sent == french(f"• {price_line}") and "OC-1006" in llm.requests[-1]["messages"][-1]["content"]


async def test_an_outcomes_texts_together_take_at_most_one_calls_time(llm, price_line, monkeypatch):
    monkeypatch.setenv("CLOSER_LLM_TIMEOUT", "1")
    caches.reset()
    llm.delay_s = 3
    outcome = Outcome().say(text=price_line).say(text="Anything else?")
    rewritten = await rephrasing.rephrase_outcome(outcome, Turn("web-r8", "web", said=SAID))
    assert [m["text"] for m in rewritten.messages] == [price_line, "Anything else?"]
    assert len(llm.requests) <= 1  # the second text was not even asked for: the outcome's time was used up
