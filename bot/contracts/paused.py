"""The holding message of a conversation paused for a manager, as both sides know it: the Rasa server
(``connectors.paused``) decides when one is due and runs :data:`ACTION`; the action server
(``actions.escalation.ActionPausedReply`` → ``bot.handoff.handover.holding_reply``) says it and sets
:data:`REPLIED_AT_SLOT`; the console (``bot.handoff.takeover.reply``) sets the slot with a manager's reply;
an escalation (``bot.handoff.handover.hand_over``) clears it.

- :data:`ACTION`: the action the Rasa server runs when a customer of a paused conversation writes and the
  latest answer (holding message or manager reply) is :data:`INTERVAL_VARIABLE` seconds old or more.
- :data:`REPLIED_AT_SLOT`: the slot holding that answer's time, Unix seconds (a float), None since the hand-over.
- :data:`INTERVAL_VARIABLE`: the environment variable of the Rasa server with the interval in seconds,
  :data:`DEFAULT_INTERVAL_S` when unset.
"""

ACTION = "action_paused_reply"
REPLIED_AT_SLOT = "handoff_replied_at"
INTERVAL_VARIABLE = "CLOSER_HOLDING_REPLY_INTERVAL_S"
DEFAULT_INTERVAL_S = 1800.0


def due(replied_at: float | None, now: float, interval_s: float) -> bool:
    """Whether a holding message is due at ``now`` (Unix seconds) when the customer was last answered at
    ``replied_at`` (Unix seconds; None: not since the hand-over)."""
    return replied_at is None or now - replied_at >= interval_s
