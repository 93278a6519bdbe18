"""The customer's own "delete my data", once they have confirmed it (:mod:`bot.privacy.forget_me`)."""

from actions.base import SafeAction
from bot.core.turn import Outcome, Turn
from bot.privacy import forget_me


class ActionEraseCustomerData(SafeAction):
    """Erases the customer's business data now and resets the slots; the console rewrites the
    conversation's events a few seconds after this turn."""

    def name(self) -> str:
        return "action_erase_customer_data"

    async def act(self, turn: Turn) -> Outcome:
        return await forget_me.erase_on_request(turn)
