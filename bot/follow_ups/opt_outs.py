"""Customers who asked Closer not to write first ("stop", "unsubscribe", "don't write to me"): recorded by
``action_stop_follow_ups`` and honoured by every follow-up (``follow_up_opt_outs``). An opt-out covers the
conversation and, when it has a contact, every conversation of that contact."""

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.models import FollowUp, FollowUpOptOut


async def opt_out(session: AsyncSession, conversation_id: str, contact_id: int | None) -> int:
    """Record the opt-out of ``conversation_id`` (and its contact, if any; a second opt-out adds the contact to
    the first) and cancel its scheduled follow-ups; the number cancelled. Does not commit."""
    row = await session.get(FollowUpOptOut, conversation_id)
    if row is None:
        session.add(FollowUpOptOut(conversation_id=conversation_id, contact_id=contact_id))
    elif contact_id is not None:
        row.contact_id = contact_id
    cancelled = 0
    for follow_up in await session.scalars(
        select(FollowUp).where(FollowUp.conversation_id == conversation_id, FollowUp.status == "scheduled")
    ):
        follow_up.status, follow_up.detail = "cancelled", "the customer asked not to be written to"
        cancelled += 1
    return cancelled


async def opted_out(session: AsyncSession, conversation_id: str, contact_id: int | None) -> bool:
    """Whether the customer of ``conversation_id`` (or contact ``contact_id``) opted out of follow-ups."""
    condition = FollowUpOptOut.conversation_id == conversation_id
    if contact_id is not None:
        condition = condition | (FollowUpOptOut.contact_id == contact_id)
    return (await session.scalar(select(FollowUpOptOut.conversation_id).where(condition).limit(1))) is not None
