"""The manager console's conversation index, list, transcript, tags and reviews, over a tracker store
written by Rasa itself: Rasa 3.6's SQLTrackerStore (``.venv-rasa``) stores the events, as the Rasa
server does, and the business DB is a real SQLite file migrated by Alembic. Event JSON follows events
of real conversations (var/tracker.db). Also the customer's language (conversations in Arabic and Russian)
and migration 0013 up and down."""

import asyncio
import json
import shutil
import sqlite3
import subprocess
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import func, select, text, update
from sqlalchemy.exc import OperationalError

from bot.core import db
from bot.core.business import get_company
from bot.core.models import Contact, Conversation, ConversationMessage, Feedback, IndexWatermark, KnowledgeAnswer, Quote
from bot.core.settings import ROOT
from bot.core.tracker import TrackerReader, TrackerStoreUnavailable
from bot.review import conversations as conv
from bot.review.conversations import ConversationFilters as Filters

RASA_PYTHON = ROOT / ".venv-rasa" / "bin" / "python"
RASA_WRITER = """
import asyncio, json, sys
from rasa.core.tracker_store import SQLTrackerStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import Event

async def main():
    spec = json.load(sys.stdin)
    store = SQLTrackerStore(Domain.load(spec["domain"]), dialect="sqlite", db=spec["db"])
    for sender, events in spec["conversations"].items():
        tracker = await store.retrieve(sender) or store.init_tracker(sender)
        for event in events:
            tracker.update(Event.from_parameters(event))
        await store.save(tracker)

asyncio.run(main())
"""
NOW = datetime.now(UTC).replace(microsecond=0)
MODEL = {"model_id": "94809619c9c64af594195499f987fb72", "assistant_id": "closer-desert-oak"}
ANSWER_ID = "5f0c6a1e9b2d4c7a8e3f1d2c4b6a8e0f"
ALPHA, BRAVO, CHARLIE, DELTA, ECHO, FOXTROT = (
    "web-alpha",
    "telegram-5550001",
    "whatsapp-971500000001",
    "web-old",
    "telegram-7770001",
    "e1",
)
GOLF, HOTEL, INDIA = "whatsapp-971500000007", "telegram-8880001", "web-india"


def rasa_write(path: Path, conversations: dict[str, list[dict]]) -> None:
    """Store ``conversations`` (sender id → event dicts) in the SQLite tracker store at ``path`` with Rasa's
    own SQLTrackerStore, appending to what a conversation already has, as the Rasa server does."""
    spec = {"db": str(path), "domain": str(ROOT / "domain.yml"), "conversations": conversations}
    result = subprocess.run(
        [str(RASA_PYTHON), "-c", RASA_WRITER], input=json.dumps(spec), text=True, capture_output=True, cwd=ROOT
    )
    assert result.returncode == 0, result.stderr[-4000:]


class Clock:
    """Timestamps of one conversation: ``days`` before now, a few seconds apart."""

    def __init__(self, days: float) -> None:
        self.at = (NOW - timedelta(days=days)).timestamp()

    def __call__(self, seconds: float = 1.0) -> float:
        self.at += seconds
        return self.at


def session_start(t: Clock) -> list[dict]:
    return [
        action("action_session_start", t, policy=None),
        marker("session_started", t),
        action("action_listen", t, policy=None, confidence=None),
    ]


def user(
    text_: str,
    intent: str,
    confidence: float,
    t: Clock,
    channel: str = "rest",
    entities: list | None = None,
    ranking: list | None = None,
) -> dict:
    message_id = f"m{int(t() * 1000)}"
    ranking = ranking or [
        {"name": intent, "confidence": confidence},
        {"name": "chitchat", "confidence": 1 - confidence},
    ]
    return {
        "event": "user",
        "timestamp": t.at,
        "metadata": MODEL,
        "text": text_,
        "input_channel": channel,
        "message_id": message_id,
        "parse_data": {
            "intent": {"name": intent, "confidence": confidence},
            "entities": entities or [],
            "text": text_,
            "message_id": message_id,
            "metadata": {},
            "intent_ranking": ranking,
        },
    }


def action(name: str, t: Clock, policy: str | None = "RulePolicy", confidence: float | None = 1.0) -> dict:
    return {
        "event": "action",
        "timestamp": t(0.01),
        "metadata": MODEL,
        "name": name,
        "policy": policy,
        "confidence": confidence,
        "action_text": None,
        "hide_rule_turn": False,
    }


def bot(
    text_: str | None,
    t: Clock,
    buttons: list | None = None,
    custom: dict | None = None,
    manager: str | None = None,
    utter: str | None = None,
) -> dict:
    metadata = {**MODEL, **({"utter_action": utter} if utter else {}), **({"manager": manager} if manager else {})}
    return {
        "event": "bot",
        "timestamp": t(0.01),
        "metadata": metadata,
        "text": text_,
        "data": {
            "elements": None,
            "quick_replies": None,
            "buttons": buttons,
            "attachment": None,
            "image": None,
            "custom": custom,
        },
    }


def slot(name: str, value, t: Clock) -> dict:
    return {"event": "slot", "timestamp": t(0.01), "metadata": MODEL, "name": name, "value": value}


def marker(kind: str, t: Clock) -> dict:
    return {"event": kind, "timestamp": t(0.01), "metadata": MODEL}


GREETING_BUTTONS = [
    {"title": "Office chairs", "payload": '/ask_products{"category": "office_chair"}'},
    {"title": "Desks", "payload": '/ask_products{"category": "desk"}'},
]
ALPHA_ENTITIES = [
    {
        "entity": "quantity",
        "start": 7,
        "end": 9,
        "confidence_entity": 0.99,
        "value": "12",
        "extractor": "DIETClassifier",
        "processors": ["EntitySynonymMapper"],
    },
    {
        "entity": "category",
        "start": 20,
        "end": 26,
        "confidence_entity": 0.98,
        "value": "office_chair",
        "extractor": "DIETClassifier",
        "processors": ["EntitySynonymMapper"],
    },
]
ALPHA_RANKING = [
    {"name": "ask_knowledge", "confidence": 0.42},
    {"name": "ask_delivery", "confidence": 0.38},
    {"name": "chitchat", "confidence": 0.2},
]


def conversations(contact_id: int) -> dict[str, list[dict]]:
    """Six conversations; ``contact_id`` is set by the lead form of ALPHA."""
    a, b, c, d, e, f = Clock(10), Clock(5), Clock(1), Clock(40), Clock(20), Clock(60)
    return {
        ALPHA: [
            *session_start(a),
            user("/greet", "greet", 1.0, a),
            action("action_greet", a),
            bot("Hello! I'm Closer.", a, buttons=GREETING_BUTTONS, utter="utter_greet"),
            slot("sales_stage", "greeting", a),
            action("action_listen", a),
            user("I need 12 ergonomic chairs in walnut", "ask_products", 0.93, a, entities=ALPHA_ENTITIES),
            slot("quantity", "12", a),
            slot("category", "office_chair", a),
            action("action_search_products", a, "TEDPolicy", 0.88),
            bot("Here are office chairs from our catalog:\n• ErgoPro (OC-1009): AED 1,480.00", a),
            slot("sales_stage", "solution", a),
            action("action_listen", a),
            user("do you deliver to Sharjah?", "ask_knowledge", 0.42, a, ranking=ALPHA_RANKING),
            action("action_answer_question", a),
            bot("We deliver across the UAE within 3–5 working days.", a),
            bot(None, a, custom={"answer_id": ANSWER_ID, "sources": ["delivery.md#0"], "feedback": True}),
            action("action_listen", a),
            user("please send the quote, 50% off?", "request_quote", 0.97, a),
            slot("contact_id", contact_id, a),
            action("action_send_quote", a),
            bot("Your quote Q-2026-0001 is ready.", a),
            slot("sales_stage", "quoting", a),
            action("action_listen", a),
        ],
        BRAVO: [
            *session_start(b),
            user("hello", "greet", 0.99, b, "telegram"),
            action("action_greet", b),
            bot("Hello! I'm Closer.", b),
            slot("sales_stage", "greeting", b),
            action("action_listen", b),
            user("asdf qwerty", "nlu_fallback", 0.3, b, "telegram"),
            action("action_answer_question", b),
            bot("Sorry, could you rephrase?", b),
            action("action_listen", b),
            user("hmm??", "nlu_fallback", 0.45, b, "telegram"),
            action("action_escalate", b),
            bot("I've passed this to a manager.", b),
            slot("sales_stage", "handoff", b),
            marker("pause", b),
            bot("Hi, Omar here from Desert Oak.", b, manager="omar@desertoak.ae"),
            user("thanks Omar", "thank", 0.95, b, "telegram"),
            marker("resume", b),
        ],
        CHARLIE: [
            *session_start(c),
            user("I need a walnut desk", "ask_products", 0.88, c, "whatsapp"),
            action("action_search_products", c),
            bot("Here are desks:\n• Walnut Executive Desk (DK-2001)", c),
            slot("sales_stage", "solution", c),
            action("action_listen", c),
            user("too expensive", "objection_price", 0.91, c, "whatsapp"),
            action("action_handle_objection", c),
            bot("Here are more affordable desks.", c),
            slot("sales_stage", "objection_handling", c),
            action("action_listen", c),
            user("I want a person", "request_human", 0.99, c, "whatsapp"),
            action("action_escalate", c),
            bot("A manager will reply here.", c),
            slot("sales_stage", "handoff", c),
            marker("pause", c),
            bot("Hello, Lina from Desert Oak here.", c, manager="lina@desertoak.ae"),
        ],
        DELTA: [
            *session_start(d),
            user("hi", "greet", 1.0, d),
            action("action_greet", d),
            bot("Hello! I'm Closer.", d),
            slot("sales_stage", "greeting", d),
            action("action_listen", d),
        ],
        ECHO: [*session_start(e), bot("Your order has shipped.", e, manager="omar@desertoak.ae")],
        FOXTROT: [
            *session_start(f),
            user("", "nlu_fallback", 0.5, f),
            action("utter_default", f),
            bot("Sorry, I didn't quite get that.", f),
            action("action_listen", f),
        ],
    }


def multilingual() -> dict[str, list[dict]]:
    """Three conversations newer than those of :func:`conversations`, whose ``language`` slot Rasa set (after the
    customer's message): GOLF in Arabic; HOTEL in English until its customer asks for Russian; INDIA in Russian
    until its customer writes French, which the business does not serve (so English, its default language)."""
    g, h, i = Clock(0.3), Clock(0.2), Clock(0.1)
    return {
        GOLF: [
            *session_start(g),
            user("هل لديكم كراسي مكتب؟", "ask_products", 0.91, g, "whatsapp"),
            slot("language", "ar", g),
            action("action_search_products", g),
            bot("نعم، هذه كراسي المكتب لدينا:\n• ErgoPro (OC-1009)", g),
            action("action_listen", g),
            user("أحتاج 12 كرسي، كم السعر؟", "ask_price", 0.62, g, "whatsapp"),
            action("action_answer_question", g),
            bot("سعر ErgoPro هو 1,480 درهم للكرسي.", g),
            action("action_listen", g),
        ],
        HOTEL: [
            *session_start(h),
            user("hello, which desks fit a small studio?", "ask_products", 0.84, h, "telegram"),
            action("action_search_products", h),
            bot("Here are desks:\n• Walnut Executive Desk (DK-2001)", h),
            action("action_listen", h),
            user("а можно по-русски?", "set_language", 0.93, h, "telegram"),
            slot("language", "ru", h),
            action("utter_language_set", h),
            bot("Конечно, дальше пишу по-русски.", h),
            action("action_listen", h),
            user("нужно 12 столов для офиса", "ask_products", 0.77, h, "telegram"),
            action("action_search_products", h),
            bot("Вот столы из нашего каталога:\n• Walnut Executive Desk (DK-2001)", h),
            action("action_listen", h),
        ],
        INDIA: [
            *session_start(i),
            user("привет, есть кресла?", "ask_products", 0.71, i),
            slot("language", "ru", i),
            action("action_search_products", i),
            bot("Вот кресла из нашего каталога:", i),
            action("action_listen", i),
            user("merci, au revoir", "goodbye", 0.55, i),
            slot("language", "fr", i),
            action("utter_goodbye", i),
            bot("Goodbye!", i),
            action("action_listen", i),
        ],
    }


CONTACTS = [
    dict(
        name="Aisha Khan",
        email="aisha@gulftrading.ae",
        phone="+971501234567",
        company="Gulf Trading LLC",
        channel="web",
        sender_id="web-earlier-visit",
    ),
    dict(
        name="Omar Haddad",
        email="omar.h@falcon.ae",
        phone="+971559876543",
        company="Falcon Logistics",
        channel="telegram",
        sender_id=BRAVO,
    ),
    dict(
        name="Wrong Channel",
        email="x@example.ae",
        phone="+971500000009",
        company=None,
        channel="web",
        sender_id=CHARLIE,
    ),
]


@pytest.fixture
async def business(db_url: str) -> dict[str, int]:
    """The business DB with CONTACTS (name → id), ALPHA's quote, and its knowledge answer rated 👎 with a
    comment."""
    async with db.session_scope(db_url) as session:
        contacts = [Contact(**fields) for fields in CONTACTS]
        session.add_all(contacts)
        await session.flush()
        session.add(
            Quote(
                number="Q-2026-0001",
                conversation_id=ALPHA,
                contact_id=contacts[0].id,
                status="sent",
                currency="AED",
                subtotal_minor=1776000,
                discount_minor=0,
                net_minor=1776000,
                vat_rate="0.05",
                vat_minor=88800,
                total_minor=1864800,
                language="en",
                valid_until=NOW + timedelta(days=14),
                token="t" * 32,
            )
        )
        session.add(
            KnowledgeAnswer(
                id=ANSWER_ID,
                conversation_id=ALPHA,
                question="do you deliver to Sharjah?",
                answer="We deliver across the UAE within 3–5 working days.",
                mode="llm",
                sources=["policies/delivery.md#areas", "policies/delivery.md#times"],
                similarity=0.71,
                llm_model="openai/gpt-4o-mini",
                latency_s=1.25,
                prompt_tokens=812,
                completion_tokens=96,
                cost_usd=0.000179,
                feedback=Feedback(conversation_id=ALPHA, rating=-1, comment="too vague"),
            )
        )
        ids = {contact.name: contact.id for contact in contacts}
    yield ids
    await db.get_engine(db_url).dispose()


@pytest.fixture(scope="module")
def rasa_store(tmp_path_factory) -> Path:
    """A tracker store written by Rasa with :func:`conversations` (ALPHA's contact_id is 1, Aisha Khan's id
    in the fresh business DB)."""
    path = tmp_path_factory.mktemp("rasa") / "tracker.db"
    rasa_write(path, conversations(contact_id=1))
    return path


@pytest.fixture
def tracker_path(rasa_store: Path, tmp_path: Path) -> Path:
    """This test's own copy of the Rasa-written tracker store."""
    path = tmp_path / "tracker.db"
    shutil.copy(rasa_store, path)
    return path


@pytest.fixture
async def tracker(tracker_path: Path) -> TrackerReader:
    reader = TrackerReader(f"sqlite+aiosqlite:///{tracker_path}")
    yield reader
    await reader.close()


@pytest.fixture
async def indexed(tracker: TrackerReader, db_url: str, business: dict[str, int]) -> str:
    """The business DB with the index refreshed from the tracker store."""
    assert business["Aisha Khan"] == 1
    async with db.session_scope(db_url) as session:
        await conv.refresh(tracker, session)
    return db_url


def utc(moment: datetime) -> datetime:
    """A datetime read from the index (SQLite gives it back naive, in UTC)."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def stored_events(path: Path) -> list[tuple]:
    with closing(sqlite3.connect(path)) as connection:
        return connection.execute(
            "SELECT id, sender_id, type_name, timestamp, intent_name, action_name, data FROM events ORDER BY id"
        ).fetchall()


async def row(url: str, conversation_id: str) -> Conversation:
    async with db.session_scope(url) as session:
        return await session.get(Conversation, conversation_id)


async def messages(url: str, conversation_id: str | None = None) -> list[tuple]:
    query = select(
        ConversationMessage.id,
        ConversationMessage.conversation_id,
        ConversationMessage.speaker,
        ConversationMessage.text,
        ConversationMessage.intent,
        ConversationMessage.confidence,
    )
    if conversation_id:
        query = query.where(ConversationMessage.conversation_id == conversation_id)
    async with db.session_scope(url) as session:
        return list((await session.execute(query.order_by(ConversationMessage.id))).tuples().all())


async def listed(url: str, page: int = 1, per_page: int = 25, **filters) -> conv.Page:
    async with db.session_scope(url) as session:
        return await conv.list_conversations(session, Filters(**filters), page=page, per_page=per_page)


async def ids(url: str, **filters) -> set[str]:
    return {item.conversation_id for item in (await listed(url, per_page=100, **filters)).items}


# --- index ---------------------------------------------------------------------------------------------------


async def test_refresh_indexes_what_rasa_stored(indexed: str, tracker_path: Path, business: dict[str, int]):
    events = stored_events(tracker_path)
    alpha = await row(indexed, ALPHA)
    assert (alpha.channel, alpha.turns, alpha.furthest_stage, alpha.stage_rank) == ("web", 4, "quoting", 6)
    assert (alpha.escalated, alpha.paused, alpha.quote_created, alpha.fallback_count) == (False, False, True, 0)
    assert alpha.min_confidence == pytest.approx(0.42)
    assert alpha.contact_id == business["Aisha Khan"]  # from the slot: her contact row names another sender
    alpha_events = [e for e in events if e[1] == ALPHA]
    assert alpha.last_event_id == alpha_events[-1][0]
    assert utc(alpha.started_at).timestamp() == pytest.approx(alpha_events[0][3])
    last_message = [e for e in alpha_events if e[2] in ("user", "bot")][-1]
    assert utc(alpha.last_message_at).timestamp() == pytest.approx(last_message[3])

    bravo = await row(indexed, BRAVO)
    assert (bravo.channel, bravo.turns, bravo.furthest_stage, bravo.stage_rank) == ("telegram", 4, "handoff", 8)
    assert (bravo.escalated, bravo.paused, bravo.quote_created, bravo.fallback_count) == (True, False, False, 2)
    assert bravo.min_confidence == pytest.approx(0.3)
    assert bravo.contact_id == business["Omar Haddad"]  # matched by channel and sender id

    charlie = await row(indexed, CHARLIE)
    assert (charlie.channel, charlie.turns, charlie.stage_rank, charlie.escalated, charlie.paused) == (
        "whatsapp",
        3,
        8,
        True,
        True,
    )
    assert charlie.contact_id is None  # the contact with this sender id is of another channel

    echo = await row(indexed, ECHO)
    assert (echo.channel, echo.turns, echo.min_confidence, echo.furthest_stage, echo.stage_rank) == (
        "telegram",
        0,
        None,
        None,
        0,
    )
    foxtrot = await row(indexed, FOXTROT)
    assert (foxtrot.channel, foxtrot.turns, foxtrot.fallback_count) == ("web", 1, 1)

    said = await messages(indexed, BRAVO)
    assert [(speaker, text_) for _, _, speaker, text_, _, _ in said] == [
        ("customer", "hello"),
        ("bot", "Hello! I'm Closer."),
        ("customer", "asdf qwerty"),
        ("bot", "Sorry, could you rephrase?"),
        ("customer", "hmm??"),
        ("bot", "I've passed this to a manager."),
        ("manager", "Hi, Omar here from Desert Oak."),
        ("customer", "thanks Omar"),
    ]
    assert said[2][4:] == ("nlu_fallback", 0.3)
    by_id = {e[0]: e for e in events}
    assert all(
        by_id[message_id][1] == cid and by_id[message_id][2] in ("user", "bot")
        for message_id, cid, *_ in await messages(indexed)
    )
    payload_only = [e[0] for e in events if e[2] == "bot" and json.loads(e[6])["text"] is None]
    assert payload_only and not {m[0] for m in await messages(indexed)} & set(payload_only)
    async with db.session_scope(indexed) as session:
        assert await session.scalar(select(IndexWatermark.last_event_id)) == events[-1][0]


async def test_refresh_reads_only_new_events(indexed: str, tracker: TrackerReader, tracker_path: Path):
    before = stored_events(tracker_path)
    async with db.session_scope(indexed) as session:
        assert await conv.refresh(tracker, session) == 0
    c, g = Clock(0.5), Clock(0.2)
    await asyncio.to_thread(
        rasa_write,
        tracker_path,
        {
            CHARLIE: [
                marker("resume", c),
                user("ok, the walnut one then", "affirm", 0.81, c, "whatsapp"),
                action("action_listen", c),
            ],
            "web-newcomer": [*session_start(g), user("do you sell standing desks?", "ask_products", 0.2, g)],
        },
    )
    after = stored_events(tracker_path)
    assert after[: len(before)] == before  # Rasa appended; nothing stored earlier changed
    async with db.session_scope(indexed) as session:
        assert await conv.refresh(tracker, session) == len(after) - len(before) == 7
        assert await session.scalar(select(IndexWatermark.last_event_id)) == after[-1][0]
    charlie = await row(indexed, CHARLIE)
    assert (charlie.turns, charlie.paused, charlie.escalated, charlie.stage_rank) == (4, False, True, 8)
    assert charlie.last_event_id == max(e[0] for e in after if e[1] == CHARLIE)
    newcomer = await row(indexed, "web-newcomer")
    assert (newcomer.turns, newcomer.min_confidence, newcomer.channel) == (1, 0.2, "web")
    ids_ = [m[0] for m in await messages(indexed)]
    said = [e for e in after if e[2] == "user" or (e[2] == "bot" and json.loads(e[6])["text"] is not None)]
    assert len(ids_) == len(set(ids_)) == len(said)


async def test_small_batches_and_rereads_give_the_same_index(
    indexed: str, tracker: TrackerReader, tracker_path: Path, tmp_path: Path
):
    other = f"sqlite+aiosqlite:///{tmp_path / 'other.db'}"
    await asyncio.to_thread(db.upgrade, other)
    async with db.session_scope(other) as session:
        session.add_all([Contact(**fields) for fields in CONTACTS])
    async with db.session_scope(indexed) as session:
        quote = (await session.scalars(select(Quote))).one()
    async with db.session_scope(other) as session:
        session.add(Quote(**{column.key: getattr(quote, column.key) for column in Quote.__table__.columns}))
    async with db.session_scope(other) as session:
        assert await conv.refresh(tracker, session, batch_size=3) == len(stored_events(tracker_path))
    assert await listed(other) == await listed(indexed)
    assert await messages(other) == await messages(indexed)

    # Events read again (PostgreSQL's re-read window) are skipped, not counted twice.
    async with db.session_scope(other) as session:
        await session.execute(update(IndexWatermark).values(last_event_id=0))
    async with db.session_scope(other) as session:
        assert await conv.refresh(tracker, session) == 0
    assert await listed(other) == await listed(indexed)
    assert await messages(other) == await messages(indexed)
    await db.get_engine(other).dispose()


async def test_the_reader_cannot_write(tracker: TrackerReader, tracker_path: Path, tmp_path: Path):
    before = stored_events(tracker_path)
    async with tracker.engine.connect() as connection:
        with pytest.raises(OperationalError, match="readonly"):
            await connection.execute(text("INSERT INTO events (sender_id, type_name) VALUES ('web-x', 'user')"))
        with pytest.raises(OperationalError, match="readonly"):
            await connection.execute(text("CREATE INDEX ix_events_type ON events (type_name)"))
    assert stored_events(tracker_path) == before

    missing = TrackerReader(f"sqlite+aiosqlite:///{tmp_path / 'missing.db'}")
    with pytest.raises(TrackerStoreUnavailable):
        await missing.last_event_id()
    assert not (tmp_path / "missing.db").exists()
    await missing.close()
    sqlite3.connect(tmp_path / "empty.db").close()
    empty = TrackerReader(f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}")
    with pytest.raises(TrackerStoreUnavailable):
        await empty.events_after(0, 10)
    await empty.close()


async def test_refresh_leaves_the_index_alone_when_the_store_is_unreadable(indexed: str, tmp_path: Path):
    before = await listed(indexed)
    missing = TrackerReader(f"sqlite+aiosqlite:///{tmp_path / 'missing.db'}")
    async with db.session_scope(indexed) as session:
        with pytest.raises(TrackerStoreUnavailable):
            await conv.refresh(missing, session)
    await missing.close()
    assert await listed(indexed) == before


# --- languages -----------------------------------------------------------------------------------------------


@pytest.fixture
async def multilingual_index(indexed: str, tracker: TrackerReader, tracker_path: Path) -> str:
    """``indexed`` with the conversations of :func:`multilingual` added by Rasa and indexed two events at a
    time (so a customer message and the SlotSet after it fall into different batches)."""
    company = get_company()
    assert (company.languages, company.default_language) == (("en", "ar", "ru"), "en")  # knowledge/company.yml
    await asyncio.to_thread(rasa_write, tracker_path, multilingual())
    async with db.session_scope(indexed) as session:
        await conv.refresh(tracker, session, batch_size=2)
    return indexed


async def test_the_language_is_the_latest_language_slot_as_the_bot_reads_it(
    multilingual_index: str, tracker: TrackerReader
):
    indexed = {cid: (await row(multilingual_index, cid)).language for cid in (GOLF, HOTEL, INDIA, ALPHA, ECHO)}
    assert indexed == {GOLF: "ar", HOTEL: "ru", INDIA: "en", ALPHA: "en", ECHO: "en"}  # ALPHA, ECHO: never set

    said = {}
    for cid in (GOLF, HOTEL, INDIA):
        events = await tracker.conversation_events(cid)
        texts = {event.id: event.data["text"] for event in events if event.type_name == "user"}
        said |= {texts[event_id]: language for event_id, language in conv.message_languages(events).items()}
    assert said == {
        "هل لديكم كراسي مكتب؟": "ar",
        "أحتاج 12 كرسي، كم السعر؟": "ar",  # no SlotSet after it: the slot keeps its value
        "hello, which desks fit a small studio?": "en",  # not set yet: the default
        "а можно по-русски?": "ru",  # the SlotSet right after it
        "нужно 12 столов для офиса": "ru",
        "привет, есть кресла?": "ru",
        "merci, au revoir": "en",  # French is not served
    }


async def test_the_list_filters_by_language_and_the_transcript_shows_it(
    multilingual_index: str, tracker: TrackerReader
):
    url = multilingual_index
    assert await ids(url, language="ar") == {GOLF}
    assert await ids(url, language="ru") == {HOTEL}
    assert await ids(url, language="en") == {INDIA, CHARLIE, BRAVO, ALPHA, ECHO, DELTA, FOXTROT}
    assert await ids(url, language="fr") == set()
    assert await ids(url, language="ru", channel="telegram") == {HOTEL}
    assert await ids(url, language="ru", channel="web") == set()
    assert await ids(url, language="en", channel="web", text="hello") == {ALPHA, DELTA}
    assert await ids(url, language="ar", text="كم السعر") == {GOLF}
    pages = [await listed(url, page=n, per_page=3, language="en") for n in (1, 2, 3)]
    assert [[item.conversation_id for item in page.items] for page in pages] == [
        [INDIA, CHARLIE, BRAVO],
        [ALPHA, ECHO, DELTA],
        [FOXTROT],
    ]
    assert {(page.total, page.pages) for page in pages} == {(7, 3)}
    assert [item.language for item in (await listed(url, language="ru")).items] == ["ru"]

    async with db.session_scope(url) as session:
        transcript = await conv.transcript(tracker, session, GOLF)
    assert transcript.summary.language == "ar"
    customers = [entry for entry in transcript.entries if entry.kind == "customer"]
    assert [entry.text for entry in customers] == ["هل لديكم كراسي مكتب؟", "أحتاج 12 كرسي، كم السعر؟"]
    assert customers[0].slots == {"language": "ar"}
    assert [entry.text for entry in transcript.entries if entry.kind == "bot"] == [
        "نعم، هذه كراسي المكتب لدينا:\n• ErgoPro (OC-1009)",
        "سعر ErgoPro هو 1,480 درهم للكرسي.",
    ]


def test_migration_0013_adds_the_language_and_drops_it(tmp_path: Path):
    path = tmp_path / "old.db"
    config = db.alembic_config(f"sqlite+aiosqlite:///{path}")
    command.upgrade(config, "0012")
    with closing(sqlite3.connect(path)) as connection, connection:
        connection.execute(
            "INSERT INTO conversations (conversation_id, channel, started_at, last_message_at, turns, stage_rank, "
            "escalated, quote_created, paused, fallback_count, last_event_id) "
            "VALUES ('web-old', 'web', '2026-03-01 09:00:00', '2026-03-01 09:05:00', 1, 0, 0, 0, 0, 0, 7)"
        )
        connection.execute(
            "INSERT INTO conversation_messages (id, conversation_id, timestamp, speaker, text) "
            "VALUES (6, 'web-old', '2026-03-01 09:05:00', 'customer', 'hi')"
        )
        connection.execute("INSERT INTO conversation_tags (conversation_id, tag) VALUES ('web-old', 'vip')")

    def schema() -> tuple[list[str], set[str]]:
        with closing(sqlite3.connect(path)) as connection:
            columns = [name for _, name, *_ in connection.execute("PRAGMA table_info(conversations)")]
            indexes = {name for (name,) in connection.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
        return columns, indexes

    command.upgrade(config, "0013")
    columns, indexes = schema()
    assert "language" in columns and "ix_conversations_language" in indexes
    with closing(sqlite3.connect(path)) as connection:
        assert connection.execute("SELECT conversation_id, language FROM conversations").fetchall() == [
            ("web-old", "en")  # indexed before the language slot existed: the default language
        ]
    command.downgrade(config, "0012")
    columns, indexes = schema()
    assert "language" not in columns and "ix_conversations_language" not in indexes
    with closing(sqlite3.connect(path)) as connection:  # the table was rebuilt; its messages and tags stay
        assert connection.execute("SELECT conversation_id, last_event_id FROM conversations").fetchall() == [
            ("web-old", 7)
        ]
        assert connection.execute("SELECT count(*) FROM conversation_messages").fetchone() == (1,)
        assert connection.execute("SELECT tag FROM conversation_tags").fetchall() == [("vip",)]


# --- list ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "filters, expected",
    [
        ({}, {ALPHA, BRAVO, CHARLIE, DELTA, ECHO, FOXTROT}),
        ({"channel": "web"}, {ALPHA, DELTA, FOXTROT}),
        ({"channel": "telegram"}, {BRAVO, ECHO}),
        ({"channel": "whatsapp"}, {CHARLIE}),
        ({"customer": "KHAN"}, {ALPHA}),
        ({"customer": "gulftrading"}, {ALPHA}),
        ({"customer": "falcon"}, {BRAVO}),
        ({"customer": "+971 55 987"}, {BRAVO}),
        ({"customer": "wrong channel"}, set()),
        ({"since": NOW - timedelta(days=7)}, {BRAVO, CHARLIE}),
        ({"until": NOW - timedelta(days=30)}, {DELTA, FOXTROT}),
        ({"since": NOW - timedelta(days=30), "until": NOW - timedelta(days=7)}, {ALPHA, ECHO}),
        ({"stage": "greeting"}, {DELTA}),
        ({"stage": "handoff"}, {BRAVO, CHARLIE}),
        ({"min_stage": "quoting"}, {ALPHA, BRAVO, CHARLIE}),
        ({"min_stage": "greeting"}, {ALPHA, BRAVO, CHARLIE, DELTA}),
        ({"escalated": True}, {BRAVO, CHARLIE}),
        ({"escalated": False}, {ALPHA, DELTA, ECHO, FOXTROT}),
        ({"quote_created": True}, {ALPHA}),
        ({"confidence_below": 0.5}, {ALPHA, BRAVO}),
        ({"confidence_below": 0.3}, set()),
        ({"min_fallbacks": 1}, {BRAVO, FOXTROT}),
        ({"min_fallbacks": 2}, {BRAVO}),
        ({"text": "WALNUT"}, {ALPHA, CHARLIE}),
        ({"text": "omar here"}, {BRAVO}),
        ({"text": "%"}, {ALPHA}),
        ({"text": "_"}, set()),
        ({"channel": "web", "escalated": False, "min_stage": "greeting", "text": "hello"}, {ALPHA, DELTA}),
    ],
)
async def test_list_filters(indexed: str, filters: dict, expected: set[str]):
    page = await listed(indexed, **filters)
    assert {item.conversation_id for item in page.items} == expected
    assert page.total == len(expected)


async def test_list_is_newest_first_in_pages(indexed: str, business: dict[str, int]):
    newest_first = [CHARLIE, BRAVO, ALPHA, ECHO, DELTA, FOXTROT]
    pages = [await listed(indexed, page=n, per_page=4) for n in (1, 2, 3)]
    assert [item.conversation_id for page in pages for item in page.items] == newest_first
    assert [(page.total, page.pages, len(page.items)) for page in pages] == [(6, 2, 4), (6, 2, 2), (6, 2, 0)]
    assert (await listed(indexed, channel="nowhere")).pages == 0
    alpha = pages[0].items[2]
    assert alpha.contact == conv.ContactInfo(
        business["Aisha Khan"], "Aisha Khan", "Gulf Trading LLC", "aisha@gulftrading.ae", "+971501234567"
    )
    assert alpha.preview == "Your quote Q-2026-0001 is ready."
    assert alpha.last_message_at.tzinfo is not None and alpha.started_at < alpha.last_message_at
    assert (alpha.tags, alpha.flagged, alpha.reviewed_at, alpha.reviewed_by) == ([], False, None, None)
    assert [item.preview for item in pages[0].items[:2]] == ["Hello, Lina from Desert Oak here.", "thanks Omar"]


@pytest.mark.parametrize(
    "filters, page, per_page, error",
    [
        ({}, 0, 25, conv.InvalidFilter),
        ({}, 1, 0, conv.InvalidFilter),
        ({}, 1, 101, conv.InvalidFilter),
        ({"since": datetime(2026, 11, 1)}, 1, 25, conv.InvalidFilter),  # noqa: DTZ001 (naive on purpose)
        ({"stage": "negotiation"}, 1, 25, conv.InvalidFilter),
        ({"min_stage": "won"}, 1, 25, conv.InvalidFilter),
        ({"confidence_below": 1.5}, 1, 25, conv.InvalidFilter),
        ({"min_fallbacks": -1}, 1, 25, conv.InvalidFilter),
        ({"tag": "two words"}, 1, 25, conv.InvalidTag),
    ],
)
async def test_bad_list_requests_are_refused(indexed: str, filters: dict, page: int, per_page: int, error):
    with pytest.raises(error):
        await listed(indexed, page=page, per_page=per_page, **filters)


# --- transcript ----------------------------------------------------------------------------------------------


async def test_transcript_of_a_sale_with_a_knowledge_answer(indexed: str, tracker: TrackerReader, tracker_path: Path):
    async with db.session_scope(indexed) as session:
        transcript = await conv.transcript(tracker, session, ALPHA)
    events = [e for e in stored_events(tracker_path) if e[1] == ALPHA]
    shown = [
        e
        for e in events
        if not (e[2] == "action" and e[5] == "action_listen")
        and e[2] in ("user", "bot", "action", "pause", "resume", "session_started", "restart")
    ]
    assert [entry.event_id for entry in transcript.entries] == [e[0] for e in shown]
    assert [entry.kind for entry in transcript.entries] == [
        "action",
        "session_started",
        "customer",
        "action",
        "bot",
        "customer",
        "action",
        "bot",
        "customer",
        "action",
        "bot",
        "bot",
        "customer",
        "action",
        "bot",
    ]
    assert all(entry.at.timestamp() == pytest.approx(e[3]) for entry, e in zip(transcript.entries, shown, strict=True))

    customers = [entry for entry in transcript.entries if entry.kind == "customer"]
    chairs = customers[1]
    assert (chairs.text, chairs.intent, chairs.confidence, chairs.input_channel) == (
        "I need 12 ergonomic chairs in walnut",
        "ask_products",
        0.93,
        "rest",
    )
    assert chairs.entities == ALPHA_ENTITIES
    assert chairs.slots == {"quantity": "12", "category": "office_chair", "sales_stage": "solution"}
    assert customers[2].intent_ranking == [conv.IntentScore(r["name"], r["confidence"]) for r in ALPHA_RANKING]
    assert customers[2].slots == {}
    assert customers[3].slots == {"contact_id": 1, "sales_stage": "quoting"}

    search = transcript.entries[6]
    assert (search.name, search.policy, search.confidence) == ("action_search_products", "TEDPolicy", 0.88)
    greeting = transcript.entries[4]
    assert (greeting.buttons, greeting.utter_action, greeting.manager, greeting.knowledge) == (
        GREETING_BUTTONS,
        "utter_greet",
        None,
        None,
    )

    payload = transcript.entries[11]
    assert payload.text is None and payload.custom["answer_id"] == ANSWER_ID
    assert payload.knowledge == conv.KnowledgeDetail(
        answer_id=ANSWER_ID,
        question="do you deliver to Sharjah?",
        answer="We deliver across the UAE within 3–5 working days.",
        mode="llm",
        sources=["policies/delivery.md#areas", "policies/delivery.md#times"],
        similarity=0.71,
        llm_answered=True,
        llm_model="openai/gpt-4o-mini",
        latency_s=1.25,
        prompt_tokens=812,
        completion_tokens=96,
        cost_usd=0.000179,
        fallback_reason=None,
        rating=-1,
        comment="too vague",
    )
    assert transcript.summary == (await listed(indexed, customer="khan")).items[0]


async def test_transcript_of_a_manager_takeover(indexed: str, tracker: TrackerReader):
    async with db.session_scope(indexed) as session:
        transcript = await conv.transcript(tracker, session, BRAVO)
    tail = [(entry.kind, getattr(entry, "text", None)) for entry in transcript.entries][-6:]
    assert tail == [
        ("action", None),
        ("bot", "I've passed this to a manager."),
        ("pause", None),
        ("manager", "Hi, Omar here from Desert Oak."),
        ("customer", "thanks Omar"),
        ("resume", None),
    ]
    manager = transcript.entries[-3]
    assert manager.manager == "omar@desertoak.ae"
    fallback = [entry for entry in transcript.entries if entry.kind == "customer"][1]
    assert (fallback.intent, fallback.confidence, fallback.input_channel) == ("nlu_fallback", 0.3, "telegram")
    assert transcript.summary.escalated and not transcript.summary.paused


async def test_transcript_before_indexing_and_of_an_unknown_conversation(db_url: str, tracker: TrackerReader):
    async with db.session_scope(db_url) as session:
        transcript = await conv.transcript(tracker, session, DELTA)
        assert transcript.summary is None and [entry.kind for entry in transcript.entries][-2:] == ["action", "bot"]
        with pytest.raises(conv.UnknownConversation):
            await conv.transcript(tracker, session, "web-nobody")
    await db.get_engine(db_url).dispose()


# --- tags and reviews ----------------------------------------------------------------------------------------


async def test_tags(indexed: str):
    async with db.session_scope(indexed) as session:
        tags = await conv.set_tags(session, ALPHA, [" VIP ", "follow-up", "vip", "Ценa_2"])
        assert tags == ["follow-up", "vip", "ценa_2"]
        assert await conv.set_tags(session, BRAVO, ["follow-up"]) == ["follow-up"]
    for bad in ["", " ", "two words", "x" * 65, "semi;colon", "a/b"]:
        async with db.session_scope(indexed) as session:
            with pytest.raises(conv.InvalidTag):
                await conv.set_tags(session, ALPHA, ["fine", bad])
    assert await ids(indexed, tag="VIP") == {ALPHA}
    assert await ids(indexed, tag="follow-up") == {ALPHA, BRAVO}
    assert await ids(indexed, tag="nobody-has-it") == set()
    assert (await listed(indexed, customer="khan")).items[0].tags == ["follow-up", "vip", "ценa_2"]
    async with db.session_scope(indexed) as session:
        assert await conv.known_tags(session) == ["follow-up", "vip", "ценa_2"]
        assert await conv.set_tags(session, ALPHA, []) == []
    assert await ids(indexed, tag="vip") == set()


async def test_flags_and_reviews(indexed: str):
    reviewed_at = datetime(2026, 11, 21, 9, 30, tzinfo=UTC)
    async with db.session_scope(indexed) as session:
        await conv.set_flag(session, BRAVO, True, note="Customer waited 2 h for a manager")
        await conv.set_flag(session, CHARLIE, True)
        await conv.mark_reviewed(session, BRAVO, " lead@desertoak.ae ", now=reviewed_at)
        await conv.mark_reviewed(session, ALPHA, "lead@desertoak.ae")
        await conv.set_flag(session, CHARLIE, False)
    assert await ids(indexed, flagged=True) == {BRAVO}
    assert await ids(indexed, flagged=False) == {ALPHA, CHARLIE, DELTA, ECHO, FOXTROT}
    assert await ids(indexed, reviewed=True) == {ALPHA, BRAVO}
    assert await ids(indexed, reviewed=False) == {CHARLIE, DELTA, ECHO, FOXTROT}
    assert await ids(indexed, reviewed=False, flagged=False, channel="whatsapp") == {CHARLIE}
    bravo = (await listed(indexed, customer="falcon")).items[0]
    assert (bravo.flagged, bravo.reviewed_at, bravo.reviewed_by, bravo.note) == (
        True,
        reviewed_at,
        "lead@desertoak.ae",
        "Customer waited 2 h for a manager",
    )

    async with db.session_scope(indexed) as session:
        with pytest.raises(conv.InvalidReview):
            await conv.mark_reviewed(session, DELTA, "  ")
        with pytest.raises(conv.InvalidReview):
            await conv.set_flag(session, BRAVO, False, note="x" * (conv.MAX_NOTE_CHARS + 1))
    async with db.session_scope(indexed) as session:
        await conv.set_flag(session, BRAVO, True, note="")
    bravo = (await listed(indexed, customer="falcon")).items[0]
    assert (bravo.flagged, bravo.note, bravo.reviewed_by) == (True, None, "lead@desertoak.ae")


async def test_tags_and_reviews_need_an_indexed_conversation(indexed: str):
    async with db.session_scope(indexed) as session:
        with pytest.raises(conv.UnknownConversation):
            await conv.set_tags(session, "web-nobody", ["vip"])
        with pytest.raises(conv.UnknownConversation):
            await conv.set_flag(session, "web-nobody", True)
        with pytest.raises(conv.UnknownConversation):
            await conv.mark_reviewed(session, "web-nobody", "lead@desertoak.ae")
    async with db.session_scope(indexed) as session:
        assert await session.scalar(select(func.count()).select_from(Conversation)) == 6
