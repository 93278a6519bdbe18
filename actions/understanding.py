"""Messages NLU could not place, understood by the LLM (:mod:`bot.understanding.llm_parse`), when one is
configured.

As Rasa's TwoStageFallbackAction does once the customer affirms: the action reverts the customer's message
(``UserUtteranceReverted``) and adds it again with the LLM's intent and entities, so the policies predict
the next action from them (the rule for ``nlu_fallback`` does not apply any more). The re-added event's
``parse_data["understanding"]`` marks it (``source`` ``llm``, the model, the call's latency and NLU's own
intent and confidence); the console's transcript shows it. Slots with a ``from_entity`` mapping get the
LLM's entities, as Rasa's ``action_extract_slots`` does for NLU's. Nothing understood (no LLM, a failure,
an answer outside the domain): no event, and the rule goes on to ``action_answer_question``, as without an LLM.
"""

import logging
import time
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import ActionExecuted, SlotSet, UserUtteranceReverted
from rasa_sdk.executor import CollectingDispatcher

from actions.base import read_turn
from bot.understanding import llm_parse

log = logging.getLogger(__name__)


def entity_slots(domain: dict[str, Any], intent: str, entities: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """SlotSet events for the slots whose ``from_entity`` mapping (without conditions, role or group, and
    allowing ``intent``) takes one of ``entities``; the first entity of each slot wins."""
    events, filled = [], set()
    for slot, spec in (domain.get("slots") or {}).items():
        for mapping in spec.get("mappings") or []:
            if mapping.get("type") != "from_entity" or mapping.get("conditions") or "role" in mapping:
                continue
            if "group" in mapping or not _allows(mapping, intent):
                continue
            value = next((e["value"] for e in entities if e["entity"] == mapping.get("entity")), None)
            if value is not None and slot not in filled:
                filled.add(slot)
                events.append(SlotSet(slot, value))
    return events


def _allows(mapping: dict[str, Any], intent: str) -> bool:
    """Whether a slot mapping's ``intent``/``not_intent`` (a name or a list) let ``intent`` fill it."""
    wanted, unwanted = mapping.get("intent") or [], mapping.get("not_intent") or []
    wanted = [wanted] if isinstance(wanted, str) else wanted
    unwanted = [unwanted] if isinstance(unwanted, str) else unwanted
    return (not wanted or intent in wanted) and intent not in unwanted


class ActionUnderstandWithLLM(Action):
    """The customer's message again, as the LLM understood it, or nothing (see the module)."""

    def name(self) -> str:
        return "action_understand_with_llm"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[dict]:
        latest = tracker.latest_message or {}
        nlu_intent = latest.get("intent") or {}
        if nlu_intent.get("name") != llm_parse.FALLBACK_INTENT:
            return []
        try:
            understood = await llm_parse.understand(
                read_turn(tracker), list(domain.get("intents") or []), list(domain.get("entities") or [])
            )
        except Exception:  # the business DB (budget) failing must not cost the customer their answer
            log.exception("LLM understanding failed in %s", tracker.sender_id)
            return []
        if understood is None:
            return []
        nlu_entities = list(latest.get("entities") or [])
        taken = [(e.get("start"), e.get("end")) for e in nlu_entities]
        added = [
            e
            for e in understood.entities
            if not any(s < e["end"] and e["start"] < t for s, t in taken if s is not None)
        ]
        entities = nlu_entities + added
        parse_data = {
            **latest,
            "intent": {"name": understood.intent, "confidence": 1.0},
            "entities": entities,
            "understanding": {
                "source": "llm",
                "model": understood.model,
                "latency_s": round(understood.latency_s, 3),
                "nlu_intent": nlu_intent.get("name"),
                "nlu_confidence": nlu_intent.get("confidence"),
            },
        }
        user = {
            "event": "user",
            "timestamp": time.time(),
            "text": latest.get("text"),
            "parse_data": parse_data,
            "input_channel": tracker.get_latest_input_channel(),
            "metadata": latest.get("metadata") or {},
        }
        return [
            UserUtteranceReverted(),
            ActionExecuted("action_listen"),
            user,
            *entity_slots(domain, understood.intent, entities),
        ]
