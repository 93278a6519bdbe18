"""Customer data encrypted at rest: the value format, tampering, column binding, key rotation through the CLI,
blind-index look-ups, what a reader of the raw SQLite file sees, and migration 0010 both ways."""

import asyncio
import json
import os
import re
import secrets
import sqlite3
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from alembic import command
from pydantic import ValidationError
from sqlalchemy import create_engine, select, text

from bot.commerce import leads
from bot.contracts.database import synchronous
from bot.core import caches, db
from bot.core.models import Contact, CRMOutbox, DealNote, Escalation
from bot.core.settings import PRODUCTION_SECRETS, ROOT, Settings
from bot.privacy.encryption import DecryptionError, KeyConfigError, Keyring, get_keyring

K1, K2, INDEX = (secrets.token_urlsafe(32) for _ in range(3))
ANN = dict(
    name="Ann Buyer",
    company="Acme LLC",
    email="ann@acme.example",
    phone="+971501234567",
    channel="web",
    sender_id="web-ann0001",
)


@pytest.fixture
def use_keys(monkeypatch: pytest.MonkeyPatch):
    """``use_keys("k1:…,k2:…", "k2")`` sets the PII key settings (index key INDEX) for code under test;
    returns the environment a subprocess needs for the same keys."""

    def use(keys: str, active: str | None = None) -> dict[str, str]:
        env = {"CLOSER_PII_KEYS": keys, "CLOSER_PII_INDEX_KEY": INDEX, "CLOSER_PII_ACTIVE_KEY": active or ""}
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        caches.reset()
        return {**os.environ, **env}

    yield use
    caches.reset()


def keyring(**changes) -> Keyring:
    return Keyring.from_settings(Settings(**{"pii_keys": f"k1:{K1}", "pii_index_key": INDEX, **changes}))


async def add_contact(url: str, **changes) -> int:
    async with db.session_scope(url) as session:
        contact = Contact(**{**ANN, **changes})
        session.add(contact)
        await session.flush()
        return contact.id


def raw(url: str, query: str, *params) -> list[tuple]:
    """``query``'s rows (``?`` placeholders) through the database's plain DB-API driver (sqlite3, psycopg2): what
    is stored, not what the models show; a statement that returns no rows is committed."""
    engine = create_engine(synchronous(url))
    if engine.dialect.paramstyle != "qmark":
        query = query.replace("?", "%s")
    try:
        with engine.begin() as connection:
            result = connection.exec_driver_sql(query, params)
            return [tuple(row) for row in result.all()] if result.returns_rows else []
    finally:
        engine.dispose()


def test_a_value_round_trips_in_a_self_describing_format_with_a_fresh_nonce_each_time():
    ring = keyring()
    first, second = ring.encrypt("Аня Покупатель", "contacts.name"), ring.encrypt("Аня Покупатель", "contacts.name")
    assert re.fullmatch(r"enc:v1:k1:[A-Za-z0-9_-]+", first) and first != second
    assert ring.decrypt(first, "contacts.name") == ring.decrypt(second, "contacts.name") == "Аня Покупатель"
    assert ring.decrypt(ring.encrypt("", "contacts.company"), "contacts.company") == ""


def test_tampered_foreign_unknown_and_plaintext_values_raise_instead_of_being_returned():
    ring = keyring()
    value = ring.encrypt("ann@acme.example", "contacts.email")
    body = value.rsplit(":", 1)[1]
    flipped = value[: -len(body)] + ("A" if body[0] != "A" else "B") + body[1:]
    with pytest.raises(DecryptionError, match=r"contacts.email: .*fails authentication"):
        ring.decrypt(flipped, "contacts.email")
    with pytest.raises(DecryptionError, match=r"contacts.phone: .*fails authentication"):
        ring.decrypt(value, "contacts.phone")  # the e-mail's ciphertext moved into the phone column
    with pytest.raises(DecryptionError, match="under key 'k2' fails authentication"):  # relabelled as another key's
        keyring(pii_keys=f"k1:{K1},k2:{K2}", pii_active_key="k1").decrypt(
            value.replace(":k1:", ":k2:"), "contacts.email"
        )
    with pytest.raises(DecryptionError, match="key id 'k9', which CLOSER_PII_KEYS does not have"):
        ring.decrypt(value.replace("enc:v1:k1:", "enc:v1:k9:"), "contacts.email")
    with pytest.raises(DecryptionError, match="not encrypted"):
        ring.decrypt("ann@acme.example", "contacts.email")
    with pytest.raises(DecryptionError, match="fails authentication"):
        ring.decrypt("enc:v1:k1:AAAA", "contacts.email")  # too short for a nonce and a tag


def test_bad_key_settings_are_named():
    with pytest.raises(KeyConfigError, match="CLOSER_PII_KEYS"):
        keyring(pii_keys="k1")
    with pytest.raises(KeyConfigError, match=r"CLOSER_PII_KEYS .key 'k1'.: a key is 32 bytes"):
        keyring(pii_keys="k1:c2hvcnQ")
    with pytest.raises(KeyConfigError, match="'k1' is given twice"):
        keyring(pii_keys=f"k1:{K1},k1:{K2}")
    with pytest.raises(KeyConfigError, match="CLOSER_PII_ACTIVE_KEY"):
        keyring(pii_keys=f"k1:{K1},k2:{K2}")  # two keys, none named active
    with pytest.raises(KeyConfigError, match="CLOSER_PII_ACTIVE_KEY"):
        keyring(pii_active_key="k2")
    with pytest.raises(KeyConfigError, match="CLOSER_PII_INDEX_KEY"):
        keyring(pii_index_key="not a key")
    assert keyring(pii_keys=f"k1:{K1},k2:{K2}", pii_active_key="k2").active == "k2"


def test_production_without_pii_keys_stops_with_a_message_naming_them():
    others = {f"CLOSER_{name.upper()}": "x" * 43 for name in PRODUCTION_SECRETS if not name.startswith("pii_")}
    env = {key: value for key, value in os.environ.items() if not key.startswith("CLOSER_PII_")}
    with pytest.MonkeyPatch.context() as patch:
        for name in [key for key in os.environ if key.startswith("CLOSER_PII_")]:
            patch.delenv(name)
        for name, value in others.items():
            patch.setenv(name, value)
        with pytest.raises(ValidationError, match="CLOSER_PII_KEYS, CLOSER_PII_INDEX_KEY"):
            Settings(environment="production")
    # the explicit check, for settings built around validation
    with pytest.raises(KeyConfigError, match="CLOSER_PII_KEYS is not set"):
        Keyring.from_settings(Settings.model_construct(environment="production"))
    with pytest.raises(KeyConfigError, match="CLOSER_PII_INDEX_KEY is not set"):
        Keyring.from_settings(Settings.model_construct(environment="production", pii_keys=f"k1:{K1}"))
    result = subprocess.run(
        [sys.executable, "-m", "bot", "rotate-key"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**env, **others, "CLOSER_ENVIRONMENT": "production"},
    )
    assert result.returncode != 0 and "CLOSER_PII_KEYS" in result.stderr


async def test_the_database_file_holds_no_plaintext_customer_data(db_url):
    await add_contact(db_url)
    async with db.session_scope(db_url) as session:
        contact = await session.scalar(select(Contact))
        assert (contact.name, contact.company, contact.email, contact.phone) == (
            "Ann Buyer",
            "Acme LLC",
            "ann@acme.example",
            "+971501234567",
        )
        session.add(
            CRMOutbox(
                provider="hubspot",
                operation="upsert_contact",
                payload={"local_id": contact.id, "email": "ann@acme.example", "phone": "+971501234567"},
            )
        )
        session.add(Escalation(conversation_id="web-ann0001", reason="requested", summary="Ann Buyer, +971501234567"))
    async with db.session_scope(db_url) as session:
        assert (await session.scalar(select(CRMOutbox))).payload["email"] == "ann@acme.example"
        stored = (await session.execute(text("SELECT name, company, email, phone FROM contacts"))).one()
    await db.get_engine(db_url).dispose()
    assert all(value.startswith("enc:v1:") for value in stored)
    assert all(
        value.startswith("enc:v1:")
        for value in raw(db_url, "SELECT payload FROM crm_outbox")[0]
        + raw(db_url, "SELECT summary FROM escalations")[0]
    )
    if db_url.startswith("sqlite"):  # no byte of the file and its write-ahead log holds the plaintext
        files = list(Path(db_url.removeprefix("sqlite+aiosqlite:///")).parent.glob("closer.db*"))
        data = b"".join(path.read_bytes() for path in files)
        for plaintext in ("Ann Buyer", "ann@acme.example", "+971501234567", "971501234567", "Acme LLC"):
            assert plaintext.encode() not in data, plaintext


async def test_a_ciphertext_moved_to_another_field_or_row_column_does_not_read(db_url):
    ann = await add_contact(db_url)
    raw(db_url, "UPDATE contacts SET name = email WHERE id = ?", ann)
    async with db.session_scope(db_url) as session:
        with pytest.raises(DecryptionError, match=r"contacts.name: .*fails authentication"):
            await session.get(Contact, ann)
    await db.get_engine(db_url).dispose()


def test_encrypted_columns_cannot_be_compared_in_sql():
    with pytest.raises(TypeError, match=r"contacts.email is encrypted"):
        select(Contact).where(Contact.email == "ann@acme.example")
    with pytest.raises(TypeError, match=r"contacts.name is encrypted"):
        select(Contact).order_by(Contact.name.desc())
    assert "IS NULL" in str(select(Contact).where(Contact.phone.is_(None)))


async def test_blind_indexes_find_contacts_by_email_and_phone_and_dedupe_leads(db_url):
    ann = await add_contact(db_url)
    ring = get_keyring()
    async with db.session_scope(db_url) as session:
        assert (
            await session.scalar(
                select(Contact.id).where(Contact.email_index == ring.email_index(" ANN@Acme.Example "))
            )
            == ann
        )
        assert (
            await session.scalar(select(Contact.id).where(Contact.phone_index == ring.phone_index("+971501234567")))
            == ann
        )
        # the same customer in her conversation, e-mail typed with capitals and a new phone: one contact
        lead = leads.Lead(
            name="Ann Buyer",
            company=None,
            email="Ann@acme.example",
            phone="+971509999999",
            quantity=None,
            budget_minor=None,
            currency="AED",
            timeline=None,
            channel="web",
            sender_id="web-ann0001",
        )
        contact, _, created = await leads.save_lead(session, lead)
        assert not created and contact.id == ann and contact.company == "Acme LLC"
    async with db.session_scope(db_url) as session:
        contact = await session.get(Contact, ann)
        assert contact.phone_index == ring.phone_index("+971509999999") and contact.phone == "+971509999999"
        found = [
            await session.scalar(select(Contact.id).where(leads.contact_matches(query)))
            for query in ("ann", "BUYER", "acme llc", "ann@acme", "050 999 9999", "+97150", "971509")
        ]
        assert found == [ann] * 7
        missed = [
            await session.scalar(select(Contact.id).where(leads.contact_matches(query)))
            for query in ("nn", "uyer", "9999", "ann smith")
        ]
        assert missed == [None] * 4  # no substrings: a word's start only, and every word
        # her e-mail typed in someone else's conversation finds her (a note names her) but changes nothing
        other, deal, created = await leads.save_lead(session, replace(lead, channel="telegram", sender_id="telegram-7"))
        assert created and other.id != ann and f"#{ann}" in deal.notes[0].body
    await db.get_engine(db_url).dispose()


async def test_rotate_key_moves_values_to_the_active_key_and_the_old_key_can_go(db_url, use_keys):
    use_keys(f"k1:{K1}")
    ann = await add_contact(db_url)
    async with db.session_scope(db_url) as session:
        session.add(Escalation(conversation_id="web-ann0001", reason="requested", summary="Ann wants a call"))
    await db.get_engine(db_url).dispose()

    env = use_keys(f"k1:{K1},k2:{K2}", "k2")
    async with db.session_scope(db_url) as session:  # old values read under the new keyring
        assert (await session.get(Contact, ann)).email == "ann@acme.example"
        session.add(Escalation(conversation_id="web-ann0001", reason="complaint", summary="written under k2"))
    await db.get_engine(db_url).dispose()
    result = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "bot", "rotate-key"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert "contacts.email: 1 re-encrypted under key 'k2'" in result.stdout
    assert "escalations.summary: 1 re-encrypted" in result.stdout  # the one under k1 only
    assert "deal_notes.body: 0 re-encrypted" in result.stdout
    again = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "bot", "rotate-key"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert re.findall(r": (\d+) re-encrypted", again.stdout) == ["0"] * len(again.stdout.strip().splitlines())
    assert all(
        value is None or value.startswith("enc:v1:k2:")
        for row in raw(db_url, "SELECT name, company, email, phone FROM contacts")
        for value in row
    )

    use_keys(f"k2:{K2}")
    async with db.session_scope(db_url) as session:
        contact = await session.get(Contact, ann)
        assert (contact.name, contact.email) == ("Ann Buyer", "ann@acme.example")
        assert sorted(await session.scalars(select(Escalation.summary))) == ["Ann wants a call", "written under k2"]
    await db.get_engine(db_url).dispose()


async def test_rotate_key_index_recomputes_the_blind_indexes_under_a_new_index_key(db_url, use_keys):
    env = use_keys(f"k1:{K1}")
    ann = await add_contact(db_url)
    await db.get_engine(db_url).dispose()
    new_index = secrets.token_urlsafe(32)
    result = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "bot", "rotate-key", "--index"],
        cwd=ROOT,
        env={**env, "CLOSER_PII_INDEX_KEY": new_index},
        capture_output=True,
        text=True,
        check=True,
    )
    assert "contacts: blind indexes of 1 contact(s) recomputed" in result.stdout
    ring = Keyring.from_settings(Settings(pii_keys=f"k1:{K1}", pii_index_key=new_index))
    assert raw(db_url, "SELECT id FROM contacts WHERE email_index = ?", ring.email_index("ann@acme.example")) == [
        (ann,)
    ]


def test_migration_0010_encrypts_existing_rows_and_the_downgrade_restores_them(tmp_path):
    url = f"sqlite+aiosqlite:///{tmp_path / 'old.db'}"
    config = db.alembic_config(url)
    command.upgrade(config, "0009")
    payload = json.dumps({"local_id": 1, "email": "ann@acme.example"})
    plain = {
        "contacts": (
            "SELECT name, company, email, phone FROM contacts",
            [("Ann Buyer", "Acme LLC", "ann@acme.example", "+971501234567"), (None, None, "cat@cat.example", None)],
        ),
        "deal_notes": ("SELECT body FROM deal_notes", [("Ann asked for a call at +971501234567",)]),
        "escalations": (
            "SELECT summary, resolution_note FROM escalations",
            [("Ann Buyer is upset", "Called her back.")],
        ),
        "crm_outbox": ("SELECT payload FROM crm_outbox", [(payload,)]),
    }
    with sqlite3.connect(tmp_path / "old.db") as connection:
        connection.executemany(
            "INSERT INTO contacts (name, company, email, phone, channel, sender_id, segment, consent, "
            "external_ids, created_at, updated_at) VALUES (?, ?, ?, ?, 'web', ?, 'new', 1, '{}', "
            "'2026-03-01 10:00:00', '2026-03-01 10:00:00')",
            [(*plain["contacts"][1][0], "web-ann"), (*plain["contacts"][1][1], "web-cat")],
        )
        connection.execute(
            "INSERT INTO deals (contact_id, stage, currency, source_channel, tags, external_ids, "
            "created_at, updated_at) VALUES (1, 'new', 'AED', 'web', '[]', '{}', '2026-03-01 10:00:00', "
            "'2026-03-01 10:00:00')"
        )
        connection.execute(
            "INSERT INTO deal_notes (deal_id, body, created_at) VALUES (1, ?, '2026-03-01 10:00:00')",
            plain["deal_notes"][1][0],
        )
        connection.execute(
            "INSERT INTO escalations (conversation_id, reason, summary, status, created_at, "
            "resolution_note) VALUES ('web-ann', 'requested', ?, 'resolved', '2026-03-01 10:00:00', ?)",
            plain["escalations"][1][0],
        )
        connection.execute(
            "INSERT INTO crm_outbox (provider, operation, payload, attempts, next_attempt_at, "
            "created_at) VALUES ('hubspot', 'upsert_contact', ?, 0, '2026-03-01 10:00:00', "
            "'2026-03-01 10:00:00')",
            (payload,),
        )
    command.upgrade(config, "0010")
    for query, rows in plain.values():
        stored = raw(url, query)
        assert all(value is None or value.startswith("enc:v1:") for row in stored for value in row), query
        assert len(stored) == len(rows)
    ring = get_keyring()
    assert raw(url, "SELECT id FROM contacts WHERE email_index = ?", ring.email_index("ann@acme.example")) == [(1,)]
    assert raw(url, "SELECT id FROM contacts WHERE phone_index = ?", ring.phone_index("+971501234567")) == [(1,)]

    async def read() -> tuple:
        async with db.session_scope(url) as session:
            contacts = (await session.scalars(select(Contact).order_by(Contact.id))).all()
            return (
                [(c.name, c.company, c.email, c.phone) for c in contacts],
                [n.body for n in await session.scalars(select(DealNote))],
                (await session.scalar(select(CRMOutbox))).payload,
                [c.id for c in await session.scalars(select(Contact).where(leads.contact_matches("acme")))],
            )
        await db.get_engine(url).dispose()

    contacts, notes, outbox, found = asyncio.run(read())
    assert contacts == plain["contacts"][1] and notes == ["Ann asked for a call at +971501234567"]
    assert outbox == json.loads(payload) and found == [1]
    command.downgrade(config, "0009")
    for query, rows in plain.values():
        assert raw(url, query) == rows, query
    columns = {row[1] for row in raw(url, "PRAGMA table_info(contacts)")}
    assert not columns & {"email_index", "phone_index", "search_tokens"}
    assert {row[1] for row in raw(url, "PRAGMA index_list(contacts)")} >= {"ix_contacts_email", "ix_contacts_phone"}
