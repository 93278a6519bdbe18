"""Conversations for the manager console: an index of Rasa's tracker store in the business DB, the
filtered conversation list, a conversation's transcript, and managers' tags, flags and reviews.

The index (tables ``conversations`` and ``conversation_messages``, see :mod:`bot.core.models`) is kept by
:func:`refresh`, which folds the tracker events with ids above the watermark (``index_watermarks``
row ``conversations``) into it. Rasa only ever appends events (:mod:`bot.core.tracker`), so every
figure of a conversation is a running aggregate; a conversation is one Rasa sender id across all its
sessions. Lists come from the index; a transcript is read from the tracker store itself (every
detail) plus the business DB (knowledge answers with their LLM cost and feedback).

How the index reads the events:

- ``channel``: the ``input_channel`` of the latest customer message (Rasa's ``rest``/``socketio`` →
  ``web``, else the channel's name); before any, the conversation id's prefix (``web-…``,
  ``telegram-…``, ``whatsapp-…``), else ``other``.
- ``turns``: customer messages; ``min_confidence``/``fallback_count``: their intent confidences and
  ``nlu_fallback`` classifications. A message the LLM understood (``actions/understanding.py``) is re-added
  to the tracker with ``parse_data["understanding"]``; that copy is no new turn or message row.
- ``furthest_stage``: the ``sales_stage`` slot value of the highest rank ever set (ranks 1-8 in the
  order of :data:`bot.core.business.SALES_STAGES`, ``handoff`` last).
- ``escalated``: an ``action_escalate`` action or a ``pause`` event at any time; ``paused``: a
  ``pause`` not followed by ``resume``, ``session_started`` or ``restart`` (each of which unpauses a
  Rasa tracker).
- ``quote_created``: a row in the business DB's ``quotes`` for the conversation. The quote row is
  committed by ``action_send_quote`` before Rasa stores the action's events, so it is there when those
  events are indexed; a quote made outside the conversation shows with its next event.
- ``contact_id``: the ``contact_id`` slot (set when a lead is saved), else the contact with the
  conversation's channel and id (``contacts.channel``/``sender_id``).
- ``language``: the latest ``language`` slot value (ISO 639-1; Rasa sets it when the customer's language
  changes), read as the bot reads it (:func:`served_language`): the business's default language while never
  set, or set to None or to a language the business does not serve.
- ``active_loop``: the form the conversation is in (the latest ``active_loop`` event's name; None after a form
  ends, a ``restart`` or a ``session_started``), for the follow-up that nudges a half-finished lead form.
- ``conversation_messages``: every customer message (``speaker`` customer, with intent and
  confidence) and every bot message with text (``bot``, or ``manager`` for a bot event whose
  metadata carries ``manager``: the replying manager's email).
"""

import asyncio
import logging
import math
import re
import weakref
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from sqlalchemy import delete, distinct, func, insert, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from bot.commerce.leads import contact_matches
from bot.contracts import conversation_ids
from bot.core.business import SALES_STAGES, get_company
from bot.core.models import (
    Contact,
    Conversation,
    ConversationMessage,
    ConversationReview,
    ConversationScore,
    ConversationTag,
    IndexWatermark,
    KnowledgeAnswer,
    Quote,
)
from bot.core.settings import get_settings
from bot.core.tracker import TrackerEvent, TrackerReader

log = logging.getLogger(__name__)

WATERMARK = "conversations"
BATCH_SIZE = 5000  # tracker events per transaction of the index
# PostgreSQL hands out ids when rows are inserted, so concurrent Rasa workers may commit id 100 after
# id 101 is visible: each batch there re-reads this many events below the watermark (events a
# conversation already has are skipped). SQLite has a single writer: ids become visible in order.
REREAD = {"postgresql": 500}
STAGE_RANK = {stage: rank for rank, stage in enumerate(SALES_STAGES, start=1)}
ESCALATE_ACTION = "action_escalate"
FALLBACK_INTENT = "nlu_fallback"
CONSOLE_PATH = "/console/conversations"  # the console's conversation pages (bot.web.console.conversations)


def page_url(conversation_id: str) -> str:
    """The path of ``conversation_id``'s transcript page in the console (prefix it with ``public_url`` for a link)."""
    return f"{CONSOLE_PATH}/{quote(conversation_id, safe='')}"


UNPAUSING_EVENTS = ("resume", "session_started", "restart")
MAX_PER_PAGE = 100
SORTS = ("newest", "score", "-score")
PREVIEW_CHARS = 200
MAX_NOTE_CHARS = 2000
TAG = re.compile(r"[\w-]{1,64}")
MAX_TOTAL = 30  # a scorecard's highest total (bot.review.scoring: 15 criteria of 0–2)

# One refresh at a time per event loop (a process has one; tests run many); PostgreSQL also locks the watermark row.
_refreshing: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock]" = weakref.WeakKeyDictionary()


class UnknownConversation(LookupError):
    """No conversation with that id: not in the tracker store (transcript) or not indexed yet (tags, reviews)."""


class InvalidTag(ValueError):
    """A tag that is not 1–64 letters, digits, ``-`` or ``_``."""


class InvalidFilter(ValueError):
    """A list filter or page outside what :func:`list_conversations` accepts; the message says which."""


class InvalidReview(ValueError):
    """A review without a reviewer email, or with a note over MAX_NOTE_CHARS."""


# --- index -------------------------------------------------------------------------------------------------


def channel_of(input_channel: str | None, conversation_id: str) -> str:
    """The channel of a conversation: from Rasa's ``input_channel`` (``rest``/``socketio`` → ``web``),
    else the channel its id names (``web``, ``telegram``, ``whatsapp``), else ``other``
    (bot.contracts.conversation_ids)."""
    if input_channel:
        return conversation_ids.channel_from_input(input_channel)[:32]
    return conversation_ids.channel_from_id(conversation_id)


def served_language(value: Any) -> str:
    """The language a ``language`` slot value stands for, as the bot reads it (:func:`bot.texts.i18n.current`):
    the value when it is one of the business's ``languages`` (knowledge/company.yml), else its
    ``default_language`` (also for an unset slot, None)."""
    company = get_company()
    return value if value in company.languages else company.default_language


def message_languages(events: Iterable[TrackerEvent]) -> dict[int, str]:
    """The language of every customer message of one conversation's ``events`` (in id order): user event id →
    the ``language`` slot's value right after the message, i.e. once the events up to the next customer message
    are applied (Rasa stores a message's SlotSet after it), read by :func:`served_language`."""
    languages: dict[int, str] = {}
    value, message = None, None
    for event in events:
        if event.type_name == "user":
            if message is not None:
                languages[message] = served_language(value)
            message = event.id
        elif event.type_name == "slot" and event.name == "language":
            value = event.data.get("value")
    if message is not None:
        languages[message] = served_language(value)
    return languages


def _utc(timestamp: float) -> datetime:
    return datetime.fromtimestamp(timestamp, UTC)


def _aware(moment: datetime | None) -> datetime | None:
    """A datetime read back from the index: SQLite returns naive UTC."""
    return moment if moment is None or moment.tzinfo else moment.replace(tzinfo=UTC)


@dataclass
class _Fold:
    """What a run of new events adds to one conversation's index row."""

    conversation_id: str
    first_at: float
    last_event_id: int = 0
    last_message_at: float | None = None
    input_channel: str | None = None
    turns: int = 0
    stage_rank: int = 0
    escalated: bool = False
    paused: bool | None = None  # None: no pause, resume or reset among these events
    min_confidence: float | None = None
    fallback_count: int = 0
    contact_id: int | None = None  # the latest ``contact_id`` slot value
    language: str | None = None  # the latest ``language`` slot value, read by served_language
    active_loop: str | None = None
    loop_changed: bool = False  # an active_loop, restart or session_started event is among these events
    events: int = 0
    messages: list[dict[str, Any]] = field(default_factory=list)

    def add(self, event: TrackerEvent) -> None:
        self.events += 1
        self.last_event_id = event.id
        data = event.data
        if event.type_name == "user" and (data.get("parse_data") or {}).get("understanding"):
            pass  # the LLM's reading of a message already indexed (actions/understanding.py): not another turn
        elif event.type_name == "user":
            intent = (data.get("parse_data") or {}).get("intent") or {}
            confidence = intent.get("confidence")
            self.turns += 1
            self.input_channel = data.get("input_channel") or self.input_channel
            self.fallback_count += intent.get("name") == FALLBACK_INTENT
            if confidence is not None and (self.min_confidence is None or confidence < self.min_confidence):
                self.min_confidence = confidence
            self._message(event, "customer", data.get("text") or "", intent.get("name"), confidence)
        elif event.type_name == "bot" and data.get("text") is not None:
            manager = (data.get("metadata") or {}).get("manager")
            self._message(event, "manager" if manager else "bot", data["text"], None, None)
        elif event.type_name == "action" and event.name == ESCALATE_ACTION:
            self.escalated = True
        elif event.type_name == "slot" and event.name == "sales_stage":
            self.stage_rank = max(self.stage_rank, STAGE_RANK.get(data.get("value"), 0))
        elif event.type_name == "slot" and event.name == "contact_id" and data.get("value") is not None:
            try:
                self.contact_id = int(data["value"])
            except (TypeError, ValueError):
                log.warning("conversation %s: slot contact_id %r is no contact id", self.conversation_id, data["value"])
        elif event.type_name == "slot" and event.name == "language":
            self.language = served_language(data.get("value"))
        elif event.type_name == "active_loop":
            self.active_loop, self.loop_changed = data.get("name"), True
        elif event.type_name == "pause":
            self.escalated = self.paused = True
        elif event.type_name in UNPAUSING_EVENTS:
            self.paused = False
            if event.type_name != "resume":
                self.active_loop, self.loop_changed = None, True

    def _message(self, event: TrackerEvent, speaker: str, text: str, intent: str | None, confidence: float | None):
        # Every customer message becomes a row, keyed by its event id: two refreshes indexing the same
        # events at once (two console processes on SQLite) fail on the primary key instead of counting
        # turns and fallbacks twice.
        self.last_message_at = event.timestamp
        self.messages.append(
            {
                "id": event.id,
                "conversation_id": self.conversation_id,
                "timestamp": _utc(event.timestamp),
                "speaker": speaker,
                "text": text,
                "intent": intent,
                "confidence": confidence,
            }
        )


def _fold(events: list[TrackerEvent], indexed_up_to: dict[str, int]) -> dict[str, _Fold]:
    """Fold ``events`` per conversation, skipping those a conversation has already indexed (ids up to
    ``indexed_up_to[conversation id]``)."""
    folds: dict[str, _Fold] = {}
    for event in events:
        if event.id <= indexed_up_to.get(event.sender_id, 0):
            continue
        fold = folds.get(event.sender_id)
        if fold is None:
            fold = folds[event.sender_id] = _Fold(event.sender_id, event.timestamp)
        fold.add(event)
    return folds


async def refresh(tracker: TrackerReader, session: AsyncSession, batch_size: int = BATCH_SIZE) -> int:
    """Bring the conversation index up to date with the tracker store and return how many new events it
    read. When nothing is new this costs one query on the tracker store's primary key (plus reading the
    watermark row); otherwise events are read in id order, ``batch_size`` at a time, and each batch is
    committed together with the watermark (so a long first run neither holds the business DB's write
    lock for long nor loses its progress). ``session`` must have no pending work: it is committed.
    Call it before listing (a few ms when little is new) or periodically; the first run over a large
    store takes seconds (about 25,000 events/s on 2 cores: bench/console_list.py), so start it with the
    console rather than in a page request. Raises TrackerStoreUnavailable when the tracker store cannot
    be read (batches already committed stay; the rest follows on the next call)."""
    reread = REREAD.get(tracker.dialect, 0)
    if batch_size <= reread:
        raise ValueError(f"batch_size must exceed {reread}")
    read = 0
    async with _refreshing.setdefault(asyncio.get_running_loop(), asyncio.Lock()):
        while True:
            mark = (
                await session.scalars(select(IndexWatermark).where(IndexWatermark.name == WATERMARK).with_for_update())
            ).one()  # the row comes with migration 0006
            newest = await tracker.last_event_id()
            if newest <= mark.last_event_id:
                if newest < mark.last_event_id:
                    log.warning(
                        "the tracker store ends at event %d, the index at %d: was the store replaced?",
                        newest,
                        mark.last_event_id,
                    )
                await session.commit()
                return read
            events = await tracker.events_after(max(mark.last_event_id - reread, 0), batch_size)
            read += await _index(session, events)
            mark.last_event_id = max(mark.last_event_id, events[-1].id)
            await session.commit()
            log.debug("conversation index: up to tracker event %d", mark.last_event_id)


async def _index(session: AsyncSession, events: list[TrackerEvent]) -> int:
    """Fold one batch of events into the index (without committing); the number of events new to it."""
    ids = list({event.sender_id for event in events})
    known = {
        row.conversation_id: row
        for row in (await session.scalars(select(Conversation).where(Conversation.conversation_id.in_(ids)))).all()
    }
    folds = await asyncio.to_thread(_fold, events, {cid: row.last_event_id for cid, row in known.items()})
    unquoted = [cid for cid in folds if cid not in known or not known[cid].quote_created]
    quoted = (
        set(
            (
                await session.scalars(
                    select(distinct(Quote.conversation_id)).where(Quote.conversation_id.in_(unquoted))
                )
            ).all()
        )
        if unquoted
        else set()
    )
    rows = {}
    for cid, fold in folds.items():
        row = known.get(cid)
        if row is None:
            row = Conversation(
                conversation_id=cid,
                channel=channel_of(None, cid),
                started_at=_utc(fold.first_at),
                last_message_at=_utc(fold.first_at),
                turns=0,
                stage_rank=0,
                escalated=False,
                quote_created=False,
                paused=False,
                fallback_count=0,
                language=served_language(None),
                last_event_id=0,
            )
            session.add(row)
        _merge(row, fold, cid in quoted)
        rows[cid] = row
    await _link_contacts(session, rows, folds)
    await session.flush()
    messages = [message for fold in folds.values() for message in fold.messages]
    if messages:
        await session.execute(insert(ConversationMessage.__table__), messages)
    return sum(fold.events for fold in folds.values())


def _merge(row: Conversation, fold: _Fold, quoted: bool) -> None:
    """Add ``fold`` to the conversation's index row (all but the contact)."""
    if fold.input_channel:
        row.channel = channel_of(fold.input_channel, row.conversation_id)
    if fold.last_message_at is not None:
        row.last_message_at = max(_aware(row.last_message_at), _utc(fold.last_message_at))
    row.turns += fold.turns
    if fold.stage_rank > row.stage_rank:
        row.stage_rank, row.furthest_stage = fold.stage_rank, SALES_STAGES[fold.stage_rank - 1]
    row.escalated = row.escalated or fold.escalated
    row.paused = row.paused if fold.paused is None else fold.paused
    if fold.min_confidence is not None and (row.min_confidence is None or fold.min_confidence < row.min_confidence):
        row.min_confidence = fold.min_confidence
    row.fallback_count += fold.fallback_count
    row.quote_created = row.quote_created or quoted
    row.language = fold.language or row.language
    if fold.loop_changed:
        row.active_loop = fold.active_loop
    row.last_event_id = fold.last_event_id


async def _link_contacts(session: AsyncSession, rows: dict[str, Conversation], folds: dict[str, _Fold]) -> None:
    """Set the contact of the folded conversations: the one their new ``contact_id`` slot names (if it
    exists), else, for those still without one, the contact with their channel and sender id."""
    named = {cid: fold.contact_id for cid, fold in folds.items() if fold.contact_id is not None}
    if named:
        existing = set((await session.scalars(select(Contact.id).where(Contact.id.in_(set(named.values()))))).all())
        for cid, contact_id in named.items():
            if contact_id in existing:
                rows[cid].contact_id = contact_id
            else:
                log.warning("conversation %s: slot contact_id %s names no contact", cid, contact_id)
    unlinked = [cid for cid, row in rows.items() if row.contact_id is None]
    if unlinked:
        keys = [(rows[cid].channel, cid) for cid in unlinked]
        query = select(Contact.id, Contact.sender_id).where(tuple_(Contact.channel, Contact.sender_id).in_(keys))
        for contact_id, sender_id in (await session.execute(query)).all():
            rows[sender_id].contact_id = contact_id


# --- list --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ContactInfo:
    """The customer of a conversation, from ``contacts`` (phone in E.164)."""

    id: int
    name: str | None
    company: str | None
    email: str | None
    phone: str | None


@dataclass(frozen=True)
class ConversationSummary:
    """One conversation as the index has it. Times are timezone-aware (UTC). ``furthest_stage``: a value
    of SALES_STAGES or None; ``min_confidence``: 0–1 or None (no customer message); ``language``: the
    customer's language (ISO 639-1, see :func:`served_language`); ``tags`` sorted;
    ``flagged``/``reviewed_at``/``reviewed_by``/``note``: the managers' review (False/None without one);
    ``preview``: the text of the latest message (customer, bot or manager), at most PREVIEW_CHARS
    characters, "" when there is none; ``score``: the quality scorecard's total (0–30,
    :mod:`bot.review.scoring`), None while the conversation is not scored."""

    conversation_id: str
    channel: str
    contact: ContactInfo | None
    started_at: datetime
    last_message_at: datetime
    turns: int
    furthest_stage: str | None
    escalated: bool
    quote_created: bool
    paused: bool
    min_confidence: float | None
    fallback_count: int
    language: str
    tags: list[str]
    flagged: bool
    reviewed_at: datetime | None
    reviewed_by: str | None
    note: str | None
    preview: str
    score: int | None = None


@dataclass(frozen=True)
class ConversationFilters:
    """Filters of the conversation list; None (or "" for text) means no filter, and all given must hold.

    - ``channel``: exactly (``web``, ``telegram``, ``whatsapp``, …).
    - ``customer``: words that start words of the contact's name, email, company or phone, or the
      contact's phone number (:func:`bot.commerce.leads.contact_matches`: the contact is encrypted, so no substrings).
    - ``since``/``until``: the latest message at or after ``since`` and before ``until``
      (timezone-aware datetimes).
    - ``stage``: the furthest sales stage is exactly this one; ``min_stage``: it ranks at least as far
      (``handoff`` ranks after ``closing``). Values of SALES_STAGES.
    - ``escalated``, ``quote_created``: the index's flags are this value.
    - ``confidence_below``: some customer message had an intent confidence below this (0–1).
    - ``min_fallbacks``: at least this many customer messages were classified ``nlu_fallback``.
    - ``language``: the customer's language is this one (an ISO 639-1 code, e.g. ``ar``).
    - ``tag``: carries this tag (normalised as tags are).
    - ``reviewed``: True for reviewed, False for not yet reviewed; ``flagged``: flagged or not.
    - ``text``: a case-insensitive substring of some message's text (customer, bot or manager; on
      SQLite only ASCII letters fold case).
    - ``min_score``/``max_score``: the quality scorecard's total is at least/at most this (0–30); either
      leaves out conversations not scored yet."""

    channel: str | None = None
    customer: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    stage: str | None = None
    min_stage: str | None = None
    escalated: bool | None = None
    quote_created: bool | None = None
    confidence_below: float | None = None
    min_fallbacks: int | None = None
    language: str | None = None
    tag: str | None = None
    reviewed: bool | None = None
    flagged: bool | None = None
    text: str | None = None
    min_score: int | None = None
    max_score: int | None = None


@dataclass(frozen=True)
class Page:
    """One page of the list: ``items`` newest first, ``total`` matching conversations, ``pages`` =
    ceil(total / per_page) (0 when nothing matches); ``page`` counts from 1 and may lie past the last
    page, with no items."""

    items: list[ConversationSummary]
    total: int
    page: int
    per_page: int
    pages: int


async def list_conversations(
    session: AsyncSession,
    filters: ConversationFilters = ConversationFilters(),
    page: int = 1,
    per_page: int = 25,
    sort: str = "newest",
) -> Page:
    """The indexed conversations matching ``filters`` in the order ``sort`` (one of SORTS: ``newest`` —
    latest message time, then id —, ``score`` — worst scorecard total first —, ``-score`` — best first; by
    score, the conversations not scored yet come last, newest first), page ``page`` of ``per_page``
    (1–MAX_PER_PAGE). Reads only the business DB: call :func:`refresh` first for the latest events. Raises
    InvalidFilter for a bad page, per_page, sort or filter value, or a naive datetime; InvalidTag for a
    malformed tag."""
    if page < 1 or not 1 <= per_page <= MAX_PER_PAGE:
        log.info("conversation list: bad page %r or per_page %r", page, per_page)
        raise InvalidFilter(f"page must be 1 or more and per_page 1 to {MAX_PER_PAGE}")
    if sort not in SORTS:
        raise InvalidFilter(f"sort must be one of {', '.join(SORTS)}, not {sort!r}")
    conditions = _conditions(filters)
    newest = (Conversation.last_message_at.desc(), Conversation.conversation_id.desc())
    by_score = {
        "newest": (),
        "score": (ConversationScore.total.is_(None), ConversationScore.total),
        "-score": (ConversationScore.total.is_(None), ConversationScore.total.desc()),
    }[sort]
    # The total comes with the page (a window count): one pass over the matches, which matters for text search.
    query = (
        select(Conversation.conversation_id, func.count().over())
        .outerjoin(ConversationScore, ConversationScore.conversation_id == Conversation.conversation_id)
        .where(*conditions)
        .order_by(*by_score, *newest)
        .limit(per_page)
        .offset((page - 1) * per_page)
    )
    rows = (await session.execute(query)).all()
    if rows or page == 1:
        total = rows[0][1] if rows else 0
    else:  # past the last page
        total = await session.scalar(select(func.count()).select_from(Conversation).where(*conditions))
    items = await _summaries(session, [cid for cid, _ in rows])
    return Page(items, total, page, per_page, math.ceil(total / per_page))


def _conditions(filters: ConversationFilters) -> list[Any]:
    """The SQL conditions of ``filters``, validated."""
    conditions: list[Any] = []
    if filters.channel:
        conditions.append(Conversation.channel == filters.channel)
    if filters.customer and filters.customer.strip():
        customers = select(Contact.id).where(
            contact_matches(filters.customer.strip(), get_settings().default_phone_region)
        )
        conditions.append(Conversation.contact_id.in_(customers))
    if filters.since is not None:
        conditions.append(Conversation.last_message_at >= _utc_bound(filters.since, "since"))
    if filters.until is not None:
        conditions.append(Conversation.last_message_at < _utc_bound(filters.until, "until"))
    if filters.stage:
        conditions.append(Conversation.stage_rank == _stage_rank(filters.stage))
    if filters.min_stage:
        conditions.append(Conversation.stage_rank >= _stage_rank(filters.min_stage))
    if filters.escalated is not None:
        conditions.append(Conversation.escalated.is_(filters.escalated))
    if filters.quote_created is not None:
        conditions.append(Conversation.quote_created.is_(filters.quote_created))
    if filters.confidence_below is not None:
        if not 0 <= filters.confidence_below <= 1:
            raise InvalidFilter("confidence_below must be between 0 and 1")
        conditions.append(Conversation.min_confidence < filters.confidence_below)
    if filters.min_fallbacks is not None:
        if filters.min_fallbacks < 0:
            raise InvalidFilter("min_fallbacks must be 0 or more")
        conditions.append(Conversation.fallback_count >= filters.min_fallbacks)
    if filters.language:
        conditions.append(Conversation.language == filters.language)
    if filters.tag:
        tagged = select(ConversationTag.conversation_id).where(ConversationTag.tag == normalize_tag(filters.tag))
        conditions.append(Conversation.conversation_id.in_(tagged))
    if filters.reviewed is not None:
        reviewed = select(ConversationReview.conversation_id).where(ConversationReview.reviewed_at.is_not(None))
        conditions.append(
            Conversation.conversation_id.in_(reviewed)
            if filters.reviewed
            else Conversation.conversation_id.not_in(reviewed)
        )
    if filters.flagged is not None:
        flagged = select(ConversationReview.conversation_id).where(ConversationReview.flagged.is_(True))
        conditions.append(
            Conversation.conversation_id.in_(flagged)
            if filters.flagged
            else Conversation.conversation_id.not_in(flagged)
        )
    if filters.text and filters.text.strip():
        said = select(ConversationMessage.conversation_id).where(
            ConversationMessage.text.icontains(filters.text.strip(), autoescape=True)
        )
        conditions.append(Conversation.conversation_id.in_(said))
    if filters.min_score is not None or filters.max_score is not None:
        low = 0 if filters.min_score is None else filters.min_score
        high = MAX_TOTAL if filters.max_score is None else filters.max_score
        if not 0 <= low <= high <= MAX_TOTAL:
            raise InvalidFilter(f"the score range must lie within 0 to {MAX_TOTAL}, lowest first")
        scored = select(ConversationScore.conversation_id).where(ConversationScore.total.between(low, high))
        conditions.append(Conversation.conversation_id.in_(scored))
    return conditions


def _utc_bound(moment: datetime, name: str) -> datetime:
    if moment.tzinfo is None:
        log.info("conversation list: naive %s %s", name, moment)
        raise InvalidFilter(f"{name} needs a time zone")
    return moment.astimezone(UTC)


def _stage_rank(stage: str) -> int:
    if stage not in STAGE_RANK:
        log.info("conversation list: unknown stage %r", stage)
        raise InvalidFilter(f"unknown sales stage {stage!r}; known: {', '.join(SALES_STAGES)}")
    return STAGE_RANK[stage]


async def _summaries(session: AsyncSession, ids: list[str]) -> list[ConversationSummary]:
    """The summaries of the indexed conversations ``ids``, in that order (unknown ids are left out)."""
    if not ids:
        return []
    query = (
        select(
            Conversation, ConversationReview, Contact.id, Contact.name, Contact.company, Contact.email, Contact.phone
        )
        .outerjoin(ConversationReview, ConversationReview.conversation_id == Conversation.conversation_id)
        .outerjoin(Contact, Contact.id == Conversation.contact_id)
        .where(Conversation.conversation_id.in_(ids))
    )
    rows = {row[0].conversation_id: row for row in (await session.execute(query)).all()}
    tags: dict[str, list[str]] = {}
    for cid, tag in (
        await session.execute(
            select(ConversationTag.conversation_id, ConversationTag.tag)
            .where(ConversationTag.conversation_id.in_(ids))
            .order_by(ConversationTag.tag)
        )
    ).all():
        tags.setdefault(cid, []).append(tag)
    latest = (
        select(func.max(ConversationMessage.id))
        .where(ConversationMessage.conversation_id.in_(ids))
        .group_by(ConversationMessage.conversation_id)
    )
    previews = dict(
        (
            await session.execute(
                select(ConversationMessage.conversation_id, ConversationMessage.text).where(
                    ConversationMessage.id.in_(latest)
                )
            )
        )
        .tuples()
        .all()
    )
    scores = dict(
        (
            await session.execute(
                select(ConversationScore.conversation_id, ConversationScore.total).where(
                    ConversationScore.conversation_id.in_(ids)
                )
            )
        )
        .tuples()
        .all()
    )
    summaries = []
    for cid in ids:
        if cid not in rows:
            continue
        row, review, contact_id, *contact = rows[cid]
        summaries.append(
            ConversationSummary(
                conversation_id=cid,
                channel=row.channel,
                contact=ContactInfo(contact_id, *contact) if contact_id is not None else None,
                started_at=_aware(row.started_at),
                last_message_at=_aware(row.last_message_at),
                turns=row.turns,
                furthest_stage=row.furthest_stage,
                escalated=row.escalated,
                quote_created=row.quote_created,
                paused=row.paused,
                min_confidence=row.min_confidence,
                fallback_count=row.fallback_count,
                language=row.language,
                tags=tags.get(cid, []),
                flagged=bool(review and review.flagged),
                reviewed_at=_aware(review.reviewed_at) if review else None,
                reviewed_by=review.reviewed_by if review else None,
                note=review.note if review else None,
                preview=previews.get(cid, "")[:PREVIEW_CHARS],
                score=scores.get(cid),
            )
        )
    return summaries


# --- transcript --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class IntentScore:
    """One intent of NLU's ranking with its confidence (0–1)."""

    name: str
    confidence: float


@dataclass(frozen=True)
class KnowledgeDetail:
    """The knowledge answer behind a bot message (``knowledge_answers``): ``mode`` extractive, llm or
    clarify; ``sources``: the knowledge chunk ids retrieved; ``similarity``: the best passage's cosine;
    ``llm_answered``: an LLM wrote the answer the customer saw (``mode`` llm), with ``llm_model``,
    ``latency_s`` (seconds), prompt/completion tokens and ``cost_usd`` (US dollars, litellm's price
    list); ``fallback_reason``: why an LLM answer was not used. ``rating``: the customer's feedback, 1
    (👍) or -1 (👎), None without feedback; ``comment``: theirs, if any."""

    answer_id: str
    question: str
    answer: str
    mode: str
    sources: list[str]
    similarity: float
    llm_answered: bool
    llm_model: str | None
    latency_s: float | None
    prompt_tokens: int | None
    completion_tokens: int | None
    cost_usd: float | None
    fallback_reason: str | None
    rating: int | None
    comment: str | None


@dataclass(frozen=True)
class CustomerMessage:
    """A customer's message (Rasa ``user`` event): NLU's ``intent`` and ``confidence`` (0–1), the full
    ``intent_ranking`` (best first), ``entities`` as Rasa extracted them (dicts with ``entity``,
    ``value``, ``start``, ``end``, ``extractor`` and, from DIET, ``confidence_entity``), Rasa's
    ``input_channel``, and ``slots``: slot name → value for every slot set after this message until
    the next one (by NLU's slot mappings or the bot's actions; later values win). ``understanding``: for
    a message NLU could not place and the LLM understood (``actions/understanding.py``), a dict with
    ``source`` (``llm``), ``model``, ``latency_s`` and NLU's own ``nlu_intent`` and ``nlu_confidence``;
    then ``intent`` and ``entities`` are the LLM's, and ``understood_by_llm`` is true."""

    event_id: int
    at: datetime
    text: str
    intent: str | None
    confidence: float | None
    intent_ranking: list[IntentScore]
    entities: list[dict[str, Any]]
    input_channel: str | None
    slots: dict[str, Any]
    understanding: dict[str, Any] | None = None

    @property
    def kind(self) -> str:
        return "customer"

    @property
    def understood_by_llm(self) -> bool:
        return bool(self.understanding and self.understanding.get("source") == "llm")


@dataclass(frozen=True)
class BotAction:
    """An action the bot ran (Rasa ``action`` event, ``action_listen`` left out), with the policy that
    predicted it and its confidence (None for actions Rasa ran without prediction, e.g. at session start)."""

    event_id: int
    at: datetime
    name: str
    policy: str | None
    confidence: float | None

    @property
    def kind(self) -> str:
        return "action"


@dataclass(frozen=True)
class BotMessage:
    """A message to the customer (Rasa ``bot`` event): ``text`` (None for a payload-only message),
    ``buttons`` (dicts with ``title`` and ``payload``), ``image`` URL, ``custom`` payload,
    ``utter_action`` (the response it came from, if any); ``manager``: the email of the manager who
    wrote it (then ``kind`` is ``manager``), None for the bot; ``knowledge``: the knowledge answer
    when ``custom`` carries its ``answer_id``."""

    event_id: int
    at: datetime
    text: str | None
    buttons: list[dict[str, Any]]
    image: str | None
    custom: dict[str, Any] | None
    utter_action: str | None
    manager: str | None
    knowledge: KnowledgeDetail | None

    @property
    def kind(self) -> str:
        return "manager" if self.manager else "bot"


@dataclass(frozen=True)
class Marker:
    """A change of the conversation's state: ``kind`` pause (a manager took over), resume (handed back
    to the bot), session_started (a new Rasa session) or restart."""

    event_id: int
    at: datetime
    kind: str


Entry = CustomerMessage | BotAction | BotMessage | Marker
MARKERS = ("pause", "resume", "session_started", "restart")


@dataclass(frozen=True)
class Transcript:
    """A conversation for the console's conversation page: ``entries`` in the order Rasa stored them
    (each has ``kind``: customer, action, bot, manager, pause, resume, session_started or restart;
    ``event_id``; ``at``, a timezone-aware UTC datetime); ``summary``: the index's row, None if not
    indexed yet."""

    conversation_id: str
    summary: ConversationSummary | None
    entries: list[Entry]


async def transcript(tracker: TrackerReader, session: AsyncSession, conversation_id: str) -> Transcript:
    """The transcript of ``conversation_id`` (a Rasa sender id), read from the tracker store, with the
    knowledge answers and the index's summary from the business DB. Raises UnknownConversation when
    the tracker store has no event of it, TrackerStoreUnavailable when the store cannot be read."""
    events = await tracker.conversation_events(conversation_id)
    if not events:
        log.info("transcript of unknown conversation %r", conversation_id)
        raise UnknownConversation(f"no conversation {conversation_id!r} in the tracker store")
    knowledge = await knowledge_details(session, conversation_id, await asyncio.to_thread(answer_ids, events))
    entries = await asyncio.to_thread(entries_of, events, knowledge)
    summaries = await _summaries(session, [conversation_id])
    return Transcript(conversation_id, summaries[0] if summaries else None, entries)


def _custom(event: TrackerEvent) -> Any:
    return (event.data.get("data") or {}).get("custom") if event.type_name == "bot" else None


def answer_ids(events: list[TrackerEvent]) -> set[str]:
    """The knowledge answer ids in the ``custom`` payloads of ``events``' bot messages."""
    customs = [custom for custom in map(_custom, events) if isinstance(custom, dict)]
    return {custom["answer_id"] for custom in customs if custom.get("answer_id")}


async def knowledge_details(
    session: AsyncSession, conversation_id: str, answer_ids: set[str]
) -> dict[str, KnowledgeDetail]:
    """The knowledge answers ``answer_ids`` of ``conversation_id`` (table ``knowledge_answers``, with their
    feedback) by answer id; ids of other conversations or unknown ones are left out."""
    if not answer_ids:
        return {}
    query = select(KnowledgeAnswer).where(
        KnowledgeAnswer.id.in_(answer_ids), KnowledgeAnswer.conversation_id == conversation_id
    )
    return {
        answer.id: KnowledgeDetail(
            answer_id=answer.id,
            question=answer.question,
            answer=answer.answer,
            mode=answer.mode,
            sources=list(answer.sources),
            similarity=answer.similarity,
            llm_answered=answer.mode == "llm",
            llm_model=answer.llm_model,
            latency_s=answer.latency_s,
            prompt_tokens=answer.prompt_tokens,
            completion_tokens=answer.completion_tokens,
            cost_usd=answer.cost_usd,
            fallback_reason=answer.fallback_reason,
            rating=answer.feedback.rating if answer.feedback else None,
            comment=answer.feedback.comment if answer.feedback else None,
        )
        for answer in (await session.scalars(query)).all()
    }


def entries_of(events: list[TrackerEvent], knowledge: dict[str, KnowledgeDetail]) -> list[Entry]:
    """One conversation's ``events`` (id order) as transcript entries (see :class:`Transcript`), bot messages
    carrying their answer of ``knowledge`` (:func:`knowledge_details`); a ``rewind`` drops the customer message
    it undoes and what followed it. Pure: no I/O."""
    entries: list[Entry] = []
    customer: CustomerMessage | None = None
    for event in events:
        data, at = event.data, _utc(event.timestamp)
        if event.type_name == "user":
            parse = data.get("parse_data") or {}
            intent = parse.get("intent") or {}
            customer = CustomerMessage(
                event.id,
                at,
                data.get("text") or "",
                intent.get("name"),
                intent.get("confidence"),
                [IntentScore(score["name"], score["confidence"]) for score in parse.get("intent_ranking") or []],
                list(parse.get("entities") or []),
                data.get("input_channel"),
                {},
                parse.get("understanding"),
            )
            entries.append(customer)
        elif event.type_name == "rewind":
            # Rasa's UserUtteranceReverted undoes the latest customer message and what followed it (the LLM
            # understanding re-adds the message with its intent): the transcript shows the conversation as
            # Rasa continued it.
            last = max((i for i, entry in enumerate(entries) if isinstance(entry, CustomerMessage)), default=None)
            if last is not None:
                del entries[last:]
            customer = None
        elif event.type_name == "slot" and customer is not None:
            customer.slots[event.name or data.get("name")] = data.get("value")
        elif event.type_name == "action" and event.name != "action_listen":
            entries.append(
                BotAction(event.id, at, event.name or data.get("name"), data.get("policy"), data.get("confidence"))
            )
        elif event.type_name == "bot":
            payload, metadata, custom = data.get("data") or {}, data.get("metadata") or {}, _custom(event)
            answer = knowledge.get(custom.get("answer_id")) if isinstance(custom, dict) else None
            entries.append(
                BotMessage(
                    event.id,
                    at,
                    data.get("text"),
                    payload.get("buttons") or [],
                    payload.get("image"),
                    custom,
                    metadata.get("utter_action"),
                    metadata.get("manager"),
                    answer,
                )
            )
        elif event.type_name in MARKERS:
            entries.append(Marker(event.id, at, event.type_name))
            if event.type_name in ("session_started", "restart"):
                customer = None
    return entries


# --- tags and reviews --------------------------------------------------------------------------------------


def normalize_tag(tag: str) -> str:
    """``tag`` stripped and lower-cased. Raises InvalidTag unless that is 1–64 letters, digits, ``-`` or ``_``."""
    cleaned = tag.strip().lower() if isinstance(tag, str) else ""
    if not TAG.fullmatch(cleaned):
        log.info("invalid conversation tag %r", tag)
        raise InvalidTag(f"a tag is 1 to 64 letters, digits, '-' or '_', not {tag!r}")
    return cleaned


async def set_tags(session: AsyncSession, conversation_id: str, tags: Iterable[str]) -> list[str]:
    """Replace the tags of the indexed conversation ``conversation_id`` by ``tags`` (normalised by
    :func:`normalize_tag`, duplicates dropped) and return them sorted; an empty ``tags`` removes all.
    Flushes but leaves the commit to the caller. Raises InvalidTag (nothing changed) for a bad tag,
    UnknownConversation when the conversation is not indexed."""
    cleaned = sorted({normalize_tag(tag) for tag in tags})
    await _indexed(session, conversation_id)
    await session.execute(delete(ConversationTag).where(ConversationTag.conversation_id == conversation_id))
    if cleaned:
        await session.execute(
            insert(ConversationTag.__table__), [{"conversation_id": conversation_id, "tag": tag} for tag in cleaned]
        )
    await session.flush()
    return cleaned


async def known_tags(session: AsyncSession) -> list[str]:
    """Every tag in use on some conversation, sorted (the choices of the list's tag filter)."""
    return list((await session.scalars(select(distinct(ConversationTag.tag)).order_by(ConversationTag.tag))).all())


async def known_channels(session: AsyncSession) -> list[str]:
    """The channels of the indexed conversations, sorted (the choices of the list's and analytics' channel filter)."""
    return list((await session.scalars(select(distinct(Conversation.channel)).order_by(Conversation.channel))).all())


async def set_flag(
    session: AsyncSession, conversation_id: str, flagged: bool, note: str | None = None
) -> ConversationReview:
    """Flag the indexed conversation ``conversation_id`` for attention (or clear the flag). ``note``
    replaces the review's note ("" removes it; None keeps it). Flushes but leaves the commit to the
    caller. Raises InvalidReview for a note over MAX_NOTE_CHARS, UnknownConversation when the
    conversation is not indexed."""
    if note is not None and len(note) > MAX_NOTE_CHARS:
        log.info("conversation %s: note of %d characters refused", conversation_id, len(note))
        raise InvalidReview(f"a note has at most {MAX_NOTE_CHARS} characters")
    review = await _review(session, conversation_id)
    review.flagged = flagged
    if note is not None:
        review.note = note.strip() or None
    await session.flush()
    return review


async def mark_reviewed(
    session: AsyncSession, conversation_id: str, user_email: str, now: datetime | None = None
) -> ConversationReview:
    """Record that the console user ``user_email`` reviewed the indexed conversation ``conversation_id``
    at ``now`` (default: the current time, UTC), replacing an earlier review's who and when. Flushes
    but leaves the commit to the caller. Raises InvalidReview for an empty or over-long email,
    UnknownConversation when the conversation is not indexed."""
    email = user_email.strip() if isinstance(user_email, str) else ""
    if not email or len(email) > 255:
        log.info("conversation %s: review by invalid user %r refused", conversation_id, user_email)
        raise InvalidReview("a review needs the reviewer's email (at most 255 characters)")
    review = await _review(session, conversation_id)
    review.reviewed_at = now or datetime.now(UTC)
    review.reviewed_by = email
    await session.flush()
    return review


async def _indexed(session: AsyncSession, conversation_id: str) -> Conversation:
    conversation = await session.get(Conversation, conversation_id)
    if conversation is None:
        log.info("conversation %r is not indexed", conversation_id)
        raise UnknownConversation(f"no indexed conversation {conversation_id!r}")
    return conversation


async def _review(session: AsyncSession, conversation_id: str) -> ConversationReview:
    await _indexed(session, conversation_id)
    review = await session.get(ConversationReview, conversation_id)
    if review is None:
        review = ConversationReview(conversation_id=conversation_id, flagged=False)
        session.add(review)
    return review
