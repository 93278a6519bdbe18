"""The customer's own "delete my data" turn, once they have confirmed it."""

from bot.core.turn import Outcome, Turn
from bot.privacy import erasure


async def erase_on_request(turn: Turn) -> Outcome:
    """Erases the customer's business data now (:func:`bot.privacy.erasure.request_by_customer`); their
    conversation's events are rewritten by the console a few seconds after this turn. Every slot (name,
    e-mail, phone…) is reset so nothing personal is carried into later turns."""
    await erasure.request_by_customer(turn.conversation_id)
    return Outcome(reset_slots=True).say(response="utter_erasure_done")
