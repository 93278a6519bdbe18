"""connectors/paused.py: when a customer of a conversation paused for a manager gets a holding message, read
from real Rasa trackers and the domain's slot; connectors/turns.py checks only the turns the bot left unanswered."""

from pathlib import Path

import pytest
from rasa.core.channels.channel import CollectingOutputChannel, UserMessage
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import (
    ActionExecuted,
    BotUttered,
    ConversationPaused,
    ConversationResumed,
    SlotSet,
    UserUttered,
)
from rasa.shared.core.trackers import DialogueStateTracker

from connectors.config import ChannelConfigError
from connectors.paused import PausedReplies, holding_due, interval_s
from connectors.turns import run_turn

DOMAIN = Domain.load(str(Path(__file__).resolve().parents[2] / "domain.yml"))
NOW = 1_800_000_000.0


def conversation(*events) -> DialogueStateTracker:
    """A tracker where the customer asked for a person, the bot escalated and paused, then ``events``."""
    escalated = [
        ActionExecuted("action_listen"),
        UserUttered("I want to talk to a real person", {"name": "request_human"}),
        ActionExecuted("action_escalate"),
        BotUttered("A sales manager has been notified."),
        SlotSet("handoff_replied_at", None),
        ConversationPaused(),
    ]
    return DialogueStateTracker.from_events("whatsapp-971500000001", [*escalated, *events], DOMAIN.slots)


def test_the_first_message_after_the_hand_over_gets_a_holding_message():
    assert holding_due(conversation(UserUttered("hello?", {"name": "greet"})), NOW, 1800)


def test_the_turn_that_pauses_gets_none():
    assert not holding_due(conversation(), NOW, 1800)


@pytest.mark.parametrize(("answered_ago_s", "due"), [(60, False), (1799, False), (1800, True), (7200, True)])
def test_one_holding_message_per_interval_counted_from_the_latest_answer(answered_ago_s, due):
    tracker = conversation(
        ActionExecuted("action_paused_reply"),
        BotUttered("Thanks for your message."),
        SlotSet("handoff_replied_at", NOW - answered_ago_s),
        UserUttered("any news?", {"name": "chitchat"}),
    )
    assert holding_due(tracker, NOW, 1800) is due


def test_a_manager_reply_counts_as_an_answer():
    tracker = conversation(
        BotUttered("Hi, Max from sales here.", metadata={"manager": "max@example.com"}),
        SlotSet("handoff_replied_at", NOW - 5),
        UserUttered("great, 40 chairs then", {"name": "ask_products"}),
    )
    assert not holding_due(tracker, NOW, 1800)


def test_a_resumed_conversation_gets_none():
    tracker = conversation(ConversationResumed(), UserUttered("hello", {"name": "greet"}))
    assert not holding_due(tracker, NOW, 1800)


def test_the_interval_is_a_setting_in_seconds(monkeypatch):
    monkeypatch.delenv("CLOSER_HOLDING_REPLY_INTERVAL_S", raising=False)
    assert interval_s() == 1800
    monkeypatch.setenv("CLOSER_HOLDING_REPLY_INTERVAL_S", "600")
    assert interval_s() == 600
    monkeypatch.setenv("CLOSER_HOLDING_REPLY_INTERVAL_S", "soon")
    with pytest.raises(ChannelConfigError, match="CLOSER_HOLDING_REPLY_INTERVAL_S"):
        interval_s()


class RecordingPausedReplies(PausedReplies):
    """The real class with its Rasa half replaced by a record of the turns it was asked to check."""

    def __init__(self) -> None:
        super().__init__()
        self.checked: list[str] = []

    async def after_turn(self, message: UserMessage) -> None:
        self.checked.append(message.text)


@pytest.mark.parametrize(("bot_says", "checked"), [(["Here are three chairs."], []), ([], ["hello?"])])
async def test_only_a_turn_the_bot_left_unanswered_is_checked_for_a_holding_message(bot_says, checked):
    """run_turn reads the tracker again (after_turn) only when Rasa sent nothing: a paused conversation."""
    paused, output = RecordingPausedReplies(), CollectingOutputChannel()

    async def rasa_turn(message: UserMessage) -> None:
        for text in bot_says:
            await message.output_channel.send_response(message.sender_id, {"text": text})

    await run_turn(rasa_turn, UserMessage("hello?", output, "web-abcdefgh1234"), paused)
    assert paused.checked == checked
    assert [m["text"] for m in output.messages] == bot_says
