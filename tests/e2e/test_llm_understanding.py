"""The LLM understanding messages NLU could not place (actions/understanding.py, bot/understanding/), through the
real Rasa server, action server and console:

- without an LLM (the session's ``stack``): such a message goes on to ``action_answer_question`` as before;
- with the canned fake OpenAI server: its answer is re-added as the message's parse, the policies predict
  the action of that intent, the slots of its entities are set, and the console's transcript says
  "Understood by the LLM"; a 500, an answer that is not JSON and an intent outside the domain leave the
  conversation on today's fallback;
- with the real local model (scripts/llm.sh, the ``local_llm`` fixture): a message NLU gets wrong is
  understood and the right action follows.
"""

import json
import uuid

import httpx
import pytest
import yaml

from bot.core.settings import ROOT
from tests.e2e.conftest import served_in_a_thread, stack_with
from tests.e2e.test_injection import signed_in_manager
from tests.fakes.llm_server import FakeLLM

pytestmark = pytest.mark.e2e

# The trained model puts these in nlu_fallback (checked by each test: the original user event's intent).
BACK_PAIN = "my lower back hurts after long days at the computer, which seat helps?"
ORDER_STATUS = "I already ordered last week, order number 4471, where is it?"
WALNUT = "is the walnut one still on the shelves?"
TEAM = "my lower back hurts after long days at the computer, which seat helps? there are 12 of us"
SYSTEM_PROMPT_START = "You classify one message of a customer"


class Conversation:
    """One web customer talking through the console's chat API; the tracker read from Rasa."""

    def __init__(self, stack):
        self.stack = stack
        self.sender = uuid.uuid4().hex
        self.client = httpx.Client(timeout=900)

    @property
    def id(self) -> str:
        return f"web-{self.sender}"

    def say(self, text: str) -> list[dict]:
        response = self.client.post(f"{self.stack.console_url}/api/chat", json={"sender": self.sender, "message": text})
        assert response.status_code == 200, response.text
        return response.json()["messages"]

    def events(self) -> list[dict]:
        url = f"{self.stack.rasa_url}/conversations/{self.id}/tracker"
        return self.client.get(url, headers=self.stack.rasa_headers()).json()["events"]

    def turn(self, text: str) -> dict:
        """What happened to the latest message ``text``: ``nlu`` (NLU's intent of the first user event with it),
        ``understood`` (the re-added event's parse data, or None), ``actions`` after the last user event with
        it (``action_listen`` left out) and ``slots`` set there, and whether a ``rewind`` happened."""
        events = self.events()
        users = [i for i, e in enumerate(events) if e["event"] == "user" and e.get("text") == text]
        assert users, f"no user event {text!r}"
        last = users[-1]
        after = events[last + 1 :]
        return {
            "nlu": events[users[0]]["parse_data"]["intent"]["name"],
            "understood": events[last]["parse_data"] if events[last]["parse_data"].get("understanding") else None,
            "rewind": any(e["event"] == "rewind" for e in events[users[0] :]),
            "actions": [e["name"] for e in after if e["event"] == "action" and e["name"] != "action_listen"],
            "slots": {e["name"]: e["value"] for e in after if e["event"] == "slot"},
        }


def test_without_an_llm_the_fallback_is_unchanged(stack):
    chat = Conversation(stack)
    chat.say(BACK_PAIN)
    turn = chat.turn(BACK_PAIN)
    assert turn["nlu"] == "nlu_fallback" and turn["understood"] is None and not turn["rewind"]
    assert turn["actions"][:2] == ["action_understand_with_llm", "action_answer_question"]


def fake_reply(body: dict) -> str:
    """The fake's answers: understanding prompts by the customer's message, anything else (a knowledge
    answer) a reply the post-check refuses, so knowledge answers stay extractive."""
    if not body["messages"][0]["content"].startswith(SYSTEM_PROMPT_START):
        return "Sorry."
    message = body["messages"][-1]["content"].rsplit("Latest customer message:\n", 1)[1]
    answers = {
        BACK_PAIN: {"intent": "ask_products", "entities": []},
        TEAM: {"intent": "ask_products", "entities": [{"entity": "quantity", "value": "12"}]},
        WALNUT: {"intent": "track_order", "entities": []},  # not a domain intent
    }
    if message == ORDER_STATUS:
        return '{"intent": "request_human", "entities": ['  # cut off: not JSON
    return json.dumps(answers[message])


@pytest.fixture(scope="module")
def fake_llm():
    with served_in_a_thread(FakeLLM(respond=fake_reply)) as server:
        yield server


@pytest.fixture(scope="module")
def fake_llm_stack(tmp_path_factory, chroma_dir, fake_llm):
    env = {
        "CLOSER_LLM_MODEL": "openai/qwen-fake",
        "CLOSER_LLM_API_BASE": fake_llm.api_base,
        "CLOSER_LLM_API_KEY": "local",
        "CLOSER_LLM_TIMEOUT": "10",
        "CLOSER_LLM_RETRIES": "0",
    }
    yield from stack_with(tmp_path_factory, chroma_dir, extra_env=env)


def test_the_fake_llms_understanding_drives_the_conversation(fake_llm_stack, fake_llm):
    chat = Conversation(fake_llm_stack)
    chat.say(BACK_PAIN)
    turn = chat.turn(BACK_PAIN)
    assert turn["nlu"] == "nlu_fallback" and turn["rewind"]
    understood = turn["understood"]
    assert understood["intent"] == {"name": "ask_products", "confidence": 1.0}
    assert understood["understanding"]["source"] == "llm" and understood["understanding"]["model"] == "qwen-fake"
    assert understood["understanding"]["nlu_intent"] == "nlu_fallback"
    assert turn["actions"][0] == "action_search_products"  # predicted from the LLM's intent, not the fallback rule
    sent = next(r for r in fake_llm.requests if r["messages"][-1]["content"].endswith(BACK_PAIN))
    domain = yaml.safe_load((ROOT / "domain.yml").read_text(encoding="utf-8"))
    assert set(sent["response_format"]["json_schema"]["schema"]["properties"]["intent"]["enum"]) == set(
        domain["intents"]
    )

    chat.say(TEAM)
    turn = chat.turn(TEAM)
    assert turn["nlu"] == "nlu_fallback" and turn["understood"]["intent"]["name"] == "ask_products"
    assert turn["understood"]["entities"] == [
        {
            "entity": "quantity",
            "value": "12",
            "start": TEAM.index("12"),
            "end": TEAM.index("12") + 2,
            "extractor": "llm",
        }
    ]
    assert turn["slots"]["quantity"] == "12"  # the quantity slot's from_entity mapping, as NLU's entity would
    assert turn["actions"][0] == "action_search_products"

    for text in (WALNUT, ORDER_STATUS):  # an intent outside the domain; an answer that is not JSON
        chat.say(text)
        turn = chat.turn(text)
        assert turn["nlu"] == "nlu_fallback" and turn["understood"] is None and not turn["rewind"], text
        assert turn["actions"][:2] == ["action_understand_with_llm", "action_answer_question"], text

    fake_llm.status = 500
    try:
        other = Conversation(fake_llm_stack)
        other.say(BACK_PAIN)
        turn = other.turn(BACK_PAIN)
        assert turn["understood"] is None and turn["actions"][:2] == [
            "action_understand_with_llm",
            "action_answer_question",
        ]
    finally:
        fake_llm.status = 200

    console = signed_in_manager(fake_llm_stack)
    page = console.get(f"/console/conversations/{chat.id}")
    assert page.status_code == 200
    assert page.text.count("Understood by the LLM (qwen-fake") == 2  # BACK_PAIN and TEAM
    assert "NLU said nlu_fallback 0.50" in page.text
    assert page.text.count(f">{BACK_PAIN}<") == 1  # the reverted copy is not shown twice


@pytest.fixture(scope="module")
def real_llm_stack(tmp_path_factory, chroma_dir, local_llm):
    yield from stack_with(tmp_path_factory, chroma_dir, extra_env=local_llm.env)


def test_the_real_local_model_understands_what_nlu_could_not(real_llm_stack, local_llm):
    chat = Conversation(real_llm_stack)
    messages = chat.say(BACK_PAIN)
    turn = chat.turn(BACK_PAIN)
    assert turn["nlu"] == "nlu_fallback"
    assert turn["understood"]["intent"]["name"] == "ask_products", turn["understood"]
    assert turn["understood"]["understanding"]["model"] == local_llm.model.removeprefix("openai/")
    assert turn["actions"][0] == "action_search_products"
    assert messages  # the customer got the product search's reply
    page = signed_in_manager(real_llm_stack).get(f"/console/conversations/{chat.id}")
    assert f"Understood by the LLM ({local_llm.model.removeprefix('openai/')}" in page.text
