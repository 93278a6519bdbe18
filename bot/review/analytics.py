"""Sales analytics for the manager console: funnel, conversions, escalation and fallback rates, top
intents, daily volume per channel, conversations, funnel and conversions per language, 👍/👎 on knowledge
answers, LLM cost and conversation quality scores by day and channel, plus CSV export.

Data comes from the business DB: the conversation index (``conversations``, ``conversation_messages``,
kept up to date from Rasa's tracker store by ``bot.review.conversations``), ``deals``, ``knowledge_answers``
and ``feedback``.

Every query takes the period ``[since, until)`` as timezone-aware datetimes (by default
:func:`period`: the 30 calendar days ending today in the business's time zone) and optionally one
channel (the index's ``channel``: ``web``, ``telegram``, ``whatsapp``, …; None for all). Days are
calendar days in the business's time zone (``business_hours.timezone`` of knowledge/company.yml).

- A conversation is *in the period* when it has at least one customer message timestamped within it.
  Its flags (furthest sales stage, escalated, quote created, contact) are those of the whole
  conversation as indexed, not only of its part within the period.
- A rate (``Rate.rate``, ``share``, ``up_rate``) is a fraction between 0 and 1, or None when its
  denominator is 0 (nothing to measure), so that "no data" never reads as 0%.

Bad periods raise :class:`InvalidPeriod` (a ValueError); nothing here writes to the DB.
"""

import csv
import io
import logging
import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields, is_dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Select, case, distinct, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.answering.feedback import RATINGS
from bot.core.business import SALES_STAGES, get_company
from bot.core.models import (
    Conversation,
    ConversationMessage,
    ConversationScore,
    Deal,
    Feedback,
    KnowledgeAnswer,
    LlmCall,
)

log = logging.getLogger(__name__)

DEFAULT_DAYS = 30
HANDOFF = "handoff"
FUNNEL_STAGES = tuple(stage for stage in SALES_STAGES if stage != HANDOFF)  # greeting … closing, ranks 1-7
HANDOFF_RANK = SALES_STAGES.index(HANDOFF) + 1  # 8, as in conversations.stage_rank
FALLBACK_INTENT = "nlu_fallback"
WON = "won"


class InvalidPeriod(ValueError):
    """A period bound is naive (no time zone), or the period is empty (``since >= until``, first day after last)."""


@dataclass(frozen=True)
class Rate:
    """``count`` of ``total``; ``rate`` = count / total, None when total is 0."""

    count: int
    total: int
    rate: float | None


@dataclass(frozen=True)
class FunnelStep:
    """Conversations in the period that reached ``stage``; ``share`` of all conversations in the period."""

    stage: str
    conversations: int
    share: float | None


@dataclass(frozen=True)
class Conversion:
    """``to_quote``: conversations with a quote created, of all conversations in the period.
    ``to_won``: conversations whose contact has a deal at stage ``won``, of all conversations in the period."""

    to_quote: Rate
    to_won: Rate


@dataclass(frozen=True)
class LanguageFigures:
    """The conversations in the period whose customer's language (the index's ``language``, ISO 639-1) is
    ``language``: how many, their ``funnel`` (as :func:`funnel` counts it, shares of these conversations) and
    their conversion ``to_quote`` and ``to_won`` (as :func:`conversion`, of these conversations)."""

    language: str
    conversations: int
    funnel: list[FunnelStep]
    to_quote: Rate
    to_won: Rate


@dataclass(frozen=True)
class IntentCount:
    """Customer messages in the period classified as ``intent``; ``share`` of all customer messages in it."""

    intent: str
    messages: int
    share: float | None


@dataclass(frozen=True)
class DayVolume:
    """Conversations of ``channel`` with at least one customer message on ``day`` (business time zone)."""

    day: date
    channel: str
    conversations: int


@dataclass(frozen=True)
class FeedbackDay:
    """Knowledge answers given on ``day`` and the 👍 (``up``) / 👎 (``down``) they carry;
    ``up_rate`` = up / (up + down), None when none was rated."""

    day: date
    answers: int
    up: int
    down: int
    up_rate: float | None


@dataclass(frozen=True)
class FeedbackSummary:
    """The whole period's knowledge answers and ratings (as in :class:`FeedbackDay`), and ``days``:
    one :class:`FeedbackDay` per day of the period, days without answers included, oldest first."""

    answers: int
    up: int
    down: int
    up_rate: float | None
    days: list[FeedbackDay]


@dataclass(frozen=True)
class CostDay:
    """LLM calls made for knowledge answers given on ``day`` and their cost in USD."""

    day: date
    llm_calls: int
    cost_usd: float


@dataclass(frozen=True)
class ModelCost:
    """LLM calls of one ``model`` in the period: tokens and cost in USD."""

    model: str
    llm_calls: int
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float


@dataclass(frozen=True)
class LLMCost:
    """LLM use by knowledge answers given in the period. ``cost_usd`` in US dollars as a float (litellm's
    price list; calls cost fractions of a cent, hence not minor units); a call whose cost litellm did not
    know counts in ``llm_calls`` but adds nothing to cost. ``answers_by_mode``: answers per ``mode``
    (``llm``, ``extractive`` — always present —, ``clarify``); an LLM answer rejected by the post-check
    is an extractive answer whose LLM call still counts. ``days``: one :class:`CostDay` per day of the
    period, oldest first; ``models``: one :class:`ModelCost` per model, costliest first."""

    llm_calls: int
    cost_usd: float
    answers_by_mode: dict[str, int]
    days: list[CostDay]
    models: list[ModelCost]


@dataclass(frozen=True)
class ScoreDay:
    """Scored conversations whose latest message was on ``day`` (business time zone) and their average
    scorecard total (0–30), None when none was scored."""

    day: date
    conversations: int
    average: float | None


@dataclass(frozen=True)
class ScoreChannel:
    """Scored conversations of ``channel`` in the period and their average scorecard total (0–30)."""

    channel: str
    conversations: int
    average: float


@dataclass(frozen=True)
class QualityScores:
    """The quality scorecards (:mod:`bot.review.scoring`) of the conversations in the period: how many are
    ``scored``, their ``average`` total (None when none), ``days``: one :class:`ScoreDay` per day of the period
    (oldest first), ``channels``: one :class:`ScoreChannel` per channel with a scored conversation, by name."""

    scored: int
    average: float | None
    days: list[ScoreDay]
    channels: list[ScoreChannel]


def period(first: date | None = None, last: date | None = None) -> tuple[datetime, datetime]:
    """The calendar days ``first`` … ``last`` (inclusive) of the business's time zone as ``(since, until)``:
    local midnight starting ``first`` and local midnight ending ``last``, timezone-aware. Default:
    ``last`` today, ``first`` 29 days earlier (30 days). Raises InvalidPeriod when first > last."""
    zone = _zone()
    last = last or datetime.now(zone).date()
    first = first or last - timedelta(days=DEFAULT_DAYS - 1)
    if first > last:
        log.warning("Analytics period rejected: first day %s after last day %s", first, last)
        raise InvalidPeriod(f"the first day {first} is after the last day {last}")
    return datetime.combine(first, time(), zone), datetime.combine(last + timedelta(days=1), time(), zone)


async def funnel(
    session: AsyncSession, since: datetime | None = None, until: datetime | None = None, channel: str | None = None
) -> list[FunnelStep]:
    """The sales funnel of the conversations in the period: one step per sales stage ``greeting`` …
    ``closing`` in stage order, counting the conversations whose furthest stage is that stage or a later
    one (a conversation that reached ``quoting`` counts for every stage up to it), then a ``handoff``
    step, not cumulative: conversations handed to a manager, whose furthest stage the index records as
    ``handoff`` and which therefore count for no sales stage. Conversations without any stage count in
    the shares' denominator only. Raises InvalidPeriod."""
    since, until = _bounds(since, until)
    query = _conversations(Conversation.stage_rank, func.count(), since=since, until=until, channel=channel)
    return _funnel(dict((await session.execute(query.group_by(Conversation.stage_rank))).tuples().all()))


def _funnel(by_rank: Mapping[int, int]) -> list[FunnelStep]:
    """The funnel steps (see :func:`funnel`) of conversations counted by furthest stage rank (0 for none)."""
    total = sum(by_rank.values())
    steps = []
    for rank, stage in enumerate(FUNNEL_STAGES, start=1):
        reached = sum(count for r, count in by_rank.items() if rank <= r <= len(FUNNEL_STAGES))
        steps.append(FunnelStep(stage, reached, _ratio(reached, total)))
    handed_off = by_rank.get(HANDOFF_RANK, 0)
    return [*steps, FunnelStep(HANDOFF, handed_off, _ratio(handed_off, total))]


async def conversion(
    session: AsyncSession, since: datetime | None = None, until: datetime | None = None, channel: str | None = None
) -> Conversion:
    """Conversion of the conversations in the period to a quote (the index's ``quote_created``) and to a
    won deal: a conversation counts as won when its contact (``conversations.contact_id``) has at least
    one deal at stage ``won``, whenever that deal was won (deals record no conversation; the contact is
    the link, and a conversation without a contact is not won). Raises InvalidPeriod."""
    since, until = _bounds(since, until)
    query = _conversations(
        func.count(),
        _count_if(Conversation.quote_created.is_(True)),
        _count_if(_won()),
        since=since,
        until=until,
        channel=channel,
    )
    total, quoted, won_count = (await session.execute(query)).one()
    return Conversion(_rate(quoted, total), _rate(won_count, total))


async def by_language(
    session: AsyncSession, since: datetime | None = None, until: datetime | None = None, channel: str | None = None
) -> list[LanguageFigures]:
    """Conversations, funnel and conversion of the conversations in the period, per customer's language: one
    :class:`LanguageFigures` for each of the business's ``languages`` (knowledge/company.yml, in its order,
    zeros included), then for any other language indexed conversations of the period have (by code).
    Raises InvalidPeriod."""
    since, until = _bounds(since, until)
    query = _conversations(
        Conversation.language,
        Conversation.stage_rank,
        func.count(),
        _count_if(Conversation.quote_created.is_(True)),
        _count_if(_won()),
        since=since,
        until=until,
        channel=channel,
    ).group_by(Conversation.language, Conversation.stage_rank)
    ranks: defaultdict[str, dict[int, int]] = defaultdict(dict)
    quoted: Counter[str] = Counter()
    won: Counter[str] = Counter()
    for language, rank, count, quotes, wins in await session.execute(query):
        ranks[language][rank] = count
        quoted[language] += quotes
        won[language] += wins
    figures = []
    for language in dict.fromkeys([*get_company().languages, *sorted(ranks)]):
        total = sum(ranks[language].values())
        figures.append(
            LanguageFigures(
                language, total, _funnel(ranks[language]), _rate(quoted[language], total), _rate(won[language], total)
            )
        )
    return figures


async def escalation_rate(
    session: AsyncSession, since: datetime | None = None, until: datetime | None = None, channel: str | None = None
) -> Rate:
    """Conversations in the period handed to a manager at some point (the index's ``escalated``), of all
    conversations in the period. Raises InvalidPeriod."""
    since, until = _bounds(since, until)
    query = _conversations(
        func.count(), _count_if(Conversation.escalated.is_(True)), since=since, until=until, channel=channel
    )
    total, escalated = (await session.execute(query)).one()
    return _rate(escalated, total)


async def fallback_rate(
    session: AsyncSession, since: datetime | None = None, until: datetime | None = None, channel: str | None = None
) -> Rate:
    """Customer messages in the period that Rasa classified ``nlu_fallback``, of all customer messages in
    the period. Raises InvalidPeriod."""
    since, until = _bounds(since, until)
    query = _customer_messages(
        func.count(),
        _count_if(ConversationMessage.intent == FALLBACK_INTENT),
        since=since,
        until=until,
        channel=channel,
    )
    total, fallbacks = (await session.execute(query)).one()
    return _rate(fallbacks, total)


async def rates(
    session: AsyncSession, since: datetime | None = None, until: datetime | None = None, channel: str | None = None
) -> list[dict[str, Any]]:
    """The period's rates as rows ``{"metric", "count", "total", "rate"}``: ``to_quote`` and ``to_won``
    (:func:`conversion`), ``escalation`` and ``fallback`` (rate None when total is 0). Raises InvalidPeriod."""
    converted = await conversion(session, since, until, channel)
    measured = {
        "to_quote": converted.to_quote,
        "to_won": converted.to_won,
        "escalation": await escalation_rate(session, since, until, channel),
        "fallback": await fallback_rate(session, since, until, channel),
    }
    return [{"metric": name, "count": r.count, "total": r.total, "rate": r.rate} for name, r in measured.items()]


async def top_intents(
    session: AsyncSession,
    since: datetime | None = None,
    until: datetime | None = None,
    channel: str | None = None,
    limit: int = 10,
) -> list[IntentCount]:
    """The ``limit`` intents most often predicted for customer messages in the period (``nlu_fallback``
    included), most frequent first, ties by name; shares are of all customer messages in the period,
    including those without an intent. Raises InvalidPeriod, or ValueError when limit < 1."""
    if limit < 1:
        raise ValueError(f"limit must be at least 1, not {limit}")
    since, until = _bounds(since, until)
    total = await session.scalar(_customer_messages(func.count(), since=since, until=until, channel=channel))
    messages = func.count().label("messages")
    query = (
        _customer_messages(ConversationMessage.intent, messages, since=since, until=until, channel=channel)
        .where(ConversationMessage.intent.is_not(None))
        .group_by(ConversationMessage.intent)
        .order_by(messages.desc(), ConversationMessage.intent)
        .limit(limit)
    )
    return [IntentCount(intent, count, _ratio(count, total)) for intent, count in await session.execute(query)]


async def daily_volume(
    session: AsyncSession, since: datetime | None = None, until: datetime | None = None, channel: str | None = None
) -> list[DayVolume]:
    """Conversations per day and channel: one row for every day of the period and every channel (the
    channels of all indexed conversations, or just ``channel``), days oldest first and channels by name,
    zeros included. A conversation counts on each day (business time zone) it has a customer message;
    the days are those the period touches, the first and last possibly partial. Raises InvalidPeriod."""
    since, until = _bounds(since, until)
    zone = _zone()
    query = _customer_messages(
        ConversationMessage.conversation_id,
        Conversation.channel,
        ConversationMessage.timestamp,
        since=since,
        until=until,
        channel=channel,
    )
    active = {(_day(moment, zone), chan, conversation) for conversation, chan, moment in await session.execute(query)}
    counts = Counter((day, chan) for day, chan, _ in active)
    channels = (
        [channel]
        if channel is not None
        else list(await session.scalars(select(distinct(Conversation.channel)).order_by(Conversation.channel)))
    )
    return [DayVolume(day, chan, counts[day, chan]) for day in _days(since, until, zone) for chan in channels]


async def answer_feedback(
    session: AsyncSession, since: datetime | None = None, until: datetime | None = None, channel: str | None = None
) -> FeedbackSummary:
    """👍/👎 on the knowledge answers given in the period (``knowledge_answers.created_at``), overall and
    per day. An answer counts on the day it was given, with the rating it carries now (rating an answer
    again replaces its rating). The channel is that of the answer's conversation in the index. Raises
    InvalidPeriod."""
    since, until = _bounds(since, until)
    zone = _zone()
    query = (
        select(KnowledgeAnswer.created_at, Feedback.rating)
        .outerjoin(Feedback, Feedback.answer_id == KnowledgeAnswer.id)
        .where(*_answered(since, until, channel))
    )
    answers: Counter[date] = Counter()
    ratings: Counter[tuple[date, int]] = Counter()
    for moment, rating in await session.execute(query):
        day = _day(moment, zone)
        answers[day] += 1
        if rating is not None:
            ratings[day, rating] += 1
    days = []
    for day in _days(since, until, zone):
        up, down = ratings[day, RATINGS["up"]], ratings[day, RATINGS["down"]]
        days.append(FeedbackDay(day, answers[day], up, down, _ratio(up, up + down)))
    up, down = sum(d.up for d in days), sum(d.down for d in days)
    return FeedbackSummary(sum(answers.values()), up, down, _ratio(up, up + down), days)


async def llm_cost(
    session: AsyncSession, since: datetime | None = None, until: datetime | None = None, channel: str | None = None
) -> LLMCost:
    """LLM calls, tokens and cost in the period, in total, per day and per model: those of the knowledge answers
    (``knowledge_answers``: ``llm_model`` set when a call was answered, ``prompt_tokens``, ``completion_tokens``,
    ``cost_usd``) and the other counted calls (``llm_calls``: the LLM's understanding of a message); and the
    knowledge answers per mode. The channel is that of the conversation in the index. Raises InvalidPeriod."""
    since, until = _bounds(since, until)
    zone = _zone()
    query = select(
        KnowledgeAnswer.created_at,
        KnowledgeAnswer.mode,
        KnowledgeAnswer.llm_model,
        KnowledgeAnswer.prompt_tokens,
        KnowledgeAnswer.completion_tokens,
        KnowledgeAnswer.cost_usd,
    ).where(*_answered(since, until, channel))
    modes: Counter[str] = Counter({"llm": 0, "extractive": 0})
    day_costs: defaultdict[date, list[float]] = defaultdict(list)
    model_calls: defaultdict[str, list[tuple[int, int, float]]] = defaultdict(list)
    for moment, mode, model, prompt_tokens, completion_tokens, cost in await session.execute(query):
        modes[mode] += 1
        if model is not None:
            day_costs[_day(moment, zone)].append(cost or 0.0)
            model_calls[model].append((prompt_tokens or 0, completion_tokens or 0, cost or 0.0))
    calls = select(
        LlmCall.created_at, LlmCall.llm_model, LlmCall.prompt_tokens, LlmCall.completion_tokens, LlmCall.cost_usd
    )
    conditions = [LlmCall.created_at >= since, LlmCall.created_at < until]
    if channel is not None:
        conditions.append(LlmCall.conversation_id.in_(_of_channel(channel)))
    for moment, model, prompt_tokens, completion_tokens, cost in await session.execute(calls.where(*conditions)):
        day_costs[_day(moment, zone)].append(cost or 0.0)
        model_calls[model].append((prompt_tokens, completion_tokens, cost or 0.0))
    days = [CostDay(day, len(day_costs[day]), math.fsum(day_costs[day])) for day in _days(since, until, zone)]
    models = sorted(
        (
            ModelCost(
                model, len(calls), sum(c[0] for c in calls), sum(c[1] for c in calls), math.fsum(c[2] for c in calls)
            )
            for model, calls in model_calls.items()
        ),
        key=lambda m: (-m.cost_usd, m.model),
    )
    return LLMCost(sum(m.llm_calls for m in models), math.fsum(m.cost_usd for m in models), dict(modes), days, models)


async def quality_scores(
    session: AsyncSession, since: datetime | None = None, until: datetime | None = None, channel: str | None = None
) -> QualityScores:
    """The scorecard totals of the conversations in the period, on average, per day of their latest message
    and per channel. Conversations not scored yet are left out. Raises InvalidPeriod."""
    since, until = _bounds(since, until)
    zone = _zone()
    query = _conversations(
        Conversation.channel,
        Conversation.last_message_at,
        ConversationScore.total,
        since=since,
        until=until,
        channel=channel,
    ).join(ConversationScore, ConversationScore.conversation_id == Conversation.conversation_id)
    rows = (await session.execute(query)).all()
    by_day: dict[date, list[int]] = defaultdict(list)
    by_channel: dict[str, list[int]] = defaultdict(list)
    for chan, last, total in rows:
        by_day[_day(last if last.tzinfo else last.replace(tzinfo=UTC), zone)].append(total)
        by_channel[chan].append(total)
    days = [ScoreDay(day, len(by_day[day]), _mean(by_day[day])) for day in _days(since, until, zone)]
    channels = [
        ScoreChannel(chan, len(totals), sum(totals) / len(totals)) for chan, totals in sorted(by_channel.items())
    ]
    return QualityScores(len(rows), _mean([total for *_, total in rows]), days, channels)


def _mean(values: Sequence[int]) -> float | None:
    return sum(values) / len(values) if values else None


def to_csv(rows: Iterable[Any], columns: Sequence[str]) -> str:
    """CSV text (RFC 4180: comma-separated, CRLF line ends, fields with a comma, quote or line break
    quoted) of ``rows`` — dataclass instances (e.g. the lists above) or mappings — with a header row of
    ``columns``, the fields to write, in order. Cells: None → empty, dates and datetimes → ISO 8601,
    anything else → ``str()`` (floats in full precision). Raises ValueError when a row lacks a column."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_cell(_field(row, column)) for column in columns])
    return buffer.getvalue()


def _field(row: Any, column: str) -> Any:
    if isinstance(row, Mapping):
        if column not in row:
            raise ValueError(f"no column {column!r} in row {row!r}")
        return row[column]
    if is_dataclass(row) and column in {f.name for f in fields(row)}:
        return getattr(row, column)
    raise ValueError(f"no column {column!r} in row {row!r}")


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, date):  # datetime too
        return value.isoformat()
    return value


def _zone() -> ZoneInfo:
    return ZoneInfo(get_company().timezone)


def _bounds(since: datetime | None, until: datetime | None) -> tuple[datetime, datetime]:
    """The period in UTC (the DB stores UTC), defaults from :func:`period`; raises InvalidPeriod."""
    if since is None or until is None:
        default_since, default_until = period()
        since, until = since or default_since, until or default_until
    for name, moment in (("since", since), ("until", until)):
        if moment.tzinfo is None or moment.utcoffset() is None:
            log.warning("Analytics period rejected: %s=%s has no time zone", name, moment)
            raise InvalidPeriod(f"{name} must be timezone-aware, not {moment.isoformat()}")
    if since >= until:
        log.warning("Analytics period rejected: since %s is not before until %s", since, until)
        raise InvalidPeriod(f"since {since.isoformat()} is not before until {until.isoformat()}")
    return since.astimezone(UTC), until.astimezone(UTC)


def _conversations(*columns: Any, since: datetime, until: datetime, channel: str | None) -> Select:
    """SELECT ``columns`` over the conversations in the period (a customer message within it)."""
    in_period = (
        select(ConversationMessage.id)
        .where(
            ConversationMessage.conversation_id == Conversation.conversation_id,
            ConversationMessage.speaker == "customer",
            ConversationMessage.timestamp >= since,
            ConversationMessage.timestamp < until,
        )
        .exists()
    )
    query = select(*columns).select_from(Conversation).where(in_period)
    return query if channel is None else query.where(Conversation.channel == channel)


def _customer_messages(*columns: Any, since: datetime, until: datetime, channel: str | None) -> Select:
    """SELECT ``columns`` over the customer messages in the period, joined with their conversation."""
    query = (
        select(*columns)
        .select_from(ConversationMessage)
        .join(Conversation, Conversation.conversation_id == ConversationMessage.conversation_id)
        .where(
            ConversationMessage.speaker == "customer",
            ConversationMessage.timestamp >= since,
            ConversationMessage.timestamp < until,
        )
    )
    return query if channel is None else query.where(Conversation.channel == channel)


def _answered(since: datetime, until: datetime, channel: str | None) -> list[ColumnElement[bool]]:
    """Conditions on knowledge answers given in the period (in a conversation of ``channel``)."""
    conditions = [KnowledgeAnswer.created_at >= since, KnowledgeAnswer.created_at < until]
    if channel is not None:
        conditions.append(KnowledgeAnswer.conversation_id.in_(_of_channel(channel)))
    return conditions


def _of_channel(channel: str) -> Select[tuple[str]]:
    """The ids of the indexed conversations of ``channel``."""
    return select(Conversation.conversation_id).where(Conversation.channel == channel)


def _won() -> ColumnElement[bool]:
    """The conversation's contact has a deal at stage ``won`` (see :func:`conversion`)."""
    return select(Deal.id).where(Deal.contact_id == Conversation.contact_id, Deal.stage == WON).exists()


def _count_if(condition: ColumnElement[bool]) -> ColumnElement[int]:
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


def _ratio(count: int, total: int) -> float | None:
    return count / total if total else None


def _rate(count: int, total: int) -> Rate:
    return Rate(count, total, _ratio(count, total))


def _day(moment: datetime, zone: ZoneInfo) -> date:
    """The local calendar day of a stored time (SQLite returns naive UTC datetimes)."""
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(zone).date()


def _days(since: datetime, until: datetime, zone: ZoneInfo) -> list[date]:
    """Every local calendar day the period ``[since, until)`` touches, oldest first."""
    first, last = since.astimezone(zone).date(), (until - timedelta(microseconds=1)).astimezone(zone).date()
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]
