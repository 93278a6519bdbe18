"""The customer's own "delete my data", once they have confirmed it."""

from typing import Any

from rasa_sdk import Tracker
from rasa_sdk.events import AllSlotsReset
from rasa_sdk.executor import CollectingDispatcher

from actions.base import SafeAction
from bot.privacy import erasure


class ActionEraseCustomerData(SafeAction):
    """Erases the customer's business data now (bot.privacy.erasure.request_by_customer); their conversation's
    events are rewritten by the console a few seconds after this turn. The slots (name, e-mail, phone…)
    are reset so nothing personal is carried into later turns."""

    def name(self) -> str:
        return "action_erase_customer_data"

    async def act(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[dict[str, Any]]:
        await erasure.request_by_customer(tracker.sender_id)
        dispatcher.utter_message(response="utter_erasure_done")
        return [AllSlotsReset()]
