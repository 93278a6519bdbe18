"""Questions about the business (delivery, payment, warranty, returns, anything in knowledge/)
and messages NLU could not place: answered from retrieved passages by :mod:`bot.answering.knowledge`."""

from typing import Any

from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions.base import SafeAction, entity_values
from actions.escalation import hand_over
from bot.core.business import get_company
from bot.answering.knowledge import answer_question


def _question(tracker: Tracker, picked_topic: bool) -> str:
    """The customer's question: the latest text, or, after a topic button, the text before it."""
    texts = [e.get("text") or "" for e in tracker.events if e.get("event") == "user"]
    if picked_topic and len(texts) >= 2:
        return texts[-2]
    return tracker.latest_message.get("text") or ""


def _second_fallback_in_a_row(tracker: Tracker) -> bool:
    intents = [(e.get("parse_data") or {}).get("intent", {}).get("name") for e in tracker.events if e.get("event") == "user"]
    return intents[-2:] == ["nlu_fallback", "nlu_fallback"]


class ActionAnswerQuestion(SafeAction):
    """A grounded answer naming its source (extractive, or from the configured LLM), a clarifying
    question with topic buttons, or an offer of a person when the knowledge has no answer. The
    second message in a row that NLU could not place goes to a manager instead."""

    def name(self) -> str:
        return "action_answer_question"

    async def act(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[dict[str, Any]]:
        if _second_fallback_in_a_row(tracker):
            return await hand_over(dispatcher, tracker, "fallbacks")
        topics = entity_values(tracker, "topic")
        reply = await answer_question(
            tracker.sender_id, _question(tracker, bool(topics)), get_company(), tracker.get_slot("sales_stage"),
            tracker.get_slot("shown_skus") or [], topics[0] if topics else None)
        if reply.response:
            dispatcher.utter_message(response=reply.response, buttons=reply.buttons or None)
        else:
            dispatcher.utter_message(text=reply.text)
        if reply.feedback:
            dispatcher.utter_message(json_message={"answer_id": reply.answer_id, "sources": reply.sources, "feedback": True})
        return []
