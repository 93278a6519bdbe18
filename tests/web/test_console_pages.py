"""The console's sales views (pipeline, quotes, contacts), analytics page with CSV exports and training page,
against the real console app (bot.web.app.create_app) on loopback, a migrated SQLite DB filled by hand below
and real `rasa test` output (tests/data/rasa_results). Also the analytics page in headless Chromium."""

import asyncio
import csv
import io
import itertools
import json
import shutil
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait
from sqlalchemy import select

import bot.web.console.sales
from bot.core import caches, db
from bot.core.models import (
    Contact,
    Conversation,
    ConversationMessage,
    CRMOutbox,
    Deal,
    Escalation,
    Feedback,
    KnowledgeAnswer,
    Quote,
)
from bot.review import analytics
from bot.web.app import create_app
from bot.web.console.analytics import VIEWS
from tests.browser import chromium
from tests.web.test_console_auth import PASSWORD, add_user, console_settings, csrf, login

RESULTS = Path(__file__).parents[1] / "data" / "rasa_results"
NOW = datetime.now(UTC)
MARCH = {"since": "2026-03-01", "until": "2026-03-07"}  # days in Dubai time; every test conversation but one is in it
EVENT_IDS = itertools.count(1)  # tracker event ids of the indexed messages
PNG = b"\x89PNG\r\n\x1a\n" + b"confusion matrix"


class Marks(HTMLParser):
    """An HTML page read back: the whitespace-normalised text of every element with a ``data-*`` attribute,
    by (attribute, value), the marked elements around each, and every start tag's attributes in order."""

    VOID = frozenset(
        {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}
    )

    def __init__(self, html: str):
        super().__init__()
        self.stack: list[tuple[str, tuple[str, str] | None]] = []
        self.texts: defaultdict[tuple[str, str], list[str]] = defaultdict(list)
        self.within: dict[tuple[str, str], tuple] = {}
        self.tags: list[tuple[str, dict]] = []
        self.feed(html)
        self.close()

    def handle_starttag(self, tag, attrs):
        self.handle_data(" ")  # cells and blocks read apart
        attrs = dict(attrs)
        self.tags.append((tag, attrs))
        if tag in self.VOID:
            return
        mark = next(((k, v) for k, v in attrs.items() if k.startswith("data-") and k != "data-chart"), None)
        if mark:
            self.within[mark] = tuple(m for _, m in self.stack if m)
            self.texts[mark]  # an empty element is there too
        self.stack.append((tag, mark))

    def handle_endtag(self, tag):
        self.handle_data(" ")
        while self.stack and self.stack.pop()[0] != tag:
            pass

    def handle_data(self, data):
        for _, mark in self.stack:
            if mark:
                self.texts[mark].append(data)

    def text(self, attribute: str, value) -> str:
        assert (attribute, str(value)) in self.texts, f"no element with {attribute}={value}"
        return " ".join("".join(self.texts[attribute, str(value)]).split())

    def marked(self, attribute: str) -> list[str]:
        """Values of ``attribute`` in page order."""
        return [value for name, value in self.texts if name == attribute]

    def links(self) -> list[str]:
        return [attrs["href"] for tag, attrs in self.tags if tag == "a" and "href" in attrs]

    def charts(self) -> dict[str, dict]:
        return {
            attrs["id"]: json.loads(attrs["data-chart"])
            for tag, attrs in self.tags
            if tag == "canvas" and "data-chart" in attrs
        }


def utc(day: int, hour: int, minute: int = 0, month: int = 3) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=UTC)


def quote(
    number: str, cid: str, contact: Contact | None, status: str, total_minor: int, valid_days: int, created: datetime
) -> Quote:
    return Quote(
        number=number,
        conversation_id=cid,
        contact_id=contact.id if contact else None,
        status=status,
        currency="AED",
        subtotal_minor=total_minor,
        discount_minor=0,
        net_minor=total_minor,
        vat_rate="0",
        vat_minor=0,
        total_minor=total_minor,
        language="en",
        valid_until=NOW + timedelta(days=valid_days),
        token=number.replace("-", "x").ljust(43, "t"),
        created_at=created,
    )


def indexed(
    cid: str,
    channel: str,
    contact: Contact | None,
    rank: int,
    messages: list[tuple[datetime, str | None]],
    language: str = "en",
    **flags,
) -> list:
    """An indexed conversation in ``language`` and its customer messages ``(time, intent)``."""
    stage = (
        None,
        "greeting",
        "qualifying",
        "needs_analysis",
        "solution",
        "objection_handling",
        "quoting",
        "closing",
        "handoff",
    )[rank]
    times = [m[0] for m in messages]
    rows: list = [
        Conversation(
            conversation_id=cid,
            channel=channel,
            contact_id=contact.id if contact else None,
            started_at=min(times),
            last_message_at=max(times),
            turns=len(messages),
            furthest_stage=stage,
            stage_rank=rank,
            paused=False,
            last_event_id=0,
            fallback_count=sum(m[1] == "nlu_fallback" for m in messages),
            language=language,
            **flags,
        )
    ]
    rows += [
        ConversationMessage(
            id=next(EVENT_IDS),
            conversation_id=cid,
            timestamp=moment,
            speaker="customer",
            text="…",
            intent=intent,
            confidence=0.9,
        )
        for moment, intent in messages
    ]
    return rows


@pytest.fixture
async def filled(db_url: str) -> dict:
    """Three contacts with five deals, four quotes, two escalations, four indexed conversations (three of them
    in 1–7 March 2026, Dubai time: in English, Arabic and Russian) and three knowledge answers; returns the rows'
    ids."""
    async with db.session_scope(db_url) as session:
        ann = Contact(
            name="Ann Buyer",
            company="Acme LLC",
            email="ann@acme.example",
            phone="+971501234567",
            channel="web",
            sender_id="web-ann0001",
            created_at=NOW - timedelta(days=3),
        )
        bob = Contact(
            name="Bob Stone",
            email="bob@stone.example",
            channel="telegram",
            sender_id="telegram-42",
            created_at=NOW - timedelta(days=2),
        )
        cat = Contact(
            email="cat@cat.example",
            channel="whatsapp",
            sender_id="971500000003",  # a bare sender id
            created_at=NOW - timedelta(days=1),
        )
        session.add_all([ann, bob, cat])
        await session.flush()
        deals = [
            Deal(
                contact_id=ann.id,
                stage="qualified",
                amount_minor=129000,
                currency="AED",
                source_channel="web",
                tags=["web-lead"],
                created_at=NOW - timedelta(days=3, minutes=1),
            ),
            Deal(
                contact_id=ann.id,
                stage="won",
                amount_minor=50000,
                currency="AED",
                source_channel="web",
                created_at=NOW - timedelta(days=40),
            ),
            Deal(
                contact_id=bob.id,
                stage="qualified",
                amount_minor=20000,
                currency="AED",
                source_channel="telegram",
                tags=["telegram-lead", "vip"],
                created_at=NOW - timedelta(hours=5),
            ),
            Deal(
                contact_id=bob.id,
                stage="proposal",
                currency="AED",
                source_channel="telegram",
                created_at=NOW - timedelta(days=1),
            ),
            Deal(
                contact_id=cat.id,
                stage="negotiation",
                amount_minor=10000,
                currency="USD",
                source_channel="whatsapp",
                created_at=NOW - timedelta(days=1),
            ),
        ]
        session.add_all(deals)
        quotes = [
            quote("Q-2026-0001", "web-ann0001", ann, "sent", 135450, 10, NOW - timedelta(days=4)),
            quote("Q-2026-0002", "web-ann0001", ann, "sent", 99900, -1, NOW - timedelta(days=20)),
            quote("Q-2026-0003", "web-anon0001", None, "draft", 5000, 5, NOW - timedelta(days=1)),
            quote("Q-2026-0004", "telegram-42", bob, "accepted", 20000, -3, NOW - timedelta(days=6)),
        ]
        session.add_all(quotes)
        escalations = [
            Escalation(conversation_id="telegram-77", reason="requested", summary="Ann wants a call", status="pending"),
            Escalation(
                conversation_id="telegram-42", reason="discount", summary="Bob asks for 20%", status="in_progress"
            ),
            Escalation(conversation_id="web-zzz", reason="complaint", summary="someone else", status="pending"),
        ]
        session.add_all(escalations)
        session.add_all(
            [
                *indexed(
                    "web-ann0001",
                    "web",
                    ann,
                    6,
                    [(utc(2, 10), "greet"), (utc(2, 10, 5), "ask_price")],
                    quote_created=True,
                ),
                *indexed("telegram-77", "telegram", ann, 8, [(utc(3, 9), "request_human")], "ar", escalated=True),
                *indexed(
                    "whatsapp-971500000003",
                    "whatsapp",
                    None,
                    2,
                    [(utc(5, 12), "nlu_fallback"), (utc(5, 12, 1), "greet")],
                    "ru",
                ),
                *indexed("web-zzz", "web", None, 1, [(utc(10, 9, month=2), "greet")]),
                KnowledgeAnswer(
                    id="k1",
                    conversation_id="web-ann0001",
                    question="?",
                    answer="!",
                    mode="llm",
                    sources=[],
                    similarity=0.6,
                    llm_model="gpt-4o-mini",
                    prompt_tokens=900,
                    completion_tokens=80,
                    cost_usd=0.25,
                    created_at=utc(2, 10, 2),
                ),
                Feedback(answer_id="k1", conversation_id="web-ann0001", rating=1),
                KnowledgeAnswer(
                    id="k2",
                    conversation_id="telegram-77",
                    question="?",
                    answer="!",
                    mode="extractive",
                    sources=[],
                    similarity=0.5,
                    created_at=utc(3, 9, 1),
                ),
                Feedback(answer_id="k2", conversation_id="telegram-77", rating=-1),
                KnowledgeAnswer(
                    id="k3",
                    conversation_id="web-ann0001",
                    question="?",
                    answer="!",
                    mode="llm",
                    sources=[],
                    similarity=0.7,
                    llm_model="gpt-4o-mini",
                    prompt_tokens=500,
                    completion_tokens=40,
                    cost_usd=0.5,
                    created_at=utc(4, 8),
                ),
            ]
        )
        await session.flush()
        ids = {
            "ann": ann.id,
            "bob": bob.id,
            "cat": cat.id,
            "deals": [d.id for d in deals],
            "tokens": {q.number: q.token for q in quotes},
        }
    await add_user(db_url, "max@example.com", "manager")
    return ids


@pytest.fixture
def results(tmp_path: Path) -> Path:
    """results/ as `make nlu-eval` and `make test-stories` leave it, with a confusion matrix image."""
    path = tmp_path / "results"
    shutil.copytree(RESULTS, path)
    (path / "nlu-heldout" / "intent_confusion_matrix.png").write_bytes(PNG)
    return path


@pytest.fixture
async def client(db_url: str, filled: dict, results: Path):
    """The console with the filled DB and results/, signed in as max@example.com, a manager (not an admin)."""
    async with TestClient(TestServer(create_app(console_settings(db_url, rasa_results_dir=results)))) as client:
        assert (await login(client, "max@example.com")).status == 303
        yield client
    await db.get_engine(db_url).dispose()


async def page(client: TestClient, path: str, **params) -> Marks:
    response = await client.get(path, params=params)
    body = await response.text()
    assert response.status == 200, body
    return Marks(body)


async def stored_deal(db_url: str, deal_id: int) -> tuple[str, list[str]]:
    async with db.session_scope(db_url) as session:
        deal = await session.get(Deal, deal_id)
        return deal.stage, [note.body for note in deal.notes]


# --- pipeline ----------------------------------------------------------------------------------------------


async def test_the_pipeline_board_counts_and_totals_each_stage_and_shows_the_cards(client, filled):
    board = await page(client, "/console/pipeline")
    assert board.marked("data-stage") == ["new", "qualified", "proposal", "negotiation", "won", "lost"]
    summaries = {
        "new": "0 deals · no amount",
        "qualified": "2 deals · AED 1,490.00",
        "proposal": "1 deal · no amount",
        "negotiation": "1 deal · USD 100.00",
        "won": "1 deal · AED 500.00",
        "lost": "0 deals · no amount",
    }
    for stage, summary in summaries.items():
        assert board.text("data-stage", stage).startswith(f"{stage} {summary}")

    first, won, bob_qualified, bob_proposal, cat = filled["deals"]
    stage_of = {int(deal): board.within["data-deal", deal][-1][1] for deal in board.marked("data-deal")}
    assert stage_of == {
        first: "qualified",
        won: "won",
        bob_qualified: "qualified",
        bob_proposal: "proposal",
        cat: "negotiation",
    }
    assert [int(d) for d in board.marked("data-deal") if stage_of[int(d)] == "qualified"] == [bob_qualified, first]
    assert board.text("data-deal", first).startswith(
        f"Ann Buyer Acme LLC AED 1,290.00 #{first} · web · 3 d old web-lead"
    )
    assert board.text("data-deal", bob_qualified).startswith(
        f"Bob Stone AED 200.00 #{bob_qualified} · telegram · 5 h old telegram-lead vip"
    )
    assert board.text("data-deal", cat).startswith(f"cat@cat.example USD 100.00 #{cat} · whatsapp")
    assert board.text("data-deal", bob_proposal).startswith("Bob Stone no amount yet")
    assert f"/console/contacts/{filled['ann']}" in board.links()


async def test_the_board_filters_by_source_channel_and_refuses_unknown_channels(client, filled):
    board = await page(client, "/console/pipeline", channel="telegram")
    assert sorted(int(d) for d in board.marked("data-deal")) == filled["deals"][2:4]
    assert board.text("data-stage", "qualified").startswith("qualified 1 deal · AED 200.00")
    refused = await client.get("/console/pipeline", params={"channel": "fax"})
    assert refused.status == 400 and "no deal comes from channel &#39;fax&#39;" in await refused.text()


async def test_a_manager_moves_a_deal_which_is_noted_and_queued_for_the_crm(client, filled, db_url, monkeypatch):
    monkeypatch.setenv("CLOSER_CRM_PROVIDER", "hubspot")
    monkeypatch.setenv("CLOSER_HUBSPOT_TOKEN", "test-token")
    caches.reset()
    deal = filled["deals"][2]
    token = await csrf(client, "/console/pipeline")
    moved = await client.post(
        f"/console/pipeline/deals/{deal}/stage",
        data={"stage": "negotiation", "channel": "telegram", "csrf_token": token},
        allow_redirects=False,
    )
    assert (moved.status, moved.headers["Location"]) == (303, "/console/pipeline?channel=telegram")
    stage, notes = await stored_deal(db_url, deal)
    assert stage == "negotiation"
    assert notes == ["Stage moved from qualified to negotiation by max@example.com in the console."]
    async with db.session_scope(db_url) as session:
        outbox = (await session.scalars(select(CRMOutbox).order_by(CRMOutbox.id))).all()
    assert [(row.provider, row.operation) for row in outbox] == [
        ("hubspot", "upsert_contact"),
        ("hubspot", "upsert_deal"),
        ("hubspot", "add_note"),
    ]
    assert outbox[1].payload["stage"] == "negotiation" and outbox[1].payload["local_id"] == deal

    board = await client.get("/console/pipeline?channel=telegram")
    marks = Marks(await board.text())
    assert "moved from qualified to negotiation" in await board.text()
    assert marks.within["data-deal", str(deal)][-1] == ("data-stage", "negotiation")
    assert marks.text("data-stage", "qualified").startswith("qualified 0 deals")


async def test_moving_a_deal_needs_the_csrf_token_and_a_known_stage_and_deal(client, filled, db_url):
    deal = filled["deals"][0]
    for data in ({"stage": "won"}, {"stage": "won", "csrf_token": "x" * 43}):
        response = await client.post(f"/console/pipeline/deals/{deal}/stage", data=data, allow_redirects=False)
        assert response.status == 403
    token = await csrf(client, "/console/pipeline")
    for stage in ("closed", "", "WON"):
        response = await client.post(
            f"/console/pipeline/deals/{deal}/stage", data={"stage": stage, "csrf_token": token}
        )
        assert response.status == 400 and "is not a pipeline stage" in await response.text()
    assert await stored_deal(db_url, deal) == ("qualified", [])
    missing = await client.post("/console/pipeline/deals/999999/stage", data={"stage": "won", "csrf_token": token})
    assert missing.status == 404
    same = await client.post(f"/console/pipeline/deals/{deal}/stage", data={"stage": "qualified", "csrf_token": token})
    assert same.status == 200 and "is already at qualified" in await same.text()
    assert await stored_deal(db_url, deal) == ("qualified", [])


# --- quotes ------------------------------------------------------------------------------------------------


async def test_quotes_newest_first_with_their_status_today_and_pdf_links(client, filled):
    listed = await page(client, "/console/quotes")
    assert listed.marked("data-quote") == ["Q-2026-0003", "Q-2026-0001", "Q-2026-0004", "Q-2026-0002"]
    valid = (NOW + timedelta(days=10)).strftime("%Y-%m-%d")
    assert listed.text("data-quote", "Q-2026-0001").startswith(
        f"Q-2026-0001 Ann Buyer Acme LLC sent AED 1,354.50 {valid}"
    )
    assert listed.text("data-quote", "Q-2026-0002").startswith("Q-2026-0002 Ann Buyer Acme LLC expired AED 999.00")
    assert listed.text("data-quote", "Q-2026-0003").startswith("Q-2026-0003 web-anon0001 draft AED 50.00")
    assert listed.text("data-quote", "Q-2026-0004").startswith("Q-2026-0004 Bob Stone accepted AED 200.00")
    assert {f"/quotes/{token}.pdf" for token in filled["tokens"].values()} <= set(listed.links())

    expired = await page(client, "/console/quotes", status="expired")
    assert expired.marked("data-quote") == ["Q-2026-0002"]
    sent = await page(client, "/console/quotes", status="sent")
    assert sent.marked("data-quote") == ["Q-2026-0001"]


async def test_quotes_are_paged_and_bad_filters_refused(client, filled, monkeypatch):
    monkeypatch.setattr(bot.web.console.sales, "PER_PAGE", 3)
    first = await page(client, "/console/quotes")
    assert first.marked("data-quote") == ["Q-2026-0003", "Q-2026-0001", "Q-2026-0004"]
    assert "/console/quotes?page=2" in first.links()
    second = await page(client, "/console/quotes", page="2")
    assert second.marked("data-quote") == ["Q-2026-0002"] and "/console/quotes?page=1" in second.links()
    for params in ({"status": "paid"}, {"page": "0"}, {"page": "two"}):
        response = await client.get("/console/quotes", params=params)
        assert response.status == 400, params


# --- contacts ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "search, found",
    [
        ("", ["cat", "bob", "ann"]),
        ("acme", ["ann"]),
        ("ANN@ACME", ["ann"]),
        ("50 123 4567", ["ann"]),
        ("+97150", ["ann"]),
        ("stone", ["bob"]),
        ("%", []),
        ("nobody", []),
    ],
)
async def test_contacts_search_name_email_phone_and_company(client, filled, search, found):
    listed = await page(client, "/console/contacts", q=search)
    assert listed.marked("data-contact") == [str(filled[name]) for name in found]


async def test_contacts_are_paged_and_long_searches_refused(client, filled, monkeypatch):
    monkeypatch.setattr(bot.web.console.sales, "PER_PAGE", 2)
    first = await page(client, "/console/contacts")
    assert first.marked("data-contact") == [str(filled["cat"]), str(filled["bob"])]
    assert first.text("data-contact", filled["bob"]).startswith("Bob Stone bob@stone.example telegram new 2")
    assert (await page(client, "/console/contacts", page="2")).marked("data-contact") == [str(filled["ann"])]
    assert (await client.get("/console/contacts", params={"q": "x" * 201})).status == 400


async def test_a_contact_page_has_their_deals_quotes_escalations_and_every_conversation(client, filled):
    ann = await page(client, f"/console/contacts/{filled['ann']}")
    first, won = filled["deals"][:2]
    assert ann.marked("data-deal") == [str(first), str(won)]
    assert ann.text("data-deal", first).startswith(f"#{first} qualified AED 1,290.00 web web-lead")
    assert ann.marked("data-quote") == ["Q-2026-0001", "Q-2026-0002"]
    assert "expired" in ann.text("data-quote", "Q-2026-0002")
    assert [ann.text("data-escalation", e).split(" ", 2)[2] for e in ann.marked("data-escalation")] == [
        "telegram-77 requested pending Ann wants a call"
    ]
    assert ann.marked("data-conversation") == ["telegram-77", "web-ann0001"]  # latest first, across channels
    assert ann.text("data-conversation", "web-ann0001").startswith(
        "web-ann0001 web 2026-03-02 10:00 2026-03-02 10:05 2 quoting"
    )
    assert {"/console/conversations/telegram-77", "/console/conversations/web-ann0001"} <= set(ann.links())

    bob = await page(client, f"/console/contacts/{filled['bob']}")  # his conversation is not indexed yet
    assert bob.marked("data-conversation") == ["telegram-42"]
    assert bob.text("data-conversation", "telegram-42") == "telegram-42 telegram not indexed yet"
    assert "Bob asks for 20%" in bob.text("data-escalation", bob.marked("data-escalation")[0])
    assert bob.marked("data-quote") == ["Q-2026-0004"]

    cat = await page(client, f"/console/contacts/{filled['cat']}")  # <channel>-<sender id>, not linked in the index
    assert cat.marked("data-conversation") == ["whatsapp-971500000003"]
    assert cat.text("data-conversation", "whatsapp-971500000003").startswith(
        "whatsapp-971500000003 whatsapp 2026-03-05"
    )
    assert (await client.get("/console/contacts/999999")).status == 404


# --- analytics ---------------------------------------------------------------------------------------------


async def march_figures(db_url: str, channel: str | None = None) -> dict:
    since, until = analytics.period(date(2026, 3, 1), date(2026, 3, 7))
    async with db.session_scope(db_url) as session:
        return {
            "funnel": await analytics.funnel(session, since, until, channel),
            "volume": await analytics.daily_volume(session, since, until, channel),
            "intents": await analytics.top_intents(session, since, until, channel),
            "feedback": await analytics.answer_feedback(session, since, until, channel),
            "cost": await analytics.llm_cost(session, since, until, channel),
            "languages": await analytics.by_language(session, since, until, channel),
        }


async def test_the_analytics_page_shows_the_periods_numbers_and_charts(client, db_url):
    shown = await client.get("/console/analytics", params=MARCH)
    body = await shown.text()
    marks = Marks(body)
    assert shown.status == 200
    assert 'value="2026-03-01"' in body and 'value="2026-03-07"' in body
    numbers = " ".join(marks.text("data-number", name) for name in marks.marked("data-number"))
    assert numbers == (
        "33.3 % conversion to quote (1 of 3 conversations) "
        "66.7 % conversion to won (2 of 3 conversations) "
        "33.3 % escalation rate (1 of 3 conversations) "
        "20.0 % fallback rate (1 of 5 customer messages) "
        "USD 0.7500 LLM cost (2 calls) "
        "50.0 % rated 👍 of 2 rated knowledge answers (1 👍, 1 👎)"
    )
    assert [marks.text("data-mode", mode) for mode in marks.marked("data-mode")] == ["llm 2", "extractive 1"]
    # web-ann0001 (en) reached quoting, quoted, Ann has a won deal; telegram-77 (ar, Ann's too) was handed off;
    # whatsapp-971500000003 (ru) reached qualifying
    assert [marks.text("data-language", language) for language in marks.marked("data-language")] == [
        "en 1 1 1 1 1 1 1 0 0 100.0 % (1) 100.0 % (1)",
        "ar 1 0 0 0 0 0 0 0 1 0.0 % (0) 100.0 % (1)",
        "ru 1 1 1 0 0 0 0 0 0 0.0 % (0) 0.0 % (0)",
    ]
    assert marks.text("data-model", "gpt-4o-mini") == "gpt-4o-mini 2 1400 120 0.7500"

    figures = await march_figures(db_url)
    charts = marks.charts()
    assert charts["chart-funnel"]["data"]["labels"] == [step.stage for step in figures["funnel"]]
    assert charts["chart-funnel"]["data"]["datasets"][0]["data"] == [step.conversations for step in figures["funnel"]]
    assert charts["chart-funnel"]["data"]["datasets"][0]["data"] == [2, 2, 1, 1, 1, 1, 0, 1]
    volume = {d["label"]: d["data"] for d in charts["chart-volume"]["data"]["datasets"]}
    assert charts["chart-volume"]["data"]["labels"] == [f"2026-03-0{n}" for n in range(1, 8)]
    assert volume == {
        "telegram": [0, 0, 1, 0, 0, 0, 0],
        "web": [0, 1, 0, 0, 0, 0, 0],
        "whatsapp": [0, 0, 0, 0, 1, 0, 0],
    }
    intents = charts["chart-intents"]
    assert (intents["options"]["indexAxis"], intents["data"]["labels"], intents["data"]["datasets"][0]["data"]) == (
        "y",
        [row.intent for row in figures["intents"]],
        [row.messages for row in figures["intents"]],
    )
    up, down = (d["data"] for d in charts["chart-feedback"]["data"]["datasets"])
    assert (up[1:3], down[1:3], up[0]) == ([100.0, 0.0], [0.0, 100.0], None)
    assert charts["chart-cost"]["data"]["datasets"][0]["data"] == [day.cost_usd for day in figures["cost"].days]
    assert charts["chart-cost"]["data"]["datasets"][0]["data"][1:4] == [0.25, 0.0, 0.5]
    exports = {link for link in marks.links() if ".csv?" in link}
    assert exports == {f"/console/analytics/{view}.csv?since=2026-03-01&until=2026-03-07&channel=" for view in VIEWS}


async def test_analytics_filters_by_channel_and_defaults_to_the_last_30_days(client):
    web = Marks(await (await client.get("/console/analytics", params={**MARCH, "channel": "web"})).text())
    assert [d["label"] for d in web.charts()["chart-volume"]["data"]["datasets"]] == ["web"]
    assert web.charts()["chart-funnel"]["data"]["datasets"][0]["data"] == [1, 1, 1, 1, 1, 1, 0, 0]

    default = await client.get("/console/analytics")
    first, last = (moment.date() for moment in analytics.period())
    body = await default.text()
    assert default.status == 200
    assert f'name="since" value="{first.isoformat()}"' in body
    assert f'name="until" value="{(last - timedelta(days=1)).isoformat()}"' in body


@pytest.mark.parametrize(
    "params, reason",
    [
        ({"since": "2026-03-32"}, "since must be a day written YYYY-MM-DD, not &#39;2026-03-32&#39;"),
        ({"since": "yesterday", "until": "2026-03-01"}, "since must be a day written YYYY-MM-DD"),
        ({"since": "2026-03-07", "until": "2026-03-01"}, "the first day 2026-03-07 is after the last day 2026-03-01"),
        ({**MARCH, "channel": "fax"}, "no conversation is indexed on channel &#39;fax&#39;"),
    ],
)
async def test_bad_periods_and_channels_get_400_with_the_reason(client, params, reason):
    for path in ("/console/analytics", "/console/analytics/funnel.csv"):
        response = await client.get(path, params=params)
        assert response.status == 400 and reason in await response.text(), path


def read_csv(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def number(cell: str) -> float | None:
    return None if cell == "" else float(cell)


async def test_csv_exports_parse_back_to_the_analytics_numbers(client, db_url):
    async def export(view: str, channel: str = "") -> list[dict[str, str]]:
        response = await client.get(f"/console/analytics/{view}.csv", params={**MARCH, "channel": channel})
        assert response.status == 200 and response.content_type == "text/csv"
        suffix = f"-{channel}" if channel else ""
        assert response.headers["Content-Disposition"] == (
            f'attachment; filename="closer-{view}-2026-03-01-2026-03-07{suffix}.csv"'
        )
        return read_csv(await response.text())

    for channel in ("", "whatsapp"):
        figures = await march_figures(db_url, channel or None)
        assert [(r["stage"], int(r["conversations"]), number(r["share"])) for r in await export("funnel", channel)] == [
            (s.stage, s.conversations, s.share) for s in figures["funnel"]
        ]
        assert [
            (date.fromisoformat(r["day"]), r["channel"], int(r["conversations"]))
            for r in await export("volume", channel)
        ] == [(v.day, v.channel, v.conversations) for v in figures["volume"]]
        assert [(r["intent"], int(r["messages"]), number(r["share"])) for r in await export("intents", channel)] == [
            (i.intent, i.messages, i.share) for i in figures["intents"]
        ]
        assert [
            (date.fromisoformat(r["day"]), int(r["answers"]), int(r["up"]), int(r["down"]), number(r["up_rate"]))
            for r in await export("feedback", channel)
        ] == [(d.day, d.answers, d.up, d.down, d.up_rate) for d in figures["feedback"].days]
        assert [
            (date.fromisoformat(r["day"]), int(r["llm_calls"]), float(r["cost_usd"]))
            for r in await export("cost", channel)
        ] == [(d.day, d.llm_calls, d.cost_usd) for d in figures["cost"].days]
        assert {r["mode"]: int(r["answers"]) for r in await export("modes", channel)} == figures["cost"].answers_by_mode
        assert [
            (
                r["model"],
                int(r["llm_calls"]),
                int(r["prompt_tokens"]),
                int(r["completion_tokens"]),
                float(r["cost_usd"]),
            )
            for r in await export("models", channel)
        ] == [(m.model, m.llm_calls, m.prompt_tokens, m.completion_tokens, m.cost_usd) for m in figures["cost"].models]
        languages = await export("languages", channel)
        assert list(languages[0]) == [
            "language",
            "conversations",
            *analytics.FUNNEL_STAGES,
            analytics.HANDOFF,
            "quoted",
            "to_quote",
            "won",
            "to_won",
        ]
        assert [
            (
                r["language"],
                int(r["conversations"]),
                [int(r[stage]) for stage in (*analytics.FUNNEL_STAGES, analytics.HANDOFF)],
                (int(r["quoted"]), number(r["to_quote"])),
                (int(r["won"]), number(r["to_won"])),
            )
            for r in languages
        ] == [
            (
                f.language,
                f.conversations,
                [step.conversations for step in f.funnel],
                (f.to_quote.count, f.to_quote.rate),
                (f.to_won.count, f.to_won.rate),
            )
            for f in figures["languages"]
        ]
    rates = {r["metric"]: (int(r["count"]), int(r["total"]), number(r["rate"])) for r in await export("rates")}
    assert rates == {
        "to_quote": (1, 3, 1 / 3),
        "to_won": (2, 3, 2 / 3),
        "escalation": (1, 3, 1 / 3),
        "fallback": (1, 5, 0.2),
    }
    whatsapp = {r["metric"]: (int(r["count"]), int(r["total"])) for r in await export("rates", "whatsapp")}
    assert whatsapp == {"to_quote": (0, 1), "to_won": (0, 1), "escalation": (0, 1), "fallback": (1, 2)}
    assert (await client.get("/console/analytics/secrets.csv", params=MARCH)).status == 404


# --- training ----------------------------------------------------------------------------------------------


async def test_the_training_page_shows_the_last_rasa_test(client, results):
    report = json.loads((results / "nlu-heldout" / "intent_report.json").read_text())
    shown = await page(client, "/console/training")
    intents = {
        name: raw for name, raw in report.items() if name not in ("accuracy", "macro avg", "weighted avg", "micro avg")
    }
    assert shown.marked("data-intent") == [
        *sorted(intents, key=lambda name: (intents[name]["f1-score"], name)),
        "accuracy",
        "macro avg",
        "weighted avg",
    ]
    for name, raw in intents.items():
        figures = " ".join(f"{raw[key]:.3f}" for key in ("precision", "recall", "f1-score"))
        assert shown.text("data-intent", name).startswith(f"{name} {figures} {raw['support']}")
    assert shown.text("data-intent", "accuracy") == f"accuracy {report['accuracy']:.3f}"
    assert shown.text("data-intent", "macro avg").startswith(f"macro avg {report['macro avg']['precision']:.3f}")
    body = await (await client.get("/console/training")).text()
    assert '<img class="matrix" src="/console/training/intent_confusion_matrix.png"' in body
    assert "chairs objection uncorrected" in body and "# predicted: utter_chitchat" in body
    assert "0 of 1 test stories passed" in body
    assert "Some test results are missing" not in body

    image = await client.get("/console/training/intent_confusion_matrix.png")
    assert (image.status, image.content_type, await image.read()) == (200, "image/png", PNG)


@pytest.mark.parametrize(
    "path",
    [
        "/console/training/intent_report.json",
        "/console/training/intent_errors.json",
        "/console/training/nlu-heldout/intent_confusion_matrix.png",
        "/console/training/..%2Fintent_report.json",
        "/console/training/%2E%2E/%2E%2E/bot/core/settings.py",
        "/console/training/intent_confusion_matrix.png%00.json",
    ],
)
async def test_the_training_route_serves_the_confusion_matrix_only(client, path):
    response = await client.get(path)
    assert response.status == 404
    assert "precision" not in await response.text()


async def test_without_results_the_training_page_says_what_to_run(db_url, filled, tmp_path):
    empty = tmp_path / "empty-results"
    empty.mkdir()
    async with TestClient(TestServer(create_app(console_settings(db_url, rasa_results_dir=empty)))) as client:
        await login(client, "max@example.com")
        shown = await client.get("/console/training")
        body = await shown.text()
        assert shown.status == 200
        assert "no NLU test results" in body and "no test story results" in body and "make test" in body
        assert (await client.get("/console/training/intent_confusion_matrix.png")).status == 404


# --- every page, as a manager ------------------------------------------------------------------------------


async def test_a_manager_sees_every_page_in_the_navigation(client, filled):
    for path in (
        "/console/pipeline",
        "/console/quotes",
        "/console/contacts",
        f"/console/contacts/{filled['ann']}",
        "/console/analytics",
        "/console/training",
    ):
        response = await client.get(path, allow_redirects=False)
        assert response.status == 200, path
        nav = Marks(await response.text()).links()
        assert {
            "/console/pipeline",
            "/console/quotes",
            "/console/contacts",
            "/console/analytics",
            "/console/training",
        } <= set(nav) and "/console/users" not in nav
    assert (await client.get("/console/analytics/funnel.csv", allow_redirects=False)).status == 200


# --- the analytics page in a browser -----------------------------------------------------------------------


def _charts_in_chromium(url: str) -> list[dict]:
    """Sign in as max@example.com, open the analytics page for March and describe every chart canvas."""
    with chromium() as driver:
        wait = WebDriverWait(driver, 30)
        driver.get(url + "/console/login")
        driver.find_element(By.NAME, "email").send_keys("max@example.com")
        driver.find_element(By.NAME, "password").send_keys(PASSWORD)
        driver.find_element(By.CSS_SELECTOR, "form.form button[type=submit]").click()
        wait.until(lambda d: "/console/login" not in d.current_url)
        driver.get(url + "/console/analytics?since=2026-03-01&until=2026-03-07")
        wait.until(lambda d: d.execute_script("return document.readyState") == "complete")
        wait.until(
            lambda d: d.execute_script(
                "return [...document.querySelectorAll('canvas[data-chart]')].every("
                "c => c.dataset.chartError || (window.Chart && Chart.getChart(c)))"
            )
        )
        return driver.execute_script("""return [...document.querySelectorAll('canvas[data-chart]')].map(c => {
            const chart = window.Chart && Chart.getChart(c);
            return {id: c.id, error: c.dataset.chartError || null, width: c.clientWidth, height: c.clientHeight,
                    type: chart ? chart.config.type : null, data: chart ? chart.data.datasets.map(d => d.data) : null,
                    drawn: chart ? chart.getDatasetMeta(0).data.length : 0};
        });""")


async def test_the_analytics_page_draws_its_charts_in_chromium(db_url, filled, results):
    async with TestServer(create_app(console_settings(db_url, rasa_results_dir=results)), host="127.0.0.1") as server:
        charts = await asyncio.to_thread(_charts_in_chromium, str(server.make_url("")).rstrip("/"))
    assert [c["id"] for c in charts] == [
        "chart-funnel",
        "chart-volume",
        "chart-intents",
        "chart-feedback",
        "chart-cost",
    ]
    for chart in charts:
        assert chart["error"] is None and chart["type"] is not None, chart
        assert chart["width"] > 0 and chart["height"] > 0 and chart["drawn"] > 0, chart
    by_id = {chart["id"]: chart for chart in charts}
    assert by_id["chart-funnel"]["data"] == [[2, 2, 1, 1, 1, 1, 0, 1]]
    assert by_id["chart-feedback"]["type"] == "line"
