"""Conversation quality scoring (bot.review.scoring): the rules' agreement with hand labels on 30 conversations of the
real bot (tests/data/scoring/, printed), the scheduled job over a tracker store written by Rasa 3.6 itself
(tests/review/test_conversations.py) and the real business DB, and the LLM judge against a local server speaking the
OpenAI chat-completions protocol."""

import json
import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from scipy.stats import spearmanr
from sqlalchemy import select

from bot.core import db
from bot.core.models import ConversationScore
from bot.core.settings import ROOT, Settings
from bot.core.tracker import TrackerEvent, get_reader
from bot.review import conversations, scoring
from bot.review.conversations import KnowledgeDetail
from tests.fakes.llm_server import closer_on_a_fake_llm
from tests.review import test_conversations
from tests.review.test_conversations import ALPHA, BRAVO, CHARLIE, DELTA, ECHO, FOXTROT, NOW

business, rasa_store, tracker_path = (
    test_conversations.business,
    test_conversations.rasa_store,
    test_conversations.tracker_path,
)

DATA = ROOT / "tests" / "data" / "scoring"
MIN_ACCURACY = 0.75  # every criterion's agreement with the hand labels
MIN_MEAN_ACCURACY = 0.9
MIN_SPEARMAN = 0.8


def test_fifteen_criteria_of_two_points_make_thirty():
    assert len(scoring.CRITERIA) == 15 == len(scoring.CRITERIA_BY_NAME)
    assert scoring.MAX_SCORE * len(scoring.CRITERIA) == scoring.MAX_TOTAL == 30


# --- agreement with hand labels ---------------------------------------------------------------------------------


def captured() -> dict[str, scoring.Scorecard]:
    """The rules' scorecards of the captured conversations, by dialogue id."""
    cards = {}
    for dialogue, found in json.loads((DATA / "conversations.json").read_text()).items():
        events = [
            TrackerEvent(event_id, f"web-scoring-{dialogue}", kind, timestamp, name, json.dumps(data))
            for event_id, kind, timestamp, name, data in found["events"]
        ]
        knowledge = {answer_id: KnowledgeDetail(**detail) for answer_id, detail in found["knowledge"].items()}
        cards[dialogue] = scoring.score_rules(
            conversations.entries_of(events, knowledge), scoring.Facts(**found["facts"])
        )
    return cards


def test_the_rules_agree_with_hand_labels_of_30_real_conversations():
    labels = yaml.safe_load((DATA / "labels.yml").read_text())
    cards = captured()
    assert len(labels) >= 30 and set(labels) == set(cards)
    assert all(set(label) == set(scoring.CRITERIA_BY_NAME) for label in labels.values())
    accuracy = {
        name: sum(cards[d].criteria[name].score == labels[d][name] for d in labels) / len(labels)
        for name in scoring.CRITERIA_BY_NAME
    }
    rules = [cards[d].total for d in labels]
    people = [sum(labels[d].values()) for d in labels]
    rho = spearmanr(rules, people).statistic
    print(f"\nscorer vs hand labels on {len(labels)} conversations")
    for name, share in accuracy.items():
        print(f"  {name:<24}{share:>6.2f}")
    mean = sum(accuracy.values()) / len(accuracy)
    print(f"  {'mean accuracy':<24}{mean:>6.2f}\n  {'Spearman of totals':<24}{rho:>6.2f}")
    misses = {
        name: [d for d in labels if cards[d].criteria[name].score != labels[d][name]]
        for name, share in accuracy.items()
        if share < MIN_ACCURACY
    }
    assert not misses, misses
    assert mean >= MIN_MEAN_ACCURACY and rho >= MIN_SPEARMAN


# --- the job ---------------------------------------------------------------------------------------------------


def settings_for(db_url: str, tracker: Path) -> Settings:
    return Settings(database_url=db_url, tracker_database_url=f"sqlite+aiosqlite:///{tracker}", score_idle_s=1800)


async def stored(db_url: str) -> dict[str, ConversationScore]:
    async with db.session_scope(db_url) as session:
        return {row.conversation_id: row for row in (await session.scalars(select(ConversationScore))).all()}


def append_message(tracker: Path, conversation_id: str, text: str, at: float) -> int:
    """A customer message appended to the tracker store as Rasa stores one; its event id."""
    data = {
        "event": "user",
        "timestamp": at,
        "text": text,
        "parse_data": {"intent": {"name": "thank", "confidence": 0.9}},
    }
    with sqlite3.connect(tracker) as connection:
        cursor = connection.execute(
            "INSERT INTO events (sender_id, type_name, timestamp, intent_name, action_name, data)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (conversation_id, "user", at, "thank", None, json.dumps(data)),
        )
        return cursor.lastrowid


async def test_the_job_scores_finished_conversations_once_and_again_after_new_events(db_url, business, tracker_path):
    settings = settings_for(db_url, tracker_path)
    try:
        summary = await scoring.run(settings, NOW - timedelta(days=2))  # CHARLIE's last message is a day old
        assert summary.startswith("5 conversation(s) scored, average ")
        assert set(await stored(db_url)) == {ALPHA, BRAVO, DELTA, ECHO, FOXTROT}
        assert (
            await scoring.run(settings, NOW)
            == f"1 conversation(s) scored, average {(await stored(db_url))[CHARLIE].total:.1f}/30"
        )
        assert await scoring.run(settings, NOW) == "no finished conversation to score"

        scores = await stored(db_url)
        for row in scores.values():
            assert list(row.criteria) == [c.name for c in scoring.CRITERIA]
            assert row.total == sum(c["score"] for c in row.criteria.values()) and row.llm_model is None
            assert {c["by"] for c in row.criteria.values()} == {"rules"}
        alpha, bravo, charlie = scores[ALPHA].criteria, scores[BRAVO].criteria, scores[CHARLIE].criteria
        assert alpha["quote_offered"]["score"] == 2 and alpha["lead_captured"]["score"] == 2  # Aisha left an e-mail
        assert alpha["customer_satisfied"] == {"score": 1, "by": "rules", "rationale": "0 complaint(s), 1 👎"}
        assert alpha["needs_found"]["rationale"] == "learned category, quantity"
        assert bravo["no_fallback_loops"]["score"] == 0 and bravo["escalated_when_needed"]["score"] == 2
        assert bravo["every_message_replied"] == {"score": 1, "by": "rules", "rationale": "1 message(s) got no reply"}
        assert charlie["objections_handled"]["score"] == 2 and charlie["sales_progress"]["score"] == 2
        assert scores[DELTA].criteria["next_step"]["score"] == 0  # "Hello! I'm Closer." proposes nothing
        assert scores[BRAVO].total < scores[DELTA].total

        later = NOW + timedelta(minutes=5)
        event_id = append_message(tracker_path, ALPHA, "one more thing, thanks", later.timestamp())
        assert await scoring.run(settings, later + timedelta(minutes=10)) == "no finished conversation to score"
        assert (await scoring.run(settings, later + timedelta(hours=1))).startswith("1 conversation(s) scored")
        rescored = (await stored(db_url))[ALPHA]
        assert rescored.last_event_id == event_id and rescored.scored_at > scores[ALPHA].scored_at
        assert rescored.criteria["politeness"]["rationale"] == "1 greeting(s), thanks or goodbye(s) unanswered"
    finally:
        await get_reader(settings.tracker_database_url).close()


# --- the LLM judge -----------------------------------------------------------------------------------------------


@pytest.fixture
async def llm(db_url, monkeypatch):
    async with closer_on_a_fake_llm(monkeypatch, "openai/gpt-4o-mini", timeout_s=3) as server:
        yield server


async def test_an_llm_judges_the_judged_criteria_with_the_rubric_and_its_rationale_is_stored(
    llm, db_url, business, tracker_path
):
    verdict = {c.name: {"score": 1, "rationale": f"judged {c.name}"} for c in scoring.CRITERIA if c.judged}
    verdict["politeness"] = {"score": 7, "rationale": "out of the rubric"}  # the rules' score stands
    llm.reply = json.dumps(verdict)
    settings = settings_for(db_url, tracker_path)
    try:
        await scoring.run(settings, NOW)
    finally:
        await get_reader(settings.tracker_database_url).close()
    alpha = (await stored(db_url))[ALPHA]
    assert alpha.llm_model and "gpt-4o-mini" in alpha.llm_model
    judged = {name for name, c in alpha.criteria.items() if c["by"] == "llm"}
    assert judged == {"needs_found", "objections_handled", "next_step", "customer_satisfied"}
    assert alpha.criteria["next_step"] == {"score": 1, "by": "llm", "rationale": "judged next_step"}
    assert alpha.criteria["politeness"]["by"] == "rules"
    prompt = llm.system_prompt()
    assert "politeness (Politeness): 2: greetings, thanks and goodbyes were answered" in prompt
    assert "greeting (Greeting)" not in prompt  # a rules-only criterion is not asked
    assert "customer (ask_products): I need 12 ergonomic chairs in walnut" in llm.sent_text()


async def test_a_failing_judge_leaves_the_rules_scores(llm, db_url, business, tracker_path):
    llm.reply = "I think the conversation went fine."
    settings = settings_for(db_url, tracker_path)
    try:
        assert (await scoring.run(settings, NOW)).startswith("6 conversation(s) scored")
    finally:
        await get_reader(settings.tracker_database_url).close()
    for row in (await stored(db_url)).values():
        assert row.llm_model is None and {c["by"] for c in row.criteria.values()} == {"rules"}
