"""Plan and send the follow-ups (the scheduled job ``follow_ups``, every ``follow_ups_interval_s`` seconds).

**Planning** (:func:`plan`) turns the business DB's state into ``follow_ups`` rows, each step of a cadence
(``knowledge/follow_ups.yml``) once per subject:

- ``quote_sent``: a quote with status ``sent`` still valid: one row per ``remind_after_hours`` (due that long
  after the quote was sent) and one ``before_expiry_hours`` before it expires (``quote:<number>``);
- ``cart_abandoned``: a cart with lines and no quote since its last change, unchanged for the first
  ``remind_after_hours`` (``cart:<id>:<changed>``);
- ``lead_form_abandoned``: a conversation still in the lead form (the conversation index's ``active_loop``) with
  no message for the first ``remind_after_hours`` (``lead_form:<last message>``).

A step already due more than :data:`STALE` ago when it is planned (a quote older than the feature, a long
outage) is recorded as skipped rather than sent late.

**Sending** (:func:`send_due`) takes the rows due at ``now`` (oldest first, at most ``batch`` per run) and for
each, in this order: cancels it when its reason is gone (the quote was accepted, drafted back or expired; the
cart was emptied or quoted; the form ended) or the customer opted out (:mod:`bot.follow_ups.opt_outs`); skips it
when the cadence's ``max_messages`` were sent to the conversation; defers it (``due_at`` moved) while the
customer has written within the step's silence (``remind_after_hours`` after their last message), outside
business hours (to the next opening, ``company.yml``) and while a manager has the conversation or an
escalation waits for one (re-checked on the next run); otherwise writes the message in the customer's language
(:mod:`bot.follow_ups.outreach`). A send Rasa refuses is retried on the next runs, :data:`MAX_ATTEMPTS` times
in all, then marked failed. At most :data:`CONCURRENCY` messages are in flight at once, and at most
``follow_ups_per_second`` (settings) start each second (aiolimiter's leaky bucket): a thousand follow-ups falling due
together must not slow the turns of customers chatting live on the same Rasa server.
"""

import asyncio
import logging
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from aiolimiter import AsyncLimiter
from sqlalchemy import exists, func, literal, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.commerce import cart as carts
from bot.commerce import quotes as quoting
from bot.commerce.pricing import load_pricing
from bot.core.business import get_company
from bot.core.db import session_scope
from bot.core.models import (
    Cart,
    CartLine,
    Contact,
    Conversation,
    ConversationMessage,
    Escalation,
    FollowUp,
    Quote,
)
from bot.core.rasa import RasaClient, RasaError
from bot.core.settings import Settings
from bot.follow_ups import opt_outs
from bot.follow_ups.cadences import Cadence, FollowUpConfig, get_follow_up_config
from bot.follow_ups.outreach import WindowClosed, write_first
from bot.texts import i18n, messages

log = logging.getLogger(__name__)

LEAD_FORM = "lead_form"
STALE = timedelta(hours=12)
LOOKBACK = timedelta(days=14)  # carts and lead forms left longer ago than this are not followed up
MAX_ATTEMPTS = 3
CONCURRENCY = 8
BATCH = 500
OPEN_ESCALATION = ("pending", "in_progress")


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _hours(value: float) -> timedelta:
    return timedelta(hours=value)


# --- planning ---------------------------------------------------------------------------------------------


def _step(conversation_id: str, cadence: str, subject: str, step: int, due: datetime, now: datetime) -> FollowUp:
    row = FollowUp(conversation_id=conversation_id, cadence=cadence, subject=subject, step=step, due_at=due)
    row.status, row.attempts = "scheduled", 0
    if due < now - STALE:
        row.status, row.detail = "skipped", "was due before it could be planned"
    return row


async def _planned_subjects(session: AsyncSession, cadence: str, ids: list[str]) -> set[tuple[str, str]]:
    rows = await session.execute(
        select(FollowUp.conversation_id, FollowUp.subject).where(
            FollowUp.cadence == cadence, FollowUp.conversation_id.in_(ids)
        )
    )
    return {(row.conversation_id, row.subject) for row in rows}


async def plan(session: AsyncSession, config: FollowUpConfig, now: datetime) -> int:
    """Add the follow-up steps the DB's state calls for at ``now`` (see the module's docstring); the number of
    rows added. Does not commit."""
    added: list[FollowUp] = []
    quote_cadence = config.cadences["quote_sent"]
    unplanned = ~exists().where(
        FollowUp.conversation_id == Quote.conversation_id,
        FollowUp.cadence == quote_cadence.name,
        FollowUp.subject == literal("quote:") + Quote.number,
    )
    for quote in await session.scalars(
        select(Quote).where(Quote.status == "sent", Quote.sent_at.is_not(None), Quote.valid_until > now, unplanned)
    ):
        sent_at, valid_until = _aware(quote.sent_at), _aware(quote.valid_until)  # type: ignore[arg-type]
        dues = [sent_at + _hours(h) for h in quote_cadence.remind_after_hours]
        if quote_cadence.before_expiry_hours is not None:
            dues.append(valid_until - _hours(quote_cadence.before_expiry_hours))
        subject = f"quote:{quote.number}"
        for step, due in enumerate((d for d in dues if sent_at < d < valid_until), start=1):
            added.append(_step(quote.conversation_id, quote_cadence.name, subject, step, due, now))

    cart_cadence = config.cadences["cart_abandoned"]
    quiet = _hours(cart_cadence.remind_after_hours[0])
    abandoned = list(
        await session.scalars(
            select(Cart).where(
                Cart.updated_at <= now - quiet,
                Cart.updated_at >= now - LOOKBACK,
                exists().where(CartLine.cart_id == Cart.id),
                ~exists().where(Quote.conversation_id == Cart.conversation_id, Quote.created_at >= Cart.updated_at),
            )
        )
    )
    planned = await _planned_subjects(session, cart_cadence.name, [c.conversation_id for c in abandoned])
    for cart in abandoned:
        changed = _aware(cart.updated_at)
        subject = f"cart:{cart.id}:{int(changed.timestamp())}"
        if (cart.conversation_id, subject) not in planned:
            added.append(_step(cart.conversation_id, cart_cadence.name, subject, 1, changed + quiet, now))

    form_cadence = config.cadences["lead_form_abandoned"]
    quiet = _hours(form_cadence.remind_after_hours[0])
    left = list(
        await session.scalars(
            select(Conversation).where(
                Conversation.active_loop == LEAD_FORM,
                Conversation.last_message_at <= now - quiet,
                Conversation.last_message_at >= now - LOOKBACK,
            )
        )
    )
    planned = await _planned_subjects(session, form_cadence.name, [c.conversation_id for c in left])
    for conversation in left:
        last = _aware(conversation.last_message_at)
        subject = f"lead_form:{int(last.timestamp())}"
        if (conversation.conversation_id, subject) not in planned:
            added.append(_step(conversation.conversation_id, form_cadence.name, subject, 1, last + quiet, now))
    session.add_all(added)
    return len(added)


# --- sending ----------------------------------------------------------------------------------------------


@dataclass
class _Context:
    settings: Settings
    rasa: RasaClient
    config: FollowUpConfig
    now: datetime
    semaphore: asyncio.Semaphore
    pace: AsyncLimiter


async def _last_customer_message(session: AsyncSession, conversation_id: str) -> datetime | None:
    last = await session.scalar(
        select(func.max(ConversationMessage.timestamp)).where(
            ConversationMessage.conversation_id == conversation_id, ConversationMessage.speaker == "customer"
        )
    )
    return _aware(last) if last is not None else None


async def _quote_of(session: AsyncSession, row: FollowUp) -> Quote | None:
    number = row.subject.removeprefix("quote:")
    return await session.scalar(select(Quote).where(Quote.number == number))


async def _gone(session: AsyncSession, row: FollowUp, conversation: Conversation | None, now: datetime) -> str | None:
    """Why ``row`` no longer applies, or None."""
    if conversation is None:
        return "the conversation is no longer indexed (erased?)"
    if await opt_outs.opted_out(session, row.conversation_id, conversation.contact_id):
        return "the customer asked not to be written to"
    if row.cadence == "quote_sent":
        quote = await _quote_of(session, row)
        if quote is None or quote.status != "sent":
            return f"the quote is {quote.status if quote else 'gone'}"
        if _aware(quote.valid_until) <= now:
            return "the quote expired"
    elif row.cadence == "cart_abandoned":
        cart = await session.scalar(select(Cart).where(Cart.conversation_id == row.conversation_id))
        if cart is None or not cart.lines:
            return "the cart is empty"
        quoted = await session.scalar(
            select(func.count(Quote.id)).where(
                Quote.conversation_id == row.conversation_id, Quote.created_at >= cart.updated_at
            )
        )
        if quoted:
            return "a quote was made for the cart"
    elif row.cadence == "lead_form_abandoned" and conversation.active_loop != LEAD_FORM:
        return "the lead form ended"
    return None


async def _waits_for(
    session: AsyncSession, row: FollowUp, cadence: Cadence, conversation: Conversation, now: datetime
) -> tuple[datetime, str] | None:
    """When ``row`` may go instead of now, and why; None when it may go now."""
    expiring = row.cadence == "quote_sent" and row.step > len(cadence.remind_after_hours)
    if not expiring:
        silence = _hours(cadence.remind_after_hours[min(row.step, len(cadence.remind_after_hours)) - 1])
        last = await _last_customer_message(session, row.conversation_id)
        if last is not None and last + silence > now:
            return last + silence, "the customer wrote since"
    if conversation.paused or await session.scalar(
        select(func.count(Escalation.id)).where(
            Escalation.conversation_id == row.conversation_id, Escalation.status.in_(OPEN_ESCALATION)
        )
    ):
        return now + timedelta(minutes=1), "a manager has the conversation"
    company = get_company()
    if not company.is_open(now):
        return company.next_opening(now).astimezone(UTC), "outside business hours"
    return None


async def _text(
    session: AsyncSession, row: FollowUp, cadence: Cadence, conversation: Conversation, context: "_Context"
) -> str:
    """The message of ``row`` in the active language."""
    if row.cadence == "quote_sent":
        quote = await _quote_of(session, row)
        assert quote is not None
        return messages.render(
            "follow_up_quote",
            quote=quote,
            url=quoting.url(quote, context.settings.public_url),
            valid_until=i18n.format_date(_aware(quote.valid_until).date()),
            expiring=row.step > len(cadence.remind_after_hours),
        )
    if row.cadence == "cart_abandoned":
        cart = await session.scalar(select(Cart).where(Cart.conversation_id == row.conversation_id))
        assert cart is not None
        contact = await session.get(Contact, conversation.contact_id) if conversation.contact_id else None
        tracker = await context.rasa.tracker(row.conversation_id, events=False)
        granted = Decimal(str((tracker.get("slots") or {}).get("granted_discount") or "0"))
        priced = load_pricing().price(carts.items(cart), contact.segment if contact else "new", granted)
        heading = messages.render("follow_up_cart_heading")
        return messages.render("follow_up_cart", cart_text=messages.render("cart", cart=priced, heading=heading))
    return messages.render("follow_up_lead_form")


async def _send_one(context: _Context, row_id: int, counts: Counter) -> None:
    async with context.pace, context.semaphore, session_scope(context.settings.database_url) as session:
        row = await session.get(FollowUp, row_id)
        if row is None or row.status != "scheduled":
            return
        now = context.now
        cadence = context.config.cadences[row.cadence]
        conversation = await session.get(Conversation, row.conversation_id)
        reason = await _gone(session, row, conversation, now)
        if reason is not None:
            row.status, row.detail = "cancelled", reason
            counts["cancelled"] += 1
            return
        assert conversation is not None
        sent = await session.scalar(
            select(func.count(FollowUp.id)).where(
                FollowUp.conversation_id == row.conversation_id,
                FollowUp.cadence == row.cadence,
                FollowUp.status == "sent",
            )
        )
        if (sent or 0) >= cadence.max_messages:
            row.status, row.detail = "skipped", f"{cadence.max_messages} message(s) already sent"
            counts["skipped"] += 1
            return
        wait = await _waits_for(session, row, cadence, conversation, now)
        if wait is not None:
            row.due_at, row.detail = wait
            counts["deferred"] += 1
            return
        try:
            with i18n.use(conversation.language):
                text = await _text(session, row, cadence, conversation, context)
            delivery = await write_first(
                context.rasa,
                session,
                row.conversation_id,
                text,
                {"follow_up": row.cadence, "step": row.step},
                now=now,
                language=conversation.language,
                templates=cadence.whatsapp_templates,
            )
        except WindowClosed as exc:
            row.status, row.detail = "skipped", str(exc)
            counts["skipped"] += 1
            return
        except RasaError as exc:
            row.attempts += 1
            row.detail = str(exc)[:500]
            if row.attempts >= MAX_ATTEMPTS:
                row.status = "failed"
                counts["failed"] += 1
            else:
                counts["retry"] += 1
            log.warning("follow-up %d to %s not sent (attempt %d): %s", row.id, row.conversation_id, row.attempts, exc)
            return
        row.status, row.sent_at = "sent", now
        row.detail = f"as WhatsApp template {delivery.as_template}" if delivery.as_template else None
        counts["sent"] += 1


async def send_due(settings: Settings, rasa: RasaClient, now: datetime, batch: int = BATCH) -> Counter:
    """Send (or cancel, skip, defer) the follow-ups due at ``now``; counts by outcome (sent, cancelled, skipped,
    deferred, retry, failed). Raises SQLAlchemy's errors when the DB cannot be read."""
    async with session_scope(settings.database_url) as session:
        due = list(
            await session.scalars(
                select(FollowUp.id)
                .where(FollowUp.status == "scheduled", FollowUp.due_at <= now)
                .order_by(FollowUp.due_at)
                .limit(batch)
            )
        )
    pace = AsyncLimiter(settings.follow_ups_per_second, 1)
    context = _Context(settings, rasa, get_follow_up_config(), now, asyncio.Semaphore(CONCURRENCY), pace)
    counts: Counter = Counter()
    await asyncio.gather(*(_send_one(context, row_id, counts) for row_id in due))
    return counts


async def run(settings: Settings, now: datetime) -> str:
    """The scheduled job: :func:`plan`, then :func:`send_due`; a one-line summary."""
    async with session_scope(settings.database_url) as session:
        planned = await plan(session, get_follow_up_config(), now)
    async with RasaClient(settings.rasa_url, settings) as rasa:
        counts = await send_due(settings, rasa, now)
    done = ", ".join(f"{count} {outcome}" for outcome, count in sorted(counts.items())) or "nothing due"
    return f"{planned} planned; {done}"


async def overview(session: AsyncSession, upcoming: int = 20) -> tuple[dict[tuple[str, str], int], list[FollowUp]]:
    """For the console: the number of follow-ups by (cadence, status), and the next ``upcoming`` scheduled ones."""
    counts = {
        (cadence, status): int(count)
        for cadence, status, count in await session.execute(
            select(FollowUp.cadence, FollowUp.status, func.count(FollowUp.id)).group_by(
                FollowUp.cadence, FollowUp.status
            )
        )
    }
    rows = await session.scalars(
        select(FollowUp).where(FollowUp.status == "scheduled").order_by(FollowUp.due_at).limit(upcoming)
    )
    return counts, list(rows)
