"""Handing a conversation to a human manager, and back.

:func:`escalate` records an :class:`~bot.core.models.Escalation` with a summary for the manager
(needs, cart, quote, last messages; written by the LLM when one is configured and its summary
passes the figure check, structured otherwise), adds it as a note to the customer's open deal and
notifies the managers' Telegram chat. The action that calls it pauses the bot with Rasa's
``ConversationPaused``; a manager takes it over from the console (:mod:`bot.handoff.takeover`), and
:func:`hand_back` resumes the bot through Rasa's HTTP API (:class:`bot.core.rasa.RasaClient`).
"""

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime

from babel.dates import format_datetime
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.answering import budget, grounding, llm
from bot.commerce import deals
from bot.core.business import Company
from bot.core.db import session_scope
from bot.core.models import Deal, Escalation, Quote
from bot.core.money import format_money
from bot.core.rasa import RasaClient
from bot.handoff.notify import NotifyError, notify_managers
from bot.observability import metrics
from bot.texts import i18n

log = logging.getLogger(__name__)

REASONS = {
    "requested": "the customer asked for a person",
    "complaint": "the customer complained",
    "order_amount": "the order is above the amount that needs a manager's approval",
    "discount": "the customer asked for a discount above what the bot may grant",
    "fallbacks": "the bot did not understand the customer twice in a row",
    "order_status": "the customer asks about an order already placed (the bot cannot see orders)",
    "manager": "a manager took the conversation over",
}
# An escalation's status: pending (waiting for a manager) → in_progress (a manager has it) → resolved.
STATUSES = ("pending", "in_progress", "resolved")
OPEN_STATUSES = ("pending", "in_progress")


@dataclass
class Situation:
    """What the manager needs to know. ``needs`` maps a label to what the customer said (quantity,
    budget, …); ``cart`` holds lines of text; ``messages`` (speaker, text) pairs, oldest first."""

    conversation_id: str
    reason: str
    customer: dict[str, str] = field(default_factory=dict)
    needs: dict[str, str] = field(default_factory=dict)
    cart: list[str] = field(default_factory=list)
    quote: Quote | None = None
    quote_url: str | None = None
    messages: list[tuple[str, str]] = field(default_factory=list)
    deal: Deal | None = None


def structured_summary(situation: Situation) -> str:
    """The summary as plain labelled lines, every value taken from ``situation``."""
    lines = [f"Escalation: {REASONS[situation.reason]}.", f"Conversation: {situation.conversation_id}"]
    customer = ", ".join(f"{k}: {v}" for k, v in situation.customer.items() if v)
    lines.append(f"Customer: {customer or 'not identified yet'}")
    needs = ", ".join(f"{k}: {v}" for k, v in situation.needs.items() if v)
    lines.append(f"Needs: {needs or 'not stated'}")
    lines.append("Cart: " + ("; ".join(situation.cart) if situation.cart else "empty"))
    if situation.quote is not None:
        q = situation.quote
        lines.append(
            f"Quote: {q.number} ({q.status}), total {format_money(q.total_minor, q.currency)} incl. VAT"
            + (f", {situation.quote_url}" if situation.quote_url else "")
        )
    if situation.messages:
        lines.append("Last messages:")
        lines.extend(f"  {speaker}: {text}" for speaker, text in situation.messages)
    return "\n".join(lines)


async def summarize(session: AsyncSession, situation: Situation) -> str:
    """The LLM's summary when an LLM is configured, the LLM budget (:mod:`bot.answering.budget`) allows it and
    every figure in it appears in the structured summary; otherwise (or on any LLM error) the
    structured summary."""
    facts = structured_summary(situation)
    if not llm.configured():
        return facts
    over_budget = await budget.exceeded(session, situation.conversation_id)
    if over_budget:
        log.info("LLM summary skipped (%s); using the structured one", over_budget)
        return facts
    messages = [
        {
            "role": "system",
            "content": "Summarise this sales conversation for the sales manager taking it over, in at "
            "most five short lines: who the customer is, what they need, what is in the cart "
            "and quote, why they were escalated and what to do first. Use only the facts "
            "given; copy every number exactly.",
        },
        {"role": "user", "content": facts},
    ]
    try:
        completion = await llm.complete(messages)
    except llm.LLMError as exc:
        log.warning("LLM summary failed, using the structured one: %s", exc)
        return facts
    invented = grounding.figures(completion.text) - grounding.figures(facts)
    if invented:
        log.warning(
            "LLM summary has figures not in the facts (%s); using the structured one", ", ".join(sorted(invented))
        )
        return facts
    return f"{completion.text}\n\n{facts}"


async def escalate(session: AsyncSession, situation: Situation) -> Escalation:
    """Record the escalation, note it on the deal and notify the managers. A failed notification
    is logged and kept in ``notify_error``; the escalation stands either way."""
    summary = await summarize(session, situation)
    escalation = Escalation(
        conversation_id=situation.conversation_id,
        reason=situation.reason,
        summary=summary,
        quote_id=situation.quote.id if situation.quote else None,
    )
    session.add(escalation)
    if situation.deal is not None:
        await deals.record(session, situation.deal, summary)
    buttons = [("Open the quote PDF", situation.quote_url)] if situation.quote_url else None
    try:
        escalation.notified_message_id = await notify_managers(summary, buttons=buttons)
    except NotifyError as exc:
        log.error("managers not notified of escalation in conversation %s: %s", situation.conversation_id, exc)
        escalation.notify_error = str(exc)
    await session.flush()
    return escalation


async def has_open_escalation(session: AsyncSession, conversation_id: str) -> bool:
    """Whether ``conversation_id`` (Rasa's sender id) has a pending or in-progress escalation in the business DB,
    i.e. one no manager has handed back yet."""
    found = await session.scalar(
        select(Escalation.id)
        .where(Escalation.conversation_id == conversation_id, Escalation.status.in_(OPEN_STATUSES))
        .limit(1)
    )
    return found is not None


async def count_open(session: AsyncSession) -> dict[str, int]:
    """The number of escalations in each of :data:`OPEN_STATUSES` (every status present, 0 when none)."""
    rows = await session.execute(
        select(Escalation.status, func.count()).where(Escalation.status.in_(OPEN_STATUSES)).group_by(Escalation.status)
    )
    return dict.fromkeys(OPEN_STATUSES, 0) | dict(rows.tuples().all())


async def report_open(database_url: str) -> None:
    """Until cancelled: the console's gauge ``closer_escalations_open{status}`` (bot.observability.metrics) set from
    the business DB at ``database_url`` every ``ESCALATIONS_REFRESH_S`` seconds; a failed count is logged and tried
    again at the next one."""
    while True:
        try:
            async with session_scope(database_url) as session:
                for status, count in (await count_open(session)).items():
                    metrics.ESCALATIONS_OPEN.labels(status).set(count)
        except Exception:
            log.exception("open escalations not counted")
        await asyncio.sleep(metrics.ESCALATIONS_REFRESH_S)


async def hand_back(
    session: AsyncSession,
    conversation_id: str,
    rasa: RasaClient,
    *,
    note: str | None = None,
    resolved_by: str | None = None,
) -> int:
    """Resume the bot in ``conversation_id`` (Rasa's ``resume`` event, then ``action_listen``, through its HTTP API),
    then mark its pending and in-progress escalations resolved (now, by ``resolved_by``, a console user's email or
    None from the CLI, with ``note``). A note is also added to the customer's open deal
    (:func:`bot.commerce.deals.open_deal`), if any, and queued for the external CRM. Returns how many escalations
    were resolved. Raises :class:`bot.core.rasa.RasaError`, having changed nothing, when Rasa does not resume the
    conversation."""
    # A paused conversation never reached action_listen; without it the next message would
    # be predicted as if it followed the action that paused the bot.
    await rasa.append_events(conversation_id, [{"event": "resume"}, {"event": "action", "name": "action_listen"}])
    open_ones = (
        await session.scalars(
            select(Escalation).where(
                Escalation.conversation_id == conversation_id, Escalation.status.in_(OPEN_STATUSES)
            )
        )
    ).all()
    now = datetime.now(UTC)
    for escalation in open_ones:
        escalation.status, escalation.resolved_at = "resolved", now
        escalation.resolved_by, escalation.resolution_note = resolved_by, note
    deal = await deals.open_deal(session, conversation_id=conversation_id) if note else None
    if deal is not None:
        await deals.record(session, deal, f"Handed back to the bot by {resolved_by or 'a manager'}: {note}")
    await session.flush()
    return len(open_ones)


def next_opening(company: Company, now: datetime) -> str:
    """The business's next opening after ``now`` (timezone-aware) as the customer reads it: weekday and time in
    the business's timezone, in the active language (:mod:`bot.texts.i18n`): "Monday 09:00", "الاثنين 09:00",
    "понедельник 09:00"."""
    return format_datetime(company.next_opening(now), "EEEE HH:mm", locale=i18n.locale())


def what_happens_next(company: Company, now: datetime) -> dict[str, str]:
    """What the customer is told after an escalation at ``now`` (timezone-aware), as ``utter_message`` keyword
    arguments: within business hours ``utter_escalated_open`` (a manager replies shortly: ``brand``, ``hours``,
    ``phone``), outside them ``utter_escalated_closed`` (``brand``, the :func:`next_opening` as "Monday 09:00",
    ``timezone``, ``email``); all from ``knowledge/company.yml``."""
    if company.is_open(now):
        return {
            "response": "utter_escalated_open",
            "brand": company.brand,
            "hours": company.hours,
            "phone": company.phone,
        }
    return {
        "response": "utter_escalated_closed",
        "brand": company.brand,
        "opening": next_opening(company, now),
        "timezone": company.timezone,
        "email": company.email,
    }
