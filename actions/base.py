"""Base class that turns any failure inside an action into a polite reply and a logged error."""

import logging
from abc import ABC, abstractmethod
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher

log = logging.getLogger(__name__)


class SafeAction(Action, ABC):
    """Subclasses implement :meth:`act`. An exception is logged with the conversation id and the
    customer gets ``utter_error``; events already produced are dropped, so nothing half-done is stored."""

    @abstractmethod
    async def act(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[dict[str, Any]]:
        """The action's work; returns Rasa events."""

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[dict[str, Any]]:
        try:
            return await self.act(dispatcher, tracker, domain)
        except Exception:
            log.exception("action %s failed in conversation %s", self.name(), tracker.sender_id)
            dispatcher.messages.clear()
            dispatcher.utter_message(response="utter_error")
            return []


def entity_values(tracker: Tracker, entity: str) -> list[str]:
    """Distinct values of ``entity`` in the latest customer message, in order."""
    values: list[str] = []
    for value in tracker.get_latest_entity_values(entity):
        if value is not None and str(value) not in values:
            values.append(str(value))
    return values


def channel_of(tracker: Tracker) -> str:
    """The customer's channel: ``web`` for the widget (Rasa's rest/socketio channels), else Rasa's name."""
    channel = tracker.get_latest_input_channel() or "web"
    return "web" if channel in ("rest", "socketio") else channel
