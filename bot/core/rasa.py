"""The one client of the Rasa server's HTTP API (``rasa run --enable-api``), for the console process and the CLI.

Built once at process start with Rasa's base URL and the settings, opened as an async context manager
(one connection pool), and passed down: the web chat relays messages through the REST channel and reads the
paused flag and managers' replies; the takeover pauses, replies and resumes (:mod:`bot.handoff.takeover`,
:func:`bot.handoff.escalation.hand_back`, ``python -m bot handback``)::

    async with RasaClient(settings.rasa_url, settings) as rasa:
        tracker = await rasa.tracker("web-0123456789abcdef")

Every call has a timeout (the settings' ``rasa_timeout``, seconds, for the whole request). Calls to the
HTTP API carry a short-lived signed token (:func:`bot.core.keys.rasa_api_headers`); the REST channel's
webhook, which customers' messages reach Rasa through, takes none.
"""

import urllib.parse
from types import TracebackType
from typing import Any

import aiohttp

from bot.core.keys import rasa_api_headers
from bot.core.settings import Settings


class RasaError(RuntimeError):
    """Rasa was unreachable, timed out, refused a request or answered with something other than JSON; the
    message says which and why. ``status``: Rasa's HTTP status when it answered (else None);
    ``retry_after``: its ``Retry-After`` header (seconds, as sent) when it has one, e.g. with 429."""

    def __init__(self, message: str, status: int | None = None, retry_after: str | None = None):
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


class RasaClient:
    """Rasa's HTTP API at ``base_url`` (e.g. ``http://localhost:5005``). ``settings``: the secret the calls
    are signed with (``rasa_jwt_secret``) and ``rasa_timeout``, the seconds any one call may take. Use it
    inside ``async with`` (which opens and closes its connection pool)."""

    def __init__(self, base_url: str, settings: Settings):
        self.base_url = base_url.rstrip("/")
        self._settings = settings
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> "RasaClient":
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self._settings.rasa_timeout))
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _call(
        self, method: str, path: str, *, signed: bool = True, json: Any = None, params: dict[str, str] | None = None
    ) -> Any:
        """Rasa's JSON answer to one request. Raises RasaError for a status other than 200, a body that is not
        JSON, a connection error or no answer within the timeout; RuntimeError outside ``async with``."""
        if self._session is None:
            raise RuntimeError("RasaClient used outside `async with`")
        headers = rasa_api_headers(self._settings) if signed else None
        try:
            async with self._session.request(
                method, f"{self.base_url}{path}", json=json, params=params, headers=headers
            ) as response:
                if response.status != 200:
                    body = (await response.text())[:200]
                    raise RasaError(
                        f"Rasa answered {response.status} to {method} {path}: {body}",
                        response.status,
                        response.headers.get("Retry-After"),
                    )
                return await response.json()
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise RasaError(f"Rasa at {self.base_url} did not answer {method} {path}: {exc!r}") from exc

    async def send_message(
        self, sender: str, message: str, metadata: dict[str, Any] | None = None
    ) -> list[dict[str, Any]]:
        """Send ``message`` from conversation ``sender`` through the REST channel (``POST
        /webhooks/rest/webhook``), with ``metadata`` on the customer's message (the actions read it:
        ``Turn.metadata``), and return the bot's replies in its format (``[{"recipient_id", "text", …}]``;
        empty while the conversation is paused). Raises RasaError (``status`` 429 with ``retry_after`` when the
        channel's rate limit refused it)."""
        body = {"sender": sender, "message": message, **({"metadata": metadata} if metadata else {})}
        return await self._call("POST", "/webhooks/rest/webhook", signed=False, json=body)

    async def tracker(self, conversation_id: str, *, events: bool = True) -> dict[str, Any]:
        """The conversation's tracker (``GET /conversations/<id>/tracker``): ``{"sender_id", "paused", "events",
        …}``, the events since its last restart, or ``"events": None`` with ``events=False``. Raises RasaError."""
        return await self._call(
            "GET", _tracker_path(conversation_id), params=None if events else {"include_events": "NONE"}
        )

    async def append_events(
        self, conversation_id: str, events: list[dict[str, Any]], *, deliver: bool = False
    ) -> dict[str, Any]:
        """Append ``events`` (Rasa's event dicts, e.g. ``{"event": "pause"}``) to the conversation's tracker
        (``POST /conversations/<id>/tracker/events``) and return the tracker. ``deliver``: also send a ``bot``
        event's text to the customer through the output channel of their last message
        (``output_channel=latest&execute_side_effects=true``). Raises RasaError."""
        params = {"output_channel": "latest", "execute_side_effects": "true"} if deliver else None
        return await self._call("POST", f"{_tracker_path(conversation_id)}/events", json=events, params=params)


def _tracker_path(conversation_id: str) -> str:
    """The path of a conversation's tracker in Rasa's HTTP API, the id percent-encoded."""
    return f"/conversations/{urllib.parse.quote(conversation_id, safe='')}/tracker"
