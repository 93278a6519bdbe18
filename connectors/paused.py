"""No silence while the bot is paused for a manager, on every channel.

An escalation pauses the bot (rasa-sdk's ``ConversationPaused``) and so does a manager's takeover in the
console (a ``pause`` event, :mod:`bot.handoff.takeover`). Rasa 3.6 then records each customer message and
predicts nothing (``MessageProcessor._should_handle_message``). Every channel's turn runs through
:func:`connectors.turns.run_turn`, which calls :meth:`PausedReplies.after_turn` once Rasa is done: when the
conversation is paused and the message got no action, Rasa runs :data:`ACTION` through its own
``MessageProcessor.execute_action`` (the action server's ``actions.escalation.ActionPausedReply``). That
action decides whether to send the holding message (one per ``CLOSER_HOLDING_REPLY_INTERVAL_S``, its text
a domain response saying when to expect an answer from business hours) and returns it as events, so Rasa
sends it through the message's own output channel (Telegram, WhatsApp, the REST response of the web chat)
and keeps it in the tracker, where the console's transcript shows it. The bot stays paused.
"""

import logging
from typing import TYPE_CHECKING, Any

from rasa.core.channels.channel import UserMessage
from rasa.core.policies.policy import PolicyPrediction
from rasa.shared.core.events import ActionExecuted, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker
from sanic import Blueprint

if TYPE_CHECKING:
    from rasa.core.agent import Agent

log = logging.getLogger(__name__)

ACTION = "action_paused_reply"


def unanswered_while_paused(tracker: DialogueStateTracker) -> bool:
    """Whether ``tracker`` is paused and its latest customer message got no action (Rasa ran none after it)."""
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
        self._app: Any = None

    def bind(self, blueprint: Blueprint) -> None:
        """Keep the Sanic app the blueprint is registered on (its ``ctx.agent`` is Rasa's agent, read per turn
        because ``PUT /model`` replaces it)."""

        async def keep_app(app: Any, *_: Any) -> None:
            self._app = app

        blueprint.listener("before_server_start")(keep_app)

    def _agent(self) -> "Agent | None":
        agent = getattr(self._app.ctx, "agent", None) if self._app is not None else None
        return agent if agent is not None and agent.is_ready() else None

    async def after_turn(self, message: UserMessage) -> None:
        """Run on the turn's loop right after Rasa handled ``message``: under the conversation's lock, when
        the conversation is paused and the message got no action, execute :data:`ACTION` with the message's
        output channel (Rasa sends the action's messages and saves the tracker). A failure is logged; the
        customer's message is stored either way."""
        agent = self._agent()
        if agent is None or agent.processor is None:
            return
        processor = agent.processor
        try:
            async with agent.lock_store.lock(message.sender_id):
                tracker = await processor.get_tracker(message.sender_id)
                if not unanswered_while_paused(tracker):
                    return
                await processor.execute_action(
                    message.sender_id,
                    ACTION,
                    message.output_channel,
                    processor.nlg,
                    PolicyPrediction.for_action_name(processor.domain, ACTION),
                )
        except Exception:
            log.exception("the holding reply of paused conversation %s failed", message.sender_id)
