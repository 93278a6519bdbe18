"""The customer's "stop writing to me" (:mod:`bot.follow_ups.opt_outs`)."""

from actions.base import SafeAction
from bot.core import db
from bot.core.turn import Outcome, Turn
from bot.follow_ups import opt_outs


class ActionStopFollowUps(SafeAction):
    """Records the opt-out of the conversation (and its contact), cancels its scheduled follow-ups and
    confirms with ``utter_follow_ups_stopped``."""

    def name(self) -> str:
        return "action_stop_follow_ups"

    async def act(self, turn: Turn) -> Outcome:
        async with db.session_scope() as session:
            await opt_outs.opt_out(session, turn.conversation_id, turn.contact_id)
        return Outcome().say(response="utter_follow_ups_stopped")
