"""Escalation to a manager on request or complaint (:mod:`bot.handoff.handover`): recorded with a
summary, the managers notified, the customer told what happens next, the bot paused; questions about an
existing order go the same way; while paused, the holding message (run by the Rasa server, connectors.paused)."""

from datetime import UTC, datetime

from actions.base import SafeAction
from bot.core.turn import Outcome, Turn
from bot.handoff import handover


class ActionEscalate(SafeAction):
    """Hands the conversation to a manager: "requested" for a request for a person, "complaint" after a complaint."""

    def name(self) -> str:
        return "action_escalate"

    async def act(self, turn: Turn) -> Outcome:
        return await handover.escalate_on_request(turn)


class ActionPausedReply(SafeAction):
    """Run by the Rasa server (connectors.paused) when a customer writes while the bot is paused for a
    manager and a holding message is due: the holding message."""

    def name(self) -> str:
        return "action_paused_reply"

    async def act(self, turn: Turn) -> Outcome:
        return handover.holding_reply(datetime.now(UTC))


class ActionOrderStatus(SafeAction):
    """ "Where is my order 4471?": the chat cannot see orders; said honestly, and a manager gets it."""

    def name(self) -> str:
        return "action_order_status"

    async def act(self, turn: Turn) -> Outcome:
        return await handover.order_status(turn)
