"""Customer feedback (👍/👎 and an optional comment) on knowledge answers, one row per answer."""

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.models import Feedback, KnowledgeAnswer

RATINGS = {"up": 1, "down": -1}
MAX_COMMENT_CHARS = 500


class UnknownAnswer(LookupError):
    """No knowledge answer with that id in that conversation."""


async def record_feedback(
    session: AsyncSession, answer_id: str, conversation_id: str, rating: int, comment: str | None
) -> Feedback:
    """Store ``rating`` (1 for 👍, -1 for 👎) on the knowledge answer ``answer_id`` of
    ``conversation_id``, replacing an earlier rating of that answer; ``comment`` replaces the
    earlier comment unless it is None, which keeps it. Flushes but leaves the commit to the
    caller. Raises UnknownAnswer when the answer does not exist or belongs to another conversation."""
    query = select(KnowledgeAnswer).where(
        KnowledgeAnswer.id == answer_id, KnowledgeAnswer.conversation_id == conversation_id
    )
    answer = (
        await session.execute(query.with_for_update())
    ).scalar_one_or_none()  # serialises re-ratings on PostgreSQL
    if answer is None:
        raise UnknownAnswer(f"no knowledge answer {answer_id} in conversation {conversation_id}")
    if answer.feedback is None:
        answer.feedback = Feedback(conversation_id=conversation_id, rating=rating, comment=comment)
    else:
        answer.feedback.rating = rating
        if comment is not None:
            answer.feedback.comment = comment
    await session.flush()
    return answer.feedback
