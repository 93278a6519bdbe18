"""The web chat's channels for the Rasa server: Rasa's own REST and socket.io channels, with their
turns run on the turn thread (:func:`connectors.common.run_turn`) like Telegram's and WhatsApp's.

Rasa's built-in ``rest`` and ``socketio`` channels run each turn on the server's event loop: tens to
hundreds of milliseconds with the loop blocked, up to 2 s per turn under a burst of web chat
messages (measured with `make bench-webhooks`, whose baseline is the REST channel). In a server
that also takes Telegram's and WhatsApp's webhooks, that would hold back their acknowledgements.
These subclasses change nothing else: same URLs (``/webhooks/rest/webhook``,
``/socket.io``), same request and response formats, same credentials. credentials.yml::

    connectors.web.RestInput:

    connectors.web.SocketIOInput:
      user_message_evt: user_uttered
      bot_message_evt: bot_uttered
      session_persistence: true
"""

from typing import Any, Awaitable, Callable

from rasa.core.channels.channel import UserMessage
from rasa.core.channels.rest import RestInput as RasaRestInput
from rasa.core.channels.socketio import SocketIOInput as RasaSocketIOInput
from sanic import Blueprint

from connectors.common import run_turn

OnNewMessage = Callable[[UserMessage], Awaitable[Any]]


def _on_turn_thread(on_new_message: OnNewMessage) -> OnNewMessage:
    async def handle(message: UserMessage) -> None:
        await run_turn(on_new_message, message)
    return handle


class RestInput(RasaRestInput):
    """Rasa's REST channel (``POST /webhooks/rest/webhook`` with ``{"sender", "message",
    "metadata"}``, answered with the bot's messages), its turns on the turn thread."""

    def blueprint(self, on_new_message: OnNewMessage) -> Blueprint:
        return super().blueprint(_on_turn_thread(on_new_message))


class SocketIOInput(RasaSocketIOInput):
    """Rasa's socket.io channel, its turns on the turn thread."""

    def blueprint(self, on_new_message: OnNewMessage) -> Blueprint:
        return super().blueprint(_on_turn_thread(on_new_message))
