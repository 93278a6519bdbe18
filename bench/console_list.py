"""Benchmark (run by hand: `.venv/bin/python -m bench.console_list`): the manager console's conversation list.

Writes 10,000 conversations (≈ 200,000 events: web, Telegram and WhatsApp; all sales stages; NLU
fallbacks, escalations with manager replies, quotes, contacts; spread over 90 days) into a temporary
tracker store with the schema of Rasa's SQLTrackerStore and the event JSON Rasa 3.6 writes, plus the
matching contacts and quotes into a temporary business DB migrated by Alembic. Then it times
``bot.review.conversations.refresh`` over all of it (the first index) and with nothing new, and times
``list_conversations`` (page 1 of 25, a fresh session per call) for a set of filters, RUNS times
each after one warm-up, reporting p50/p95 in milliseconds (the index variants below take turns run
by run, so that a slower phase of the machine hits them all alike):

- with every index of migration 0006;
- against baselines measured in the same run: the same index without its secondary indexes, without
  each one of them in turn, and with each candidate index that was measured and left out of the
  migration (which filter needs which index); and the same list computed directly from the tracker
  store's ``events`` table (SQL with ``json_extract``, no index; only for the filters the tracker store
  can answer: tags, reviews and contacts live in the business DB).

Target: p95 ≤ 300 ms for every filter with the indexes. Takes about two minutes on 2 cores.
"""

import asyncio
import csv
import json
import random
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import create_engine
from sqlalchemy.engine import make_url

from bot.core import db
from bot.core.business import SALES_STAGES
from bot.core.models import Contact
from bot.core.tracker import TrackerReader, events
from bot.review import conversations as conv
from bot.review.conversations import ConversationFilters

ROOT = Path(__file__).resolve().parent.parent

CONVERSATIONS = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000  # optional argument: fewer, for a quick look
RUNS = 50
PER_PAGE = 25
DAYS = 90
NOW = datetime(2026, 11, 20, 18, 0, tzinfo=UTC)
# Index name → a short label. Migration 0006's secondary indexes, and candidates measured and left out of it.
SECONDARY_INDEXES = {
    "ix_conversation_messages_conversation_id": "messages(conv_id)",
    "ix_conversations_contact_id": "conv(contact_id)",
}
CANDIDATE_INDEXES = {
    "ix_conversations_last_message_at": ("conv(last_msg_at)", "conversations (last_message_at)"),
    "ix_conversation_tags_tag": ("tags(tag)", "conversation_tags (tag)"),
}
FILTERS = {
    "no filter": ConversationFilters(),
    "channel": ConversationFilters(channel="whatsapp"),
    "stage ≥ quoting": ConversationFilters(min_stage="quoting"),
    "escalated": ConversationFilters(escalated=True),
    "confidence < 0.5": ConversationFilters(confidence_below=0.5),
    "fallbacks ≥ 2": ConversationFilters(min_fallbacks=2),
    "tag": ConversationFilters(tag="follow-up"),
    "unreviewed, flagged": ConversationFilters(reviewed=False, flagged=True),
    "last 7 days": ConversationFilters(since=NOW - timedelta(days=7)),
    "text search": ConversationFilters(text="walnut"),
    "customer": ConversationFilters(customer="khan"),
    "channel+stage+text": ConversationFilters(channel="web", min_stage="solution", text="delivery"),
}

MODEL = {"model_id": "94809619c9c64af594195499f987fb72", "assistant_id": "closer-desert-oak"}
INTENTS = (
    "greet",
    "goodbye",
    "affirm",
    "deny",
    "thank",
    "chitchat",
    "ask_products",
    "ask_price",
    "ask_stock",
    "ask_product_details",
    "give_contact_details",
    "request_quote",
    "request_human",
    "complain",
    "objection_price",
    "objection_delivery",
    "objection_think",
    "ask_delivery",
    "ask_payment",
    "ask_warranty",
)
SAYINGS = {
    "greet": ["hi", "hello there", "good morning", "salam", "hey, anyone there?"],
    "ask_products": [
        "I need {n} ergonomic chairs for our office",
        "show me {material} desks",
        "do you have meeting tables for {n} people?",
        "looking for {colour} office chairs under {budget} AED",
        "we are furnishing a new office in Dubai, {n} workstations",
    ],
    "ask_price": ["how much is {sku}?", "what's the price of the {material} desk", "price for {n} units of {sku}"],
    "ask_stock": ["is {sku} in stock?", "do you have {n} of {sku} in Abu Dhabi?"],
    "ask_product_details": ["tell me more about {sku}", "what are the dimensions of {sku}?"],
    "objection_price": ["that's too expensive", "can you do better on price?", "competitor offers it cheaper"],
    "objection_delivery": ["delivery takes too long", "we need it by next week"],
    "objection_think": ["let me think about it", "I'll discuss with my team"],
    "ask_delivery": ["how long is delivery to Sharjah?", "do you deliver to Al Ain?", "delivery and assembly cost?"],
    "ask_payment": ["can we pay by bank transfer?", "do you accept credit cards?"],
    "ask_warranty": ["what warranty do the chairs have?", "is there a warranty on {sku}?"],
    "give_contact_details": ["I'm {name}, {email}, {phone}", "my email is {email}"],
    "request_quote": ["please send me a quote", "can I get a quotation for {n} units?"],
    "request_human": ["I want to talk to a person", "can a manager call me?"],
    "complain": ["my order arrived damaged", "nobody answered my email"],
    "thank": ["thanks", "thank you very much"],
    "goodbye": ["bye", "see you"],
    "affirm": ["yes", "sure, go ahead"],
    "deny": ["no", "not now"],
    "chitchat": ["how are you?", "are you a robot?"],
}
FALLBACK_SAYINGS = [
    "asdf",
    "hmm?",
    "what about the thing from before",
    "¿tienen sillas?",
    "ok and the other one",
    "كم السعر",
    "сколько стоит доставка",
]
FIRST = ["Aisha", "Omar", "Fatima", "Ahmed", "Priya", "Rahul", "Maria", "John", "Olga", "Wei", "Sara", "Yusuf"]
LAST = ["Khan", "Al Mansouri", "Haddad", "Sharma", "Fernandes", "Smith", "Ivanova", "Chen", "Nasser", "Patel"]
COMPANIES = ["Gulf Trading LLC", "Desert Tech FZ", "Marina Consulting", "Oasis Clinics", "Falcon Logistics"]
MANAGER_REPLIES = [
    "Hello, this is {manager} from Desert Oak, I'll take it from here.",
    "We can offer free delivery to your office for this order.",
    "I've asked the warehouse; the walnut desks arrive next Tuesday.",
]
STAGE_OF_INTENT = {
    "greet": "greeting",
    "ask_products": "solution",
    "ask_price": "solution",
    "ask_stock": "solution",
    "ask_product_details": "needs_analysis",
    "objection_price": "objection_handling",
    "objection_delivery": "objection_handling",
    "objection_think": "objection_handling",
    "give_contact_details": "qualifying",
    "request_quote": "quoting",
}
ACTION_OF_INTENT = {
    "ask_products": "action_search_products",
    "ask_price": "action_show_price",
    "ask_stock": "action_show_stock",
    "ask_product_details": "action_product_details",
    "objection_price": "action_handle_objection",
    "objection_delivery": "action_handle_objection",
    "objection_think": "action_handle_objection",
    "request_quote": "action_request_quote",
    "greet": "action_greet",
    "ask_delivery": "action_answer_question",
    "ask_payment": "action_answer_question",
    "ask_warranty": "action_answer_question",
    "request_human": "action_escalate",
    "complain": "action_escalate",
    "nlu_fallback": "action_answer_question",
}


@contextmanager
def sqlite(path: Path | str) -> Iterator[sqlite3.Connection]:
    """A connection to the SQLite file at ``path``, committed and closed at the end (the last connection to
    close checkpoints the write-ahead log, so the file can then be copied)."""
    connection = sqlite3.connect(path)
    try:
        with connection:
            yield connection
    finally:
        connection.close()


def catalog() -> list[dict]:
    with (ROOT / "knowledge" / "catalog.csv").open() as f:
        return list(csv.DictReader(f))


class Writer:
    """Builds the events of the generated conversations as rows of Rasa's ``events`` table."""

    def __init__(self, rng: random.Random, products: list[dict]) -> None:
        self.rng, self.products = rng, products
        self.rows: list[tuple] = []
        self.contacts: list[dict] = []  # business DB rows (ids assigned in order from 1)
        self.quotes: list[str] = []  # conversation ids with a quote

    def event(
        self,
        sender: str,
        at: float,
        type_name: str,
        body: dict,
        intent: str | None = None,
        name: str | None = None,
        metadata: dict | None = None,
    ) -> None:
        data = {"event": type_name, "timestamp": at, "metadata": {**(metadata or {}), **MODEL}, **body}
        self.rows.append((sender, type_name, at, intent, name, json.dumps(data)))

    def action(
        self, sender: str, at: float, name: str, policy: str | None = "RulePolicy", confidence: float | None = 1.0
    ) -> None:
        self.event(
            sender,
            at,
            "action",
            {"name": name, "policy": policy, "confidence": confidence, "action_text": None, "hide_rule_turn": False},
            name=name,
        )

    def bot(self, sender: str, at: float, text: str | None, buttons=None, custom=None, metadata=None) -> None:
        body = {
            "text": text,
            "data": {
                "elements": None,
                "quick_replies": None,
                "buttons": buttons,
                "attachment": None,
                "image": None,
                "custom": custom,
            },
        }
        self.event(sender, at, "bot", body, metadata=metadata)

    def slot(self, sender: str, at: float, name: str, value) -> None:
        self.event(sender, at, "slot", {"name": name, "value": value}, name=name)

    def user(
        self, sender: str, at: float, text: str, intent: str, confidence: float, channel: str, entities: list
    ) -> None:
        others = self.rng.sample([i for i in INTENTS if i != intent], 9)
        rest = 1 - confidence
        ranking = [{"name": intent, "confidence": confidence}] + [
            {"name": other, "confidence": rest / (2 ** (k + 1))} for k, other in enumerate(others)
        ]
        message_id = uuid.UUID(int=self.rng.getrandbits(128)).hex
        parse = {
            "intent": {"name": intent, "confidence": confidence},
            "entities": entities,
            "text": text,
            "message_id": message_id,
            "metadata": {},
            "text_tokens": [[0, len(text)]],
            "intent_ranking": ranking,
        }
        self.event(
            sender,
            at,
            "user",
            {"text": text, "parse_data": parse, "input_channel": channel, "message_id": message_id},
            intent=intent,
        )

    def product_list(self) -> tuple[str, list]:
        shown = self.rng.sample(self.products, 3)
        lines = [
            f"• {p['name']} ({p['sku']}): AED {float(p['price']):,.2f}, in stock: Dubai {self.rng.randint(0, 60)}"
            for p in shown
        ]
        buttons = [
            {"title": f"{p['name']} ({p['sku']})", "payload": f'/ask_product_details{{"sku": "{p["sku"]}"}}'}
            for p in shown
        ]
        return "Here are options from our catalog:\n" + "\n".join(lines) + "\nPrices exclude 5% VAT.", buttons

    def conversation(self, index: int) -> None:
        rng = self.rng
        channel = rng.choices(["web", "telegram", "whatsapp"], [60, 25, 15])[0]
        sender = {
            "web": f"web-{uuid.UUID(int=rng.getrandbits(128))}",
            "telegram": f"telegram-{rng.randint(10**8, 10**10)}",
            "whatsapp": f"whatsapp-9715{rng.randint(10**7, 10**8 - 1)}",
        }[channel]
        input_channel = {"web": "rest", "telegram": "telegram", "whatsapp": "whatsapp"}[channel]
        at = (NOW - timedelta(days=rng.uniform(0, DAYS))).timestamp()
        self.action(sender, at, "action_session_start", policy=None)
        self.event(sender, at, "session_started", {})
        self.action(sender, at, "action_listen", policy=None, confidence=None)
        turns = rng.choices(range(1, 9), [22, 22, 18, 12, 10, 7, 5, 4])[0]
        rank, contact = 0, None
        for turn in range(turns):
            at += rng.uniform(5, 120)
            fallback = rng.random() < 0.08
            intent = "greet" if turn == 0 else rng.choice(list(SAYINGS))
            product = rng.choice(self.products)
            name = f"{rng.choice(FIRST)} {rng.choice(LAST)}"
            text = (
                rng.choice(FALLBACK_SAYINGS)
                if fallback
                else rng.choice(SAYINGS[intent]).format(
                    n=rng.randint(2, 40),
                    sku=product["sku"],
                    material=product["material"],
                    colour=product["colour"],
                    budget=rng.choice([800, 1500, 3000]),
                    name=name,
                    email=f"{name.split()[0].lower()}@example.ae",
                    phone=f"+9715{rng.randint(10**7, 10**8 - 1)}",
                )
            )
            confidence = rng.uniform(0.3, 0.69) if fallback else min(1.0, rng.betavariate(8, 1) + 0.05)
            intent = "nlu_fallback" if fallback else intent
            entities = (
                []
                if fallback or "{sku}" not in text
                else [
                    {
                        "entity": "sku",
                        "start": 0,
                        "end": 7,
                        "value": product["sku"],
                        "extractor": "RegexEntityExtractor",
                    }
                ]
            )
            self.user(sender, at, text, intent, round(confidence, 4), input_channel, entities)
            if entities:
                self.slot(sender, at, "sku", product["sku"])
            self.event(sender, at, "user_featurization", {"use_text_for_featurization": False})
            action = ACTION_OF_INTENT.get(intent, "utter_" + intent)
            policy = rng.choice(["RulePolicy", "TEDPolicy"])
            self.action(sender, at, action, policy, 1.0 if policy == "RulePolicy" else round(rng.uniform(0.5, 1), 3))
            if action == "action_escalate":
                self.bot(sender, at, "I've passed this to a manager; they'll reply here shortly.")
                self.slot(sender, at, "sales_stage", "handoff")
                self.event(sender, at, "pause", {})
                manager = f"{rng.choice(FIRST).lower()}@desertoak.ae"
                for reply in rng.sample(MANAGER_REPLIES, rng.randint(1, 2)):
                    at += rng.uniform(30, 600)
                    self.bot(sender, at, reply.format(manager=manager), metadata={"manager": manager})
                if rng.random() < 0.6:
                    self.event(sender, at + 1, "resume", {})
                break
            if action.startswith("action_search") or action == "action_handle_objection":
                text, buttons = self.product_list()
                self.bot(sender, at, text, buttons)
            elif action == "action_answer_question":
                self.bot(sender, at, "Delivery within Dubai takes 3–5 working days; free assembly above AED 5,000.")
                self.bot(
                    sender,
                    at,
                    None,
                    custom={
                        "answer_id": uuid.UUID(int=rng.getrandbits(128)).hex[:32],
                        "sources": ["delivery.md#0"],
                        "feedback": True,
                    },
                )
            else:
                self.bot(sender, at, f"Sure — {intent.replace('_', ' ')}. How many people will use the furniture?")
            stage = STAGE_OF_INTENT.get(intent)
            if stage and SALES_STAGES.index(stage) + 1 > rank:
                rank = SALES_STAGES.index(stage) + 1
                self.slot(sender, at, "sales_stage", stage)
            if intent in ("give_contact_details", "request_quote") and not contact and rng.random() < 0.7:
                self.contacts.append(
                    {
                        "name": name,
                        "email": f"{name.split()[0].lower()}{index}@example.ae",
                        "phone": f"+9715{rng.randint(10**7, 10**8 - 1)}",
                        "channel": channel,
                        "sender_id": sender,
                        "company": rng.choice(COMPANIES),
                    }
                )
                contact = len(self.contacts)
                self.slot(sender, at, "contact_id", contact)
            if intent == "request_quote" and rng.random() < 0.6:
                self.action(sender, at, "action_send_quote")
                self.bot(sender, at, "Your quote Q-2026-0042 is ready: http://localhost:8000/quotes/abc.pdf")
                self.quotes.append(sender)
            self.action(sender, at, "action_listen")


def write_tracker(path: Path, conversations: int) -> Writer:
    """The generated events in a new SQLite tracker store at ``path`` (Rasa's schema, ids in time order)."""
    writer = Writer(random.Random(20261120), catalog())
    for index in range(conversations):
        writer.conversation(index)
    writer.rows.sort(key=lambda row: row[2])  # Rasa stores events as they happen: ids follow time
    engine = create_engine(f"sqlite:///{path}")
    events.metadata.create_all(engine)
    engine.dispose()
    with sqlite(path) as connection:
        connection.executemany(
            "INSERT INTO events (sender_id, type_name, timestamp, intent_name, action_name, data) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            writer.rows,
        )
    return writer


async def write_business(url: str, writer: Writer) -> None:
    """Contacts and quotes of the generated conversations in the migrated business DB at ``url``; contacts
    through the ORM, which encrypts their names, e-mails and phones and sets their blind indexes (as the bot does)."""
    async with db.session_scope(url) as session:
        session.add_all(
            Contact(
                id=i,
                name=c["name"],
                company=c["company"],
                email=c["email"],
                phone=c["phone"],
                channel=c["channel"],
                sender_id=c["sender_id"],
                created_at=NOW,
                updated_at=NOW,
            )
            for i, c in enumerate(writer.contacts, start=1)
        )
    now = NOW.isoformat(" ")
    with sqlite(make_url(url).database) as connection:
        connection.executemany(
            "INSERT INTO quotes (number, conversation_id, status, segment, currency, subtotal_minor, discount_minor,"
            " net_minor, vat_rate, vat_minor, total_minor, extra_discount_pct, valid_until, token, created_at)"
            " VALUES (?, ?, 'sent', 'new', 'AED', 100000, 0, 100000, '0.05', 5000, 105000, '0', ?, ?, ?)",
            [
                (f"Q-2026-{i:05d}", sender, now, uuid.uuid4().hex, now)
                for i, sender in enumerate(writer.quotes, start=1)
            ],
        )


async def annotate(url: str) -> None:
    """Tags, flags and reviews on a tenth of the conversations, as managers would leave them."""
    rng = random.Random(7)
    with sqlite(make_url(url).database) as connection:
        ids = [cid for (cid,) in connection.execute("SELECT conversation_id FROM conversations ORDER BY 1")]
    async with db.session_scope(url) as session:
        for cid in rng.sample(ids, len(ids) // 10):
            await conv.set_tags(session, cid, rng.sample(["follow-up", "vip", "pricing", "bug", "lost"], 2))
            await conv.set_flag(session, cid, rng.random() < 0.5)
            if rng.random() < 0.5:
                await conv.mark_reviewed(session, cid, "lead@desertoak.ae")


def percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


async def list_ms(url: str, filters: ConversationFilters) -> tuple[float, int]:
    """Milliseconds for page 1 of the list with ``filters`` in a fresh session, and the number of matches."""
    start = time.perf_counter()
    async with db.session_scope(url) as session:
        total = (await conv.list_conversations(session, filters, per_page=PER_PAGE)).total
    return (time.perf_counter() - start) * 1000, total


async def time_lists(urls: dict[str, str], filters: ConversationFilters) -> dict[str, tuple[tuple[float, float], int]]:
    """Label → ((p50, p95) in ms, matches) of the list with ``filters`` on each business DB of ``urls``;
    the DBs take turns run by run, so that a slower phase of the machine hits them all alike."""
    totals = {label: (await list_ms(url, filters))[1] for label, url in urls.items()}  # warm-up
    assert len(set(totals.values())) == 1, f"the variants disagree: {totals}"
    samples: dict[str, list[float]] = {label: [] for label in urls}
    for _ in range(RUNS):
        for label, url in urls.items():
            samples[label].append((await list_ms(url, filters))[0])
    return {label: (percentiles(samples[label]), totals[label]) for label in urls}


def direct_query(name: str) -> str | None:
    """The list (page 1 of 25, with its total) computed from Rasa's ``events`` table alone, or None when the
    tracker store cannot answer the filter (tags, reviews and contacts live in the business DB)."""
    message = "type_name IN ('user', 'bot')"
    where = {
        "no filter": "1",
        "channel": "sender_id IN (SELECT sender_id FROM events WHERE type_name = 'user'"
        " AND json_extract(data, '$.input_channel') = 'whatsapp')",
        "stage ≥ quoting": "sender_id IN (SELECT sender_id FROM events WHERE type_name = 'slot' AND action_name ="
        " 'sales_stage' AND json_extract(data, '$.value') IN ('quoting', 'closing', 'handoff'))",
        "escalated": "sender_id IN (SELECT sender_id FROM events WHERE action_name = 'action_escalate'"
        " OR type_name = 'pause')",
        "confidence < 0.5": "sender_id IN (SELECT sender_id FROM events WHERE type_name = 'user'"
        " AND json_extract(data, '$.parse_data.intent.confidence') < 0.5)",
        "fallbacks ≥ 2": "sender_id IN (SELECT sender_id FROM events WHERE intent_name = 'nlu_fallback'"
        " GROUP BY sender_id HAVING count(*) >= 2)",
        "last 7 days": "1",
        "text search": f"sender_id IN (SELECT sender_id FROM events WHERE {message}"
        " AND lower(json_extract(data, '$.text')) LIKE '%walnut%')",
    }.get(name)
    if where is None:
        return None
    having = f"HAVING max(timestamp) >= {(NOW - timedelta(days=7)).timestamp()}" if name == "last 7 days" else ""
    grouped = (
        f"SELECT sender_id, min(timestamp) AS started, max(timestamp) AS last, sum(type_name = 'user') AS turns"
        f" FROM events WHERE {where} GROUP BY sender_id {having}"
    )
    return (
        f"WITH c AS ({grouped}) SELECT c.*, (SELECT count(*) FROM c) AS total FROM c"
        f" ORDER BY last DESC LIMIT {PER_PAGE}"
    )


def time_direct(tracker_path: Path, name: str) -> tuple[tuple[float, float], int] | None:
    query = direct_query(name)
    if query is None:
        return None
    connection = sqlite3.connect(f"file:{tracker_path}?mode=ro", uri=True)
    rows = connection.execute(query).fetchall()
    samples = []
    for _ in range(RUNS):
        start = time.perf_counter()
        connection.execute(query).fetchall()
        samples.append((time.perf_counter() - start) * 1000)
    connection.close()
    return percentiles(samples), rows[0][-1] if rows else 0


def variant(source: Path, target: Path, dropped: Iterable[str] = (), added: Iterable[str] = ()) -> str:
    """A copy of the business DB at ``source`` without the indexes ``dropped`` and with the candidate
    indexes ``added``; its URL."""
    shutil.copy(source, target)
    with sqlite(target) as connection:
        for name in dropped:
            connection.execute(f"DROP INDEX {name}")
        for name in added:
            connection.execute(f"CREATE INDEX {name} ON {CANDIDATE_INDEXES[name][1]}")
        connection.execute("ANALYZE")
    return f"sqlite+aiosqlite:///{target}"


async def main() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="console-list-"))
    try:
        tracker_path, business_path = tmp / "tracker.db", tmp / "closer.db"
        start = time.perf_counter()
        writer = write_tracker(tracker_path, CONVERSATIONS)
        print(
            f"generated {CONVERSATIONS:,} conversations, {len(writer.rows):,} events, "
            f"{len(writer.contacts):,} contacts, {len(writer.quotes):,} quotes in {time.perf_counter() - start:.1f} s"
            f" (tracker store {tracker_path.stat().st_size / 2**20:.0f} MiB)"
        )
        url = f"sqlite+aiosqlite:///{business_path}"
        await asyncio.to_thread(db.upgrade, url)
        await write_business(url, writer)

        tracker = TrackerReader(f"sqlite+aiosqlite:///{tracker_path}")
        start = time.perf_counter()
        async with db.session_scope(url) as session:
            read = await conv.refresh(tracker, session)
        first = time.perf_counter() - start
        idle = []
        for _ in range(RUNS):
            start = time.perf_counter()
            async with db.session_scope(url) as session:
                await conv.refresh(tracker, session)
            idle.append((time.perf_counter() - start) * 1000)
        await tracker.close()
        print(
            f"refresh, first index: {read:,} events in {first:.1f} s ({read / first:,.0f} events/s); "
            f"nothing new: p50 {percentiles(idle)[0]:.2f} ms, p95 {percentiles(idle)[1]:.2f} ms"
        )
        await annotate(url)
        with sqlite(business_path) as connection:
            connection.execute("ANALYZE")
            messages = connection.execute("SELECT count(*) FROM conversation_messages").fetchone()[0]
        print(f"index: {messages:,} messages; business DB {business_path.stat().st_size / 2**20:.0f} MiB\n")
        await db.get_engine(url).dispose()

        variants = {"0006": url, "no secondary": variant(business_path, tmp / "bare.db", dropped=SECONDARY_INDEXES)}
        for name, label in SECONDARY_INDEXES.items():
            variants[f"−{label}"] = variant(business_path, tmp / f"{name}.db", dropped=[name])
        for name, (label, _) in CANDIDATE_INDEXES.items():
            variants[f"+{label}"] = variant(business_path, tmp / f"{name}.db", added=[name])
        by_filter = {name: await time_lists(variants, filters) for name, filters in FILTERS.items()}
        results = {label: {name: by_filter[name][label] for name in FILTERS} for label in variants}
        for variant_url in variants.values():
            await db.get_engine(variant_url).dispose()
        direct = {name: time_direct(tracker_path, name) for name in FILTERS}
        report(results, direct)
    finally:
        shutil.rmtree(tmp)


def report(results: dict[str, dict[str, tuple]], direct: dict[str, tuple | None]) -> None:
    best, bare = results["0006"], results["no secondary"]
    print(f"list, page 1 of {PER_PAGE}; ms over {RUNS} runs")
    header = (
        f"{'filter':<20} | {'matches':>7} | {'p50':>6} | {'p95':>6} | {'no-2nd p95':>10} | {'× no-2nd':>8} | "
        f"{'events p95':>10} | {'× events':>8}"
    )
    print(header)
    print("-" * len(header))
    for name in FILTERS:
        (p50, p95), total = best[name]
        (_, bare95), _ = bare[name]
        events95 = direct[name][0][1] if direct[name] else None
        events_cells = f"{events95:>10.1f} | {p95 / events95:>8.3f}" if events95 else f"{'n/a':>10} | {'n/a':>8}"
        print(
            f"{name:<20} | {total:>7,} | {p50:>6.1f} | {p95:>6.1f} | {bare95:>10.1f} | {p95 / bare95:>8.2f} | "
            f"{events_cells}"
        )
    print("\np95 in ms with migration 0006's indexes, one less (−) or one candidate more (+):")
    labels = [label for label in results if label[0] in "−+"]
    print(f"{'filter':<20} | {'0006':>6} | " + " | ".join(f"{label:>18}" for label in labels))
    for name in FILTERS:
        print(
            f"{name:<20} | {best[name][0][1]:>6.1f} | "
            + " | ".join(f"{results[label][name][0][1]:>18.1f}" for label in labels)
        )
    worst = max(p95 for (_, p95), _ in best.values())
    print(f"\ntarget p95 ≤ 300 ms for every filter: {'met' if worst <= 300 else 'MISSED'} (worst {worst:.1f} ms)")


if __name__ == "__main__":
    asyncio.run(main())
