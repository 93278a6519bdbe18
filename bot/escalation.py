"""Handing a conversation to a human manager, and back.

:func:`escalate` records an :class:`~bot.models.Escalation` with a summary for the manager
(needs, cart, quote, last messages; written by the LLM when one is configured and its summary
passes the figure check, structured otherwise), adds it as a note to the customer's open deal and
notifies the managers' Telegram chat. The action that calls it pauses the bot with Rasa's
``ConversationPaused``; :func:`hand_back` resumes it through Rasa's HTTP API.
"""

import logging
from dataclasses import dataclass, field
from datetime import datetime, timezone

import aiohttp
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot import crm, grounding, llm
from bot.business import Company
from bot.models import Deal, DealNote, Escalation, Quote
from bot.money import format_money
from bot.notify import NotifyError, notify_managers

log = logging.getLogger(__name__)

REASONS = {
    "requested": "the customer asked for a person",
    "complaint": "the customer complained",
    "order_amount": "the order is above the amount that needs a manager's approval",
    "discount": "the customer asked for a discount above what the bot may grant",
    "fallbacks": "the bot did not understand the customer twice in a row",
}


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
        lines.append(f"Quote: {q.number} ({q.status}), total {format_money(q.total_minor, q.currency)} incl. VAT"
                     + (f", {situation.quote_url}" if situation.quote_url else ""))
    if situation.messages:
        lines.append("Last messages:")
        lines.extend(f"  {speaker}: {text}" for speaker, text in situation.messages)
    return "\n".join(lines)


async def summarize(situation: Situation) -> str:
    """The LLM's summary when an LLM is configured and every figure in it appears in the
    structured summary; otherwise (or on any LLM error) the structured summary."""
    facts = structured_summary(situation)
    if not llm.configured():
        return facts
    messages = [
        {"role": "system", "content": "Summarise this sales conversation for the sales manager taking it over, in at "
                                      "most five short lines: who the customer is, what they need, what is in the cart "
                                      "and quote, why they were escalated and what to do first. Use only the facts "
                                      "given; copy every number exactly."},
        {"role": "user", "content": facts},
    ]
    try:
        completion = await llm.complete(messages)
    except llm.LLMError as exc:
        log.warning("LLM summary failed, using the structured one: %s", exc)
        return facts
    invented = grounding.figures(completion.text) - grounding.figures(facts)
    if invented:
        log.warning("LLM summary has figures not in the facts (%s); using the structured one", ", ".join(sorted(invented)))
        return facts
    return f"{completion.text}\n\n{facts}"


async def escalate(session: AsyncSession, situation: Situation) -> Escalation:
    """Record the escalation, note it on the deal and notify the managers. A failed notification
    is logged and kept in ``notify_error``; the escalation stands either way."""
    summary = await summarize(situation)
    escalation = Escalation(conversation_id=situation.conversation_id, reason=situation.reason, summary=summary,
                            quote_id=situation.quote.id if situation.quote else None)
    session.add(escalation)
    if situation.deal is not None:
        situation.deal.notes.append(DealNote(body=summary))
        await session.flush()
        await crm.sync_deal(session, situation.deal, summary)
    buttons = [("Open the quote PDF", situation.quote_url)] if situation.quote_url else None
    try:
        escalation.notified_message_id = await notify_managers(summary, buttons=buttons)
    except NotifyError as exc:
        log.error("managers not notified of escalation in conversation %s: %s", situation.conversation_id, exc)
        escalation.notify_error = str(exc)
    await session.flush()
    return escalation


class HandBackError(RuntimeError):
    """Rasa did not resume the conversation (unreachable, or refused); the message says why."""


async def hand_back(session: AsyncSession, conversation_id: str, rasa_url: str, timeout_s: float = 10.0) -> int:
    """Resume the bot in ``conversation_id`` (Rasa's ``resume`` event, then ``action_listen``, through its HTTP API) and
    mark its open escalations handed back. Returns how many were open. Raises HandBackError."""
    url = f"{rasa_url}/conversations/{conversation_id}/tracker/events"
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout_s)) as client:
            # A paused conversation never reached action_listen; without it the next message would
            # be predicted as if it followed the action that paused the bot.
            async with client.post(url, json=[{"event": "resume"}, {"event": "action", "name": "action_listen"}]) as response:
                if response.status != 200:
                    raise HandBackError(f"Rasa answered {response.status}: {(await response.text())[:200]}")
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise HandBackError(f"Rasa at {rasa_url} is unreachable: {exc!r}") from exc
    open_ones = (await session.scalars(select(Escalation).where(
        Escalation.conversation_id == conversation_id, Escalation.status == "open"))).all()
    for escalation in open_ones:
        escalation.status, escalation.handed_back_at = "handed_back", datetime.now(timezone.utc)
    await session.flush()
    return len(open_ones)


def what_happens_next(company: Company, now: datetime) -> str:
    """What the customer is told after an escalation: who replies and when, from business hours."""
    if company.is_open(now):
        return (f"A sales manager from {company.brand} has been notified and will reply here shortly "
                f"(we're open {company.hours}). You can also call {company.phone}.")
    opening = company.next_opening(now)
    return (f"A sales manager from {company.brand} has been notified. We're closed right now, so they will reply here "
            f"from {opening:%A %H:%M} ({company.timezone} time). You can also email {company.email}.")
