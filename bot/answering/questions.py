"""The question turn: questions about the business (delivery, payment, warranty, returns, anything in
knowledge/) and messages NLU could not place, answered from retrieved passages by
:func:`bot.answering.knowledge.answer_question`."""

from bot.answering.knowledge import answer_question
from bot.core.business import get_company
from bot.core.turn import Outcome, Turn
from bot.handoff.handover import hand_over


def question_of(turn: Turn, picked_topic: bool) -> str:
    """The customer's question: the latest text, or, after a topic button, the text before it."""
    texts = [text for text, _ in turn.user_messages]
    if picked_topic and len(texts) >= 2:
        return texts[-2]
    return turn.text


def second_fallback_in_a_row(turn: Turn) -> bool:
    """Whether this and the customer's message before it both were ``nlu_fallback`` (blank messages skipped)."""
    intents = [intent for text, intent in turn.user_messages if text.strip()]
    return intents[-2:] == ["nlu_fallback", "nlu_fallback"]


async def answer(turn: Turn) -> Outcome:
    """A grounded answer naming its source (extractive, or from the configured LLM) with a feedback
    request, a clarifying question with topic buttons, or an offer of a person when the knowledge has no
    answer. The second message in a row that NLU could not place goes to a manager instead. A blank message
    (Rasa's REST webhook lets one through) gets ``utter_empty_message``."""
    if not turn.text.strip():
        return Outcome().say(response="utter_empty_message")
    if second_fallback_in_a_row(turn):
        return await hand_over(turn, "fallbacks")
    topics = turn.entity("topic")
    reply = await answer_question(
        turn.conversation_id,
        question_of(turn, bool(topics)),
        get_company(),
        turn.slot("sales_stage"),
        turn.slot("shown_skus") or [],
        topics[0] if topics else None,
    )
    outcome = Outcome()
    if reply.response:
        outcome.say(response=reply.response, buttons=reply.buttons or None)
    else:
        outcome.say(text=reply.text)
    if reply.feedback:
        outcome.say(json_message={"answer_id": reply.answer_id, "sources": reply.sources, "feedback": True})
    return outcome
