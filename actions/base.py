"""Tracker plumbing shared by the actions: the turn read once from the tracker, and the base class
that utters an :class:`~bot.core.turn.Outcome` and turns it into Rasa events (any failure becomes a
polite reply and a logged error). Not an action module: action modules import it, it imports none."""

import logging
import time
from abc import ABC, abstractmethod
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import AllSlotsReset, ConversationPaused, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from bot.answering import rephrasing
from bot.contracts import conversation_ids
from bot.core.turn import Outcome, Turn
from bot.observability import logs
from bot.observability.metrics import ACTION_SECONDS
from bot.texts import i18n

log = logging.getLogger(__name__)


def read_turn(tracker: Tracker, domain: dict[str, Any] | None = None) -> Turn:
    """The :class:`Turn` of ``tracker``: the latest message, its entities and the conversation's slots and messages,
    with the required slots of each form of ``domain`` (Rasa's domain as the action server receives it)."""
    latest = tracker.latest_message or {}
    names = dict.fromkeys(e.get("entity") for e in latest.get("entities") or [] if e.get("entity"))
    entities = {}
    for name in names:
        values = tuple(dict.fromkeys(str(v) for v in tracker.get_latest_entity_values(name) if v is not None))
        if values:
            entities[name] = values
    user_messages = tuple(
        (e.get("text") or "", ((e.get("parse_data") or {}).get("intent") or {}).get("name"))
        for e in tracker.events
        if e.get("event") == "user"
    )
    said = tuple(
        ("customer" if e["event"] == "user" else "bot", e.get("text") or "")
        for e in tracker.events
        if e.get("event") in ("user", "bot") and e.get("text")
    )
    return Turn(
        conversation_id=tracker.sender_id,
        channel=conversation_ids.channel_from_input(tracker.get_latest_input_channel() or "web"),
        text=latest.get("text") or "",
        intent=(latest.get("intent") or {}).get("name"),
        entities=entities,
        slots=dict(tracker.slots),
        user_messages=user_messages,
        said=said,
        metadata=next((e.get("metadata") or {} for e in reversed(tracker.events) if e.get("event") == "user"), {}),
        forms={
            name: tuple((form or {}).get("required_slots") or ())
            for name, form in ((domain or {}).get("forms") or {}).items()
        },
    )


def events_of(outcome: Outcome, slots: dict[str, Any]) -> list[dict[str, Any]]:
    """The Rasa events of ``outcome``: a slot reset, the slots in order, then a pause. With the conversation's
    current ``slots`` (name → value), a slot set to the value it already has gets no event (unless the slots are
    reset first): Rasa stores every event and replays the session's events on every later turn (tracker store,
    policies, the action server's copy), so a repeated value would only make each turn slower."""
    events = [AllSlotsReset()] if outcome.reset_slots else []
    events += [
        SlotSet(name, value)
        for name, value in outcome.slots
        if outcome.reset_slots or name not in slots or slots[name] != value
    ]
    return events + ([ConversationPaused()] if outcome.pause else [])


class SafeAction(Action, ABC):
    """Subclasses implement :meth:`act`: one call into ``bot/`` with the turn. Its outcome's messages
    are uttered (their texts rephrased for the conversation when the rephraser is on:
    :mod:`bot.answering.rephrasing`) and its events returned; while a form is active (the customer asked something
    in the middle of the lead form, and a rule answers it before the form resumes) its ``sales_stage`` is left as
    the form had it. An exception is logged with the conversation id and the customer gets ``utter_error``; nothing
    of the outcome is sent or stored. The texts the outcome composes are in the turn's language
    (:mod:`bot.texts.i18n`)."""

    @abstractmethod
    async def act(self, turn: Turn) -> Outcome:
        """What to do about ``turn``."""

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[dict[str, Any]]:
        turn = read_turn(tracker, domain)
        started = time.perf_counter()
        # the texts composed in this turn are in the customer's language; its log records name the conversation
        with i18n.use(turn.language), logs.in_conversation(tracker.sender_id):
            try:
                outcome = await self.act(turn)
            except Exception:
                log.exception("action %s failed in conversation %s", self.name(), tracker.sender_id)
                ACTION_SECONDS.labels(self.name(), "error").observe(time.perf_counter() - started)
                dispatcher.utter_message(response="utter_error")
                return []
            if tracker.active_loop_name:  # a question answered in the middle of a form: the form keeps its stage
                outcome.slots = [(name, value) for name, value in outcome.slots if name != "sales_stage"]
            outcome = await rephrasing.rephrase_outcome(outcome, turn)
        ACTION_SECONDS.labels(self.name(), "ok").observe(time.perf_counter() - started)
        for message in outcome.messages:
            dispatcher.utter_message(**message)
        return events_of(outcome, turn.slots)
