"""Contacts, deals and notes in an external CRM (HubSpot), fed through a durable outbox.

The built-in CRM is the business DB itself (``contacts``, ``deals``, ``deal_notes``): with
``crm_provider = "sql"`` nothing here sends anything. With ``"hubspot"`` the conversation only adds
a ``crm_outbox`` row (:func:`enqueue`) in the same transaction as the change it mirrors, so it never
waits on HubSpot or fails because of it; :func:`run_outbox_worker` delivers due rows in the
background, retried with back-off until HubSpot takes them, so nothing is lost. A write HubSpot
refuses (4xx) is kept with its error for a person to look at. Run one worker per database.

Money is integer minor units plus an ISO 4217 code; durations are seconds; times are aware UTC.
"""

import asyncio
import json
import logging
import re
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, Protocol

import aiohttp
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from bot.core.db import session_scope
from bot.core.models import Contact, CRMOutbox, Deal, utcnow
from bot.core.money import exponent
from bot.core.settings import get_settings

log = logging.getLogger(__name__)

OPERATIONS = ("upsert_contact", "upsert_deal", "add_note")
#: Closer's pipeline stage → stage id in HubSpot's default sales pipeline.
HUBSPOT_STAGES = {
    "new": "appointmentscheduled",
    "qualified": "qualifiedtobuy",
    "proposal": "presentationscheduled",
    "negotiation": "decisionmakerboughtin",
    "won": "closedwon",
    "lost": "closedlost",
}
#: ``next_attempt_at`` of an outbox row the CRM refused: a person fixes the data, then sets it to now.
REJECTED_UNTIL = datetime(9999, 1, 1, tzinfo=timezone.utc)
LEASE_S = 300.0  # a claimed row becomes due again after this long if its worker died mid-call
BACKOFF_BASE_S = 30.0


class CRMError(Exception):
    """A CRM call failed; the message says how (with the CRM's own message when it sent one)."""


class CRMRateLimited(CRMError):
    """The CRM asked to slow down; try again in ``retry_after_s`` seconds."""

    def __init__(self, message: str, retry_after_s: float):
        super().__init__(message)
        self.retry_after_s = retry_after_s


class CRMUnavailable(CRMError):
    """The CRM could not be reached, timed out or failed (5xx): retry later."""


class CRMRejected(CRMError):
    """The CRM refused the request (4xx other than 429, e.g. invalid data or a bad token) or the
    write cannot be made: retrying will not help until a person fixes it. ``status`` is the HTTP
    status, or None when the refusal is Closer's own."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class ContactRecord:
    """A contact as sent to a CRM. ``phone`` is E.164; ``tags`` the customer segment (pricing tier);
    ``external_id`` the CRM's id once known."""

    local_id: int
    name: str | None
    company: str | None
    email: str | None
    phone: str | None
    channel: str
    tags: list[str]
    external_id: str | None


@dataclass(frozen=True)
class DealRecord:
    """A deal as sent to a CRM. ``stage`` is Closer's (new, qualified, proposal, negotiation, won,
    lost); ``amount_minor`` minor units of ``currency`` (ISO 4217); the ``*external_id`` fields are
    the CRM's ids of the deal and its contact once known."""

    local_id: int
    contact_local_id: int
    name: str
    stage: str
    amount_minor: int | None
    currency: str
    source_channel: str
    tags: list[str]
    external_id: str | None
    contact_external_id: str | None


def contact_record(contact: Contact, provider_name: str | None = None) -> ContactRecord:
    """The record of a (flushed) contact row, with its id in ``provider_name``'s CRM if given."""
    return ContactRecord(contact.id, contact.name, contact.company, contact.email, contact.phone, contact.channel,
                         [contact.segment], (contact.external_ids or {}).get(provider_name))


def deal_record(deal: Deal, provider_name: str | None = None) -> DealRecord:
    """The record of a (flushed) deal row, named after its contact's company or name (``deal.contact``
    must be loaded, as it is after ``save_lead``). The amount is the quoted net amount, if any."""
    contact = deal.contact
    who = contact.company or contact.name or f"{contact.channel} customer"
    return DealRecord(deal.id, deal.contact_id, f"{who} (Closer deal #{deal.id})", deal.stage, deal.amount_minor,
                      deal.currency, deal.source_channel, list(deal.tags or []),
                      (deal.external_ids or {}).get(provider_name), (contact.external_ids or {}).get(provider_name))


class CRMProvider(Protocol):
    """A CRM Closer writes to. ``name`` keys ``external_ids`` and outbox rows. Methods raise
    :class:`CRMError` subclasses."""

    name: str

    async def upsert_contact(self, contact: ContactRecord) -> str:
        """Create or update the contact; returns the CRM's id of it."""

    async def upsert_deal(self, deal: DealRecord) -> str:
        """Create (associated with ``deal.contact_external_id``) or update the deal; returns its id."""

    async def add_note(self, deal: DealRecord, body: str, at: datetime | None = None) -> None:
        """Add a note written at ``at`` (default: now) to the deal ``deal.external_id``."""


class SqlCRM:
    """The built-in CRM: the business DB itself, which ``save_lead`` and the actions already
    write. Nothing to send, so this provider does nothing and returns the local ids."""

    name = "sql"

    async def upsert_contact(self, contact: ContactRecord) -> str:
        return str(contact.local_id)

    async def upsert_deal(self, deal: DealRecord) -> str:
        return str(deal.local_id)

    async def add_note(self, deal: DealRecord, body: str, at: datetime | None = None) -> None:
        return None


_EXISTING_ID = re.compile(r"Existing ID: (\d+)")


class HubSpotCRM:
    """HubSpot through its CRM v3 REST API with a private-app token (scopes
    ``crm.objects.contacts.read/write`` and ``crm.objects.deals.read/write``). Every request is
    bounded by ``timeout_s`` seconds. Deals go to ``pipeline`` with :data:`HUBSPOT_STAGES`, the stage
    ids of HubSpot's default pipeline; ``deal_currency_code`` must be a currency enabled in the account.

    Errors: 429 → :class:`CRMRateLimited` (``Retry-After`` seconds, else 10 s, 1 h for the daily
    limit); 5xx, connection errors and timeouts → :class:`CRMUnavailable`; any other 4xx →
    :class:`CRMRejected` with HubSpot's message."""

    name = "hubspot"

    def __init__(self, token: str, api_base: str = "https://api.hubapi.com", timeout_s: float = 10.0,
                 pipeline: str = "default"):
        self.token, self.api_base, self.timeout_s, self.pipeline = token, api_base.rstrip("/"), timeout_s, pipeline

    async def upsert_contact(self, contact: ContactRecord) -> str:
        """Update the contact known by ``external_id``, else the one HubSpot has with the same email
        (preferred) or phone, else create it. Properties: firstname/lastname (the name split at the
        first space), email, phone, company."""
        properties = {"email": contact.email, "phone": contact.phone, "company": contact.company}
        if contact.name:
            properties["firstname"], _, properties["lastname"] = contact.name.strip().partition(" ")
        properties = {key: value for key, value in properties.items() if value is not None}
        async with self._client() as client:
            contact_id = contact.external_id or await self._find_contact(client, contact)
            if contact_id is None:
                try:
                    created = await self._call(client, "POST", "/crm/v3/objects/contacts", {"properties": properties})
                    return created["id"]
                except CRMRejected as exc:  # created moments ago, not yet in the search index
                    existing = _EXISTING_ID.search(str(exc)) if exc.status == 409 else None
                    if existing is None:
                        raise
                    contact_id = existing.group(1)
            await self._call(client, "PATCH", f"/crm/v3/objects/contacts/{contact_id}", {"properties": properties})
            return contact_id

    async def upsert_deal(self, deal: DealRecord) -> str:
        """Update the deal known by ``external_id`` or by its name (a create whose answer was lost),
        else create it associated with the contact ``contact_external_id``. Properties: dealname,
        amount (major units, decimal string), deal_currency_code, pipeline, dealstage."""
        if deal.stage not in HUBSPOT_STAGES:
            raise CRMRejected(f"no HubSpot stage for Closer stage {deal.stage!r}")
        properties = {"dealname": deal.name, "deal_currency_code": deal.currency, "pipeline": self.pipeline,
                      "dealstage": HUBSPOT_STAGES[deal.stage]}
        if deal.amount_minor is not None:
            properties["amount"] = f"{Decimal(deal.amount_minor).scaleb(-exponent(deal.currency)):f}"
        async with self._client() as client:
            deal_id = deal.external_id or await self._search(client, "deals", [("dealname", deal.name)])
            if deal_id is not None:
                await self._call(client, "PATCH", f"/crm/v3/objects/deals/{deal_id}", {"properties": properties})
                return deal_id
            if deal.contact_external_id is None:
                raise CRMRejected(f"deal {deal.local_id}: its contact is not in HubSpot yet")
            body = {"properties": properties, "associations": [_association(deal.contact_external_id, 3)]}
            return (await self._call(client, "POST", "/crm/v3/objects/deals", body))["id"]

    async def add_note(self, deal: DealRecord, body: str, at: datetime | None = None) -> None:
        """Create a note (hs_note_body, hs_timestamp = ``at``, default now) on the deal ``external_id``."""
        if deal.external_id is None:
            raise CRMRejected(f"deal {deal.local_id} is not in HubSpot yet")
        when = _as_utc(at or utcnow()).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        note = {"properties": {"hs_note_body": body, "hs_timestamp": when},
                "associations": [_association(deal.external_id, 214)]}
        async with self._client() as client:
            await self._call(client, "POST", "/crm/v3/objects/notes", note)

    def _client(self) -> aiohttp.ClientSession:
        return aiohttp.ClientSession(headers={"Authorization": f"Bearer {self.token}"},
                                     timeout=aiohttp.ClientTimeout(total=self.timeout_s))

    async def _find_contact(self, client: aiohttp.ClientSession, contact: ContactRecord) -> str | None:
        keys = [(key, value) for key, value in (("email", contact.email), ("phone", contact.phone)) if value]
        return await self._search(client, "contacts", keys, prefer=("email", contact.email)) if keys else None

    async def _search(self, client: aiohttp.ClientSession, object_type: str, keys: list[tuple[str, str]],
                      prefer: tuple[str, str | None] | None = None) -> str | None:
        """The id of a record whose property equals one of ``keys`` (property, value); among several,
        the one matching ``prefer``."""
        body = {"filterGroups": [{"filters": [{"propertyName": key, "operator": "EQ", "value": value}]}
                                 for key, value in keys],
                "properties": [key for key, _ in keys], "limit": 10}
        results = (await self._call(client, "POST", f"/crm/v3/objects/{object_type}/search", body))["results"]
        if not results:
            return None
        key, value = prefer or keys[0]
        wanted = (value or "").lower()
        return next((r for r in results if (r["properties"].get(key) or "").lower() == wanted), results[0])["id"]

    async def _call(self, client: aiohttp.ClientSession, method: str, path: str,
                    body: dict[str, Any]) -> dict[str, Any]:
        try:
            async with client.request(method, self.api_base + path, json=body) as response:
                text = await response.text()
                status, retry_after = response.status, response.headers.get("Retry-After", "")
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise CRMUnavailable(f"HubSpot {method} {path}: {type(exc).__name__} {exc}".strip()) from exc
        try:
            data = json.loads(text)
        except ValueError:
            data = None
        if not isinstance(data, dict):
            data = {}
        if 200 <= status < 300 and data:
            return data
        message = f"HubSpot {status} on {method} {path}: {data.get('message') or text[:300]}"
        if status == 429:
            try:
                delay = float(retry_after)
            except ValueError:
                delay = 3600.0 if data.get("policyName") == "DAILY" else 10.0
            raise CRMRateLimited(message, delay)
        if status < 400 or status >= 500:  # 5xx, or a success without the JSON record (a proxy's page)
            raise CRMUnavailable(message)
        raise CRMRejected(message, status)


def _association(to_id: str, type_id: int) -> dict[str, Any]:
    return {"to": {"id": to_id}, "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": type_id}]}


def _as_utc(moment: datetime) -> datetime:
    """Aware UTC; a naive time (SQLite hands those back) is taken as UTC."""
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)


def provider_from_settings(settings: Any) -> CRMProvider:
    """The provider named by ``settings.crm_provider`` (``sql`` or ``hubspot``; the latter reads
    ``hubspot_token``, ``hubspot_api_base``, ``hubspot_timeout`` and ``hubspot_pipeline``). Raises
    ValueError for an unknown provider or HubSpot without a token."""
    if settings.crm_provider == "sql":
        return SqlCRM()
    if settings.crm_provider == "hubspot":
        if not settings.hubspot_token:
            raise ValueError("crm_provider is hubspot but CLOSER_HUBSPOT_TOKEN is not set")
        return HubSpotCRM(settings.hubspot_token, settings.hubspot_api_base, settings.hubspot_timeout,
                          settings.hubspot_pipeline)
    raise ValueError(f"unknown crm_provider {settings.crm_provider!r} (expected sql or hubspot)")


async def enqueue(session: AsyncSession, provider_name: str, operation: str,
                  payload: dict[str, Any]) -> CRMOutbox | None:
    """Add a write for ``provider_name``'s CRM to the outbox, in the caller's transaction. Payloads:
    ``upsert_contact`` → ``asdict(contact_record(c))``; ``upsert_deal`` → ``asdict(deal_record(d))``;
    ``add_note`` → ``{"deal": asdict(deal_record(d)), "body": text}``. The worker sends the contact's
    or deal's state at delivery time (so a late retry never overwrites newer data with older).
    Returns the row, or None for ``sql`` (the DB is that CRM). Raises ValueError for an unknown
    operation."""
    if operation not in OPERATIONS:
        raise ValueError(f"unknown CRM operation {operation!r} (expected one of {', '.join(OPERATIONS)})")
    if provider_name == SqlCRM.name:
        return None
    row = CRMOutbox(provider=provider_name, operation=operation, payload=payload)
    session.add(row)
    return row


@dataclass(frozen=True)
class DeliveryReport:
    """One :func:`deliver_due` run: rows delivered, deferred (rate limit or outage: retried later)
    and rejected (kept with ``last_error`` and ``next_attempt_at`` = :data:`REJECTED_UNTIL`)."""

    delivered: int = 0
    deferred: int = 0
    rejected: int = 0


@dataclass(frozen=True)
class _Job:
    operation: str
    contact: ContactRecord
    deal: DealRecord | None
    body: str | None
    created_at: datetime


async def deliver_due(provider: CRMProvider, database_url: str | None = None, now: datetime | None = None,
                      limit: int = 50, retry_max_s: float = 3600.0) -> DeliveryReport:
    """Send up to ``limit`` due outbox rows of ``provider`` oldest first, each from the current
    state of its contact or deal. A deal (or note) whose contact, or a note whose deal, is not in
    the CRM yet gets it sent first. On success ``done_at`` is set and the CRM's ids are stored in
    ``external_ids[provider.name]``. On a rate limit the row is due again after the CRM's
    ``retry_after_s``, on an outage after 30 s × 2^(attempts − 1) capped at ``retry_max_s``; either
    ends this run (the rest stay due, in order). A rejected row keeps its error and waits for a
    person. Any other exception (a bug) is logged and retried like an outage. ``attempts`` counts
    calls; ``last_error`` keeps the latest error. No DB transaction is open during a CRM call.
    Raises only on DB errors."""
    now = now or utcnow()
    async with session_scope(database_url) as session:
        due = (await session.scalars(
            select(CRMOutbox.id).where(CRMOutbox.provider == provider.name, CRMOutbox.done_at.is_(None),
                                       CRMOutbox.next_attempt_at <= now).order_by(CRMOutbox.id).limit(limit))).all()
    delivered = rejected = 0
    for row_id in due:
        try:
            job = await _claim(database_url, provider.name, row_id, now)
            if job is None:
                continue
            await _send(provider, database_url, job)
        except CRMError as exc:
            if not await _record_failure(database_url, row_id, exc, now, retry_max_s):
                return DeliveryReport(delivered, 1, rejected)
            rejected += 1
            continue
        except Exception as exc:  # a bug: keep it on the row and retry with back-off like an outage
            log.exception("CRM outbox row %s failed", row_id)
            bug = CRMUnavailable(f"{type(exc).__name__}: {exc}")
            await _record_failure(database_url, row_id, bug, now, retry_max_s)
            return DeliveryReport(delivered, 1, rejected)
        async with session_scope(database_url) as session:
            row = await session.get(CRMOutbox, row_id)
            row.done_at, row.last_error = now, None
        delivered += 1
    return DeliveryReport(delivered, 0, rejected)


async def _record_failure(database_url: str | None, row_id: int, exc: CRMError, now: datetime,
                          retry_max_s: float) -> bool:
    """Keep the error on the row and set when to try again. Returns whether it was a rejection."""
    async with session_scope(database_url) as session:
        row = await session.get(CRMOutbox, row_id)
        row.last_error = str(exc)[:2000]
        if isinstance(exc, CRMRejected):
            row.next_attempt_at = REJECTED_UNTIL
            log.warning("CRM outbox row %s rejected: %s", row_id, exc)
            return True
        delay = exc.retry_after_s if isinstance(exc, CRMRateLimited) else min(
            BACKOFF_BASE_S * 2 ** (row.attempts - 1), retry_max_s)
        row.next_attempt_at = now + timedelta(seconds=delay)
        log.info("CRM outbox row %s retried in %.0f s: %s", row_id, delay, exc)
        return False


async def _claim(database_url: str | None, provider_name: str, row_id: int, now: datetime) -> _Job | None:
    """Take the row if it is still due (counting the attempt and leasing it for :data:`LEASE_S`) and
    read what to send; None if another worker took it. Raises CRMRejected if the contact or deal
    was deleted meanwhile."""
    async with session_scope(database_url) as session:
        claimed = await session.execute(
            update(CRMOutbox)
            .where(CRMOutbox.id == row_id, CRMOutbox.done_at.is_(None), CRMOutbox.next_attempt_at <= now)
            .values(attempts=CRMOutbox.attempts + 1, next_attempt_at=now + timedelta(seconds=LEASE_S)))
        if claimed.rowcount != 1:
            return None
        await session.commit()
        row = await session.get(CRMOutbox, row_id)
        if row.operation == "upsert_contact":
            contact = await session.get(Contact, row.payload["local_id"])
            if contact is None:
                raise CRMRejected(f"contact {row.payload['local_id']} was deleted; nothing sent")
            return _Job(row.operation, contact_record(contact, provider_name), None, None, row.created_at)
        deal_id = row.payload["deal"]["local_id"] if row.operation == "add_note" else row.payload["local_id"]
        deal = await session.get(Deal, deal_id, options=[selectinload(Deal.contact)])
        if deal is None:
            raise CRMRejected(f"deal {deal_id} was deleted; nothing sent")
        return _Job(row.operation, contact_record(deal.contact, provider_name), deal_record(deal, provider_name),
                    row.payload.get("body"), row.created_at)


async def _send(provider: CRMProvider, database_url: str | None, job: _Job) -> None:
    """Make the job's CRM calls, storing each new external id as soon as the CRM returns it."""
    contact_id = job.contact.external_id
    if job.operation == "upsert_contact" or contact_id is None:
        contact_id = await provider.upsert_contact(job.contact)
        await _store_id(database_url, Contact, job.contact.local_id, provider.name, contact_id)
    if job.deal is None:
        return
    deal = replace(job.deal, contact_external_id=contact_id)
    if job.operation == "upsert_deal" or deal.external_id is None:
        deal = replace(deal, external_id=await provider.upsert_deal(deal))
        await _store_id(database_url, Deal, deal.local_id, provider.name, deal.external_id)
    if job.operation == "add_note":
        await provider.add_note(deal, job.body or "", at=_as_utc(job.created_at))


async def _store_id(database_url: str | None, model: type[Contact] | type[Deal], local_id: int, provider_name: str,
                    external_id: str) -> None:
    async with session_scope(database_url) as session:
        row = await session.get(model, local_id)
        if row is not None and (row.external_ids or {}).get(provider_name) != external_id:
            row.external_ids = {**(row.external_ids or {}), provider_name: external_id}  # new dict: a tracked change


async def run_outbox_worker(provider: CRMProvider, interval_s: float = 15.0, database_url: str | None = None,
                            retry_max_s: float = 3600.0) -> None:
    """Deliver due outbox rows every ``interval_s`` seconds, forever. Errors are logged, never
    raised; only cancelling the task stops it."""
    while True:
        try:
            report = await deliver_due(provider, database_url, retry_max_s=retry_max_s)
            if report.delivered or report.rejected:
                log.info("CRM outbox: %s", report)
        except Exception:
            log.exception("CRM outbox run failed; retrying in %.0f s", interval_s)
        await asyncio.sleep(interval_s)


async def sync_deal(session: AsyncSession, deal: Deal, note: str | None = None) -> None:
    """Queue ``deal``, its contact and ``note`` (if any) for the configured external CRM, in the
    caller's transaction; nothing happens for the built-in SQL CRM. ``deal.contact`` must be loaded."""
    name = get_settings().crm_provider
    await enqueue(session, name, "upsert_contact", asdict(contact_record(deal.contact)))
    await enqueue(session, name, "upsert_deal", asdict(deal_record(deal)))
    if note:
        await enqueue(session, name, "add_note", {"deal": asdict(deal_record(deal)), "body": note})
