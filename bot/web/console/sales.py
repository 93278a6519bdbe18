"""The console's sales views, from the business DB (``deals``, ``contacts``, ``quotes``, ``escalations`` and
the conversation index ``conversations``):

- ``/console/pipeline``: the deals as a board by pipeline stage, each column with its deal count and total
  amount per currency; ``?channel=`` keeps the deals of one source channel. A manager moves a deal to another
  stage (``POST /console/pipeline/deals/<id>/stage``), which adds a deal note and queues the deal for the
  external CRM (:func:`bot.crm.sync_deal`).
- ``/console/quotes``: quotes newest first, ``?status=`` and ``?page=``.
- ``/console/contacts``: contacts newest first, ``?q=`` searches name, email, phone and company (words); ``?page=``.
- ``/console/contacts/<id>``: one contact with their deals, quotes, escalations and conversations.

Money is shown with :func:`bot.core.money.format_money` (stored as integer minor units + ISO 4217 code); times
are UTC. A bad filter or page number gets 400 and is logged.
"""

import logging
import math
from dataclasses import dataclass
from datetime import datetime, timezone

from aiohttp import web
from sqlalchemy import ColumnElement, Select, case, distinct, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from yarl import URL

from bot import crm

from bot.core import audit
from bot.web.chat import settings_key
from bot.core.db import session_scope
from bot.commerce.leads import contact_matches
from bot.web.console import PREFIX, USER, flash, render, requires
from bot.core.models import Contact, Conversation, Deal, DealNote, Escalation, Quote
from bot.core.money import format_money

log = logging.getLogger(__name__)

routes = web.RouteTableDef()

STAGES = ("new", "qualified", "proposal", "negotiation", "won", "lost")  # pipeline stages, in order
QUOTE_STATUSES = ("draft", "sent", "accepted", "expired")
CARDS_PER_STAGE = 50  # newest deals shown in a column; its count and totals cover all of them
PER_PAGE = 50
MAX_QUERY_CHARS = 200
PIPELINE = f"{PREFIX}/pipeline"


@dataclass(frozen=True)
class DealCard:
    """A deal on the pipeline board or a contact's page. ``customer``: the contact's name, else email, else
    "<channel> customer"; ``amount``: formatted money or None; ``age_s``: seconds since it was created."""

    id: int
    stage: str
    contact_id: int
    customer: str
    company: str | None
    amount: str | None
    channel: str
    tags: list[str]
    created_at: datetime
    age_s: float


@dataclass(frozen=True)
class StageColumn:
    """One pipeline stage: all its deals counted, ``totals`` their amounts (one formatted sum per currency,
    deals without an amount left out), ``cards`` the CARDS_PER_STAGE newest."""

    stage: str
    count: int
    totals: list[str]
    cards: list[DealCard]


@dataclass(frozen=True)
class QuoteRow:
    """A quote as listed. ``status`` as it stands now: a draft or sent quote past ``valid_until`` shows
    ``expired`` even before anything has marked it so; ``total``: formatted, VAT included."""

    id: int
    number: str
    contact_id: int | None
    customer: str | None
    company: str | None
    status: str
    total: str
    valid_until: datetime
    created_at: datetime
    token: str
    conversation_id: str


@dataclass(frozen=True)
class ConversationRow:
    """A conversation of a contact; ``indexed`` False (and the figures empty) when the conversation index
    does not have it yet."""

    conversation_id: str
    channel: str
    indexed: bool
    started_at: datetime | None = None
    last_message_at: datetime | None = None
    turns: int = 0
    furthest_stage: str | None = None
    escalated: bool = False
    quote_created: bool = False


class BadRequest(ValueError):
    """A filter, page number or form field the sales views cannot use; the message says which and why."""


async def _bad_request(request: web.Request, error: BadRequest) -> web.Response:
    log.warning("console %s %s refused for %s: %s", request.method, request.path_qs, request[USER].email, error)
    return await render(request, "manager/base.html", status=400, title="Bad request", message=f"{error}.")


def _page_number(request: web.Request) -> int:
    """``?page=`` as a whole number ≥ 1 (default 1); raises BadRequest."""
    raw = request.query.get("page", "1")
    if not raw.isdigit() or int(raw) < 1:
        raise BadRequest(f"page must be a whole number from 1, not {raw!r}")
    return int(raw)


def _utc(moment: datetime) -> datetime:
    """Aware UTC (SQLite hands back naive UTC datetimes)."""
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)


def _customer(name: str | None, email: str | None, channel: str) -> str:
    return name or email or f"{channel} customer"


def _money(minor: int | None, currency: str) -> str | None:
    return None if minor is None else format_money(minor, currency)


# --- pipeline ----------------------------------------------------------------------------------------------


def _deals(*columns, channel: str | None) -> Select:
    query = select(*columns).select_from(Deal).join(Contact, Contact.id == Deal.contact_id)
    return query if channel is None else query.where(Deal.source_channel == channel)


async def pipeline_board(session: AsyncSession, channel: str | None = None,
                         now: datetime | None = None) -> list[StageColumn]:
    """One :class:`StageColumn` per pipeline stage in STAGES order, of all deals or those whose
    ``source_channel`` is ``channel``; ages are counted up to ``now`` (default: now)."""
    now = now or datetime.now(timezone.utc)
    totals = await session.execute(_deals(Deal.stage, Deal.currency, func.count(), func.sum(Deal.amount_minor),
                                          channel=channel).group_by(Deal.stage, Deal.currency).order_by(Deal.currency))
    counts: dict[str, int] = {}
    sums: dict[str, list[str]] = {}
    for stage, currency, count, amount in totals:
        counts[stage] = counts.get(stage, 0) + count
        if amount is not None:
            sums.setdefault(stage, []).append(format_money(amount, currency))
    columns = []
    for stage in STAGES:
        query = (_deals(Deal.id, Deal.contact_id, Contact.name, Contact.email, Contact.company, Deal.amount_minor,
                        Deal.currency, Deal.source_channel, Deal.tags, Deal.created_at, channel=channel)
                 .where(Deal.stage == stage).order_by(Deal.created_at.desc(), Deal.id.desc()).limit(CARDS_PER_STAGE))
        cards = [DealCard(deal_id, stage, contact_id, _customer(name, email, source), company, _money(amount, currency),
                          source, list(tags or []), _utc(created), (now - _utc(created)).total_seconds())
                 for deal_id, contact_id, name, email, company, amount, currency, source, tags, created
                 in await session.execute(query)]
        columns.append(StageColumn(stage, counts.get(stage, 0), sums.get(stage, []), cards))
    return columns


async def deal_channels(session: AsyncSession) -> list[str]:
    """The deals' source channels, by name."""
    return list(await session.scalars(select(distinct(Deal.source_channel)).order_by(Deal.source_channel)))


@routes.get("/pipeline")
@requires("manager")
async def pipeline(request: web.Request) -> web.Response:
    """The pipeline board; ``?channel=`` one of the deals' source channels (400 for another)."""
    channel = request.query.get("channel") or None
    async with session_scope(request.app[settings_key].database_url) as db:
        channels = await deal_channels(db)
        if channel is not None and channel not in channels:
            return await _bad_request(request, BadRequest(
                f"no deal comes from channel {channel!r}; the deals' channels are: {', '.join(channels) or 'none'}"))
        columns = await pipeline_board(db, channel)
    return await render(request, "manager/pipeline.html", title="Pipeline", columns=columns, stages=STAGES,
                        channels=channels, channel=channel)


@routes.post(r"/pipeline/deals/{deal_id:\d+}/stage")
@requires("manager")
async def move_deal(request: web.Request) -> web.Response:
    """Form fields ``stage`` (one of STAGES) and ``channel`` (the board's filter, to return to): moves the
    deal, notes who moved it (also in the audit log) and queues it for the external CRM, then 303 back to
    the board. 400 for an unknown stage, 404 for an unknown deal; neither changes anything."""
    form = await request.post()
    stage, channel = str(form.get("stage", "")), str(form.get("channel", ""))
    user = request[USER]
    if stage not in STAGES:
        return await _bad_request(request, BadRequest(f"{stage!r} is not a pipeline stage; one of {', '.join(STAGES)}"))
    async with session_scope(request.app[settings_key].database_url) as db:
        deal = await db.get(Deal, int(request.match_info["deal_id"]))
        if deal is None:
            raise web.HTTPNotFound(text="No such deal.")
        previous = deal.stage
        if previous != stage:
            note = f"Stage moved from {previous} to {stage} by {user.email} in the console."
            deal.stage = stage
            deal.notes.append(DealNote(body=note))
            await db.flush()
            await crm.sync_deal(db, deal, note)
            audit.record(db, user, "deal.stage", "deal", deal.id, **{"from": previous, "to": stage})
    if previous == stage:
        await flash(request, f"Deal #{deal.id} is already at {stage}.")
    else:
        log.info("deal %s moved from %s to %s by %s", deal.id, previous, stage, user.email)
        customer = _customer(deal.contact.name, deal.contact.email, deal.source_channel)
        await flash(request, f"Deal #{deal.id} ({customer}) moved from {previous} to {stage}.")
    raise web.HTTPSeeOther(str(URL(PIPELINE).with_query({"channel": channel} if channel else {})))


# --- quotes ------------------------------------------------------------------------------------------------


def _shown_status(now: datetime) -> ColumnElement[str]:
    """The quote's status as it stands at ``now`` (as bot.commerce.quotes.expire_if_due would set it)."""
    return case((Quote.status.in_(("draft", "sent")) & (Quote.valid_until < now), "expired"), else_=Quote.status)


async def list_quotes(session: AsyncSession, *conditions: ColumnElement[bool], status: str | None = None,
                      limit: int | None = None, offset: int = 0,
                      now: datetime | None = None) -> tuple[list[QuoteRow], int]:
    """Quotes meeting ``conditions`` (and with ``status`` as it stands at ``now``), newest first:
    (``limit`` rows from ``offset``, how many there are in all). Raises ValueError for an unknown status."""
    if status is not None and status not in QUOTE_STATUSES:
        raise ValueError(f"unknown quote status {status!r}; one of {', '.join(QUOTE_STATUSES)}")
    shown = _shown_status(now or datetime.now(timezone.utc))
    where = [*conditions, *([shown == status] if status else [])]
    total = await session.scalar(select(func.count()).select_from(Quote).where(*where))
    query = (select(Quote.id, Quote.number, Quote.contact_id, Contact.name, Contact.email, Contact.channel,
                    Contact.company, shown.label("shown"), Quote.total_minor, Quote.currency, Quote.valid_until,
                    Quote.created_at, Quote.token, Quote.conversation_id)
             .outerjoin(Contact, Contact.id == Quote.contact_id).where(*where)
             .order_by(Quote.created_at.desc(), Quote.id.desc()).limit(limit).offset(offset))
    rows = [QuoteRow(quote_id, number, contact_id, _customer(name, email, channel) if contact_id else None, company,
                     shown_status, format_money(total_minor, currency), _utc(valid_until), _utc(created), token, cid)
            for (quote_id, number, contact_id, name, email, channel, company, shown_status, total_minor, currency,
                 valid_until, created, token, cid) in await session.execute(query)]
    return rows, total


@routes.get("/quotes")
@requires("manager")
async def quotes_page(request: web.Request) -> web.Response:
    """Quotes newest first, PER_PAGE a page; ``?status=`` one of QUOTE_STATUSES, ``?page=`` from 1 (400 else)."""
    status = request.query.get("status") or None
    try:
        page = _page_number(request)
        if status is not None and status not in QUOTE_STATUSES:
            raise BadRequest(f"{status!r} is not a quote status; one of {', '.join(QUOTE_STATUSES)}")
    except BadRequest as exc:
        return await _bad_request(request, exc)
    async with session_scope(request.app[settings_key].database_url) as db:
        rows, total = await list_quotes(db, status=status, limit=PER_PAGE, offset=(page - 1) * PER_PAGE)
    return await render(request, "manager/quotes.html", title="Quotes", quotes=rows, total=total, page=page,
                        pages=max(1, math.ceil(total / PER_PAGE)), statuses=QUOTE_STATUSES, shown_status=status,
                        query={"status": status} if status else {})


# --- contacts ----------------------------------------------------------------------------------------------


@routes.get("/contacts")
@requires("manager")
async def contacts_page(request: web.Request) -> web.Response:
    """Contacts newest first, PER_PAGE a page; ``?q=`` (up to MAX_QUERY_CHARS characters) searches name,
    email, phone and company by words and word prefixes, or a whole phone number (bot.commerce.leads.contact_matches);
    ``?page=`` from 1. 400 for a longer query or a bad page."""
    text = request.query.get("q", "").strip()
    try:
        page = _page_number(request)
        if len(text) > MAX_QUERY_CHARS:
            raise BadRequest(f"the search is longer than {MAX_QUERY_CHARS} characters")
    except BadRequest as exc:
        return await _bad_request(request, exc)
    where = [contact_matches(text, request.app[settings_key].default_phone_region)] if text else []
    deals = select(func.count()).where(Deal.contact_id == Contact.id).scalar_subquery()
    async with session_scope(request.app[settings_key].database_url) as db:
        total = await db.scalar(select(func.count()).select_from(Contact).where(*where))
        rows = (await db.execute(select(Contact.id, Contact.name, Contact.company, Contact.email, Contact.phone,
                                        Contact.channel, Contact.segment, Contact.created_at, deals.label("deals"))
                                 .where(*where).order_by(Contact.created_at.desc(), Contact.id.desc())
                                 .limit(PER_PAGE).offset((page - 1) * PER_PAGE))).all()
    return await render(request, "manager/contacts.html", title="Contacts", contacts=rows, total=total, page=page,
                        pages=max(1, math.ceil(total / PER_PAGE)), q=text, query={"q": text} if text else {})


def own_conversation_id(contact: Contact) -> str:
    """The id of the conversation the contact was first seen in: ``<channel>-<sender id>``, which is the
    sender id itself when that already carries the channel prefix (as Rasa's sender ids do)."""
    prefix = f"{contact.channel}-"
    return contact.sender_id if contact.sender_id.startswith(prefix) else prefix + contact.sender_id


async def contact_conversations(session: AsyncSession, contact: Contact, also: set[str]) -> list[ConversationRow]:
    """Every conversation of ``contact`` on any channel, latest first: those the index links to the contact,
    the contact's own (:func:`own_conversation_id`) and the conversation ids in ``also`` (e.g. of its quotes);
    the ones the index does not have yet come last, by id."""
    wanted = {own_conversation_id(contact), *also}
    indexed = (await session.scalars(select(Conversation)
                                     .where(or_(Conversation.contact_id == contact.id,
                                                Conversation.conversation_id.in_(wanted)))
                                     .order_by(Conversation.last_message_at.desc()))).all()
    rows = [ConversationRow(c.conversation_id, c.channel, True, _utc(c.started_at), _utc(c.last_message_at), c.turns,
                            c.furthest_stage, c.escalated, c.quote_created) for c in indexed]
    missing = sorted(wanted - {c.conversation_id for c in indexed})
    return rows + [ConversationRow(cid, cid.split("-", 1)[0] if "-" in cid else contact.channel, False)
                   for cid in missing]


@routes.get(r"/contacts/{contact_id:\d+}")
@requires("manager")
async def contact_page(request: web.Request) -> web.Response:
    """One contact: details, deals (with notes), quotes, escalations and conversations; 404 if unknown."""
    now = datetime.now(timezone.utc)
    async with session_scope(request.app[settings_key].database_url) as db:
        contact = await db.get(Contact, int(request.match_info["contact_id"]))
        if contact is None:
            raise web.HTTPNotFound(text="No such contact.")
        quoted = set(await db.scalars(select(Quote.conversation_id).where(Quote.contact_id == contact.id)))
        conversations = await contact_conversations(db, contact, quoted)
        conversation_ids = [row.conversation_id for row in conversations]
        quotes, _ = await list_quotes(db, or_(Quote.contact_id == contact.id,
                                              Quote.conversation_id.in_(conversation_ids)), now=now)
        escalations = (await db.scalars(select(Escalation).where(Escalation.conversation_id.in_(conversation_ids))
                                        .order_by(Escalation.created_at.desc(), Escalation.id.desc()))).all()
        deals = sorted(contact.deals, key=lambda d: (_utc(d.created_at), d.id), reverse=True)
        cards = [DealCard(d.id, d.stage, contact.id, _customer(contact.name, contact.email, d.source_channel),
                          contact.company, _money(d.amount_minor, d.currency), d.source_channel, list(d.tags or []),
                          _utc(d.created_at), (now - _utc(d.created_at)).total_seconds()) for d in deals]
        notes = {d.id: [(_utc(n.created_at), n.body) for n in d.notes] for d in deals}
    return await render(request, "manager/contact.html", title=_customer(contact.name, contact.email, contact.channel),
                        contact=contact, deals=cards, notes=notes, quotes=quotes, escalations=escalations,
                        conversations=conversations)
