"""Escalation to a manager on request or complaint (:mod:`bot.handoff.handover`): recorded with a
summary, the managers notified, the customer told what happens next, the bot paused."""

from actions.base import SafeAction
from bot.core.turn import Outcome, Turn
from bot.handoff import handover


class ActionEscalate(SafeAction):
    """Hands the conversation to a manager: "requested" for a request for a person, "complaint" after a complaint."""

    def name(self) -> str:
        return "action_escalate"

    async def act(self, turn: Turn) -> Outcome:
        return await handover.escalate_on_request(turn)
