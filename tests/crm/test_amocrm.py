"""The amoCRM adapter against a local amoCRM stand-in speaking API v4 and OAuth 2.0, through the real outbox on the
business DB: authorisation and single-use refresh tokens kept encrypted, a Telegram lead in roubles becoming a
contact and a tagged lead with its status and a note, pipeline statuses from Closer's stages, requests spaced to
amoCRM's 7 per second, and 429, 401 and outages handled."""

import re
import types
from dataclasses import asdict, replace
from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import selectinload

from bot.commerce.leads import Lead, save_lead
from bot.contracts.database import synchronous
from bot.core.db import session_scope
from bot.core.models import Contact, CRMOutbox, Deal, utcnow
from bot.crm.amocrm import AmoCRM, source_tag
from bot.crm.base import ContactRecord, CRMRejected, as_utc, contact_record, deal_record
from bot.crm.outbox import DeliveryReport, deliver_due, enqueue
from bot.crm.registry import provider_from_settings
from tests.crm.test_crm import replace_ns
from tests.fakes.amocrm_server import FakeAmoCRM

IVAN = Lead(
    name="Иван Петров",
    company="ООО «Ромашка»",
    email="ivan@romashka.example",
    phone="+79161234567",
    quantity=None,
    budget_minor=None,
    currency="RUB",
    timeline="в этом месяце",
    channel="telegram",
    sender_id="telegram-77",
)
STATUSES = {"new": 61_001, "qualified": 61_002, "proposal": 61_003, "negotiation": 61_004}


@pytest.fixture
async def amocrm():
    server = await FakeAmoCRM().start()
    yield server
    await server.close()


def adapter(fake: FakeAmoCRM, url: str, **changes) -> AmoCRM:
    settings = {"pipeline_id": 7_001, "status_ids": STATUSES, "timeout_s": 2.0, **changes}
    return AmoCRM(fake.base_url, fake.client_id, fake.client_secret, fake.redirect_uri, url, **settings)


@pytest.fixture
async def amo(amocrm, url) -> AmoCRM:
    crm = adapter(amocrm, url)
    await crm.authorize(amocrm.code)
    return crm


async def capture_lead(url: str, note: str | None = None) -> tuple[int, int]:
    async with session_scope(url) as session:
        contact, deal, _ = await save_lead(session, IVAN)
        await enqueue(session, "amocrm", "upsert_contact", asdict(contact_record(contact)))
        await enqueue(session, "amocrm", "upsert_deal", asdict(deal_record(deal)))
        if note:
            await enqueue(session, "amocrm", "add_note", {"deal": asdict(deal_record(deal)), "body": note})
    return contact.id, deal.id


def stored_tokens(url: str) -> list[tuple]:
    engine = sa.create_engine(synchronous(url))
    try:
        with engine.connect() as connection:
            return [
                tuple(r) for r in connection.execute(sa.text("SELECT access_token, refresh_token FROM oauth_tokens"))
            ]
    finally:
        engine.dispose()


async def test_authorisation_stores_the_tokens_encrypted_and_a_code_works_once(amocrm, url):
    crm = adapter(amocrm, url)
    code = amocrm.code
    await crm.authorize(code)
    [(access, refresh)] = stored_tokens(url)
    [issued_access] = amocrm.access_tokens
    [issued_refresh] = amocrm.refresh_tokens
    assert issued_access not in access and issued_refresh not in refresh  # ciphertext, not the tokens
    with pytest.raises(CRMRejected, match="amoCRM 400 on POST /oauth2/access_token: Bad Request"):
        await adapter(amocrm, url).authorize(code)


async def test_a_telegram_lead_becomes_a_contact_and_a_tagged_lead_whose_stage_moves_its_status(amo, amocrm, url):
    contact_id, deal_id = await capture_lead(url, note="Клиент спросил про интеграцию с 1С")
    assert await deliver_due(amo, url) == DeliveryReport(delivered=3)

    async with session_scope(url) as session:
        contact = await session.get(Contact, contact_id)
        deal = await session.get(Deal, deal_id, options=[selectinload(Deal.contact)])
    amo_contact, amo_lead = int(contact.external_ids["amocrm"]), int(deal.external_ids["amocrm"])
    assert amocrm.contacts[amo_contact] == {
        "id": amo_contact,
        "name": "Иван Петров",
        "custom_fields_values": [
            {"field_code": "PHONE", "values": [{"value": "+79161234567", "enum_code": "WORK"}]},
            {"field_code": "EMAIL", "values": [{"value": "ivan@romashka.example", "enum_code": "WORK"}]},
        ],
        "_embedded": {"tags": [{"name": "telegram-lead"}]},
    }
    lead = amocrm.leads[amo_lead]
    assert (lead["name"], lead["pipeline_id"], lead["status_id"]) == (
        deal.contact.company + f" (Closer deal #{deal_id})",
        7_001,
        61_002,
    )
    assert lead["_embedded"]["contacts"] == [{"id": amo_contact}]
    assert {"name": "telegram-lead"} in lead["_embedded"]["tags"]
    [note] = amocrm.notes
    assert (note["entity_id"], note["note_type"]) == (amo_lead, "common")
    written, text = note["params"]["text"].split("\n")  # when Closer wrote it (the outbox may deliver it later)
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC", written) and text == "Клиент спросил про интеграцию с 1С"

    for stage, status in [("proposal", 61_003), ("won", 142), ("lost", 143)]:
        async with session_scope(url) as session:
            deal = await session.get(Deal, deal_id, options=[selectinload(Deal.contact)])
            deal.stage, deal.amount_minor = stage, 63_074_050  # 630,740.50 roubles
            await enqueue(session, "amocrm", "upsert_deal", asdict(deal_record(deal)))
        assert await deliver_due(amo, url) == DeliveryReport(delivered=1)
        assert (amocrm.leads[amo_lead]["status_id"], amocrm.leads[amo_lead]["price"]) == (status, 630_741)
    assert len(amocrm.leads) == 1 and len(amocrm.contacts) == 1


async def test_an_expired_token_is_refreshed_once_and_the_new_refresh_token_kept(amo, amocrm, url):
    await amo.upsert_contact(contact_record_of(1))
    before = stored_tokens(url)
    amocrm.expire_access_tokens()  # 24 hours later: amoCRM answers 401
    await amo.upsert_contact(contact_record_of(2))
    assert amocrm.refreshes == 1 and stored_tokens(url) != before
    # Another process (a new adapter) reads the stored pair: the old refresh token is void, the new one works.
    amocrm.expire_access_tokens()
    await adapter(amocrm, url).upsert_contact(contact_record_of(3))
    assert amocrm.refreshes == 2 and len(amocrm.contacts) == 3


async def test_a_token_about_to_expire_is_refreshed_before_the_request(amocrm, url):
    amocrm.token_lifetime_s = 60.0  # less than the five minutes' margin
    crm = adapter(amocrm, url)
    await crm.authorize(amocrm.code)
    amocrm.token_lifetime_s = 86400.0
    await crm.upsert_contact(contact_record_of(1))
    assert amocrm.refreshes == 1
    assert [f"{r.method} {r.path}" for r in amocrm.requests] == [
        "POST /oauth2/access_token",  # authorised
        "POST /oauth2/access_token",  # refreshed before the first call: no 401 on the way
        "GET /api/v4/contacts",
        "POST /api/v4/contacts",
    ]


async def test_requests_are_spaced_to_seven_a_second(amo, amocrm):
    for n in range(20):
        await amo.upsert_contact(contact_record_of(n, email=f"c{n}@example.ru", phone=None))
    times = [r.at for r in amocrm.requests]
    assert len(times) >= 40  # a search and a create each
    assert max(sum(1 for t in times if start <= t < start + 1.0) for start in times) <= 7


async def test_rate_limited_and_unavailable_amocrm_keep_the_rows_for_later(amo, amocrm, url):
    await capture_lead(url)
    amocrm.max_per_second = 0  # every request refused with 429
    now = utcnow()
    assert await deliver_due(amo, url, now=now) == DeliveryReport(deferred=1)
    [contact_row, deal_row] = await rows(url)
    assert "amoCRM 429" in contact_row.last_error and as_utc(contact_row.next_attempt_at) == now + timedelta(seconds=1)
    assert deal_row.attempts == 0  # the contact's write comes first
    amocrm.max_per_second, amocrm.outage = 7, True
    assert await deliver_due(amo, url, now=now + timedelta(seconds=1)) == DeliveryReport(deferred=1)
    assert "amoCRM 502" in (await rows(url))[0].last_error
    amocrm.outage = False
    assert await deliver_due(amo, url, now=now + timedelta(hours=1)) == DeliveryReport(delivered=2)
    assert len(amocrm.contacts) == len(amocrm.leads) == 1


async def rows(url: str) -> list[CRMOutbox]:
    async with session_scope(url) as session:
        return list(await session.scalars(sa.select(CRMOutbox).order_by(CRMOutbox.id)))


def test_source_tags_and_settings():
    assert [source_tag(c) for c in ("web", "telegram", "avito", "whatsapp")] == [
        "site-lead",
        "telegram-lead",
        "avito-lead",
        "whatsapp-lead",
    ]
    settings = types.SimpleNamespace(
        crm_provider="amocrm",
        database_url="sqlite+aiosqlite:///x.db",
        amocrm_base_url="https://studio.amocrm.ru",
        amocrm_client_id="id",
        amocrm_client_secret="secret",
        amocrm_redirect_uri="https://closer.example/amocrm",
        amocrm_pipeline_id=None,
        amocrm_status_ids={"qualified": 5},
        amocrm_timeout=10.0,
        amocrm_requests_per_second=7.0,
    )
    crm = provider_from_settings(settings)
    assert isinstance(crm, AmoCRM) and crm.status_ids == {"won": 142, "lost": 143, "qualified": 5}
    with pytest.raises(ValueError, match="CLOSER_AMOCRM_CLIENT_SECRET"):
        provider_from_settings(replace_ns(settings, amocrm_client_secret=None))


async def test_without_authorisation_the_write_is_rejected_with_what_to_do(amocrm, url):
    with pytest.raises(CRMRejected, match="amocrm-authorize"):
        await adapter(amocrm, url).upsert_contact(contact_record_of(1))


def contact_record_of(local_id: int, **changes) -> ContactRecord:
    record = ContactRecord(local_id, f"Клиент {local_id}", None, f"client{local_id}@example.ru", None, "web", [], None)
    return replace(record, **changes)
