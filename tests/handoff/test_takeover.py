"""The manager takeover (bot.handoff.takeover, bot.handoff.escalation.hand_back, through bot.core.rasa.RasaClient), the
escalations pages and the web chat's /api/chat/updates, on a real migrated SQLite DB, against a local HTTP server
standing in for Rasa's HTTP API (``rasa run --enable-api``) that keeps trackers in memory as Rasa does and records
every request."""

import asyncio
import os
import re
import sqlite3
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

import jwt
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from alembic import command
from cryptography.fernet import Fernet
from sqlalchemy import select

from bot.core import db, keys
from bot.core.models import Contact, Deal, DealNote, Escalation, User
from bot.core.rasa import RasaClient, RasaError
from bot.core.settings import ROOT, Settings, get_settings
from bot.handoff import takeover
from bot.handoff.escalation import hand_back
from bot.web import accounts
from bot.web.app import create_app

PASSWORD = "correct horse battery staple"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
WEB = "web-0123456789abcdef"
SENDER = WEB.removeprefix("web-")


@dataclass
class Call:
    method: str
    path: str
    query: dict[str, str]
    body: object


@dataclass
class FakeRasa:
    """Rasa's HTTP API as the console uses it: ``GET /conversations/<id>/tracker`` (``include_events=NONE``
    leaves the events out), ``POST /conversations/<id>/tracker/events`` (applies pause, resume, bot, action
    events, stamping them with the time), ``POST /webhooks/rest/webhook`` (the REST channel: while paused,
    records the message and answers nothing; "talk to a person" pauses after a reply). ``failing``: every
    request gets Rasa's 500 error body. Like ``rasa run --jwt-secret``, the API routes (not the channel's
    webhook) answer 401 without a bearer token signed with the development secret and Rasa's admin role.
    ``api``: the console's client of it, open while the fixture runs."""

    trackers: dict[str, dict] = field(default_factory=dict)
    calls: list[Call] = field(default_factory=list)
    failing: bool = False
    server: TestServer | None = None
    api: RasaClient | None = None

    @property
    def url(self) -> str:
        return str(self.server.make_url("")).rstrip("/")

    def conversation(self, conversation_id: str, *said: tuple[str, str], paused: bool = False) -> None:
        """A tracker with (event type, text) pairs, e.g. ("user", "hi"), ("bot", "Hello!")."""
        events = [
            {"event": "action", "name": "action_session_start", "timestamp": 1000.0},
            {"event": "session_started", "timestamp": 1000.0},
        ]
        for n, (kind, text) in enumerate(said):
            events.append(
                {
                    "event": kind,
                    "text": text,
                    "timestamp": 1001.0 + n,
                    **({"input_channel": "rest"} if kind == "user" else {"metadata": {}}),
                }
            )
        if paused:
            events.append({"event": "pause", "timestamp": 1001.0 + len(said)})
        self.trackers[conversation_id] = {"sender_id": conversation_id, "events": events, "paused": paused}

    def _tracker(self, conversation_id: str) -> dict:
        return self.trackers.setdefault(conversation_id, {"sender_id": conversation_id, "events": [], "paused": False})

    async def start(self) -> "FakeRasa":
        app = web.Application()
        app.router.add_get("/conversations/{id}/tracker", self.get_tracker)
        app.router.add_post("/conversations/{id}/tracker/events", self.append_events)
        app.router.add_post("/webhooks/rest/webhook", self.rest)
        self.server = TestServer(app)
        await self.server.start_server()
        return self

    async def _record(self, request: web.Request) -> None:
        if not request.path.startswith("/webhooks/"):
            try:
                claims = jwt.decode(
                    request.headers.get("Authorization", "").removeprefix("Bearer "),
                    keys.rasa_jwt_secret(get_settings()),
                    algorithms=["HS256"],
                )
            except jwt.InvalidTokenError as exc:
                raise web.HTTPUnauthorized(
                    text=f'{{"reason": "NotAuthenticated: {exc}"}}', content_type="application/json"
                ) from exc
            assert claims["user"]["role"] == "admin"
        body = await request.json() if request.can_read_body else None
        self.calls.append(Call(request.method, request.path, dict(request.query), body))
        if self.failing:
            raise web.HTTPInternalServerError(
                text='{"status": "failure", "reason": "ConversationError"}', content_type="application/json"
            )

    async def get_tracker(self, request: web.Request) -> web.Response:
        await self._record(request)
        tracker = self._tracker(request.match_info["id"])
        if request.query.get("include_events") == "NONE":
            tracker = {**tracker, "events": None}
        return web.json_response(tracker)

    async def append_events(self, request: web.Request) -> web.Response:
        await self._record(request)
        tracker = self._tracker(request.match_info["id"])
        for event in self.calls[-1].body:
            tracker["events"].append({**event, "timestamp": time.time()})
            if event["event"] in ("pause", "resume"):
                tracker["paused"] = event["event"] == "pause"
        return web.json_response(tracker)

    async def rest(self, request: web.Request) -> web.Response:
        await self._record(request)
        body = self.calls[-1].body
        tracker = self._tracker(body["sender"])
        tracker["events"].append({"event": "user", "text": body["message"], "timestamp": time.time()})
        if tracker["paused"]:
            return web.json_response([])
        if body["message"] == "talk to a person":
            tracker["paused"] = True
            return web.json_response([{"recipient_id": body["sender"], "text": "A sales manager has been notified."}])
        return web.json_response([{"recipient_id": body["sender"], "text": "Hello!"}])


@pytest.fixture
async def rasa():
    fake = await FakeRasa().start()
    async with RasaClient(fake.url, Settings(rasa_timeout=5)) as fake.api:
        yield fake
    await fake.server.close()


async def add_user(db_url: str, email: str, role: str = "manager") -> User:
    async with db.session_scope(db_url) as session:
        return await accounts.create_user(session, email, email.split("@")[0].title(), role, PASSWORD)


async def add_escalation(db_url: str, conversation_id: str = WEB, **fields) -> Escalation:
    escalation = Escalation(
        conversation_id=conversation_id,
        reason=fields.pop("reason", "requested"),
        summary=fields.pop("summary", "Escalation: the customer asked for a person."),
        **fields,
    )
    async with db.session_scope(db_url) as session:
        session.add(escalation)
    return escalation


async def stored(db_url: str, escalation_id: int) -> Escalation:
    async with db.session_scope(db_url) as session:
        return await session.get(Escalation, escalation_id)


async def deal_notes(db_url: str) -> list[str]:
    async with db.session_scope(db_url) as session:
        return list((await session.scalars(select(DealNote.body).order_by(DealNote.id))).all())


# --- bot.handoff.takeover and bot.handoff.escalation.hand_back --------------------------------------------------------


async def test_taking_over_an_escalation_the_bot_paused_claims_it_without_pausing_again(db_url, rasa):
    rasa.conversation(WEB, ("user", "I want to talk to a person"), ("bot", "A manager has been notified."), paused=True)
    max_ = await add_user(db_url, "max@example.com")
    pending = await add_escalation(db_url)
    async with db.session_scope(db_url) as session:
        taken = await takeover.take_over(session, pending.id, max_, rasa.api)
    assert (taken.id, taken.status, taken.assignee) == (pending.id, "in_progress", "max@example.com")
    assert [(c.method, c.path, c.query) for c in rasa.calls] == [
        ("GET", f"/conversations/{WEB}/tracker", {"include_events": "NONE"})
    ]
    row = await stored(db_url, pending.id)
    assert row.status == "in_progress" and row.taken_at is not None and row.resolved_at is None

    async with db.session_scope(db_url) as session:  # taking it again is no change
        assert (await takeover.take_over(session, pending.id, max_, rasa.api)).taken_at == row.taken_at
    assert len(rasa.calls) == 1


async def test_an_escalation_whose_bot_is_not_paused_is_paused_on_take_over(db_url, rasa):
    rasa.conversation(WEB, ("user", "hello"))
    max_ = await add_user(db_url, "max@example.com")
    pending = await add_escalation(db_url)
    async with db.session_scope(db_url) as session:
        await takeover.take_over(session, pending.id, max_, rasa.api)
    assert [(c.method, c.path, c.query, c.body) for c in rasa.calls][1:] == [
        ("POST", f"/conversations/{WEB}/tracker/events", {}, [{"event": "pause"}])
    ]
    assert rasa.trackers[WEB]["paused"] is True


async def test_a_conversation_nobody_escalated_is_paused_and_gets_a_manager_escalation(db_url, rasa):
    rasa.conversation(WEB, ("user", "do you have standing desks?"), ("bot", "Yes: DK-2001 at AED 1,450.00."))
    async with db.session_scope(db_url) as session:
        session.add(Contact(channel="web", sender_id=WEB, name="Sara Khan", company="Gulf Trading LLC"))
    max_ = await add_user(db_url, "max@example.com")
    async with db.session_scope(db_url) as session:
        escalation = await takeover.take_over(session, WEB, max_, rasa.api)
    assert [(c.method, c.path, c.query, c.body) for c in rasa.calls] == [
        ("GET", f"/conversations/{WEB}/tracker", {}, None),
        ("POST", f"/conversations/{WEB}/tracker/events", {}, [{"event": "pause"}]),
    ]
    row = await stored(db_url, escalation.id)
    assert (row.reason, row.status, row.assignee) == ("manager", "in_progress", "max@example.com")
    assert "a manager took the conversation over" in row.summary and "Sara Khan" in row.summary
    assert "customer: do you have standing desks?" in row.summary
    assert "bot: Yes: DK-2001 at AED 1,450.00." in row.summary

    async with db.session_scope(db_url) as session:  # the conversation's open escalation is the one taken
        assert (await takeover.take_over(session, WEB, max_, rasa.api)).id == escalation.id


async def test_a_conversation_without_customer_messages_or_a_bad_id_is_refused(db_url, rasa):
    max_ = await add_user(db_url, "max@example.com")
    async with db.session_scope(db_url) as session:
        with pytest.raises(takeover.UnknownEscalation, match="no message from a customer"):
            await takeover.take_over(session, "web-nobody-here", max_, rasa.api)
        with pytest.raises(takeover.TakeoverError, match="conversation id"):
            await takeover.take_over(session, "web-a/../b", max_, rasa.api)
        with pytest.raises(takeover.UnknownEscalation, match="no escalation #99"):
            await takeover.take_over(session, 99, max_, rasa.api)
    assert [c.method for c in rasa.calls] == ["GET"] and not rasa.trackers["web-nobody-here"]["paused"]
    async with db.session_scope(db_url) as session:
        assert (await session.scalars(select(Escalation))).all() == []


async def test_only_the_assignee_or_an_admin_acts_on_a_taken_conversation(db_url, rasa):
    rasa.conversation(WEB, ("user", "I want to talk to a person"), paused=True)
    max_, mia, ann = (
        await add_user(db_url, "max@example.com"),
        await add_user(db_url, "mia@example.com"),
        await add_user(db_url, "ann@example.com", "admin"),
    )
    pending = await add_escalation(db_url)
    async with db.session_scope(db_url) as session:
        await takeover.take_over(session, pending.id, max_, rasa.api)
    calls = len(rasa.calls)
    async with db.session_scope(db_url) as session:
        with pytest.raises(takeover.NotYours, match=re.escape("max@example.com has this conversation")):
            await takeover.take_over(session, pending.id, mia, rasa.api)
        with pytest.raises(takeover.NotYours):
            await takeover.reply(session, WEB, "Hi, Mia here.", mia, rasa.api)
        with pytest.raises(takeover.NotYours):
            await takeover.hand_back(session, pending.id, "done", mia, rasa.api)
    assert len(rasa.calls) == calls
    assert (await stored(db_url, pending.id)).assignee == "max@example.com"

    async with db.session_scope(db_url) as session:
        await takeover.reply(session, WEB, "Ann from sales here.", ann, rasa.api)
        assert (await takeover.take_over(session, pending.id, ann, rasa.api)).assignee == "ann@example.com"


async def test_a_reply_is_a_bot_event_with_the_manager_sent_through_the_latest_channel(db_url, rasa):
    rasa.conversation(WEB, ("user", "I want to talk to a person"), paused=True)
    max_ = await add_user(db_url, "max@example.com")
    pending = await add_escalation(db_url)
    async with db.session_scope(db_url) as session:
        await takeover.take_over(session, pending.id, max_, rasa.api)
        await takeover.reply(session, WEB, "  Hello Sara, Max from sales here.  ", max_, rasa.api)
    call = rasa.calls[-1]
    assert (call.method, call.path) == ("POST", f"/conversations/{WEB}/tracker/events")
    assert call.query == {"output_channel": "latest", "execute_side_effects": "true"}
    [bot_event, answered] = call.body
    assert bot_event == {
        "event": "bot",
        "text": "Hello Sara, Max from sales here.",
        "metadata": {"manager": "max@example.com"},
    }
    # the customer was just answered: no holding message on their next message (bot.contracts.paused)
    assert (answered["event"], answered["name"]) == ("slot", "handoff_replied_at")
    assert abs(answered["value"] - time.time()) < 60
    said = takeover.messages(rasa.trackers[WEB])
    assert [(m.speaker, m.text, m.manager) for m in said][-1] == (
        "manager",
        "Hello Sara, Max from sales here.",
        "max@example.com",
    )


@pytest.mark.parametrize("text, reason", [("   ", "empty"), ("x" * 4097, "longer than 4096")])
async def test_an_empty_or_over_long_reply_is_refused_before_rasa(db_url, rasa, text, reason):
    rasa.conversation(WEB, ("user", "hi"), paused=True)
    max_ = await add_user(db_url, "max@example.com")
    await add_escalation(db_url, status="in_progress", assignee="max@example.com")
    async with db.session_scope(db_url) as session:
        with pytest.raises(takeover.TakeoverError, match=reason):
            await takeover.reply(session, WEB, text, max_, rasa.api)
        await takeover.reply(session, WEB, "y" * 4096, max_, rasa.api)
    assert [c.body[0]["text"] for c in rasa.calls] == ["y" * 4096]


async def test_a_reply_before_anyone_took_the_conversation_over_is_refused(db_url, rasa):
    max_ = await add_user(db_url, "max@example.com")
    await add_escalation(db_url)
    async with db.session_scope(db_url) as session:
        with pytest.raises(takeover.WrongStatus, match=r"take conversation .* over before replying"):
            await takeover.reply(session, WEB, "Hello", max_, rasa.api)
    assert rasa.calls == []


async def test_handing_back_resumes_the_bot_resolves_with_the_note_and_notes_the_open_deal(db_url, rasa):
    rasa.conversation(WEB, ("user", "I want to talk to a person"), paused=True)
    async with db.session_scope(db_url) as session:
        contact = Contact(channel="web", sender_id=WEB, name="Sara Khan")
        session.add_all(
            [
                contact,
                Deal(contact=contact, stage="won", currency="AED", source_channel="web"),
                Deal(contact=contact, stage="negotiation", currency="AED", source_channel="web"),
            ]
        )
    max_ = await add_user(db_url, "max@example.com")
    pending = await add_escalation(db_url)
    async with db.session_scope(db_url) as session:
        await takeover.take_over(session, pending.id, max_, rasa.api)
        resolved = await takeover.hand_back(session, pending.id, " Agreed 7% off by phone. ", max_, rasa.api)
    assert (resolved.status, resolved.resolved_by, resolved.resolution_note) == (
        "resolved",
        "max@example.com",
        "Agreed 7% off by phone.",
    )
    call = rasa.calls[-1]
    assert (call.method, call.path, call.query) == ("POST", f"/conversations/{WEB}/tracker/events", {})
    assert call.body == [{"event": "resume"}, {"event": "action", "name": "action_listen"}]
    assert rasa.trackers[WEB]["paused"] is False
    row = await stored(db_url, pending.id)
    assert row.status == "resolved" and row.resolved_at is not None
    assert await deal_notes(db_url) == ["Handed back to the bot by max@example.com: Agreed 7% off by phone."]
    async with db.session_scope(db_url) as session:
        noted = await session.scalar(select(DealNote))
        assert (await session.get(Deal, noted.deal_id)).stage == "negotiation"
        with pytest.raises(takeover.WrongStatus, match="already resolved"):
            await takeover.hand_back(session, pending.id, "again", max_, rasa.api)
        with pytest.raises(takeover.WrongStatus, match="already resolved"):
            await takeover.take_over(session, pending.id, max_, rasa.api)


async def test_when_rasa_refuses_nothing_is_resolved_or_taken(db_url, rasa):
    rasa.conversation(WEB, ("user", "I want to talk to a person"))
    async with db.session_scope(db_url) as session:
        contact = Contact(channel="web", sender_id=WEB)
        session.add_all([contact, Deal(contact=contact, stage="proposal", currency="AED", source_channel="web")])
    max_ = await add_user(db_url, "max@example.com")
    pending = await add_escalation(db_url)
    rasa.failing = True
    with pytest.raises(RasaError, match="Rasa answered 500 to GET"):
        async with db.session_scope(db_url) as session:
            await takeover.take_over(session, pending.id, max_, rasa.api)
    assert (await stored(db_url, pending.id)).status == "pending"
    with pytest.raises(RasaError, match=r"Rasa answered 500 to POST .*ConversationError"):
        async with db.session_scope(db_url) as session:
            await takeover.hand_back(session, pending.id, "Sorted by phone.", max_, rasa.api)
    row = await stored(db_url, pending.id)
    assert (row.status, row.resolved_at, row.resolution_note) == ("pending", None, None)
    assert await deal_notes(db_url) == []

    await rasa.server.close()  # unreachable
    with pytest.raises(RasaError, match="did not answer POST"):
        async with db.session_scope(db_url) as session:
            await hand_back(session, WEB, rasa.api)
    assert (await stored(db_url, pending.id)).status == "pending"


async def test_the_handback_command_resolves_every_open_escalation_of_the_conversation(db_url, rasa):
    rasa.conversation(WEB, ("user", "I want to talk to a person"), paused=True)
    first = await add_escalation(db_url, status="in_progress", assignee="max@example.com")
    second = await add_escalation(db_url, reason="discount")
    other = await add_escalation(db_url, "web-someone-else")
    env = {**os.environ, "CLOSER_DATABASE_URL": db_url, "CLOSER_RASA_URL": rasa.url}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "handback",
        WEB,
        "--note",
        "Called her back.",
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    assert process.returncode == 0, err.decode()
    assert f"{WEB}: bot resumed, 2 escalation(s) resolved" in out.decode()
    for escalation in (first, second):
        row = await stored(db_url, escalation.id)
        assert (row.status, row.resolved_by, row.resolution_note) == ("resolved", None, "Called her back.")
    assert (await stored(db_url, other.id)).status == "pending"
    assert rasa.trackers[WEB]["paused"] is False

    rasa.failing = True
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "handback",
        "web-someone-else",
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    assert process.returncode == 1 and "error: Rasa answered 500" in err.decode()
    assert (await stored(db_url, other.id)).status == "pending"


def test_migration_0008_maps_the_old_statuses_and_back(tmp_path):
    url = f"sqlite+aiosqlite:///{tmp_path / 'old.db'}"
    config = db.alembic_config(url)
    command.upgrade(config, "0007")
    with sqlite3.connect(tmp_path / "old.db") as connection:
        connection.executemany(
            "INSERT INTO escalations (conversation_id, reason, summary, status, created_at, handed_back_at) "
            "VALUES (?, 'requested', 's', ?, '2026-03-01 10:00:00', ?)",
            [("web-a", "open", None), ("web-b", "handed_back", "2026-03-01 11:00:00")],
        )
    command.upgrade(config, "0008")
    with sqlite3.connect(tmp_path / "old.db") as connection:
        rows = connection.execute(
            "SELECT conversation_id, status, resolved_at, assignee, resolution_note FROM escalations ORDER BY id"
        ).fetchall()
        assert rows == [
            ("web-a", "pending", None, None, None),
            ("web-b", "resolved", "2026-03-01 11:00:00", None, None),
        ]
        connection.execute(
            "UPDATE escalations SET status = 'in_progress', assignee = 'max@example.com' "
            "WHERE conversation_id = 'web-a'"
        )
    command.downgrade(config, "0007")
    with sqlite3.connect(tmp_path / "old.db") as connection:
        rows = connection.execute(
            "SELECT conversation_id, status, handed_back_at FROM escalations ORDER BY id"
        ).fetchall()
        assert rows == [("web-a", "open", None), ("web-b", "handed_back", "2026-03-01 11:00:00")]
        columns = {row[1] for row in connection.execute("PRAGMA table_info(escalations)")}
        assert not columns & {"assignee", "taken_at", "resolved_at", "resolved_by", "resolution_note"}


# --- the console: escalations pages and the widget's /api/chat/updates ----------------------------------------


@pytest.fixture
async def client(db_url, rasa):
    settings = Settings(
        database_url=db_url, rasa_url=rasa.url, rasa_timeout=5, console_secret_key=Fernet.generate_key().decode()
    )
    async with TestClient(TestServer(create_app(settings))) as client:
        yield client


async def sign_in(client: TestClient, email: str) -> str:
    """Sign in; returns the session's CSRF token."""
    page = await client.get("/console/login")
    token = CSRF.search(await page.text()).group(1)
    response = await client.post(
        "/console/login", data={"email": email, "password": PASSWORD, "csrf_token": token}, allow_redirects=False
    )
    assert response.status == 303
    return CSRF.search(await (await client.get("/console/escalations")).text()).group(1)


async def test_the_inbox_lists_each_status_newest_first_with_counts(client, db_url, rasa):
    await add_user(db_url, "max@example.com")
    async with db.session_scope(db_url) as session:
        session.add(Contact(channel="web", sender_id="web-older-one", name="Sara Khan"))
    older = await add_escalation(
        db_url,
        "web-older-one",
        created_at=datetime(2026, 3, 1, 9, tzinfo=UTC),
        summary="Escalation: the customer asked for a person.\nNeeds: 40 chairs",
    )
    newer = await add_escalation(
        db_url, "telegram-42", reason="discount", created_at=datetime(2026, 3, 2, 9, tzinfo=UTC)
    )
    taken = await add_escalation(db_url, "whatsapp-971500000001", status="in_progress", assignee="mia@example.com")
    await sign_in(client, "max@example.com")

    page = await (await client.get("/console/escalations")).text()
    assert '<strong aria-current="page">Pending (2)</strong>' in page
    assert ">In progress (1)</a>" in page and ">Resolved (0)</a>" in page
    ids = [int(i) for i in re.findall(r'data-escalation-id="(\d+)"', page)]
    assert ids == [newer.id, older.id]
    assert "Sara Khan" in page and "telegram-42" in page and ">Needs: 40 chairs</a>" in page  # reason has its column
    assert "the customer asked for a discount above what the bot may grant" in page

    in_progress = await (await client.get("/console/escalations", params={"tab": "in_progress"})).text()
    assert re.findall(r'data-escalation-id="(\d+)"', in_progress) == [str(taken.id)]
    assert "mia@example.com" in in_progress and "whatsapp" in in_progress
    assert (await client.get("/console/escalations", params={"tab": "open"})).status == 400


async def test_a_manager_takes_over_replies_and_hands_back_from_the_pages(client, db_url, rasa):
    rasa.conversation(
        WEB, ("user", "I want to talk to a person"), ("bot", "A sales manager has been notified."), paused=True
    )
    await add_user(db_url, "max@example.com")
    pending = await add_escalation(db_url)
    token = await sign_in(client, "max@example.com")
    page_url = f"/console/escalations/{pending.id}"

    page = await (await client.get(page_url)).text()
    assert "I want to talk to a person" in page and "A sales manager has been notified." in page
    assert f'action="{page_url}/take"' in page and f'action="{page_url}/reply"' not in page
    assert '<script src="/static/console-takeover.js"></script>' in page

    taken = await client.post(f"{page_url}/take", data={"csrf_token": token})
    assert taken.status == 200 and "You have the conversation now" in await taken.text()
    assert f'action="{page_url}/reply"' in await taken.text()

    empty = await client.post(f"{page_url}/reply", data={"csrf_token": token, "text": "  "})
    assert empty.status == 400 and "the reply is empty" in await empty.text()
    sent = await client.post(f"{page_url}/reply", data={"csrf_token": token, "text": "Hi Sara, Max here."})
    assert sent.status == 200 and "Sent to the customer." in await sent.text()
    assert "Manager max@example.com" in await sent.text()
    posted = [c for c in rasa.calls if c.method == "POST"][-1]
    assert posted.body[0] == {"event": "bot", "text": "Hi Sara, Max here.", "metadata": {"manager": "max@example.com"}}
    assert posted.body[1]["name"] == "handoff_replied_at"

    rasa.trackers[WEB]["events"].append({"event": "user", "text": "Great, 40 chairs then", "timestamp": time.time()})
    as_json = await client.get(f"{page_url}/messages", headers={"Accept": "application/json"})
    body = await as_json.json()
    assert body["paused"] is True and body["status"] == "in_progress"
    assert [(m["speaker"], m["text"]) for m in body["messages"]][-2:] == [
        ("manager", "Hi Sara, Max here."),
        ("customer", "Great, 40 chairs then"),
    ]

    no_note = await client.post(f"{page_url}/handback", data={"csrf_token": token, "note": ""})
    assert no_note.status == 400 and (await stored(db_url, pending.id)).status == "in_progress"
    back = await client.post(f"{page_url}/handback", data={"csrf_token": token, "note": "Quoted 40 chairs by email."})
    assert back.status == 200 and "Handed back: the bot answers again." in await back.text()
    row = await stored(db_url, pending.id)
    assert (row.status, row.resolved_by, row.resolution_note) == (
        "resolved",
        "max@example.com",
        "Quoted 40 chairs by email.",
    )
    assert rasa.trackers[WEB]["paused"] is False


async def test_refusals_show_the_page_with_the_reason_and_keep_the_text(client, db_url, rasa):
    rasa.conversation(WEB, ("user", "I want to talk to a person"), paused=True)
    await add_user(db_url, "mia@example.com")
    taken = await add_escalation(db_url, status="in_progress", assignee="max@example.com")
    token = await sign_in(client, "mia@example.com")
    page_url = f"/console/escalations/{taken.id}"

    theirs = await client.post(f"{page_url}/reply", data={"csrf_token": token, "text": "Mia here"})
    assert theirs.status == 403 and "max@example.com has this conversation" in await theirs.text()
    assert "/tracker/events" not in [c.path.removeprefix(f"/conversations/{WEB}") for c in rasa.calls]
    assert (await client.post(f"{page_url}/take", data={"csrf_token": token})).status == 403
    assert (await client.post("/console/escalations/99/take", data={"csrf_token": token})).status == 404
    assert (await client.post(f"{page_url}/reply", data={"text": "no token"})).status == 403

    mine = await add_escalation(db_url, "web-second-one", status="in_progress", assignee="mia@example.com")
    rasa.failing = True
    failed = await client.post(
        f"/console/escalations/{mine.id}/handback", data={"csrf_token": token, "note": "Sorted by phone."}
    )
    text = await failed.text()
    assert failed.status == 502 and "Rasa failed: Rasa answered 500" in text and "Sorted by phone." in text
    assert (await stored(db_url, mine.id)).status == "in_progress"
    messages = await client.get(f"/console/escalations/{mine.id}/messages", headers={"Accept": "application/json"})
    assert messages.status == 502 and "Rasa answered 500" in (await messages.json())["error"]


async def test_a_manager_takes_over_a_conversation_nobody_escalated(client, db_url, rasa):
    rasa.conversation(WEB, ("user", "how much is OC-1006?"), ("bot", "AED 1,150.00"))
    await add_user(db_url, "max@example.com")
    token = await sign_in(client, "max@example.com")
    taken = await client.post(
        "/console/escalations/take", data={"csrf_token": token, "conversation_id": WEB}, allow_redirects=False
    )
    assert taken.status == 303
    async with db.session_scope(db_url) as session:
        [escalation] = (await session.scalars(select(Escalation))).all()
    assert taken.headers["Location"] == f"/console/escalations/{escalation.id}"
    assert (escalation.reason, escalation.status, escalation.assignee) == ("manager", "in_progress", "max@example.com")
    assert rasa.trackers[WEB]["paused"] is True
    unknown = await client.post(
        "/console/escalations/take", data={"csrf_token": token, "conversation_id": "web-nobody"}
    )
    assert unknown.status == 404 and "no message from a customer" in await unknown.text()
    bad = await client.post("/console/escalations/take", data={"csrf_token": token, "conversation_id": "a b"})
    assert bad.status == 400


async def test_the_widget_gets_manager_replies_and_follow_ups_after_a_timestamp_and_the_paused_flag(client, rasa):
    rasa.conversation(WEB, ("user", "talk to a person"), ("bot", "A sales manager has been notified."), paused=True)
    rasa.trackers[WEB]["events"] += [
        {"event": "bot", "text": "Hi, Max here.", "timestamp": 2000.5, "metadata": {"manager": "max@example.com"}},
        {"event": "user", "text": "Hi Max", "timestamp": 2001.0},
        {"event": "bot", "text": "Which colour?", "timestamp": 2002.25, "metadata": {"manager": "max@example.com"}},
    ]
    response = await client.get("/api/chat/updates", params={"sender": SENDER, "after": "0"})
    assert await response.json() == {
        "paused": True,
        "messages": [
            {"text": "Hi, Max here.", "timestamp": 2000.5, "from": "manager"},
            {"text": "Which colour?", "timestamp": 2002.25, "from": "manager"},
        ],
    }
    later = await (await client.get("/api/chat/updates", params={"sender": SENDER, "after": "2000.5"})).json()
    assert [m["text"] for m in later["messages"]] == ["Which colour?"]
    assert rasa.calls[-1].path == f"/conversations/{WEB}/tracker"

    rasa.trackers[WEB]["paused"] = False
    assert (await (await client.get("/api/chat/updates", params={"sender": SENDER, "after": "2002.25"})).json()) == {
        "paused": False,
        "messages": [],
    }
    rasa.trackers[WEB]["events"] += [  # after hand-back: a turn's own reply, then a follow-up Closer wrote first
        {"event": "bot", "text": "Here are our desks.", "timestamp": 2003.0, "metadata": {}},
        {"event": "bot", "text": "Just checking in.", "timestamp": 2090.0, "metadata": {"follow_up": "quote_sent"}},
    ]
    assert (await (await client.get("/api/chat/updates", params={"sender": SENDER, "after": "2002.25"})).json()) == {
        "paused": False,
        "messages": [{"text": "Just checking in.", "timestamp": 2090.0, "from": "bot"}],
    }


@pytest.mark.parametrize(
    "params",
    [
        {"sender": "short", "after": "0"},
        {"after": "0"},
        {"sender": SENDER, "after": "x"},
        {"sender": SENDER, "after": "-1"},
        {"sender": SENDER, "after": "nan"},
        {"sender": SENDER, "after": "inf"},
    ],
)
async def test_malformed_update_requests_are_400(client, rasa, params):
    response = await client.get("/api/chat/updates", params=params)
    assert response.status == 400 and "error" in await response.json()
    assert rasa.calls == []


async def test_updates_are_502_when_rasa_fails(client, rasa):
    rasa.failing = True
    response = await client.get("/api/chat/updates", params={"sender": SENDER})
    assert response.status == 502 and "error" in await response.json()


async def test_the_chat_reports_paused_whenever_rasa_has_the_conversation_paused(client, rasa):
    hello = await (await client.post("/api/chat", json={"sender": SENDER, "message": "hi"})).json()
    assert hello == {"messages": [{"recipient_id": WEB, "text": "Hello!"}], "paused": False}
    escalated = await (await client.post("/api/chat", json={"sender": SENDER, "message": "talk to a person"})).json()
    assert escalated == {
        "messages": [{"recipient_id": WEB, "text": "A sales manager has been notified."}],
        "paused": True,
    }
    silent = await (await client.post("/api/chat", json={"sender": SENDER, "message": "hello?"})).json()
    assert silent == {"messages": [], "paused": True}  # no text of the widget's own: the holding message is Rasa's
