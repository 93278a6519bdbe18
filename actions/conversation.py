"""Actions that only move the sales stage around a response (greeting, quote request)."""

from actions.base import SafeAction
from bot.commerce import qualifying, quoting
from bot.core.turn import Outcome, Turn


class ActionGreet(SafeAction):
    """Greets with the brand; sales_stage greeting at the start of a conversation only."""

    def name(self) -> str:
        return "action_greet"

    async def act(self, turn: Turn) -> Outcome:
        return await qualifying.greet(turn)


class ActionRequestQuote(SafeAction):
    """Starts a quote request (sales_stage quoting); the lead form follows by rule."""

    def name(self) -> str:
        return "action_request_quote"

    async def act(self, turn: Turn) -> Outcome:
        return await quoting.request_quote(turn)
