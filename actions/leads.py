"""The lead form: validation of each answer and the contact + deal saved in the CRM tables."""

from typing import Any

from rasa_sdk import FormValidationAction, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.base import SafeAction, channel_of
from bot import crm
from bot.commerce import inputs, leads
from bot.core import db
from bot.core.business import get_company
from bot.core.settings import get_settings

Events = list[dict[str, Any]]


def _checked(value: Any, slot: str, dispatcher: CollectingDispatcher) -> dict[str, Any]:
    """``{slot: value}`` if valid, else re-ask politely with ``utter_invalid_<slot>`` and clear it."""
    if value is None:
        dispatcher.utter_message(response=f"utter_invalid_{slot}")
    return {slot: value}


class ValidateLeadForm(FormValidationAction):
    """Normalises each lead_form answer (E.164 phone, checked email, whole quantity) or clears it and re-asks."""

    def name(self) -> str:
        return "validate_lead_form"

    async def validate_customer_name(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> dict[str, Any]:
        return _checked(leads.clean_name(str(value)), "customer_name", dispatcher)

    async def validate_company(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> dict[str, Any]:
        return _checked(leads.clean_company(str(value)), "company", dispatcher)

    async def validate_email(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> dict[str, Any]:
        return _checked(leads.clean_email(str(value)), "email", dispatcher)

    async def validate_phone(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> dict[str, Any]:
        return _checked(leads.clean_phone(str(value), get_settings().default_phone_region), "phone", dispatcher)

    async def validate_quantity(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> dict[str, Any]:
        quantity = inputs.quantity(str(value))
        return _checked(None if quantity is None else str(quantity), "quantity", dispatcher)

    async def validate_budget(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> dict[str, Any]:
        budget = inputs.budget(str(value), get_company().currency)
        return _checked(None if budget is None else str(value), "budget", dispatcher)

    async def validate_timeline(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> dict[str, Any]:
        return _checked(leads.clean_timeline(str(value)), "timeline", dispatcher)


class ActionSaveLead(SafeAction):
    """After the lead form: store the contact and its deal, thank the customer."""

    def name(self) -> str:
        return "action_save_lead"

    async def act(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> Events:
        currency = get_company().currency
        slot = tracker.get_slot
        lead = leads.Lead(
            name=leads.clean_name(slot("customer_name") or "") or slot("customer_name"),
            company=leads.clean_company(slot("company") or "") or None,
            email=leads.clean_email(slot("email") or "") or slot("email"),
            phone=leads.clean_phone(slot("phone") or "", get_settings().default_phone_region) or slot("phone"),
            quantity=inputs.quantity(slot("quantity") or ""),
            budget_minor=inputs.budget(slot("budget") or "", currency),
            currency=currency,
            timeline=leads.clean_timeline(slot("timeline") or ""),
            channel=channel_of(tracker),
            sender_id=tracker.sender_id,
        )
        async with db.session_scope() as session:
            contact, deal, _ = await leads.save_lead(session, lead)
            await crm.sync_deal(session, deal)
        dispatcher.utter_message(response="utter_lead_saved", customer_name=contact.name, email=contact.email, phone=contact.phone)
        quoting = tracker.get_slot("sales_stage") == "quoting"  # action_send_quote follows and closes
        return [SlotSet("sales_stage", "quoting" if quoting else "closing"), SlotSet("contact_id", contact.id)]
