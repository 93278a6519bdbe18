"""A call with a sales manager booked, moved or cancelled in the conversation (:mod:`bot.booking.calls`)."""

from actions.base import SafeAction
from bot.booking import calls
from bot.core.turn import Outcome, Turn


class ActionBookCall(SafeAction):
    """The free slots, or the slot the customer chose booked (or the booked call moved to it)."""

    def name(self) -> str:
        return "action_book_call"

    async def act(self, turn: Turn) -> Outcome:
        return await calls.book_call(turn)


class ActionCancelCall(SafeAction):
    """The booked call cancelled."""

    def name(self) -> str:
        return "action_cancel_call"

    async def act(self, turn: Turn) -> Outcome:
        return await calls.cancel_call(turn)
