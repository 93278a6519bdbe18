"""A service configured in the conversation and priced by the business's formula (:mod:`bot.commerce.configuring`):
the form's validation and the priced configuration."""

from typing import Any

from rasa_sdk import FormValidationAction, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.base import SafeAction
from bot.commerce import configuring
from bot.core.turn import Outcome, Turn


class ValidateConfigurationForm(FormValidationAction):
    """Asks for the package, then for the package's own factors only (the formula's, not the domain's whole list);
    keeps a value the formula knows and clears any other, so that the form asks again."""

    def name(self) -> str:
        return "validate_configuration_form"

    async def required_slots(
        self, domain_slots: list[str], dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[str]:
        return configuring.required_slots(dict(tracker.slots))

    async def get_validation_events(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        events: list[EventType] = []
        form_slots = [*self.domain_slots(domain), configuring.OPTIONS]
        for slot, value in tracker.slots_to_validate().items():
            if slot not in form_slots:
                continue
            cleaned: Any = configuring.clean(slot, value)
            tracker.slots[slot] = cleaned  # the next slot asked for depends on the package kept
            events.append(SlotSet(slot, cleaned))
        return events


class ActionPricePackage(SafeAction):
    """The configured package priced by the formula, line by line."""

    def name(self) -> str:
        return "action_price_package"

    async def act(self, turn: Turn) -> Outcome:
        return configuring.price_configuration(turn)


class ActionSendProposal(SafeAction):
    """The configured package as a commercial proposal: its PDF link."""

    def name(self) -> str:
        return "action_send_proposal"

    async def act(self, turn: Turn) -> Outcome:
        return await configuring.send_proposal(turn)
