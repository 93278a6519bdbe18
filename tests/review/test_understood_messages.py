"""A message the LLM understood (actions/understanding.py) in the console's views: Rasa's tracker holds the
customer's message twice, NLU's copy reverted by a ``rewind`` and the LLM's re-added with
``parse_data["understanding"]``; the transcript, the escalation's transcript and the index show it once."""

import json

from bot.core.tracker import TrackerEvent
from bot.handoff import takeover
from bot.review import conversations

TEXT = "my lower back hurts after long days at the computer, which seat helps?"
UNDERSTANDING = {
    "source": "llm",
    "model": "qwen",
    "latency_s": 4.2,
    "nlu_intent": "nlu_fallback",
    "nlu_confidence": 0.5,
}
EVENTS = [
    {"event": "user", "text": "hi", "parse_data": {"intent": {"name": "greet", "confidence": 0.99}}},
    {"event": "bot", "text": "Hello!"},
    {"event": "user", "text": TEXT, "parse_data": {"intent": {"name": "nlu_fallback", "confidence": 0.5}}},
    {"event": "action", "name": "action_understand_with_llm"},
    {"event": "rewind"},
    {"event": "action", "name": "action_listen"},
    {
        "event": "user",
        "text": TEXT,
        "parse_data": {"intent": {"name": "ask_products", "confidence": 1.0}, "understanding": UNDERSTANDING},
    },
    {"event": "action", "name": "action_search_products"},
    {"event": "bot", "text": "Here are our ergonomic chairs."},
]


def tracker_events() -> list[TrackerEvent]:
    return [
        TrackerEvent(i, "web-u1", e["event"], 1_700_000_000.0 + i, e.get("name"), json.dumps(e))
        for i, e in enumerate(EVENTS, start=1)
    ]


def test_the_transcript_shows_the_llms_reading_once_with_its_marker():
    entries = conversations.entries_of(tracker_events(), {})
    customers = [e for e in entries if e.kind == "customer"]
    assert [(c.text, c.intent, c.understood_by_llm) for c in customers] == [
        ("hi", "greet", False),
        (TEXT, "ask_products", True),
    ]
    assert customers[1].understanding["nlu_intent"] == "nlu_fallback"
    assert [e.name for e in entries if e.kind == "action"] == ["action_search_products"]


def test_the_escalations_transcript_drops_the_reverted_copy():
    said = takeover.messages({"events": EVENTS})
    assert [(m.speaker, m.text) for m in said] == [
        ("customer", "hi"),
        ("bot", "Hello!"),
        ("customer", TEXT),
        ("bot", "Here are our ergonomic chairs."),
    ]


def test_the_index_counts_one_turn_and_the_fallback():
    fold = conversations._fold(tracker_events(), {})["web-u1"]
    assert fold.turns == 2 and fold.fallback_count == 1
    assert [m["text"] for m in fold.messages if m["speaker"] == "customer"] == ["hi", TEXT]
