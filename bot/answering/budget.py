"""The LLM budget (OWASP LLM10, unbounded consumption): checked before each LLM call, from what the
calls so far cost as recorded in ``knowledge_answers`` (tokens and ``cost_usd`` of every knowledge
answer that called the LLM, also those whose answer was rejected) and in ``llm_calls`` (the other calls that
are counted: the LLM's understanding of a message, recorded by :func:`record`).

- per conversation: ``llm_max_tokens_per_conversation`` prompt + completion tokens;
- per day, all conversations together: ``llm_max_cost_usd_per_day`` USD. The day is the UTC day:
  providers bill and show usage per UTC day, so the cap lines up with the bill, and UTC has no
  daylight-saving days of 23 or 25 hours. A model litellm has no price for (a local one) costs 0
  here; its tokens still count against the conversation's budget.

0 turns a budget off. The check comes before a call, so the call that crosses a budget still runs:
a conversation can end one call (at most its prompt plus ``llm_max_tokens``) over its budget.
Escalation summaries (:func:`bot.handoff.escalation.summarize`) and rephrasings (:mod:`bot.answering.rephrasing`)
respect the budget but are not counted in it: their usage is not recorded anywhere.
"""

import logging
from datetime import UTC, datetime, time

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.answering.llm import Completion
from bot.core.models import KnowledgeAnswer, LlmCall
from bot.core.settings import get_settings

log = logging.getLogger(__name__)


async def exceeded(session: AsyncSession, conversation_id: str, now: datetime | None = None) -> str | None:
    """Which budget the next LLM call in ``conversation_id`` would go over, as the
    ``fallback_reason`` to record (``budget: …``), or None within both. ``now`` (UTC, default the
    clock) picks the day. Logged at warning once per conversation or day: the first time no earlier
    answer in it carries the same reason."""
    settings = get_settings()
    if settings.llm_max_tokens_per_conversation > 0:
        answered = await session.scalar(
            select(
                func.sum(
                    func.coalesce(KnowledgeAnswer.prompt_tokens, 0)
                    + func.coalesce(KnowledgeAnswer.completion_tokens, 0)
                )
            ).where(KnowledgeAnswer.conversation_id == conversation_id)
        )
        called = await session.scalar(
            select(func.sum(LlmCall.prompt_tokens + LlmCall.completion_tokens)).where(
                LlmCall.conversation_id == conversation_id
            )
        )
        used = (answered or 0) + (called or 0)
        if used >= settings.llm_max_tokens_per_conversation:
            reason = f"budget: the conversation used its {settings.llm_max_tokens_per_conversation} LLM tokens"
            if not await _said(session, reason, KnowledgeAnswer.conversation_id == conversation_id):
                log.warning(
                    "LLM budget: conversation %s used %d tokens (limit %d); answering it extractively",
                    conversation_id,
                    used,
                    settings.llm_max_tokens_per_conversation,
                )
            return reason
    if settings.llm_max_cost_usd_per_day > 0:
        midnight = datetime.combine((now or datetime.now(UTC)).astimezone(UTC).date(), time(), UTC)
        answered = await session.scalar(
            select(func.sum(KnowledgeAnswer.cost_usd)).where(KnowledgeAnswer.created_at >= midnight)
        )
        called = await session.scalar(select(func.sum(LlmCall.cost_usd)).where(LlmCall.created_at >= midnight))
        spent = (answered or 0.0) + (called or 0.0)
        if spent >= settings.llm_max_cost_usd_per_day:
            reason = f"budget: today's LLM spend reached {settings.llm_max_cost_usd_per_day:.2f} USD"
            if not await _said(session, reason, KnowledgeAnswer.created_at >= midnight):
                log.warning(
                    "LLM budget: %.4f USD spent today (UTC, limit %.2f USD); answering extractively until midnight UTC",
                    spent,
                    settings.llm_max_cost_usd_per_day,
                )
            return reason
    return None


async def record(session: AsyncSession, conversation_id: str, purpose: str, completion: Completion) -> LlmCall:
    """Record an LLM call of ``conversation_id`` (Rasa's sender id) made for ``purpose`` (e.g. ``understanding``)
    in ``llm_calls``, so that :func:`exceeded` counts its tokens and cost; ``completion`` is the call's answer
    (:func:`bot.answering.llm.complete`). Flushes; the caller commits."""
    call = LlmCall(
        conversation_id=conversation_id,
        purpose=purpose,
        llm_model=completion.model,
        latency_s=completion.latency_s,
        prompt_tokens=completion.prompt_tokens,
        completion_tokens=completion.completion_tokens,
        cost_usd=completion.cost_usd,
    )
    session.add(call)
    await session.flush()
    return call


async def _said(session: AsyncSession, reason: str, scope) -> bool:
    """Whether an answer in ``scope`` (a condition on KnowledgeAnswer) already fell back for ``reason``."""
    return (
        await session.scalar(
            select(KnowledgeAnswer.id).where(scope, KnowledgeAnswer.fallback_reason == reason).limit(1)
        )
        is not None
    )
