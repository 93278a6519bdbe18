"""Where a channel's Rasa turns run, inside the Rasa server process.

- :class:`SenderQueues`: each customer's messages processed one at a time, in arrival order,
  different customers in parallel (at most :data:`MAX_CONCURRENT_TURNS`); a failure is logged and
  never stops the queue.
- :func:`run_turn`: a Rasa turn on the turn thread, off the server's event loop (see there), then the
  holding reply of a paused conversation (:mod:`connectors.paused`).
- :func:`freeze_loaded_heap`: the loaded model kept out of the garbage collector's full
  collections, which otherwise pause the whole server for 0.3–0.8 s.
"""

import asyncio
import gc
import logging
import sys
import threading
from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import Any

from rasa.core.channels.channel import OutputChannel, UserMessage

from connectors.logs import in_conversation, ref
from connectors.paused import PausedReplies

log = logging.getLogger(__name__)

MAX_CONCURRENT_TURNS = 2
TURN_SWITCH_INTERVAL_S = 0.001

_heap_frozen = False


def freeze_loaded_heap() -> None:
    """Move every object alive now out of the garbage collector's tracked generations
    (:func:`gc.freeze`); runs once per process, later calls do nothing.

    Called after the server has started, when Rasa has loaded the model: about 0.9 million objects
    (Rasa, TensorFlow, the model) that live as long as the process. Otherwise each full collection
    walks them all, holding the GIL 0.3–0.8 s (measured during `make bench-webhooks`), while every
    webhook waits. Frozen objects are still freed by reference counting; a model replaced at run
    time (``PUT /model``) may leave its reference cycles in memory."""
    global _heap_frozen
    if not _heap_frozen:
        _heap_frozen = True
        gc.collect()
        gc.freeze()
        log.info(
            "%d objects alive after start-up frozen out of the garbage collector's full collections",
            gc.get_freeze_count(),
        )


class SenderQueues:
    """Runs ``await job()`` for each submitted job: one customer's jobs strictly one after another in
    submission order, different customers concurrently but at most ``max_concurrent`` at a time (a
    Rasa turn runs NLU and policies on the event loop; without a bound, a burst of turns would delay
    the webhook acknowledgements that share the loop). A failing job is logged; the next one runs."""

    def __init__(self, max_concurrent: int = MAX_CONCURRENT_TURNS) -> None:
        self._turns = asyncio.Semaphore(max_concurrent)
        self._queues: dict[str, asyncio.Queue] = {}
        self._workers: dict[str, asyncio.Task] = {}
        self._pending: dict[str, int] = defaultdict(int)

    def submit(self, sender_id: str, job: Callable[[], Awaitable[None]]) -> None:
        queue = self._queues.setdefault(sender_id, asyncio.Queue())
        queue.put_nowait(job)
        self._pending[sender_id] += 1
        if sender_id not in self._workers:
            self._workers[sender_id] = asyncio.get_running_loop().create_task(self._work(sender_id, queue))

    async def _work(self, sender_id: str, queue: asyncio.Queue) -> None:
        try:
            while not queue.empty():
                job = queue.get_nowait()
                try:
                    async with self._turns:
                        await job()
                except Exception:
                    log.exception("processing a message of %s failed", ref(sender_id))
                finally:
                    self._pending[sender_id] -= 1
        finally:
            del self._workers[sender_id]
            if self._pending[sender_id] <= 0:
                self._queues.pop(sender_id, None)
                self._pending.pop(sender_id, None)

    async def drain(self) -> None:
        """Wait until every submitted job has run (used at shutdown and by tests)."""
        while self._workers:
            await asyncio.gather(*list(self._workers.values()), return_exceptions=True)


class _TurnThread:
    """One daemon thread running an event loop of its own for Rasa turns (started on first use)."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._guard = threading.Lock()

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        with self._guard:
            if self._loop is None:
                # Two threads now want the GIL: hand it over every 1 ms rather than every 5 ms, so an
                # acknowledgement on the server's loop waits at most that long per step behind a turn.
                sys.setswitchinterval(TURN_SWITCH_INTERVAL_S)
                self._loop = asyncio.new_event_loop()
                threading.Thread(target=self._loop.run_forever, name="closer-rasa-turns", daemon=True).start()
            return self._loop


_turns = _TurnThread()


class _ServerLoopOutput(OutputChannel):
    """Wraps a channel's output for a turn run on the turn thread: every send runs on the server's
    loop, where the channel's HTTP clients live, and the turn waits for it. ``sent``: whether the turn has
    sent anything (then Rasa ran an action for the message)."""

    def __init__(self, inner: OutputChannel, loop: asyncio.AbstractEventLoop) -> None:
        self.inner, self.server_loop = inner, loop
        self.sent = False

    def name(self) -> str:  # type: ignore[override]  # an instance's name: the wrapped channel's
        return self.inner.name()

    async def _on_server_loop(self, method: str, *args: Any, **kwargs: Any) -> None:
        self.sent = True
        call = getattr(self.inner, method)(*args, **kwargs)
        await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(call, self.server_loop))

    async def send_response(self, recipient_id: str, message: dict[str, Any]) -> None:
        await self._on_server_loop("send_response", recipient_id, message)

    async def send_text_message(self, recipient_id: str, text: str, **kwargs: Any) -> None:
        await self._on_server_loop("send_text_message", recipient_id, text, **kwargs)


async def run_turn(
    on_new_message: Callable[[UserMessage], Awaitable[Any]], message: UserMessage, paused: PausedReplies | None = None
) -> None:
    """Hand ``message`` to Rasa (``on_new_message``) on the turn thread and wait until the turn is done;
    with ``paused``, its :meth:`~connectors.paused.PausedReplies.after_turn` runs right after, on the same
    thread (a paused conversation's customer gets the holding message instead of silence), unless the bot
    answered in the turn: an answered message needs no holding message, and the check reads the whole
    tracker from the tracker store again (10–15 ms for a 60-turn conversation on SQLite, measured).

    Rasa 3.6 runs NLU, the policies and its SQL tracker store synchronously on the event loop of
    the task that handles a message: tens to hundreds of milliseconds per turn with the loop blocked.
    On the Sanic loop that would hold back every webhook acknowledgement (and Telegram and Meta
    redeliver slow ones). On a loop of its own the turn leaves the server's loop free between GIL
    switches; the bot's messages are still sent from the server's loop, where the channel's HTTP
    clients live. Exceptions of the turn are raised here."""
    server_loop = asyncio.get_running_loop()
    output = message.output_channel = _ServerLoopOutput(message.output_channel, server_loop)

    async def turn() -> None:
        with in_conversation(message.sender_id):  # the turn's log records name its conversation (connectors.logs)
            await on_new_message(message)
            if paused is not None and not output.sent:
                await paused.after_turn(message)

    await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(turn(), _turns.loop))
