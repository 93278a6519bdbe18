"""The audit log (bot.core.audit, ``/console/audit``): every manager action of the console and of ``python -m bot
user`` leaves one entry (who, when, what) without customer PII, against the real console app on loopback and a
migrated SQLite DB; the page is for admins only, filters and pages. Also migration 0009 up and down."""

import json
import re
import sqlite3
from datetime import UTC, datetime, timedelta

import pytest
from aiohttp.test_utils import TestClient, TestServer
from alembic import command
from sqlalchemy import select

import bot.web.console.audit
from bot.core import audit, db
from bot.core.models import AuditEntry, User
from bot.web.app import create_app
from tests.handoff import test_takeover
from tests.review import test_annotations, test_conversations
from tests.review.test_conversations import ALPHA
from tests.web import test_console_conversations, test_console_pages
from tests.web.test_console_auth import PASSWORD, add_user, console_settings, csrf, login, run_cli, users

# Fixtures reused: the takeover pages with a fake Rasa; the sales pages' filled DB (as a manager); the
# conversation pages with a tracker store written by Rasa and a temp copy of the project.
rasa, takeover_client = test_takeover.rasa, test_takeover.client
filled, results, sales_client = test_console_pages.filled, test_console_pages.results, test_console_pages.client
project, business = test_annotations.project, test_conversations.business
rasa_store, tracker_path = test_conversations.rasa_store, test_conversations.tracker_path
conversations_client = test_console_conversations.console


async def entries(db_url: str) -> list[AuditEntry]:
    """Every audit entry, oldest first."""
    async with db.session_scope(db_url) as session:
        return list((await session.scalars(select(AuditEntry).order_by(AuditEntry.id))).all())


def dumped(rows: list[AuditEntry]) -> str:
    """Every stored field of ``rows`` as one string, to search for what must not be there."""
    return json.dumps([[row.actor_email, row.action, row.target_kind, row.target_id, row.detail] for row in rows])


def recent(moment: datetime) -> bool:
    return timedelta(0) <= datetime.now(UTC) - moment.replace(tzinfo=UTC) < timedelta(minutes=1)


@pytest.fixture
async def client(db_url: str):
    async with TestClient(TestServer(create_app(console_settings(db_url)))) as client:
        yield client


async def test_sign_in_out_and_user_changes_are_audited_without_passwords(client, db_url):
    await add_user(db_url, "ann@example.com", "admin")
    await login(client, "ann@example.com")
    ann = (await users(db_url))["ann@example.com"]
    token = await csrf(client, "/console/users")
    new_user = {"email": "max@example.com", "name": "Max", "role": "manager", "password": PASSWORD}
    assert (await client.post("/console/users", data={**new_user, "csrf_token": token})).status == 200
    max_id = (await users(db_url))["max@example.com"].id
    for change, fields in (
        ("role", {"role": "admin"}),
        ("password", {"password": "a brand new passphrase"}),
        ("disable", {}),
    ):
        assert (
            await client.post(f"/console/users/{max_id}/{change}", data={**fields, "csrf_token": token})
        ).status == 200
    assert (await client.post("/console/logout", data={"csrf_token": token})).status == 200
    assert (
        run_cli(
            db_url, "passwd", "--email", "ann@example.com", "--password-stdin", stdin="another long passphrase\n"
        ).returncode
        == 0
    )

    rows = await entries(db_url)
    assert [(r.actor_id, r.actor_email, r.action, r.target_kind) for r in rows] == [
        (ann.id, "ann@example.com", "session.sign_in", "session"),
        (ann.id, "ann@example.com", "user.create", "user"),
        (ann.id, "ann@example.com", "user.role", "user"),
        (ann.id, "ann@example.com", "user.password", "user"),
        (ann.id, "ann@example.com", "user.disable", "user"),
        (ann.id, "ann@example.com", "session.sign_out", "session"),
        (None, None, "user.password", "user"),
    ]  # the command line
    assert rows[0].target_id == rows[5].target_id and re.fullmatch(r"[0-9a-f]{64}", rows[0].target_id)
    assert [r.target_id for r in rows[1:5]] == [str(max_id)] * 4
    assert rows[1].detail == {"email": "max@example.com", "role": "manager"}
    assert rows[2].detail == {"email": "max@example.com", "from": "manager", "to": "admin"}
    assert rows[6].target_id == str(ann.id)
    assert all(recent(r.at) for r in rows)
    assert PASSWORD not in dumped(rows) and "passphrase" not in dumped(rows)


async def test_take_over_reply_and_hand_back_are_audited_without_the_text(takeover_client, db_url, rasa):
    client = takeover_client
    rasa.conversation(test_takeover.WEB, ("user", "I want to talk to a person"), paused=True)
    max_id = (await test_takeover.add_user(db_url, "max@example.com")).id
    pending = await test_takeover.add_escalation(db_url)
    token = await test_takeover.sign_in(client, "max@example.com")
    page = f"/console/escalations/{pending.id}"
    assert (await client.post(f"{page}/take", data={"csrf_token": token})).status == 200
    assert (
        await client.post(f"{page}/reply", data={"csrf_token": token, "text": "Hi Sara, call me on +971501112233"})
    ).status == 200
    assert (await client.post(f"{page}/reply", data={"csrf_token": token, "text": " "})).status == 400  # not sent
    assert (
        await client.post(f"{page}/handback", data={"csrf_token": token, "note": "Sara Khan ordered"})
    ).status == 200

    rows = [r for r in await entries(db_url) if r.action.startswith("escalation.")]
    assert [(r.actor_id, r.action, r.target_kind, r.target_id, r.detail) for r in rows] == [
        (max_id, "escalation.take_over", "escalation", str(pending.id), {}),
        (max_id, "escalation.reply", "escalation", str(pending.id), {}),
        (max_id, "escalation.hand_back", "escalation", str(pending.id), {}),
    ]
    for secret in ("Sara", "+971501112233", "ordered", test_takeover.WEB):
        assert secret not in dumped(await entries(db_url))


async def test_a_deal_moved_and_csv_exports_are_audited_without_contact_pii(sales_client, filled, db_url):
    client = sales_client
    deal = filled["deals"][0]
    token = await csrf(client, "/console/pipeline")
    assert (
        await client.post(f"/console/pipeline/deals/{deal}/stage", data={"stage": "proposal", "csrf_token": token})
    ).status == 200
    assert (await client.get("/console/analytics/funnel.csv", params=test_console_pages.MARCH)).status == 200
    assert (
        await client.get("/console/analytics/volume.csv", params={**test_console_pages.MARCH, "channel": "whatsapp"})
    ).status == 200

    rows = await entries(db_url)
    assert [(r.actor_email, r.action, r.target_kind, r.target_id, r.detail) for r in rows[1:]] == [
        ("max@example.com", "deal.stage", "deal", str(deal), {"from": "qualified", "to": "proposal"}),
        (
            "max@example.com",
            "analytics.export_csv",
            "analytics_view",
            "funnel",
            {"since": "2026-03-01", "until": "2026-03-07", "channel": None},
        ),
        (
            "max@example.com",
            "analytics.export_csv",
            "analytics_view",
            "volume",
            {"since": "2026-03-01", "until": "2026-03-07", "channel": "whatsapp"},
        ),
    ]
    for pii in ("Ann", "ann@acme.example", "+971501234567", "Acme", "web-ann0001"):
        assert pii not in dumped(rows)


async def test_nlu_export_and_test_story_saves_are_audited(conversations_client, tracker_path, db_url):
    client = conversations_client
    said = test_console_conversations.event_id(tracker_path, ALPHA, "do you deliver to Sharjah?")
    fix = f"/console/conversations/{ALPHA}/messages/{said}/correct"
    assert (await test_console_conversations.post(client, fix, {"intent": "ask_delivery"})).status == 303
    assert (await test_console_conversations.post(client, "/console/nlu/export", {})).status == 303
    story = f"/console/conversations/{ALPHA}/story"
    assert (await test_console_conversations.post(client, story, {"name": "Alpha chairs"})).status == 303
    assert (await test_console_conversations.post(client, story, {"name": "Alpha chairs"})).status == 409  # not saved
    assert (
        await test_console_conversations.post(client, story, {"name": "Alpha chairs", "overwrite": "1"})
    ).status == 303

    rows = [r for r in await entries(db_url) if r.action != "session.sign_in"]
    manager = test_console_conversations.MANAGER
    assert [(r.actor_email, r.action, r.target_kind, r.target_id, r.detail) for r in rows] == [
        (
            manager,
            "nlu.export",
            "nlu_file",
            "data/nlu/annotations.yml",
            {"written": 1, "duplicates": 0, "conflicts": 0},
        ),
        (manager, "story.save", "test_story", "tests/stories/test_alpha_chairs.yml", {"overwrite": False}),
        (manager, "story.save", "test_story", "tests/stories/test_alpha_chairs.yml", {"overwrite": True}),
    ]
    assert "Sharjah" not in dumped(rows) and ALPHA not in dumped(rows)


DAY_AGO = datetime.now(UTC).replace(microsecond=0) - timedelta(days=1)


async def add_entries(db_url: str) -> dict[str, User]:
    """Ann (admin) and Max (manager), and entries of each from DAY_AGO on, a minute apart: Ann's 3, then Max's 2."""
    await add_user(db_url, "ann@example.com", "admin")
    await add_user(db_url, "max@example.com")
    people = await users(db_url)
    async with db.session_scope(db_url) as session:
        for n, (email, action, target) in enumerate(
            [
                ("ann@example.com", "user.create", 2),
                ("ann@example.com", "deal.stage", 7),
                ("ann@example.com", "contact.erase", "<b>x</b>"),
                ("max@example.com", "deal.stage", 8),
                ("max@example.com", "escalation.reply", 3),
            ]
        ):
            audit.record(session, people[email], action, "thing", target, n=n).at = DAY_AGO + timedelta(minutes=n)
    return people


def listed(page: str) -> list[tuple[str, str, str]]:
    """(who, action, target) of each row of the audit page, in order."""
    rows = re.findall(
        r'<tr data-audit="\d+">\s*<td>[^<]*</td>\s*<td>([^<]*)</td>\s*<td>([^<]*)</td>\s*<td>(.*?)</td>',
        page,
        re.DOTALL,
    )
    return [(who, action, target) for who, action, target in rows]


async def test_the_audit_page_is_for_admins_newest_first_with_filters_and_pages(client, db_url, monkeypatch):
    await add_entries(db_url)
    await login(client, "max@example.com")
    refused = await client.get("/console/audit")
    assert refused.status == 403 and 'href="/console/audit"' not in await refused.text()
    client.session.cookie_jar.clear()
    await login(client, "ann@example.com")

    page = await (await client.get("/console/audit")).text()
    assert '<a href="/console/audit" aria-current="page">Audit log</a>' in page
    assert listed(page) == [
        ("ann@example.com", "session.sign_in", listed(page)[0][2]),  # just now
        ("max@example.com", "session.sign_in", listed(page)[1][2]),
        ("max@example.com", "escalation.reply", "thing 3"),
        ("max@example.com", "deal.stage", "thing 8"),
        ("ann@example.com", "contact.erase", "thing &lt;b&gt;x&lt;/b&gt;"),
        ("ann@example.com", "deal.stage", "thing 7"),
        ("ann@example.com", "user.create", "thing 2"),
    ]
    assert re.fullmatch(r"session [0-9a-f]{8}", listed(page)[0][2])  # a session by the start of its id's hash
    assert "<b>x</b>" not in page and "n: 4" in page
    assert (DAY_AGO + timedelta(minutes=4)).strftime("%Y-%m-%d %H:%M:%S") in page

    by_max = await (await client.get("/console/audit", params={"actor": "Max@Example.com"})).text()
    assert [row[1] for row in listed(by_max)] == ["session.sign_in", "escalation.reply", "deal.stage"]
    by_action = await (await client.get("/console/audit", params={"action": "deal.stage"})).text()
    assert [row[2] for row in listed(by_action)] == ["thing 8", "thing 7"]
    assert '<option value="deal.stage" selected>deal.stage</option>' in by_action
    both = await (
        await client.get("/console/audit", params={"actor": "ann@example.com", "action": "deal.stage"})
    ).text()
    assert listed(both) == [("ann@example.com", "deal.stage", "thing 7")]
    assert listed(await (await client.get("/console/audit", params={"action": "nothing.such"})).text()) == []

    monkeypatch.setattr(bot.web.console.audit, "PER_PAGE", 1)
    second = await (await client.get("/console/audit", params={"action": "deal.stage", "page": "2"})).text()
    assert listed(second) == [("ann@example.com", "deal.stage", "thing 7")] and "Page 2 of 2" in second
    assert 'href="/console/audit?action=deal.stage&amp;page=1"' in second
    assert (await client.get("/console/audit", params={"page": "0"})).status == 400


def test_an_action_must_have_1_to_64_characters():
    for action in ("", "x" * 65):
        with pytest.raises(ValueError, match="1 to 64 characters"):
            audit.record(None, None, action)


def test_migration_0009_adds_and_drops_the_sessions_and_audit_tables(tmp_path):
    url = f"sqlite+aiosqlite:///{tmp_path / 'old.db'}"
    config = db.alembic_config(url)
    command.upgrade(config, "0008")

    def tables() -> set[str]:
        with sqlite3.connect(tmp_path / "old.db") as connection:
            return {name for (name,) in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}

    assert not tables() & {"console_sessions", "audit_log"}
    command.upgrade(config, "0009")
    assert {"console_sessions", "audit_log"} <= tables()
    with sqlite3.connect(tmp_path / "old.db") as connection:
        connection.execute(
            "INSERT INTO users (email, name, password_hash, role, disabled, created_at) "
            "VALUES ('ann@example.com', 'Ann', 'x', 'admin', 0, '2026-03-01 09:00:00')"
        )
        connection.execute(
            "INSERT INTO console_sessions (id_hash, user_id, created_at, last_seen_at, expires_at) "
            "VALUES (?, 1, '2026-03-01 09:00:00', '2026-03-01 09:00:00', '2026-03-01 17:00:00')",
            ("0" * 64,),
        )
        connection.execute("INSERT INTO audit_log (at, action, detail) VALUES ('2026-03-01 09:00:00', 'x', '{}')")
        indexes = {name for (name,) in connection.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert {
        "ix_console_sessions_user_id",
        "ix_audit_log_at",
        "ix_audit_log_action",
        "ix_audit_log_actor_email",
    } <= indexes
    command.downgrade(config, "0008")
    assert not tables() & {"console_sessions", "audit_log"} and "users" in tables()
