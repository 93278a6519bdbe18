"""Actions that only move the sales stage around a response (greeting, quote request)."""

from typing import Any

from rasa_sdk import Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.base import SafeAction
from bot.core.business import get_company


class ActionGreet(SafeAction):
    """Greets with the brand; sets sales_stage greeting at the start of a conversation only."""

    def name(self) -> str:
        return "action_greet"

    async def act(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[dict[str, Any]]:
        dispatcher.utter_message(response="utter_greet", brand=get_company().brand)
        return [] if tracker.get_slot("sales_stage") else [SlotSet("sales_stage", "greeting")]


class ActionRequestQuote(SafeAction):
    """Starts a quote request (sales_stage quoting); the lead form follows by rule."""

    def name(self) -> str:
        return "action_request_quote"

    async def act(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[dict[str, Any]]:
        dispatcher.utter_message(response="utter_quote_needs_contact")
        return [SlotSet("sales_stage", "quoting")]
