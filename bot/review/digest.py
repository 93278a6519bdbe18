"""The managers' reports: a daily digest (the scheduled job ``digest_daily`` at ``digest_at``, business time zone)
of the day before, and a weekly one (``digest_weekly`` on ``digest_weekday`` at the same time) of the seven days
before, with a chart of conversations and quotes per day. Each goes to the managers' Telegram chat
(:func:`bot.handoff.notify.notify_managers`) and by e-mail to ``digest_email_to`` through the SMTP server
``smtp_host`` (``aiosmtplib``, STARTTLS unless ``smtp_starttls`` is off, every phase bounded by ``smtp_timeout``
seconds); a channel that is not configured is left out and the job's summary says so.

What a digest holds, for its period (whole calendar days in the business time zone) against the period of the same
length before it:

- new leads: deals created (one per lead the bot saved, :mod:`bot.commerce.leads`);
- quotes sent and quotes accepted, with their totals per currency (integer minor units, shown with Babel);
- escalations open now (``pending`` or ``in_progress``), and how many of them no manager took yet;
- the funnel by sales stage and the conversion to quote and to won (:mod:`bot.review.analytics`), with the
  previous period's figures beside them;
- the five worst-scored conversations whose latest message falls in the period (:mod:`bot.review.scoring`), with
  links to their transcripts in the console (``public_url``).

Nothing here writes to the DB. A failed send raises :class:`DigestError` (after trying the other channel), so the
run is recorded as failed and the managers' chat is alerted when it can be.
"""

import asyncio
import io
import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from email.message import EmailMessage
from zoneinfo import ZoneInfo

import aiosmtplib
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core import mail
from bot.core.business import get_company
from bot.core.db import session_scope
from bot.core.models import Conversation, ConversationScore, Deal, Escalation, Quote
from bot.core.settings import Settings
from bot.handoff.notify import NotifyError, notify_managers
from bot.review import analytics
from bot.review.conversations import page_url
from bot.review.scoring import MAX_TOTAL
from bot.texts import i18n

log = logging.getLogger(__name__)

WORST = 5  # worst-scored conversations listed
OPEN_ESCALATIONS = ("pending", "in_progress")


class DigestError(RuntimeError):
    """Telegram or the SMTP server refused or could not be reached; the message names each failed channel."""


@dataclass(frozen=True)
class Figures:
    """One period's figures: ``leads`` (deals created), ``quotes_sent``/``quotes_accepted`` (counts) with
    ``sent_totals``/``accepted_totals`` (ISO 4217 code → sum of the quotes' totals in minor units), the
    ``funnel`` and the conversion ``to_quote``/``to_won`` of the period's conversations."""

    leads: int
    quotes_sent: int
    sent_totals: dict[str, int]
    quotes_accepted: int
    accepted_totals: dict[str, int]
    funnel: list[analytics.FunnelStep]
    to_quote: analytics.Rate
    to_won: analytics.Rate


@dataclass(frozen=True)
class Scored:
    """A conversation of the period with its scorecard ``total`` (0–30), its ``channel`` and console ``link``."""

    conversation_id: str
    channel: str
    total: int
    link: str


@dataclass(frozen=True)
class Digest:
    """A report: ``kind`` (``daily`` or ``weekly``), the calendar days ``first``…``last`` (business time zone),
    ``current`` and ``previous`` (the same number of days before) :class:`Figures`, escalations ``open`` now and
    how many of them are ``waiting`` for a manager, the ``worst`` scored conversations (lowest total first) and,
    for the weekly one, ``per_day``: (day, conversations, quotes sent) for each day of the period."""

    kind: str
    first: date
    last: date
    current: Figures
    previous: Figures
    open: int
    waiting: int
    worst: list[Scored]
    per_day: list[tuple[date, int, int]]


def _totals(rows) -> dict[str, int]:
    totals: dict[str, int] = defaultdict(int)
    for currency, minor in rows:
        totals[currency] += minor or 0
    return dict(totals)


async def figures(session: AsyncSession, since: datetime, until: datetime) -> Figures:
    """The :class:`Figures` of ``[since, until)`` (timezone-aware). Raises analytics.InvalidPeriod for a bad one."""
    funnel = await analytics.funnel(session, since, until)
    conversion = await analytics.conversion(session, since, until)
    since, until = since.astimezone(UTC), until.astimezone(UTC)
    leads = await session.scalar(select(func.count(Deal.id)).where(Deal.created_at >= since, Deal.created_at < until))
    sent = (
        await session.execute(
            select(Quote.currency, Quote.total_minor).where(Quote.sent_at >= since, Quote.sent_at < until)
        )
    ).all()
    accepted = (
        await session.execute(
            select(Quote.currency, Quote.total_minor).where(Quote.accepted_at >= since, Quote.accepted_at < until)
        )
    ).all()
    return Figures(
        leads or 0,
        len(sent),
        _totals(sent),
        len(accepted),
        _totals(accepted),
        funnel,
        conversion.to_quote,
        conversion.to_won,
    )


async def gather(session: AsyncSession, kind: str, first: date, last: date, public_url: str) -> Digest:
    """The :class:`Digest` of ``kind`` for the days ``first``…``last``, read from the business DB at this moment
    (open escalations are those open now). ``public_url`` prefixes the console links."""
    since, until = analytics.period(first, last)
    length = until - since
    current = await figures(session, since, until)
    previous = await figures(session, since - length, since)
    by_status: dict[str, int] = dict(
        (
            await session.execute(
                select(Escalation.status, func.count(Escalation.id))
                .where(Escalation.status.in_(OPEN_ESCALATIONS))
                .group_by(Escalation.status)
            )
        )
        .tuples()
        .all()
    )
    worst_rows = (
        await session.execute(
            select(Conversation.conversation_id, Conversation.channel, ConversationScore.total)
            .join(ConversationScore, ConversationScore.conversation_id == Conversation.conversation_id)
            .where(
                Conversation.last_message_at >= since.astimezone(UTC),
                Conversation.last_message_at < until.astimezone(UTC),
            )
            .order_by(ConversationScore.total, Conversation.last_message_at.desc())
            .limit(WORST)
        )
    ).all()
    worst = [Scored(cid, channel, total, f"{public_url}{page_url(cid)}") for cid, channel, total in worst_rows]
    per_day: list[tuple[date, int, int]] = []
    if kind == "weekly":
        volume: dict[date, int] = defaultdict(int)
        for row in await analytics.daily_volume(session, since, until):
            volume[row.day] += row.conversations
        zone = ZoneInfo(get_company().timezone)
        quoted: dict[date, int] = defaultdict(int)
        for (sent_at,) in await session.execute(
            select(Quote.sent_at).where(Quote.sent_at >= since.astimezone(UTC), Quote.sent_at < until.astimezone(UTC))
        ):
            quoted[(sent_at if sent_at.tzinfo else sent_at.replace(tzinfo=UTC)).astimezone(zone).date()] += 1
        per_day = [(day, volume[day], quoted[day]) for day in sorted(volume)]
    return Digest(
        kind,
        first,
        last,
        current,
        previous,
        sum(by_status.values()),
        by_status.get("pending", 0),
        worst,
        per_day,
    )


# --- rendering -------------------------------------------------------------------------------------------------


def _money(totals: dict[str, int]) -> str:
    with i18n.use(get_company().default_language):
        return ", ".join(i18n.format_money(minor, currency) for currency, minor in sorted(totals.items()))


def _percent(rate: float | None) -> str:
    return "—" if rate is None else f"{rate * 100:.1f}%"


def _change(now: int, before: int) -> str:
    return f"{now} (previous {before})"


def text(digest: Digest) -> str:
    """The digest as plain text (Telegram and the e-mail's body), in English as the console is."""
    company = get_company()
    days = digest.first.isoformat() if digest.first == digest.last else f"{digest.first} – {digest.last}"
    now, before = digest.current, digest.previous
    lines = [
        f"{company.brand} — {digest.kind} sales digest, {days}",
        "",
        f"New leads: {_change(now.leads, before.leads)}",
        f"Quotes sent: {_change(now.quotes_sent, before.quotes_sent)}"
        + (f", worth {_money(now.sent_totals)}" if now.sent_totals else ""),
        f"Quotes accepted: {_change(now.quotes_accepted, before.quotes_accepted)}"
        + (f", worth {_money(now.accepted_totals)}" if now.accepted_totals else ""),
        f"Escalations open: {digest.open} ({digest.waiting} waiting for a manager)",
        "",
        "Conversations by furthest stage (previous period):",
    ]
    previous = {step.stage: step for step in before.funnel}
    for step in now.funnel:
        was = previous.get(step.stage)
        lines.append(
            f"  {step.stage}: {step.conversations} ({_percent(step.share)})"
            + (f" — previous {was.conversations} ({_percent(was.share)})" if was else "")
        )
    lines += [
        f"Conversion to quote: {_percent(now.to_quote.rate)} ({now.to_quote.count} of {now.to_quote.total}),"
        f" previous {_percent(before.to_quote.rate)}",
        f"Conversion to won: {_percent(now.to_won.rate)} ({now.to_won.count} of {now.to_won.total}),"
        f" previous {_percent(before.to_won.rate)}",
        "",
    ]
    if digest.worst:
        lines.append("Worst-scored conversations:")
        lines += [f"  {s.total}/{MAX_TOTAL} {s.channel} {s.conversation_id}: {s.link}" for s in digest.worst]
    else:
        lines.append("Worst-scored conversations: none of the period's conversations is scored yet.")
    return "\n".join(lines)


def chart(digest: Digest) -> bytes:
    """A PNG bar chart of conversations and quotes sent per day of the weekly ``digest`` (matplotlib, Agg).
    CPU-bound: call it off the event loop."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    figure = Figure(figsize=(7, 3.2), dpi=100)
    axes = figure.subplots()
    labels = [day.strftime("%a %d") for day, _, _ in digest.per_day]
    positions = range(len(labels))
    axes.bar([x - 0.2 for x in positions], [n for _, n, _ in digest.per_day], 0.4, label="conversations")
    axes.bar([x + 0.2 for x in positions], [q for _, _, q in digest.per_day], 0.4, label="quotes sent")
    axes.set_xticks(list(positions), labels)
    axes.yaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_title(f"{digest.first} – {digest.last}")
    axes.legend()
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


# --- sending ---------------------------------------------------------------------------------------------------


async def send_email(settings: Settings, subject: str, body: str, png: bytes | None = None) -> None:
    """``body`` (plain text) to ``digest_email_to`` through ``smtp_host``, ``png`` attached as ``chart.png``.
    Raises aiosmtplib.SMTPException (or OSError) when the server refuses or cannot be reached in time."""
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = (
        settings.smtp_from,
        ", ".join(settings.digest_email_to),
        subject,
    )
    message.set_content(body)
    if png is not None:
        message.add_attachment(png, maintype="image", subtype="png", filename="chart.png")
    await mail.send(message, settings)


async def deliver(settings: Settings, digest: Digest) -> str:
    """Send ``digest`` to the managers' chat and by e-mail; a one-line summary of where it went. Raises
    DigestError when a configured channel failed (the other is tried first)."""
    body = text(digest)
    png = await asyncio.to_thread(chart, digest) if digest.kind == "weekly" else None
    subject = body.splitlines()[0]
    done, failed = [], []
    try:
        sent = await notify_managers(body, settings, photo=(png, subject) if png else None)
        done.append("Telegram" if sent else "Telegram not configured")
    except NotifyError as exc:
        failed.append(f"Telegram: {exc}")
    if settings.smtp_host and settings.digest_email_to:
        try:
            await send_email(settings, subject, body, png)
            done.append(f"e-mail to {len(settings.digest_email_to)} recipient(s)")
        except (aiosmtplib.SMTPException, OSError) as exc:
            failed.append(f"e-mail: {type(exc).__name__}: {exc}")
    else:
        done.append("e-mail not configured")
    if failed:
        log.error("%s digest %s not sent: %s", digest.kind, digest.first, "; ".join(failed))
        raise DigestError("; ".join(failed))
    return f"{digest.kind} digest {digest.first}…{digest.last}: " + ", ".join(done)


async def _report(settings: Settings, now: datetime, kind: str, days: int) -> str:
    last = now.astimezone(ZoneInfo(get_company().timezone)).date() - timedelta(days=1)
    async with session_scope(settings.database_url) as session:
        digest = await gather(session, kind, last - timedelta(days=days - 1), last, settings.public_url)
    return await deliver(settings, digest)


async def daily(settings: Settings, now: datetime) -> str:
    """The scheduled job: the digest of the day before ``now`` (business time zone); a one-line summary."""
    return await _report(settings, now, "daily", 1)


async def weekly(settings: Settings, now: datetime) -> str:
    """The scheduled job: the digest of the seven days before ``now``'s day, with its chart; a one-line summary."""
    return await _report(settings, now, "weekly", 7)
