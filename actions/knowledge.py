"""Questions about the business and messages NLU could not place (:mod:`bot.answering.questions`)."""

from actions.base import SafeAction
from bot.answering import questions
from bot.core.turn import Outcome, Turn


class ActionAnswerQuestion(SafeAction):
    """A sourced answer, a clarifying question with topic buttons, or an offer of a person; the second
    message in a row that NLU could not place goes to a manager instead."""

    def name(self) -> str:
        return "action_answer_question"

    async def act(self, turn: Turn) -> Outcome:
        return await questions.answer(turn)
