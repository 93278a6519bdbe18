"""Quote actions: send the quote once the lead form is done, accept it, and discount requests
(:mod:`bot.commerce.quoting`)."""

from actions.base import SafeAction
from bot.commerce import quoting
from bot.core.turn import Outcome, Turn


class ActionSendQuote(SafeAction):
    """After the lead form of a quote request: the quote PDF; a manager for a big order."""

    def name(self) -> str:
        return "action_send_quote"

    async def act(self, turn: Turn) -> Outcome:
        return await quoting.send_quote(turn)


class ActionAcceptQuote(SafeAction):
    """ "I accept the quote": accepted and the deal won, or refused when expired."""

    def name(self) -> str:
        return "action_accept_quote"

    async def act(self, turn: Turn) -> Outcome:
        return await quoting.accept_quote(turn)


class ActionHandleDiscount(SafeAction):
    """A discount request: granted within the bot's cap, otherwise a draft quote goes to a manager."""

    def name(self) -> str:
        return "action_handle_discount"

    async def act(self, turn: Turn) -> Outcome:
        return await quoting.handle_discount(turn)
