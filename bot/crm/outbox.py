"""The CRM outbox: writes for an external CRM queued in the business DB and delivered by a worker.

The conversation only adds a ``crm_outbox`` row (:func:`enqueue`, :func:`sync_deal`) in the same
transaction as the change it mirrors, so it never waits on the CRM or fails because of it;
:func:`run_outbox_worker` delivers due rows in the background, retried with back-off until the CRM takes
them, so nothing is lost. A write the CRM refuses (4xx) is kept with its error for a person to look at.
Run one worker per database. With ``crm_provider = "sql"`` (the business DB is the CRM) nothing is queued.

Durations are seconds; times are aware UTC.
"""

import asyncio
import logging
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from bot.core.db import session_scope
from bot.core.models import Contact, CRMOutbox, Deal, utcnow
from bot.core.settings import get_settings
from bot.crm.base import (
    ContactRecord,
    CRMError,
    CRMProvider,
    CRMRateLimited,
    CRMRejected,
    CRMUnavailable,
    DealRecord,
    as_utc,
    contact_record,
    deal_record,
)
from bot.crm.sql import SqlCRM

log = logging.getLogger(__name__)

OPERATIONS = ("upsert_contact", "upsert_deal", "add_note")
#: ``next_attempt_at`` of an outbox row the CRM refused: a person fixes the data, then sets it to now.
REJECTED_UNTIL = datetime(9999, 1, 1, tzinfo=UTC)
LEASE_S = 300.0  # a claimed row becomes due again after this long if its worker died mid-call
BACKOFF_BASE_S = 30.0


async def enqueue(
    session: AsyncSession, provider_name: str, operation: str, payload: dict[str, Any]
) -> CRMOutbox | None:
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


async def deliver_due(
    provider: CRMProvider,
    database_url: str | None = None,
    now: datetime | None = None,
    limit: int = 50,
    retry_max_s: float = 3600.0,
) -> DeliveryReport:
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
        due = (
            await session.scalars(
                select(CRMOutbox.id)
                .where(
                    CRMOutbox.provider == provider.name, CRMOutbox.done_at.is_(None), CRMOutbox.next_attempt_at <= now
                )
                .order_by(CRMOutbox.id)
                .limit(limit)
            )
        ).all()
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


async def _record_failure(
    database_url: str | None, row_id: int, exc: CRMError, now: datetime, retry_max_s: float
) -> bool:
    """Keep the error on the row and set when to try again. Returns whether it was a rejection."""
    async with session_scope(database_url) as session:
        row = await session.get(CRMOutbox, row_id)
        row.last_error = str(exc)[:2000]
        if isinstance(exc, CRMRejected):
            row.next_attempt_at = REJECTED_UNTIL
            log.warning("CRM outbox row %s rejected: %s", row_id, exc)
            return True
        delay = (
            exc.retry_after_s
            if isinstance(exc, CRMRateLimited)
            else min(BACKOFF_BASE_S * 2 ** (row.attempts - 1), retry_max_s)
        )
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
            .values(attempts=CRMOutbox.attempts + 1, next_attempt_at=now + timedelta(seconds=LEASE_S))
        )
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
        return _Job(
            row.operation,
            contact_record(deal.contact, provider_name),
            deal_record(deal, provider_name),
            row.payload.get("body"),
            row.created_at,
        )


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
        await provider.add_note(deal, job.body or "", at=as_utc(job.created_at))


async def _store_id(
    database_url: str | None, model: type[Contact] | type[Deal], local_id: int, provider_name: str, external_id: str
) -> None:
    async with session_scope(database_url) as session:
        row = await session.get(model, local_id)
        if row is not None and (row.external_ids or {}).get(provider_name) != external_id:
            row.external_ids = {**(row.external_ids or {}), provider_name: external_id}  # new dict: a tracked change


async def run_outbox_worker(
    provider: CRMProvider, interval_s: float = 15.0, database_url: str | None = None, retry_max_s: float = 3600.0
) -> None:
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


async def forget(session: AsyncSession, contact_id: int, deal_ids: set[int]) -> int:
    """Delete, in the caller's transaction, every outbox row (pending or done) about the contact ``contact_id``
    or one of the deals ``deal_ids``, as erasure does: the worker sends the current state, so a pending write
    would only send blanks. Returns how many rows went. Payloads are encrypted, so every row is read (the
    outbox stays small: done rows are few per deal)."""
    forgotten = 0
    for row_id, operation, payload in (
        await session.execute(select(CRMOutbox.id, CRMOutbox.operation, CRMOutbox.payload))
    ).tuples():
        local_id = (payload.get("deal") or {}).get("local_id") if operation == "add_note" else payload.get("local_id")
        ours = local_id == contact_id if operation == "upsert_contact" else local_id in deal_ids
        if ours:
            await session.execute(delete(CRMOutbox).where(CRMOutbox.id == row_id))
            forgotten += 1
    return forgotten
