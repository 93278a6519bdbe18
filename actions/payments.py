"""The prepayment of the customer's proposal, as a payment link in the conversation (:mod:`bot.payments.links`)."""

from actions.base import SafeAction
from bot.core.turn import Outcome, Turn
from bot.payments import links


class ActionRequestPrepayment(SafeAction):
    """The link to pay the prepayment of the conversation's latest quote, or why there is none."""

    def name(self) -> str:
        return "action_request_prepayment"

    async def act(self, turn: Turn) -> Outcome:
        return await links.send_prepayment_link(turn)
