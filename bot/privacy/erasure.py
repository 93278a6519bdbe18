""" "Forget me": erasure of a customer (by contact id or conversation id) and retention of old conversations.

:func:`erase` is the one entry point of the console button, ``python -m bot erase`` and the customer's own
request (``action_erase_customer_data``). It resolves the customer — the contact and every conversation
of theirs: the contact's ``sender_id``, conversations the index links to the contact, the conversations
of their quotes and of escalations about those quotes; from a conversation id, the contact whose sender
it is, or whom the index or a quote links to it — and then:

- tracker store (Rasa's ``events`` table, :mod:`bot.core.tracker`): every event of those conversations is
  rewritten in place (:func:`scrub_event`: texts → ``[erased]``, entity values and metadata gone, slot
  values null but for :data:`KEPT_SLOTS`, bot ``data`` emptied) and moved to a new sender id
  ``erased-<32 hex>``, so that the guessable id (``telegram-<chat id>``, ``whatsapp-<phone>``) leads
  nowhere. Rows are rewritten rather than deleted so Rasa can still read them back
  (``Event.from_parameters``) and the business's figures keep their events; ids, types, timestamps,
  intents and action names stay.
- business DB: the contact's name, company, e-mail, phone (and so their blind indexes and search
  tokens) cleared, ``sender_id`` replaced, consent off; deal notes, escalation summaries and resolution
  notes → ``[erased]``; quotes keep their numbers and totals but lose the contact and get a new
  ``token`` (the old PDF link dies; PDFs are rendered on request, none is stored); carts deleted;
  knowledge answers keep their figures but not the question or answer, feedback keeps its rating but
  not the comment; channel deliveries, customers and messages of those senders deleted; the console's
  conversation index rows (messages, reviews, tags) and NLU annotations deleted; CRM outbox rows of the
  contact and its deals deleted. Rows that stay are moved to the anonymous conversation id.
  The external CRM (HubSpot) is not erased: the report counts its records (``crm_external_records``)
  for a person to delete there.
- audit log: one ``customer.erase`` entry, target ``contact``/<id> or ``conversation``/<anonymous id>
  (never the old conversation id, which may hold a phone number), detail = the counts and ``via``
  (``console``, ``cli`` or ``customer``).

SQLite keeps deleted content in free pages and in the write-ahead log: the erasing connections run
``PRAGMA secure_delete=ON`` and each database's WAL is checkpointed with ``TRUNCATE`` afterwards.

Rasa's ``SQLTrackerStore.save`` appends the events beyond the number it finds stored for the sender,
so rewriting a conversation during one of its turns would make Rasa store its whole in-memory tracker
again. The business-DB side and a ``pending_erasures`` row are therefore committed first; the tracker
is rewritten by :func:`complete_pending` — at once for the console and the command line (unless the
conversation had an event in the last QUIET_S seconds), and for the customer's own request
(``defer_tracker``) once the turn is over: the console's background loop
(:func:`run_due`) completes requests PENDING_DELAY_S after they were made and once the conversation
has been quiet for QUIET_S seconds; ``python -m bot erase --pending`` does the same by hand. A failed
tracker rewrite leaves the row for the next run. (The quiet check narrows, without closing, the window in
which a message arriving just as its conversation is rewritten makes Rasa store its in-memory tracker
again: Rasa's lock store is not reachable from here.)

Retention (:func:`apply_retention`, daily in the console, ``python -m bot erase --retention``):
conversations whose last event is older than ``retention_days`` get the same tracker rewrite, and their
business-DB rows the conversation-linked part (texts, carts, channel rows, annotations) while the
index rows move to the anonymous id with their texts erased, so analytics keep counting them. Contacts,
deals and quotes stay.
"""

import asyncio
import json
import logging
import secrets
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import bindparam, delete, func, or_, select, text, update
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, create_async_engine

from bot.contracts import conversation_ids
from bot.core import audit, db
from bot.core.models import (
    Booking,
    Cart,
    CartLine,
    ChannelCustomer,
    ChannelDelivery,
    ChannelMessage,
    Contact,
    Conversation,
    ConversationMessage,
    ConversationReview,
    ConversationScore,
    ConversationTag,
    Escalation,
    Feedback,
    FollowUp,
    FollowUpOptOut,
    KnowledgeAnswer,
    LlmCall,
    NluAnnotation,
    Payment,
    PendingErasure,
    Quote,
    SalesDocument,
    User,
    utcnow,
)
from bot.core.settings import get_settings
from bot.core.tracker import events
from bot.crm import outbox

log = logging.getLogger(__name__)

ERASED = "[erased]"
ANONYMOUS_PREFIX = "erased-"
ACTION = "customer.erase"
VIA = ("console", "cli", "customer")
# Slots whose values say nothing about the person: the sales stage managers filter by, the form's
# requested slot (a slot name) and the SKUs shown.
KEPT_SLOTS = frozenset({"sales_stage", "requested_slot", "shown_skus"})
# Channels whose customers the channel tables know by their conversation id's native id (connectors/).
CHANNEL_TABLE_CHANNELS = ("telegram", "whatsapp", "avito")
PENDING_DELAY_S = 10.0  # a customer's request waits this long for Rasa's turn to end …
QUIET_S = 10.0  # … and for the conversation to have had no event for this long
RETENTION_INTERVAL = timedelta(days=1)
RETENTION_BATCH = 100  # conversations per business-DB transaction of the retention job
CHECKPOINT_TRIES = 10  # a reader inside a transaction makes a TRUNCATE checkpoint busy; retried 0.2 s apart

_retention_ran: dict[str, datetime] = {}  # business DB URL → the retention job's last run in this process


class NothingToErase(LookupError):
    """No contact with that id."""


@dataclass
class ErasureReport:
    """What one erasure, completion or retention run changed: ``counts`` per kind (``contacts``,
    ``conversations``, ``tracker_events``, ``deal_notes``, ``quotes``, ``carts``, ``knowledge_answers``,
    ``llm_calls``, ``feedback``, ``escalations``, ``channel_deliveries``, ``channel_customers``, ``channel_messages``,
    ``nlu_annotations``, ``indexed_conversations``, ``follow_ups``, ``follow_up_opt_outs``, ``scores``, ``crm_outbox``,
    ``crm_external_records``, …);
    ``contact_id`` the erased contact (None for a conversation without one); ``anonymous_ids`` the new ids
    of the conversations; ``pending``: the tracker events wait for :func:`complete_pending`."""

    counts: Counter = field(default_factory=Counter)
    contact_id: int | None = None
    anonymous_ids: list[str] = field(default_factory=list)
    pending: bool = False

    def summary(self) -> str:
        """One line for people, e.g. ``contact 3: conversations 2, tracker_events 41, quotes 1``."""
        who = f"contact {self.contact_id}" if self.contact_id is not None else "no contact"
        counts = ", ".join(f"{kind} {count}" for kind, count in sorted(self.counts.items()) if count) or "nothing"
        return f"{who}: {counts}" + ("; tracker events pending" if self.pending else "")


def anonymous_id() -> str:
    """A new conversation id for erased events: ``erased-`` and 32 random hex digits."""
    return ANONYMOUS_PREFIX + secrets.token_hex(16)


# --- tracker events --------------------------------------------------------------------------------------


def _entities(entities: Any) -> list[dict[str, Any]]:
    """Entities with their names (and role, group) but no value, text offsets or extractor details."""
    if not isinstance(entities, list):
        return []
    return [
        {
            "entity": item.get("entity"),
            "value": ERASED,
            **{key: item[key] for key in ("role", "group") if item.get(key) is not None},
        }
        for item in entities
        if isinstance(item, dict)
    ]


def scrub_event(data: dict[str, Any]) -> dict[str, Any]:
    """A Rasa event (``Event.as_dict()``, as the tracker store keeps it) without what the customer said
    or is: ``text`` (user and bot) and ``action_text`` → ``[erased]`` when set; ``metadata`` → {} (channel
    metadata holds phone numbers and usernames); ``parse_data`` keeps the intent, ranking and message id,
    its entities only their names; a bot event's ``data`` (buttons, custom payloads, quote links) → {};
    a slot's value → None unless the slot is in KEPT_SLOTS. Every other key (``event``, ``timestamp``,
    names, policies, confidences) stays, so Rasa reads the event back."""
    event = dict(data)
    if "metadata" in event:
        event["metadata"] = {}
    for key in ("text", "action_text"):
        if isinstance(event.get(key), str) and event[key]:
            event[key] = ERASED
    if "entities" in event:
        event["entities"] = _entities(event["entities"])
    parse = event.get("parse_data")
    if isinstance(parse, dict):
        event["parse_data"] = {
            **{key: parse[key] for key in ("intent", "intent_ranking", "message_id") if key in parse},
            "text": ERASED if parse.get("text") else "",
            "entities": _entities(parse.get("entities")),
            "metadata": {},
        }
    if event.get("event") == "bot" and "data" in event:
        event["data"] = {}
    if event.get("event") == "slot" and event.get("name") not in KEPT_SLOTS:
        event["value"] = None
    return event


def _is_sqlite(engine: AsyncEngine) -> bool:
    return engine.dialect.name == "sqlite"


def tracker_writer(url: str | None = None) -> AsyncEngine | None:
    """A writable engine on the tracker store at ``url`` (default: the settings' ``tracker_database_url``)
    — the console's reader (:mod:`bot.core.tracker`) is read-only; erasure is the only writer besides Rasa.
    None for a SQLite file that does not exist (nothing to erase; opening it would create it). The caller
    disposes of it."""
    url = url or get_settings().tracker_database_url
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and not Path(parsed.database or "").is_file():
        return None
    return create_async_engine(parsed)


async def _secure_delete(connection: AsyncConnection | AsyncSession) -> None:
    """Make SQLite overwrite deleted content with zeros on this connection (a no-op elsewhere)."""
    bind = connection.bind if isinstance(connection, AsyncSession) else connection.engine
    if bind.dialect.name == "sqlite":
        await connection.execute(text("PRAGMA secure_delete=ON"))


async def checkpoint(engine: AsyncEngine) -> bool:
    """Copy a SQLite database's write-ahead log into the file and truncate it to zero bytes
    (``PRAGMA wal_checkpoint(TRUNCATE)``), retried while a reader keeps it busy. True when done (and for
    other databases); False, logged, when readers kept it busy: the WAL then still holds old page images
    until a later checkpoint."""
    if not _is_sqlite(engine):
        return True
    async with engine.connect() as connection:
        for _ in range(CHECKPOINT_TRIES):
            busy, *_ = (await connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")).one()
            if not busy:
                return True
            await asyncio.sleep(0.2)
    log.warning("the write-ahead log of %s could not be truncated: readers kept it busy", engine.url.database)
    return False


async def _rewrite_tracker(engine: AsyncEngine, mapping: dict[str, str]) -> int:
    """Rewrite (:func:`scrub_event`) and move every event of the conversations ``mapping``'s keys to its
    value, in one transaction; how many events. Raises sqlalchemy's DBAPIError when the store cannot be
    written."""
    moved = 0
    statement = (
        update(events)
        .where(events.c.id == bindparam("row_id"))
        .values(sender_id=bindparam("new_sender"), data=bindparam("new_data"))
    )
    async with engine.begin() as connection:
        await _secure_delete(connection)
        for old, new in mapping.items():
            rows = (await connection.execute(select(events.c.id, events.c.data).where(events.c.sender_id == old))).all()
            params = [
                {
                    "row_id": row.id,
                    "new_sender": new,
                    "new_data": json.dumps(scrub_event(json.loads(row.data))) if row.data else row.data,
                }
                for row in rows
            ]
            if params:
                await connection.execute(statement, params)
            moved += len(params)
    return moved


# --- business DB -----------------------------------------------------------------------------------------


def _channel_user(conversation_id: str) -> tuple[str, str] | None:
    """(channel, the channel's user id) of a ``telegram-<chat id>``/``whatsapp-<wa_id>`` conversation."""
    parsed = conversation_ids.parse(conversation_id)
    return parsed if parsed and parsed[0] in CHANNEL_TABLE_CHANNELS else None


async def _contact_of(session: AsyncSession, conversation_id: str) -> Contact | None:
    """The contact whose sender the conversation is, else the one the index or a quote links to it."""
    contact = (await session.scalars(select(Contact).where(Contact.sender_id == conversation_id).limit(1))).first()
    if contact is not None:
        return contact
    for query in (
        select(Conversation.contact_id).where(Conversation.conversation_id == conversation_id),
        select(Quote.contact_id).where(Quote.conversation_id == conversation_id),
    ):
        contact_id = (await session.scalars(query.where(query.selected_columns[0].is_not(None)).limit(1))).first()
        if contact_id is not None:
            return await session.get(Contact, contact_id)
    return None


async def _conversations_of(session: AsyncSession, contact: Contact) -> set[str]:
    """Every conversation id of the contact (module docstring), those already erased left out."""
    deal_ids = [deal.id for deal in contact.deals]
    quote_ids = select(Quote.id).where(or_(Quote.contact_id == contact.id, Quote.deal_id.in_(deal_ids)))
    ids = {
        contact.sender_id,
        *(() if contact.sender_id.startswith(f"{contact.channel}-") else (f"{contact.channel}-{contact.sender_id}",)),
    }
    for query in (
        select(Conversation.conversation_id).where(Conversation.contact_id == contact.id),
        select(Quote.conversation_id).where(Quote.id.in_(quote_ids)),
        select(Escalation.conversation_id).where(Escalation.quote_id.in_(quote_ids)),
    ):
        ids.update(await session.scalars(query))
    return {cid for cid in ids if not cid.startswith(ANONYMOUS_PREFIX)}


async def _erase_contact(session: AsyncSession, contact: Contact, counts: Counter) -> None:
    """Clear the contact's PII, its deals' notes and its CRM outbox rows. (Its quotes are among its
    conversations': :func:`_erase_conversations` unlinks them.)"""
    contact.name = contact.company = contact.email = contact.phone = None  # index_contact clears the indexes
    contact.sender_id, contact.consent = anonymous_id(), False
    counts["contacts"] += 1
    deal_ids = {deal.id for deal in contact.deals}
    for deal in contact.deals:
        for note in deal.notes:
            note.body = ERASED
            counts["deal_notes"] += 1
    counts["crm_external_records"] += len(contact.external_ids or {}) + sum(
        len(deal.external_ids or {}) for deal in contact.deals
    )
    counts["crm_outbox"] += await outbox.forget(session, contact.id, deal_ids)


async def _erase_conversations(
    session: AsyncSession, mapping: dict[str, str], counts: Counter, retention: bool = False
) -> None:
    """The business-DB rows of the conversations ``mapping``'s keys: texts erased, rows that stay moved to
    the anonymous id (the value), carts, channel rows, annotations, follow-ups, opt-outs and scorecards deleted,
    quotes unlinked from their contact and given a new token, index rows deleted. With ``retention`` quotes keep
    contact and token, and the index rows move, message texts erased and review notes dropped."""
    old = list(mapping)
    for answer in await session.scalars(select(KnowledgeAnswer).where(KnowledgeAnswer.conversation_id.in_(old))):
        answer.question = answer.answer = ""
        answer.fallback_reason = None  # may quote the answer
        answer.conversation_id = mapping[answer.conversation_id]
        counts["knowledge_answers"] += 1
    for call in await session.scalars(select(LlmCall).where(LlmCall.conversation_id.in_(old))):
        call.conversation_id = mapping[call.conversation_id]  # no text: the row keeps counting in the budget
        counts["llm_calls"] += 1
    for feedback in await session.scalars(select(Feedback).where(Feedback.conversation_id.in_(old))):
        feedback.comment, feedback.conversation_id = None, mapping[feedback.conversation_id]
        counts["feedback"] += 1
    for escalation in await session.scalars(select(Escalation).where(Escalation.conversation_id.in_(old))):
        escalation.summary = ERASED
        escalation.resolution_note = ERASED if escalation.resolution_note is not None else None
        escalation.notify_error = None  # Telegram's errors may name the chat
        escalation.conversation_id = mapping[escalation.conversation_id]
        counts["escalations"] += 1
    for quote in await session.scalars(select(Quote).where(Quote.conversation_id.in_(old))):
        quote.conversation_id = mapping[quote.conversation_id]
        if not retention:  # erasure: the quote loses its customer and its link (PDFs are rendered on request)
            quote.contact_id, quote.token = None, secrets.token_urlsafe(32)
            counts["quotes"] += 1
    for payment in await session.scalars(select(Payment).where(Payment.conversation_id.in_(old))):
        payment.conversation_id = mapping[payment.conversation_id]  # amounts stay: the accounts need them
        counts["payments"] += 1
    for booking in await session.scalars(select(Booking).where(Booking.conversation_id.in_(old))):
        booking.conversation_id = mapping[booking.conversation_id]
        if not retention:
            booking.customer_email, booking.customer_name = ERASED, None
            counts["bookings"] += 1
    if not retention:  # an invoice's or contract's link stops working, as the quote's (the documents are kept: a
        # seller must keep its invoices and contracts by law)
        quote_ids = select(Quote.id).where(Quote.conversation_id.in_(list(mapping.values())))
        for document in await session.scalars(select(SalesDocument).where(SalesDocument.quote_id.in_(quote_ids))):
            document.token = secrets.token_urlsafe(32)
            counts["sales_documents"] += 1
    carts = select(Cart.id).where(Cart.conversation_id.in_(old))
    await session.execute(delete(CartLine).where(CartLine.cart_id.in_(carts)))
    counts["carts"] += (await session.execute(delete(Cart).where(Cart.conversation_id.in_(old)))).rowcount
    counts["channel_deliveries"] += (
        await session.execute(delete(ChannelDelivery).where(ChannelDelivery.sender_id.in_(old)))
    ).rowcount
    for channel, user_id in filter(None, map(_channel_user, old)):
        counts["channel_customers"] += (
            await session.execute(
                delete(ChannelCustomer).where(ChannelCustomer.channel == channel, ChannelCustomer.user_id == user_id)
            )
        ).rowcount
        counts["channel_messages"] += (
            await session.execute(
                delete(ChannelMessage).where(ChannelMessage.channel == channel, ChannelMessage.recipient_id == user_id)
            )
        ).rowcount
    counts["nlu_annotations"] += (
        await session.execute(delete(NluAnnotation).where(NluAnnotation.conversation_id.in_(old)))
    ).rowcount
    # Follow-ups, opt-outs and scorecards name the conversation (a phone number on WhatsApp) and may quote it.
    for model, kind in (
        (FollowUp, "follow_ups"),
        (FollowUpOptOut, "follow_up_opt_outs"),
        (ConversationScore, "scores"),
    ):
        counts[kind] += (await session.execute(delete(model).where(model.conversation_id.in_(old)))).rowcount
    if retention:
        await _move_index(session, mapping, counts)
        return
    for model in (ConversationMessage, ConversationReview, ConversationTag):
        await session.execute(delete(model).where(model.conversation_id.in_(old)))
    counts["indexed_conversations"] += (
        await session.execute(delete(Conversation).where(Conversation.conversation_id.in_(old)))
    ).rowcount


async def _move_index(session: AsyncSession, mapping: dict[str, str], counts: Counter) -> None:
    """Move the index rows of the conversations to their anonymous ids, message texts erased, review notes
    dropped; figures, tags and the contact link stay."""
    columns = [column.key for column in Conversation.__table__.columns if column.key != "conversation_id"]
    for row in await session.scalars(select(Conversation).where(Conversation.conversation_id.in_(list(mapping)))):
        new = mapping[row.conversation_id]
        session.add(Conversation(conversation_id=new, **{key: getattr(row, key) for key in columns}))
        await session.flush()  # the children's new parent must exist (foreign keys)
        for model, values in (
            (ConversationMessage, {"text": ERASED}),
            (ConversationReview, {"note": None}),
            (ConversationTag, {}),
        ):
            # No ORM synchronisation: it would compare the encrypted review note in Python, which it refuses.
            await session.execute(
                update(model)
                .where(model.conversation_id == row.conversation_id)
                .values(conversation_id=new, **values)
                .execution_options(synchronize_session=False)
            )
        await session.delete(row)
        counts["indexed_conversations"] += 1


# --- entry points ----------------------------------------------------------------------------------------


async def erase(
    *,
    contact_id: int | None = None,
    conversation_id: str | None = None,
    via: str,
    actor: User | None = None,
    defer_tracker: bool = False,
    database_url: str | None = None,
    tracker_url: str | None = None,
) -> ErasureReport:
    """Erase a customer, given by ``contact_id`` or by ``conversation_id`` (exactly one), everywhere (module
    docstring), and return the report. ``via``: ``console`` (``actor``: the console user), ``cli`` or
    ``customer``. The business DB is changed in one transaction with the audit entry (its detail: the
    business-DB counts); the tracker events follow at once (:func:`complete_pending`) — unless a
    conversation had an event in the last QUIET_S seconds (Rasa may be in its turn): then, as with
    ``defer_tracker`` (the customer's request, inside Rasa's turn), the console's loop completes it. A
    conversation id without a contact erases that conversation only.
    URLs default to the settings'. Raises ValueError for a bad combination, NothingToErase for an unknown
    contact id; sqlalchemy's DBAPIError when a database cannot be written (the business DB's changes are
    then rolled back, or, if the tracker failed, its rewrite stays pending)."""
    if (contact_id is None) == (conversation_id is None) or via not in VIA:
        raise ValueError("erase takes a contact_id or a conversation_id, and via one of " + ", ".join(VIA))
    report = ErasureReport()
    now = utcnow()
    engine = db.get_engine(database_url)
    async with db.session_scope(database_url) as session:
        await _secure_delete(session)
        if contact_id is not None:
            contact = await session.get(Contact, contact_id)
            if contact is None:
                raise NothingToErase(f"no contact {contact_id}")
        else:
            contact = await _contact_of(session, conversation_id)
        ids = {conversation_id} if conversation_id else set()
        if contact is not None:
            ids |= await _conversations_of(session, contact)
        # A conversation erased before but still pending keeps its anonymous id (rows already moved there).
        pending = {
            row.conversation_id: row
            for row in await session.scalars(select(PendingErasure).where(PendingErasure.conversation_id.in_(ids)))
        }
        mapping = {cid: pending[cid].anonymous_id if cid in pending else anonymous_id() for cid in sorted(ids)}
        if contact is not None:
            report.contact_id = contact.id
            await _erase_contact(session, contact, report.counts)
        await _erase_conversations(session, mapping, report.counts)
        not_before = now + timedelta(seconds=PENDING_DELAY_S if defer_tracker else 0)
        for old, new in mapping.items():
            if old in pending:
                pending[old].not_before = not_before
            else:
                session.add(
                    PendingErasure(conversation_id=old, anonymous_id=new, requested_at=now, not_before=not_before)
                )
        report.counts["conversations"] = len(mapping)
        report.anonymous_ids = sorted(mapping.values())
        target = ("contact", contact.id) if contact is not None else ("conversation", report.anonymous_ids[0])
        audit.record(session, actor, ACTION, *target, via=via, **report.counts)
    await checkpoint(engine)
    log.info("erasure via %s of %s", via, report.summary())
    if defer_tracker:
        report.pending = True
        return report
    completed = await complete_pending(database_url, tracker_url, only=set(mapping))
    report.counts["tracker_events"] = completed.counts["tracker_events"]
    report.pending = bool(mapping) and completed.counts["completed"] < len(mapping)
    return report


async def request_by_customer(conversation_id: str) -> ErasureReport:
    """The customer's own "delete my data" in conversation ``conversation_id`` (after they confirmed):
    :func:`erase` via ``customer`` with the tracker rewrite deferred until their turn is over."""
    return await erase(conversation_id=conversation_id, via="customer", defer_tracker=True)


async def _last_event_at(engine: AsyncEngine, conversation_id: str) -> float | None:
    async with engine.connect() as connection:
        return (
            await connection.execute(select(func.max(events.c.timestamp)).where(events.c.sender_id == conversation_id))
        ).scalar_one()


async def complete_pending(
    database_url: str | None = None,
    tracker_url: str | None = None,
    *,
    only: set[str] | None = None,
    quiet_s: float | None = None,
    now: datetime | None = None,
) -> ErasureReport:
    """Complete the pending erasures due at ``now`` (default now; all of ``only``'s conversation ids when
    given, due or not) whose conversation has had no event for ``quiet_s`` seconds (default QUIET_S): rewrite and
    move their tracker events, erase what the business DB gained meanwhile (e.g. index rows of the last turn), delete
    the request; each SQLite WAL truncated afterwards. Counts ``completed`` and ``tracker_events`` (plus
    the business-DB kinds). A request whose rewrite fails stays for the next run (logged). Raises
    sqlalchemy's DBAPIError only when the business DB cannot be read."""
    now = now or utcnow()
    quiet_s = QUIET_S if quiet_s is None else quiet_s
    report = ErasureReport()
    async with db.session_scope(database_url) as session:
        query = select(PendingErasure.conversation_id, PendingErasure.anonymous_id)
        query = (
            query.where(PendingErasure.conversation_id.in_(only))
            if only is not None
            else query.where(PendingErasure.not_before <= now)
        )
        due = dict((await session.execute(query.order_by(PendingErasure.id))).tuples().all())
    if not due:
        return report
    engine = tracker_writer(tracker_url)
    try:
        for old, new in due.items():
            try:
                if engine is not None:
                    last = await _last_event_at(engine, old)
                    if last is not None and now.timestamp() - last < quiet_s:
                        continue  # the customer is still writing: Rasa may be in a turn
                    report.counts["tracker_events"] += await _rewrite_tracker(engine, {old: new})
            except DBAPIError as exc:
                log.error("erasure of conversation %s: the tracker store cannot be written: %s", new, exc)
                continue
            async with db.session_scope(database_url) as session:
                await _secure_delete(session)
                await _erase_conversations(session, {old: new}, report.counts)
                await session.execute(delete(PendingErasure).where(PendingErasure.conversation_id == old))
            report.counts["completed"] += 1
            report.anonymous_ids.append(new)
        if engine is not None and report.counts["completed"]:
            await checkpoint(engine)
    finally:
        if engine is not None:
            await engine.dispose()
    if report.counts["completed"]:
        await checkpoint(db.get_engine(database_url))
    return report


async def apply_retention(
    days: int, database_url: str | None = None, tracker_url: str | None = None, now: datetime | None = None
) -> ErasureReport:
    """Anonymise every conversation whose last tracker event is more than ``days`` days before ``now``
    (default now): the business-DB side first (conversation-linked rows, index kept under the new id),
    RETENTION_BATCH conversations a transaction, then their tracker events (module docstring). Contacts,
    deals and quotes stay. Counts ``conversations`` and the kinds changed; nothing for ``days`` 0 or a
    missing SQLite tracker store. Raises ValueError for negative ``days``; sqlalchemy's DBAPIError when a
    database cannot be read or written (batches done stay done; a conversation whose tracker rewrite
    failed is found again by the next run)."""
    if days < 0:
        raise ValueError(f"retention_days must be 0 or more, not {days}")
    report = ErasureReport()
    engine = tracker_writer(tracker_url) if days else None
    if engine is None:
        return report
    cutoff = ((now or utcnow()) - timedelta(days=days)).timestamp()
    try:
        async with engine.connect() as connection:
            old = list(
                (
                    await connection.execute(
                        select(events.c.sender_id)
                        .where(events.c.sender_id.not_like(f"{ANONYMOUS_PREFIX}%"))
                        .group_by(events.c.sender_id)
                        .having(func.max(events.c.timestamp) < cutoff)
                    )
                ).scalars()
            )
        for start in range(0, len(old), RETENTION_BATCH):
            mapping = {cid: anonymous_id() for cid in old[start : start + RETENTION_BATCH]}
            async with db.session_scope(database_url) as session:
                await _secure_delete(session)
                await _erase_conversations(session, mapping, report.counts, retention=True)
            report.counts["tracker_events"] += await _rewrite_tracker(engine, mapping)
            report.counts["conversations"] += len(mapping)
        if old:
            await checkpoint(engine)
            await checkpoint(db.get_engine(database_url))
    finally:
        await engine.dispose()
    if old:
        log.info("retention (%d days): %s", days, report.summary())
    return report


async def run_due(database_url: str, tracker_url: str, retention_days: int, now: datetime | None = None) -> None:
    """The console's periodic erasure work (its background loop calls this every few seconds): complete
    the due pending erasures, and apply retention when it has not run in this process for a day. Never
    raises (but for cancellation): failures are logged and retried on the next call."""
    now = now or datetime.now(UTC)
    try:
        done = await complete_pending(database_url, tracker_url, now=now)
        if done.counts["completed"]:
            log.info("pending erasures completed: %s", done.summary())
        last = _retention_ran.get(database_url)
        if retention_days and (last is None or now - last >= RETENTION_INTERVAL):
            _retention_ran[database_url] = now
            await apply_retention(retention_days, database_url, tracker_url, now)
    except Exception:  # the console keeps serving; the next call tries again
        log.exception("erasure jobs failed")
