"""The lead form: validation of each answer, and the contact + deal saved (:mod:`bot.commerce.qualifying`)."""

from typing import Any

from rasa_sdk import FormValidationAction, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.forms import REQUESTED_SLOT
from rasa_sdk.types import DomainDict

from actions.base import SafeAction
from bot.commerce import inputs, leads, qualifying
from bot.core.business import get_company
from bot.core.settings import get_settings
from bot.core.turn import Outcome, Turn


def _checked(value: Any, slot: str, dispatcher: CollectingDispatcher) -> dict[str, Any]:
    """``{slot: value}`` if valid, else re-ask politely with ``utter_invalid_<slot>`` and clear it."""
    if value is None:
        dispatcher.utter_message(response=f"utter_invalid_{slot}")
    return {slot: value}


class ValidateLeadForm(FormValidationAction):
    """Normalises each lead_form answer (E.164 phone, checked email, whole quantity) or clears it and re-asks.

    Small talk asked instead of an answer ("how are you today?", NLU intent ``chitchat`` and a question) gets
    the small-talk reply and the same question again. Any other message the NLU reads as chitchat is taken as
    the answer: a name or "within two weeks" is often read so, and chitchat is not in the lead form's
    ``not_intent`` lists (domain.yml) for that reason."""

    def name(self) -> str:
        return "validate_lead_form"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> list[EventType]:
        requested = tracker.get_slot(REQUESTED_SLOT)
        message = tracker.latest_message or {}
        if (
            requested
            and (message.get("intent") or {}).get("name") == "chitchat"
            and inputs.looks_like_question(message.get("text") or "")
        ):
            dispatcher.utter_message(response="utter_chitchat")
            return [SlotSet(requested, None)]
        return await super().run(dispatcher, tracker, domain)

    async def validate_customer_name(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        return _checked(leads.clean_name(str(value)), "customer_name", dispatcher)

    async def validate_company(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        return _checked(leads.clean_company(str(value)), "company", dispatcher)

    async def validate_email(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        return _checked(leads.clean_email(str(value)), "email", dispatcher)

    async def validate_phone(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        return _checked(leads.clean_phone(str(value), get_settings().default_phone_region), "phone", dispatcher)

    async def validate_quantity(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        quantity = inputs.quantity(str(value))
        return _checked(None if quantity is None else str(quantity), "quantity", dispatcher)

    async def validate_budget(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        budget = inputs.budget(str(value), get_company().currency)
        return _checked(None if budget is None else str(value), "budget", dispatcher)

    async def validate_timeline(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        return _checked(leads.clean_timeline(str(value)), "timeline", dispatcher)


class ActionSaveLead(SafeAction):
    """After the lead form: store the contact and its deal, thank the customer."""

    def name(self) -> str:
        return "action_save_lead"

    async def act(self, turn: Turn) -> Outcome:
        return await qualifying.save_lead(turn)
