"""The web chat's channels for the Rasa server: Rasa's own REST and socket.io channels, with their
turns run on the turn thread (:func:`connectors.turns.run_turn`) like Telegram's and WhatsApp's,
the holding reply of a conversation paused for a manager (:mod:`connectors.paused`), and a per-sender
message rate limit (:func:`connectors.config.rate_limiter`).

Rasa's built-in ``rest`` and ``socketio`` channels run each turn on the server's event loop: tens to
hundreds of milliseconds with the loop blocked, up to 2 s per turn under a burst of web chat
messages (measured with `make bench-webhooks`, whose baseline is the REST channel). In a server
that also takes Telegram's and WhatsApp's webhooks, that would hold back their acknowledgements.
These subclasses change nothing else: same URLs (``/webhooks/rest/webhook``,
``/socket.io``), same request and response formats, same credentials. credentials.yml::

    connectors.web.RestInput:
      rate_limit_messages: 20   # optional, per sender per window
      rate_limit_window_s: 60   # optional, seconds

    connectors.web.SocketIOInput:
      user_message_evt: user_uttered
      bot_message_evt: bot_uttered
      session_persistence: true

Over the limit, a REST message gets 429 with ``Retry-After`` (seconds) and the polite
:data:`~connectors.ratelimit.SLOW_DOWN_REPLY` as the bot's one message; a socket.io message gets
no turn, and the first one of a window gets that reply. The console's web chat (``/api/chat``)
limits its customers before they reach the REST channel, with the same settings.

Both channels let the client name its conversation (REST's ``sender``, socket.io's ``session_id``), so
neither takes a message for another channel's conversation (``telegram-…``, ``whatsapp-…``: whoever knew
a customer's phone number would read their cart and quotes) nor one over :data:`MAX_MESSAGE_CHARS` (NLU
on 100,000 characters holds the turn thread for tens of seconds): REST answers 403 and 413, socket.io
gives no turn (and says why for a long message).
"""

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from rasa.core.channels.channel import InputChannel, UserMessage
from rasa.core.channels.rest import RestInput as RasaRestInput
from rasa.core.channels.socketio import SocketIOInput as RasaSocketIOInput
from sanic import Blueprint
from sanic.exceptions import SanicException
from sanic.request import Request
from sanic.response import HTTPResponse
from sanic.response import json as json_response

from bot.contracts import conversation_ids
from connectors.config import rate_limiter
from connectors.logs import ref
from connectors.paused import PausedReplies
from connectors.ratelimit import SLOW_DOWN_REPLY, Decision, RateLimiter
from connectors.turns import run_turn

log = logging.getLogger(__name__)

OnNewMessage = Callable[[UserMessage], Awaitable[Any]]

MAX_MESSAGE_CHARS = 10_000  # Telegram and WhatsApp allow 4,096; the console's web chat refuses longer ones too
TOO_LONG_REPLY = f"That message is too long for me (over {MAX_MESSAGE_CHARS:,} characters). Could you shorten it?"


def refusal(sender_id: str, text: Any) -> tuple[int, str] | None:
    """(HTTP status, reply) when a web chat message may not have a turn: 403 for another channel's
    conversation id (bot.contracts.conversation_ids; no reply text), 413 for a text over
    MAX_MESSAGE_CHARS; None when it may."""
    if conversation_ids.channel_from_id(sender_id) not in ("web", conversation_ids.OTHER):  # telegram-…, whatsapp-…
        return 403, ""
    if isinstance(text, str) and len(text) > MAX_MESSAGE_CHARS:
        return 413, TOO_LONG_REPLY
    return None


def _log_refusal(sender_id: str, limiter: RateLimiter, decision: Decision) -> None:
    """A warning for the first refusal of a window, debug for the rest; never the message."""
    log.log(
        logging.WARNING if decision.notify else logging.DEBUG,
        "%s is over the rate limit of %d messages per %g s: message not processed (next allowed in %.0f s)",
        sender_id,
        limiter.messages,
        limiter.window_s,
        decision.retry_after_s,
    )


def _on_turn_thread(
    on_new_message: OnNewMessage, paused: PausedReplies, limiter: RateLimiter | None = None
) -> OnNewMessage:
    """Each message's turn on the turn thread, followed by ``paused``'s holding reply; a :func:`refusal` gets
    no turn (and its reply, if it has one), and with ``limiter``, a message over its sender's limit gets no
    turn and the first one of a window gets SLOW_DOWN_REPLY through its output channel."""

    async def handle(message: UserMessage) -> None:
        refused = refusal(message.sender_id, message.text)
        if refused:
            log.warning("web chat message of %s refused (%d)", ref(message.sender_id), refused[0])
            if refused[1]:
                await message.output_channel.send_text_message(message.sender_id, refused[1])
            return
        decision = limiter.take(message.sender_id) if limiter else None
        if decision is None or decision.allowed:
            await run_turn(on_new_message, message, paused)
            return
        _log_refusal(message.sender_id, limiter, decision)
        if decision.notify:
            await message.output_channel.send_text_message(message.sender_id, SLOW_DOWN_REPLY)

    return handle


class RestInput(RasaRestInput):
    """Rasa's REST channel (``POST /webhooks/rest/webhook`` with ``{"sender", "message",
    "metadata"}``, answered with the bot's messages), its turns on the turn thread; 403 and 413 for a
    :func:`refusal`, 429 over the sender's rate limit (see the module docstring)."""

    @classmethod
    def from_credentials(cls, credentials: dict[str, Any] | None) -> InputChannel:
        """Raises ChannelConfigError for a rate limit that is not a positive number."""
        return cls(rate_limiter(credentials, cls.name()))

    def __init__(self, limiter: RateLimiter | None = None) -> None:
        """``limiter``: per sender; by default :func:`~connectors.config.rate_limiter` without credentials."""
        self.limiter = limiter or rate_limiter(None, self.name())

    def blueprint(self, on_new_message: OnNewMessage) -> Blueprint:
        paused = PausedReplies()
        blueprint = super().blueprint(_on_turn_thread(on_new_message, paused))
        paused.bind(blueprint)
        blueprint.middleware("request")(self._limit)
        return blueprint

    async def _limit(self, request: Request) -> HTTPResponse | None:
        """403 or 413 for a :func:`refusal`, 429 for a message over its sender's limit; None lets the
        request through (Rasa's own handler answers a body without a sender)."""
        if request.method != "POST":
            return None
        try:
            sender_id = request.json.get("sender") if isinstance(request.json, dict) else None
        except SanicException:  # not JSON
            return None
        if not isinstance(sender_id, str):
            return None
        refused = refusal(sender_id, request.json.get("message"))
        if refused:
            log.warning("REST message of %s refused (%d)", ref(sender_id), refused[0])
            return json_response(
                [{"recipient_id": sender_id, "text": refused[1]}] if refused[1] else [], status=refused[0]
            )
        decision = self.limiter.take(sender_id)
        if decision.allowed:
            return None
        _log_refusal(sender_id, self.limiter, decision)
        return json_response(
            [{"recipient_id": sender_id, "text": SLOW_DOWN_REPLY}],
            status=429,
            headers={"Retry-After": decision.retry_after_header},
        )


class SocketIOInput(RasaSocketIOInput):
    """Rasa's socket.io channel, its turns on the turn thread; no turn over the sender's rate
    limit (see the module docstring)."""

    @classmethod
    def from_credentials(cls, credentials: dict[str, Any] | None) -> InputChannel:
        """Rasa's socket.io settings, and the rate limit; raises ChannelConfigError for a rate limit
        that is not a positive number."""
        channel = super().from_credentials(credentials)
        channel.limiter = rate_limiter(credentials, cls.name())
        return channel

    def __init__(self, *args: Any, limiter: RateLimiter | None = None, **kwargs: Any) -> None:
        """Rasa's arguments; ``limiter``: per sender (the session id), by default
        :func:`~connectors.config.rate_limiter` without credentials."""
        super().__init__(*args, **kwargs)
        self.limiter = limiter or rate_limiter(None, self.name())

    def blueprint(self, on_new_message: OnNewMessage) -> Blueprint:
        paused = PausedReplies()
        blueprint = super().blueprint(_on_turn_thread(on_new_message, paused, self.limiter))
        paused.bind(blueprint)
        return blueprint
