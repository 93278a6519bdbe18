"""The read model of the console's sales pages (:mod:`bot.web.console.sales`): the pipeline board, quotes,
contacts and one contact's page, queried from the business DB (``deals``, ``contacts``, ``quotes``,
``escalations`` and the conversation index ``conversations``). Read only: nothing here changes a row.

Money is formatted with :func:`bot.core.money.format_money` (stored as integer minor units + ISO 4217 code);
times are aware UTC; ages are seconds.
"""

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import ColumnElement, Row, Select, case, distinct, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.commerce.deals import STAGES
from bot.contracts import conversation_ids
from bot.core.models import Contact, Conversation, Deal, Escalation, Quote
from bot.core.money import format_money

QUOTE_STATUSES = ("draft", "sent", "accepted", "expired")
CARDS_PER_STAGE = 50  # newest deals shown in a column; its count and totals cover all of them


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


@dataclass(frozen=True)
class ContactPage:
    """One contact with, newest first, its deals (``notes``: deal id → (time, body) oldest first), the quotes
    and escalations of its conversations, and the conversations themselves (:func:`contact_conversations`)."""

    contact: Contact
    deals: list[DealCard]
    notes: dict[int, list[tuple[datetime, str]]]
    quotes: list[QuoteRow]
    escalations: list[Escalation]
    conversations: list[ConversationRow]


def utc(moment: datetime) -> datetime:
    """Aware UTC (SQLite hands back naive UTC datetimes)."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def customer_name(name: str | None, email: str | None, channel: str) -> str:
    """How a customer is shown: the name, else the e-mail, else "<channel> customer"."""
    return name or email or f"{channel} customer"


def _money(minor: int | None, currency: str) -> str | None:
    return None if minor is None else format_money(minor, currency)


# --- pipeline ----------------------------------------------------------------------------------------------


def _deals(*columns, channel: str | None) -> Select:
    query = select(*columns).select_from(Deal).join(Contact, Contact.id == Deal.contact_id)
    return query if channel is None else query.where(Deal.source_channel == channel)


async def pipeline_board(
    session: AsyncSession, channel: str | None = None, now: datetime | None = None
) -> list[StageColumn]:
    """One :class:`StageColumn` per pipeline stage in STAGES order, of all deals or those whose
    ``source_channel`` is ``channel``; ages are counted up to ``now`` (default: now)."""
    now = now or datetime.now(UTC)
    totals = await session.execute(
        _deals(Deal.stage, Deal.currency, func.count(), func.sum(Deal.amount_minor), channel=channel)
        .group_by(Deal.stage, Deal.currency)
        .order_by(Deal.currency)
    )
    counts: dict[str, int] = {}
    sums: dict[str, list[str]] = {}
    for stage, currency, count, amount in totals:
        counts[stage] = counts.get(stage, 0) + count
        if amount is not None:
            sums.setdefault(stage, []).append(format_money(amount, currency))
    columns = []
    for stage in STAGES:
        query = (
            _deals(
                Deal.id,
                Deal.contact_id,
                Contact.name,
                Contact.email,
                Contact.company,
                Deal.amount_minor,
                Deal.currency,
                Deal.source_channel,
                Deal.tags,
                Deal.created_at,
                channel=channel,
            )
            .where(Deal.stage == stage)
            .order_by(Deal.created_at.desc(), Deal.id.desc())
            .limit(CARDS_PER_STAGE)
        )
        rows = await session.execute(query)
        cards = [
            DealCard(
                deal_id,
                stage,
                contact_id,
                customer_name(name, email, source),
                company,
                _money(amount, currency),
                source,
                list(tags or []),
                utc(created),
                (now - utc(created)).total_seconds(),
            )
            for deal_id, contact_id, name, email, company, amount, currency, source, tags, created in rows
        ]
        columns.append(StageColumn(stage, counts.get(stage, 0), sums.get(stage, []), cards))
    return columns


async def deal_channels(session: AsyncSession) -> list[str]:
    """The deals' source channels, by name."""
    return list(await session.scalars(select(distinct(Deal.source_channel)).order_by(Deal.source_channel)))


# --- quotes ------------------------------------------------------------------------------------------------


def _shown_status(now: datetime) -> ColumnElement[str]:
    """The quote's status as it stands at ``now`` (as bot.commerce.quotes.expire_if_due would set it)."""
    return case((Quote.status.in_(("draft", "sent")) & (Quote.valid_until < now), "expired"), else_=Quote.status)


async def list_quotes(
    session: AsyncSession,
    *conditions: ColumnElement[bool],
    status: str | None = None,
    limit: int | None = None,
    offset: int = 0,
    now: datetime | None = None,
) -> tuple[list[QuoteRow], int]:
    """Quotes meeting ``conditions`` (and with ``status`` as it stands at ``now``), newest first:
    (``limit`` rows from ``offset``, how many there are in all). Raises ValueError for an unknown status."""
    if status is not None and status not in QUOTE_STATUSES:
        raise ValueError(f"unknown quote status {status!r}; one of {', '.join(QUOTE_STATUSES)}")
    shown = _shown_status(now or datetime.now(UTC))
    where = [*conditions, *([shown == status] if status else [])]
    total = await session.scalar(select(func.count()).select_from(Quote).where(*where)) or 0
    query = (
        select(
            Quote.id,
            Quote.number,
            Quote.contact_id,
            Contact.name,
            Contact.email,
            Contact.channel,
            Contact.company,
            shown.label("shown"),
            Quote.total_minor,
            Quote.currency,
            Quote.valid_until,
            Quote.created_at,
            Quote.token,
            Quote.conversation_id,
        )
        .outerjoin(Contact, Contact.id == Quote.contact_id)
        .where(*where)
        .order_by(Quote.created_at.desc(), Quote.id.desc())
        .limit(limit)
        .offset(offset)
    )
    rows = [
        QuoteRow(
            quote_id,
            number,
            contact_id,
            customer_name(name, email, channel) if contact_id else None,
            company,
            shown_status,
            format_money(total_minor, currency),
            utc(valid_until),
            utc(created),
            token,
            cid,
        )
        for (
            quote_id,
            number,
            contact_id,
            name,
            email,
            channel,
            company,
            shown_status,
            total_minor,
            currency,
            valid_until,
            created,
            token,
            cid,
        ) in await session.execute(query)
    ]
    return rows, total


# --- contacts ----------------------------------------------------------------------------------------------


async def list_contacts(
    session: AsyncSession, *conditions: ColumnElement[bool], limit: int | None = None, offset: int = 0
) -> tuple[list[Row], int]:
    """Contacts meeting ``conditions`` (e.g. :func:`bot.commerce.leads.contact_matches`), newest first:
    (``limit`` rows from ``offset``, how many there are in all). A row has ``id``, ``name``, ``company``,
    ``email``, ``phone``, ``channel``, ``segment``, ``created_at`` and ``deals`` (how many the contact has)."""
    deals = select(func.count()).where(Deal.contact_id == Contact.id).scalar_subquery()
    total = await session.scalar(select(func.count()).select_from(Contact).where(*conditions)) or 0
    rows = (
        await session.execute(
            select(
                Contact.id,
                Contact.name,
                Contact.company,
                Contact.email,
                Contact.phone,
                Contact.channel,
                Contact.segment,
                Contact.created_at,
                deals.label("deals"),
            )
            .where(*conditions)
            .order_by(Contact.created_at.desc(), Contact.id.desc())
            .limit(limit)
            .offset(offset)
        )
    ).all()
    return list(rows), total


def own_conversation_id(contact: Contact) -> str:
    """The id of the conversation the contact was first seen in: the sender id itself when it is a
    conversation id of the contact's channel (as Rasa's sender ids are) or the channel is none of
    bot.contracts.conversation_ids.CHANNELS, else ``<channel>-<sender id>``."""
    parsed = conversation_ids.parse(contact.sender_id)
    if (parsed and parsed[0] == contact.channel) or contact.channel not in conversation_ids.CHANNELS:
        return contact.sender_id
    return conversation_ids.make(contact.channel, contact.sender_id)


async def contact_conversations(session: AsyncSession, contact: Contact, also: set[str]) -> list[ConversationRow]:
    """Every conversation of ``contact`` on any channel, latest first: those the index links to the contact,
    the contact's own (:func:`own_conversation_id`) and the conversation ids in ``also`` (e.g. of its quotes);
    the ones the index does not have yet come last, by id."""
    wanted = {own_conversation_id(contact), *also}
    indexed = (
        await session.scalars(
            select(Conversation)
            .where(or_(Conversation.contact_id == contact.id, Conversation.conversation_id.in_(wanted)))
            .order_by(Conversation.last_message_at.desc())
        )
    ).all()
    rows = [
        ConversationRow(
            c.conversation_id,
            c.channel,
            True,
            utc(c.started_at),
            utc(c.last_message_at),
            c.turns,
            c.furthest_stage,
            c.escalated,
            c.quote_created,
        )
        for c in indexed
    ]
    missing = sorted(wanted - {c.conversation_id for c in indexed})
    return rows + [
        ConversationRow(cid, (conversation_ids.parse(cid) or (contact.channel, ""))[0], False) for cid in missing
    ]


async def contact_page(session: AsyncSession, contact_id: int, now: datetime | None = None) -> ContactPage | None:
    """The contact ``contact_id`` with its deals, quotes, escalations and conversations (ages up to ``now``,
    default now; quote statuses as they stand then), or None if there is no such contact."""
    now = now or datetime.now(UTC)
    contact = await session.get(Contact, contact_id)
    if contact is None:
        return None
    quoted = set(await session.scalars(select(Quote.conversation_id).where(Quote.contact_id == contact.id)))
    conversations = await contact_conversations(session, contact, quoted)
    ids = [row.conversation_id for row in conversations]
    quotes, _ = await list_quotes(session, or_(Quote.contact_id == contact.id, Quote.conversation_id.in_(ids)), now=now)
    escalations = (
        await session.scalars(
            select(Escalation)
            .where(Escalation.conversation_id.in_(ids))
            .order_by(Escalation.created_at.desc(), Escalation.id.desc())
        )
    ).all()
    deals = sorted(contact.deals, key=lambda d: (utc(d.created_at), d.id), reverse=True)
    cards = [
        DealCard(
            d.id,
            d.stage,
            contact.id,
            customer_name(contact.name, contact.email, d.source_channel),
            contact.company,
            _money(d.amount_minor, d.currency),
            d.source_channel,
            list(d.tags or []),
            utc(d.created_at),
            (now - utc(d.created_at)).total_seconds(),
        )
        for d in deals
    ]
    notes = {d.id: [(utc(n.created_at), n.body) for n in d.notes] for d in deals}
    return ContactPage(contact, cards, notes, quotes, list(escalations), conversations)
