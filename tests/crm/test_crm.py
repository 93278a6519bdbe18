"""External CRM: the HubSpot client against a local HubSpot stand-in, and the outbox on real SQLite."""

import asyncio
import types
from dataclasses import asdict, replace
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from bot.commerce.leads import Lead, save_lead
from bot.core.db import session_scope
from bot.core.models import Contact, CRMOutbox, Deal, utcnow
from bot.crm import outbox as crm_outbox
from bot.crm.base import ContactRecord, CRMRejected, DealRecord, contact_record, deal_record
from bot.crm.hubspot import HubSpotCRM
from bot.crm.outbox import REJECTED_UNTIL, DeliveryReport, deliver_due, enqueue, run_outbox_worker
from bot.crm.registry import provider_from_settings
from bot.crm.sql import SqlCRM
from tests.fakes.hubspot_server import FakeHubSpot

AISHA = Lead(
    name="Aisha Al Mansouri",
    company="Gulf Interiors",
    email="aisha@gulfinteriors.ae",
    phone="+971501234567",
    quantity=12,
    budget_minor=150_000,
    currency="AED",
    timeline="next month",
    channel="web",
    sender_id="web-1",
)


@pytest.fixture
async def hubspot():
    server = await FakeHubSpot().start()
    yield server
    await server.stop()


@pytest.fixture
def hubspot_crm(hubspot: FakeHubSpot) -> HubSpotCRM:
    return HubSpotCRM(hubspot.token, hubspot.api_base, timeout_s=2.0)


def utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


async def capture_lead(url: str, lead: Lead = AISHA, note: str | None = None) -> tuple[int, int]:
    """What the lead form does when HubSpot is the CRM: save_lead, then enqueue contact, deal (and a note)."""
    async with session_scope(url) as session:
        contact, deal, _ = await save_lead(session, lead)
        await enqueue(session, "hubspot", "upsert_contact", asdict(contact_record(contact)))
        await enqueue(session, "hubspot", "upsert_deal", asdict(deal_record(deal)))
        if note:
            await enqueue(session, "hubspot", "add_note", {"deal": asdict(deal_record(deal)), "body": note})
    return contact.id, deal.id


async def outbox(url: str) -> list[CRMOutbox]:
    async with session_scope(url) as session:
        return list(await session.scalars(select(CRMOutbox).order_by(CRMOutbox.id)))


async def local(url: str, model: type[Contact] | type[Deal], local_id: int):
    async with session_scope(url) as session:
        return await session.get(model, local_id)


def contact(local_id: int = 1, **changes) -> ContactRecord:
    record = ContactRecord(
        local_id, "Aisha Al Mansouri", "Gulf Interiors", "aisha@gulfinteriors.ae", "+971501234567", "web", ["new"], None
    )
    return replace(record, **changes)


async def test_contact_is_searched_then_created_and_the_same_email_later_updated(hubspot, hubspot_crm):
    contact_id = await hubspot_crm.upsert_contact(contact())

    assert hubspot.paths() == ["POST /crm/v3/objects/contacts/search", "POST /crm/v3/objects/contacts"]
    assert hubspot.requests[0].body["filterGroups"] == [
        {"filters": [{"propertyName": "email", "operator": "EQ", "value": "aisha@gulfinteriors.ae"}]},
        {"filters": [{"propertyName": "phone", "operator": "EQ", "value": "+971501234567"}]},
    ]
    assert hubspot.objects["contacts"][contact_id]["properties"] == {
        "firstname": "Aisha",
        "lastname": "Al Mansouri",
        "email": "aisha@gulfinteriors.ae",
        "phone": "+971501234567",
        "company": "Gulf Interiors",
    }

    again = contact(local_id=2, name="Aisha Mansouri", phone="+971509999999")
    assert await hubspot_crm.upsert_contact(again) == contact_id
    assert hubspot.paths()[2:] == [
        "POST /crm/v3/objects/contacts/search",
        f"PATCH /crm/v3/objects/contacts/{contact_id}",
    ]
    assert hubspot.properties("contacts") == [
        {
            "firstname": "Aisha",
            "lastname": "Mansouri",
            "email": "aisha@gulfinteriors.ae",
            "phone": "+971509999999",
            "company": "Gulf Interiors",
        }
    ]


async def test_contact_matched_by_phone_and_email_preferred_over_phone(hubspot, hubspot_crm):
    by_phone = await hubspot_crm.upsert_contact(contact(email=None))
    by_email = await hubspot_crm.upsert_contact(contact(email="omar@desks.ae", phone="+971502222222"))

    assert await hubspot_crm.upsert_contact(contact(email="new@gulfinteriors.ae")) == by_phone
    assert await hubspot_crm.upsert_contact(contact(email="omar@desks.ae")) == by_email  # phone matches the other
    assert len(hubspot.objects["contacts"]) == 2


async def test_contact_created_moments_ago_is_updated_not_duplicated(hubspot, hubspot_crm):
    """HubSpot's search lags behind writes; a create then answers 409 with the existing id."""
    hubspot.searchable = False
    contact_id = await hubspot_crm.upsert_contact(contact())

    assert await hubspot_crm.upsert_contact(contact(name="Aisha M")) == contact_id
    assert hubspot.paths()[-2:] == ["POST /crm/v3/objects/contacts", f"PATCH /crm/v3/objects/contacts/{contact_id}"]
    assert [c["lastname"] for c in hubspot.properties("contacts")] == ["M"]


async def test_lead_becomes_contact_and_associated_deal_then_stage_change_updates_it(url, hubspot, hubspot_crm):
    contact_id, deal_id = await capture_lead(url)

    assert await deliver_due(hubspot_crm, url) == DeliveryReport(delivered=2)

    hubspot_contact = (await local(url, Contact, contact_id)).external_ids["hubspot"]
    hubspot_deal = (await local(url, Deal, deal_id)).external_ids["hubspot"]
    created = hubspot.objects["deals"][hubspot_deal]
    assert created["properties"] == {
        "dealname": f"Gulf Interiors (Closer deal #{deal_id})",
        "deal_currency_code": "AED",
        "pipeline": "default",
        "dealstage": "qualifiedtobuy",
    }  # no amount before a quote
    assert created["associations"] == [(3, hubspot_contact)]
    assert all(row.done_at and row.attempts == 1 and row.last_error is None for row in await outbox(url))

    async with session_scope(url) as session:
        deal = await session.get(Deal, deal_id, options=[selectinload(Deal.contact)])
        deal.stage, deal.amount_minor = "proposal", 1_800_000
        await enqueue(session, "hubspot", "upsert_deal", asdict(deal_record(deal)))
    hubspot.requests.clear()

    assert await deliver_due(hubspot_crm, url) == DeliveryReport(delivered=1)
    assert hubspot.paths() == [f"PATCH /crm/v3/objects/deals/{hubspot_deal}"]
    assert hubspot.properties("deals") == [
        {
            "dealname": f"Gulf Interiors (Closer deal #{deal_id})",
            "amount": "18000.00",
            "deal_currency_code": "AED",
            "pipeline": "default",
            "dealstage": "presentationscheduled",
        }
    ]
    assert len(hubspot.objects["contacts"]) == 1


async def test_closer_stages_map_to_hubspot_default_pipeline(hubspot, hubspot_crm):
    contact_id = await hubspot_crm.upsert_contact(contact())
    expected = {
        "new": "appointmentscheduled",
        "qualified": "qualifiedtobuy",
        "proposal": "presentationscheduled",
        "negotiation": "decisionmakerboughtin",
        "won": "closedwon",
        "lost": "closedlost",
    }
    for n, (stage, hubspot_stage) in enumerate(expected.items(), 1):
        deal = DealRecord(n, 1, f"Deal {n}", stage, None, "AED", "web", [], None, contact_id)
        deal_id = await hubspot_crm.upsert_deal(deal)
        assert hubspot.objects["deals"][deal_id]["properties"]["dealstage"] == hubspot_stage

    with pytest.raises(CRMRejected, match="no HubSpot stage"):
        await hubspot_crm.upsert_deal(replace(deal, stage="archived"))


async def test_note_on_a_deal_not_yet_in_hubspot_sends_contact_then_deal_then_note(url, hubspot, hubspot_crm):
    async with session_scope(url) as session:
        _, deal, _ = await save_lead(session, AISHA)
        note = {"deal": asdict(deal_record(deal)), "body": "Quote Q-2025-0001 sent"}
        await enqueue(session, "hubspot", "add_note", note)
    [row] = await outbox(url)

    assert await deliver_due(hubspot_crm, url) == DeliveryReport(delivered=1)

    assert [p.split(" ")[1] for p in hubspot.paths()] == [
        "/crm/v3/objects/contacts/search",
        "/crm/v3/objects/contacts",
        "/crm/v3/objects/deals/search",
        "/crm/v3/objects/deals",
        "/crm/v3/objects/notes",
    ]
    [note] = hubspot.objects["notes"].values()
    hubspot_deal = (await local(url, Deal, deal.id)).external_ids["hubspot"]
    assert note["properties"] == {
        "hs_note_body": "Quote Q-2025-0001 sent",
        "hs_timestamp": utc(row.created_at).isoformat(timespec="milliseconds")[:-6] + "Z",
    }
    assert note["associations"] == [(214, hubspot_deal)]
    assert (await local(url, Contact, deal.contact_id)).external_ids["hubspot"] in hubspot.objects["contacts"]


async def test_rate_limit_keeps_the_row_due_after_retry_after(url, hubspot, hubspot_crm):
    async with session_scope(url) as session:
        contact_row, _, _ = await save_lead(session, AISHA)
        await enqueue(session, "hubspot", "upsert_contact", asdict(contact_record(contact_row)))
    hubspot.rate_limit(1)
    now = utcnow()

    assert await deliver_due(hubspot_crm, url, now=now) == DeliveryReport(deferred=1)
    [row] = await outbox(url)
    assert (row.attempts, row.done_at, utc(row.next_attempt_at)) == (1, None, now + timedelta(seconds=1))
    assert "You have reached your secondly limit." in row.last_error

    sent = len(hubspot.requests)
    assert await deliver_due(hubspot_crm, url, now=now + timedelta(seconds=0.5)) == DeliveryReport()
    assert len(hubspot.requests) == sent

    assert await deliver_due(hubspot_crm, url, now=now + timedelta(seconds=1)) == DeliveryReport(delivered=1)
    [row] = await outbox(url)
    assert (row.attempts, row.last_error) == (2, None) and row.done_at
    assert len(hubspot.objects["contacts"]) == 1


async def test_outage_backs_off_loses_nothing_and_delivers_in_order_exactly_once(url, hubspot, hubspot_crm):
    contact_id, deal_id = await capture_lead(url, note="Customer asked for a site visit")
    await hubspot.stop()
    now = utcnow()

    assert await deliver_due(hubspot_crm, url, now=now) == DeliveryReport(deferred=1)
    first, deal_row, note_row = await outbox(url)
    assert (first.attempts, utc(first.next_attempt_at)) == (1, now + timedelta(seconds=30))
    assert "ClientConnectorError" in first.last_error
    assert deal_row.attempts == note_row.attempts == 0  # the run stopped at the first failure

    later = now + timedelta(seconds=30)
    assert await deliver_due(hubspot_crm, url, now=later) == DeliveryReport(deferred=1)
    first = (await outbox(url))[0]
    assert (first.attempts, utc(first.next_attempt_at)) == (2, later + timedelta(seconds=60))

    await hubspot.start()
    hubspot.outage = True
    later += timedelta(seconds=60)
    assert await deliver_due(hubspot_crm, url, now=later, retry_max_s=100) == DeliveryReport(deferred=1)
    first = (await outbox(url))[0]
    assert (first.attempts, utc(first.next_attempt_at)) == (3, later + timedelta(seconds=100))  # 120 s capped
    assert "HubSpot 503" in first.last_error

    hubspot.outage = False
    hubspot.requests.clear()
    assert await deliver_due(hubspot_crm, url, now=later + timedelta(seconds=100)) == DeliveryReport(delivered=3)
    assert [p.split(" ")[1] for p in hubspot.paths()] == [
        "/crm/v3/objects/contacts/search",
        "/crm/v3/objects/contacts",
        "/crm/v3/objects/deals/search",
        "/crm/v3/objects/deals",
        "/crm/v3/objects/notes",
    ]
    assert [len(hubspot.objects[kind]) for kind in ("contacts", "deals", "notes")] == [1, 1, 1]
    assert [row.attempts for row in await outbox(url)] == [4, 1, 1]
    assert await deliver_due(hubspot_crm, url, now=later + timedelta(days=1)) == DeliveryReport()
    assert len(hubspot.requests) == 5
    assert (await local(url, Deal, deal_id)).external_ids == {"hubspot": next(iter(hubspot.objects["deals"]))}
    assert (await local(url, Contact, contact_id)).external_ids == {"hubspot": next(iter(hubspot.objects["contacts"]))}


async def test_timeout_after_hubspot_created_the_deal_does_not_duplicate_it(url, hubspot):
    hubspot_crm = HubSpotCRM(hubspot.token, hubspot.api_base, timeout_s=0.3)
    _, deal_id = await capture_lead(url)
    hubspot.slow_creates, hubspot.slow_s = {"deals"}, 1.0

    assert await deliver_due(hubspot_crm, url) == DeliveryReport(delivered=1, deferred=1)
    assert "TimeoutError" in (await outbox(url))[1].last_error
    assert len(hubspot.objects["deals"]) == 1  # HubSpot has it; Closer does not know its id

    hubspot.slow_creates = set()
    assert await deliver_due(hubspot_crm, url, now=utcnow() + timedelta(seconds=30)) == DeliveryReport(delivered=1)
    [hubspot_deal] = hubspot.objects["deals"]
    assert hubspot.paths()[-2:] == ["POST /crm/v3/objects/deals/search", f"PATCH /crm/v3/objects/deals/{hubspot_deal}"]
    assert (await local(url, Deal, deal_id)).external_ids == {"hubspot": hubspot_deal}


async def test_validation_error_is_recorded_as_rejected_and_not_retried(url, hubspot, hubspot_crm):
    async with session_scope(url) as session:
        bad = Contact(name="Omar", email="omar@desks", channel="web", sender_id="web-2")
        good = Contact(name="Aisha", email="aisha@gulfinteriors.ae", channel="web", sender_id="web-3")
        session.add_all([bad, good])
        await session.flush()
        for row in (bad, good):
            await enqueue(session, "hubspot", "upsert_contact", asdict(contact_record(row)))

    assert await deliver_due(hubspot_crm, url) == DeliveryReport(delivered=1, rejected=1)
    rejected, delivered = await outbox(url)
    assert "HubSpot 400" in rejected.last_error and "Email address omar@desks is invalid" in rejected.last_error
    assert (rejected.attempts, rejected.done_at, utc(rejected.next_attempt_at)) == (1, None, REJECTED_UNTIL)
    assert delivered.done_at

    sent = len(hubspot.requests)
    assert await deliver_due(hubspot_crm, url, now=utcnow() + timedelta(days=30)) == DeliveryReport()
    assert len(hubspot.requests) == sent

    contact_id = next(iter(hubspot.objects["contacts"]))
    with pytest.raises(CRMRejected, match="dealname is required") as caught:
        await hubspot_crm.upsert_deal(DealRecord(1, 1, "", "new", None, "AED", "web", [], None, contact_id))
    assert caught.value.status == 400


async def test_wrong_token_is_rejected_with_hubspots_message(url, hubspot):
    await capture_lead(url)

    report = await deliver_due(HubSpotCRM("pat-na1-wrong", hubspot.api_base, timeout_s=2.0), url)

    assert report == DeliveryReport(rejected=2)
    for row in await outbox(url):
        assert "HubSpot 401" in row.last_error and "Authentication credentials not found" in row.last_error
        assert utc(row.next_attempt_at) == REJECTED_UNTIL
    assert not hubspot.objects["contacts"]


async def test_row_of_a_deleted_contact_is_rejected(url, hubspot, hubspot_crm):
    async with session_scope(url) as session:
        gone = Contact(name="Omar", email="omar@desks.ae", channel="web", sender_id="web-2")
        session.add(gone)
        await session.flush()
        await enqueue(session, "hubspot", "upsert_contact", asdict(contact_record(gone)))
        await session.delete(gone)

    assert await deliver_due(hubspot_crm, url) == DeliveryReport(rejected=1)
    assert "was deleted; nothing sent" in (await outbox(url))[0].last_error
    assert not hubspot.requests


async def test_a_bug_in_a_provider_is_recorded_and_retried(url, hubspot, hubspot_crm):
    class Broken(HubSpotCRM):
        async def upsert_contact(self, contact: ContactRecord) -> str:
            raise KeyError("id")

    await capture_lead(url)

    assert await deliver_due(Broken(hubspot.token, hubspot.api_base), url) == DeliveryReport(deferred=1)
    first = (await outbox(url))[0]
    assert (first.attempts, first.last_error) == (1, "KeyError: 'id'")
    assert await deliver_due(hubspot_crm, url, now=utcnow() + timedelta(seconds=30)) == DeliveryReport(delivered=2)


async def test_worker_keeps_delivering_after_a_failed_run(url, hubspot, hubspot_crm, monkeypatch, caplog):
    real, runs = crm_outbox.deliver_due, []

    async def flaky(*args, **kwargs):
        runs.append(1)
        if len(runs) == 1:
            raise OSError("database is locked")
        return await real(*args, **kwargs)

    monkeypatch.setattr(crm_outbox, "deliver_due", flaky)
    await capture_lead(url)
    worker = asyncio.create_task(run_outbox_worker(hubspot_crm, interval_s=0.05, database_url=url))
    try:
        for _ in range(100):
            if all(row.done_at for row in await outbox(url)):
                break
            await asyncio.sleep(0.05)
        assert not worker.done()
    finally:
        worker.cancel()
    with pytest.raises(asyncio.CancelledError):
        await worker
    assert all(row.done_at for row in await outbox(url))
    assert "CRM outbox run failed" in caplog.text
    assert len(runs) >= 2


async def test_sql_provider_is_the_db_itself(url):
    sql = provider_from_settings(types.SimpleNamespace(crm_provider="sql"))
    assert isinstance(sql, SqlCRM)
    async with session_scope(url) as session:
        contact_row, deal, _ = await save_lead(session, AISHA)
        assert await enqueue(session, "sql", "upsert_contact", asdict(contact_record(contact_row))) is None
        with pytest.raises(ValueError, match="unknown CRM operation"):
            await enqueue(session, "hubspot", "delete_contact", {})
        assert await sql.upsert_contact(contact_record(contact_row)) == str(contact_row.id)
        assert await sql.upsert_deal(deal_record(deal)) == str(deal.id)
        assert await sql.add_note(deal_record(deal), "note") is None
    assert await outbox(url) == []


def test_provider_from_settings():
    settings = types.SimpleNamespace(
        crm_provider="hubspot",
        hubspot_token="pat-na1-x",
        hubspot_api_base="http://h/",
        hubspot_timeout=5.0,
        hubspot_pipeline="default",
    )
    hubspot_crm = provider_from_settings(settings)
    assert isinstance(hubspot_crm, HubSpotCRM)
    assert (hubspot_crm.name, hubspot_crm.api_base, hubspot_crm.timeout_s) == ("hubspot", "http://h", 5.0)
    with pytest.raises(ValueError, match="CLOSER_HUBSPOT_TOKEN"):
        provider_from_settings(replace_ns(settings, hubspot_token=None))
    with pytest.raises(ValueError, match="unknown crm_provider"):
        provider_from_settings(replace_ns(settings, crm_provider="salesforce"))


def replace_ns(namespace: types.SimpleNamespace, **changes) -> types.SimpleNamespace:
    return types.SimpleNamespace(**{**vars(namespace), **changes})
