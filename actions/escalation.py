"""Escalation to a manager on request or complaint (:mod:`bot.handoff.handover`): recorded with a
summary, the managers notified, the customer told what happens next, the bot paused; questions about an
existing order go the same way; while paused, the holding message (run by the Rasa server, connectors.paused);
a new Rasa session keeps a conversation that waits for a manager paused."""

import logging
from datetime import UTC, datetime
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import ActionExecuted, ConversationPaused, SessionStarted, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.base import SafeAction
from bot.core.turn import Outcome, Turn
from bot.handoff import handover

log = logging.getLogger(__name__)


class ActionEscalate(SafeAction):
    """Hands the conversation to a manager: "requested" for a request for a person, "complaint" after a complaint."""

    def name(self) -> str:
        return "action_escalate"

    async def act(self, turn: Turn) -> Outcome:
        return await handover.escalate_on_request(turn)


class ActionPausedReply(SafeAction):
    """Run by the Rasa server (connectors.paused) when a customer writes while the bot is paused for a
    manager and a holding message is due: the holding message."""

    def name(self) -> str:
        return "action_paused_reply"

    async def act(self, turn: Turn) -> Outcome:
        return handover.holding_reply(datetime.now(UTC))


class ActionOrderStatus(SafeAction):
    """ "Where is my order 4471?": the chat cannot see orders; said honestly, and a manager gets it."""

    def name(self) -> str:
        return "action_order_status"

    async def act(self, turn: Turn) -> Outcome:
        return await handover.order_status(turn)


class ActionSessionStart(Action):
    """Rasa's ``action_session_start``, run by the Rasa server when a session expires (``session_config`` in
    ``domain.yml``): as Rasa's own, a ``session_started`` event, the slots carried over when the domain's
    ``carry_over_slots_to_new_session`` says so, then ``action_listen``; and, because ``session_started`` un-pauses
    the tracker, a ``pause`` before ``action_listen`` when the conversation still waits for a manager
    (:func:`bot.handoff.handover.awaits_manager`). When the business DB cannot be read the conversation keeps the
    pause state it had."""

    def name(self) -> str:
        return "action_session_start"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[dict[str, Any]]:
        events = [SessionStarted()]
        if (domain.get("session_config") or {}).get("carry_over_slots_to_new_session", True):
            slots = tracker.current_slot_values().items()
            events += [SlotSet(name, value) for name, value in slots if value is not None]
        try:
            paused = await handover.awaits_manager(tracker.sender_id)
        except Exception:
            log.exception("escalations of conversation %s unreadable at session start", tracker.sender_id)
            paused = tracker.is_paused()
        return events + ([ConversationPaused()] if paused else []) + [ActionExecuted("action_listen")]
