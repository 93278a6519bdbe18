"""No silence while the bot is paused for a manager, on every channel.

An escalation pauses the bot (rasa-sdk's ``ConversationPaused``) and so does a manager's takeover in the
console (a ``pause`` event, :mod:`bot.handoff.takeover`). Rasa 3.6 then records each customer message and
predicts nothing (``MessageProcessor._should_handle_message``). Every channel's turn runs through
:func:`connectors.turns.run_turn`, which calls :meth:`PausedReplies.after_turn` once Rasa is done: when the
conversation is paused, the message got no action, and the customer's latest answer (a holding message or a
manager's reply, slot ``handoff_replied_at``) is at least the interval old (:mod:`bot.contracts.paused`:
``CLOSER_HOLDING_REPLY_INTERVAL_S``, default 1800 s), Rasa runs ``action_paused_reply`` through its own
``MessageProcessor.execute_action``. The action server says the holding message (when to expect an answer,
from business hours; a domain response) and sets the slot; Rasa sends it through the message's own output
channel (Telegram, WhatsApp, the REST response of the web chat) and keeps it in the tracker, where the
console's transcript shows it. The bot stays paused.
"""

import logging
import os
import time
from typing import Any

from rasa.core.agent import Agent
from rasa.core.channels.channel import UserMessage
from rasa.core.policies.policy import PolicyPrediction
from rasa.shared.core.events import ActionExecuted, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker
from sanic import Blueprint

from bot.contracts.paused import ACTION, DEFAULT_INTERVAL_S, INTERVAL_VARIABLE, REPLIED_AT_SLOT, due
from connectors.config import ChannelConfigError
from connectors.logs import ref

log = logging.getLogger(__name__)


def interval_s() -> float:
    """The interval between holding messages, seconds: ``CLOSER_HOLDING_REPLY_INTERVAL_S`` (Rasa server's
    environment), else 1800. Raises ChannelConfigError for a value that is not a positive number."""
    raw = os.environ.get(INTERVAL_VARIABLE, "").strip()
    if not raw:
        return DEFAULT_INTERVAL_S
    try:
        value = float(raw)
    except ValueError:
        value = 0.0
    if value <= 0:
        raise ChannelConfigError(f"the environment variable {INTERVAL_VARIABLE} must be a positive number, not {raw!r}")
    return value


def holding_due(tracker: DialogueStateTracker, now: float, interval: float) -> bool:
    """Whether the customer of ``tracker`` gets a holding message at ``now`` (Unix seconds): the conversation is
    paused, its latest customer message got no action, and their latest answer (slot ``handoff_replied_at``) is
    ``interval`` seconds old or more (or there was none since the hand-over)."""
    if not unanswered_while_paused(tracker):
        return False
    replied_at = tracker.get_slot(REPLIED_AT_SLOT)
    return due(None if replied_at is None else float(replied_at), now, interval)


def unanswered_while_paused(tracker: DialogueStateTracker) -> bool:
    """Whether ``tracker`` (Rasa's, from its tracker store) is paused and its latest customer message got no action
    (Rasa ran none after it)."""
    if not tracker.is_paused():
        return False
    for event in reversed(tracker.events):
        if isinstance(event, UserUttered):
            return True
        if isinstance(event, ActionExecuted):
            return False
    return False


class PausedReplies:
    """Runs :data:`ACTION` after a turn of a paused conversation. A channel makes one, binds it to its
    blueprint (:meth:`bind`, so it finds the Rasa server's agent once the server starts) and passes it to
    :func:`connectors.turns.run_turn`."""

    def __init__(self) -> None:
        """Reads the interval now (:func:`interval_s`): a bad value raises ChannelConfigError, which stops the
        Rasa server at start-up."""
        self._app: Any = None
        self.interval_s = interval_s()

    def bind(self, blueprint: Blueprint) -> None:
        """Keep the Sanic app the blueprint is registered on (its ``ctx.agent`` is Rasa's agent, read per turn
        because ``PUT /model`` replaces it)."""

        async def keep_app(app: Any, *_: Any) -> None:
            self._app = app

        blueprint.listener("before_server_start")(keep_app)

    def _agent(self) -> Agent | None:
        """Rasa's agent once it has loaded a model; None before, or when the app's agent is not Rasa's (the
        channels' tests stand in for it)."""
        agent = getattr(self._app.ctx, "agent", None) if self._app is not None else None
        return agent if isinstance(agent, Agent) and agent.is_ready() else None

    async def after_turn(self, message: UserMessage) -> None:
        """Run on the turn's loop right after Rasa handled ``message``: under the conversation's lock, when a
        holding message is due (:func:`holding_due`), execute ``action_paused_reply`` with the message's output
        channel (Rasa sends the action's messages and saves the tracker). A failure is logged; the customer's
        message is stored either way."""
        agent = self._agent()
        if agent is None or agent.processor is None:
            return
        processor = agent.processor
        try:
            async with agent.lock_store.lock(message.sender_id):
                tracker = await processor.get_tracker(message.sender_id)
                if not holding_due(tracker, time.time(), self.interval_s):
                    return
                await processor.execute_action(
                    message.sender_id,
                    ACTION,
                    message.output_channel,
                    processor.nlg,
                    PolicyPrediction.for_action_name(processor.domain, ACTION),
                )
        except Exception:
            log.exception("the holding reply of paused conversation %s failed", ref(message.sender_id))
