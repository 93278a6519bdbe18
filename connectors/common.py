"""What the Telegram and WhatsApp channels share, inside the Rasa server process (``.venv-rasa``:
Rasa 3.6, SQLAlchemy 1.4, the standard library).

- :func:`required`: a credential from ``credentials.yml`` (Rasa has already substituted
  ``${ENV_VARS}``; an unset variable stops Rasa there); an empty or missing one raises
  :class:`ChannelConfigError`, which stops start-up with the key's name.
- :func:`read_body`: the raw body within a size limit (413) and its JSON (400).
- :func:`rate_limiter`: a channel's per-sender message rate limit (:mod:`connectors.ratelimit`) from
  its credentials.yml block or the environment.
- :class:`ChannelStore`: deliveries (dedupe, kept ≥ 24 h, replayed after a restart), customers
  (last inbound time), outbound messages and their statuses, long Telegram button payloads; in the
  business DB (tables from migration 0004), every call off the event loop; WhatsApp messages held
  back outside the 24-hour window.
- :func:`skip_over_limit`: what a delivery over its sender's rate limit gets instead of a turn.
- :class:`SenderQueues`: each customer's messages processed one at a time, in arrival order,
  different customers in parallel; a failure is logged and never stops the queue.
- :func:`run_turn`: a Rasa turn on the turn thread, off the server's event loop (see there).
- :func:`freeze_loaded_heap`: the loaded model kept out of the garbage collector's full
  collections, which otherwise pause the whole server for 0.3–0.8 s.
"""

import asyncio
import gc
import hashlib
import json
import logging
import os
import sys
import threading
import uuid
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Awaitable, Callable, Dict, List, Optional, Tuple

import sqlalchemy as sa
from rasa.core.channels.channel import OutputChannel, UserMessage
from sanic.request import Request
from sanic.response import HTTPResponse, json as json_response

from connectors.ratelimit import DEFAULT_MESSAGES, DEFAULT_WINDOW_S, SLOW_DOWN_REPLY, Decision, RateLimiter

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MAX_BODY_BYTES = 1024 * 1024
MAX_CONCURRENT_TURNS = 2
TURN_SWITCH_INTERVAL_S = 0.001
DELIVERY_RETENTION_S = 48 * 3600  # Telegram and Meta retry for up to 24 h; kept twice as long
STATUS_RANK = {"sent": 1, "delivered": 2, "read": 3, "failed": 4}
RATE_LIMITED = "rate limited: not processed"  # the error kept on a delivery skipped by the rate limit


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
        log.info("%d objects alive after start-up frozen out of the garbage collector's full collections", gc.get_freeze_count())


class ChannelConfigError(ValueError):
    """A channel's entry in credentials.yml lacks a value it needs; the message names the key."""


def required(credentials: Optional[Dict[str, Any]], key: str, channel: str) -> str:
    """The non-empty string ``credentials[key]``; raises ChannelConfigError naming the key."""
    value = (credentials or {}).get(key)
    if value is None or not str(value).strip():
        raise ChannelConfigError(
            f"credentials.yml: the {channel} channel needs '{key}' (set it, or the environment variable it names); "
            f"remove the {channel} block to run without this channel")
    return str(value).strip()


def rate_limiter(credentials: Optional[Dict[str, Any]], channel: str) -> RateLimiter:
    """The channel's per-sender limit: ``rate_limit_messages`` messages per ``rate_limit_window_s``
    seconds, each read from the channel's credentials.yml block, else from the environment
    variable ``CLOSER_RATE_LIMIT_MESSAGES`` or ``CLOSER_RATE_LIMIT_WINDOW_S`` (the console reads
    the same two for the web chat), else 20 messages per 60 s. Raises ChannelConfigError naming the
    key or variable when a value is not a positive number."""
    credentials = credentials or {}

    def number(key: str, kind: Callable[[Any], Any], default: Any) -> Any:
        variable = f"CLOSER_{key.upper()}"
        value, source = credentials.get(key), f"credentials.yml: the {channel} channel's '{key}'"
        if value is None or not str(value).strip():
            value, source = os.environ.get(variable), f"the environment variable {variable}"
        if value is None or not str(value).strip():
            return default
        try:
            parsed = kind(value)
        except (TypeError, ValueError):
            parsed = 0
        if parsed <= 0:
            raise ChannelConfigError(f"{source} must be a positive number, not {value!r}")
        return parsed

    return RateLimiter(number("rate_limit_messages", int, DEFAULT_MESSAGES),
                       number("rate_limit_window_s", float, DEFAULT_WINDOW_S))


def error(status: int, message: str) -> HTTPResponse:
    """A JSON error response ``{"error": message}`` with HTTP ``status``."""
    return json_response({"error": message}, status=status)


def read_body(request: Request, max_bytes: int) -> Tuple[Optional[bytes], Any, Optional[HTTPResponse]]:
    """``(raw, parsed, None)``, or ``(raw, None, response)`` with 413 for a body over ``max_bytes``
    or 400 for a body that is not a JSON object. The raw bytes are what signatures are computed on."""
    raw = request.body or b""
    if len(raw) > max_bytes:
        log.warning("%s: body of %d bytes refused (limit %d)", request.path, len(raw), max_bytes)
        return raw, None, error(413, f"body over {max_bytes} bytes")
    try:
        parsed = json.loads(raw)
    except ValueError:
        log.warning("%s: body is not valid JSON", request.path)
        return raw, None, error(400, "body is not valid JSON")
    if not isinstance(parsed, dict):
        log.warning("%s: body is not a JSON object", request.path)
        return raw, None, error(400, "body must be a JSON object")
    return raw, parsed, None


def split_text(text: str, limit: int) -> List[str]:
    """``text`` in parts of at most ``limit`` characters (a platform's message limit), cut at a line
    break or space when one is in the second half of the part; blank parts are dropped."""
    parts = []
    while len(text) > limit:
        cut = max(text.rfind("\n", 0, limit + 1), text.rfind(" ", 0, limit + 1))
        if cut < limit // 2:
            parts.append(text[:limit])
            text = text[limit:]
        else:
            parts.append(text[:cut])
            text = text[cut + 1:]
    return [part for part in [*parts, text] if part.strip()]


def database_url() -> str:
    """The business DB as a synchronous SQLAlchemy URL: ``CLOSER_DATABASE_URL`` (the console's and
    action server's setting) without its async driver, by default ``var/closer.db``."""
    url = os.environ.get("CLOSER_DATABASE_URL") or f"sqlite:///{ROOT / 'var' / 'closer.db'}"
    return url.replace("+aiosqlite", "").replace("+asyncpg", "+psycopg2")


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _aware(value: Optional[datetime]) -> Optional[datetime]:
    """SQLite returns naive datetimes for timezone-aware columns; they were stored in UTC."""
    return value.replace(tzinfo=timezone.utc) if value is not None and value.tzinfo is None else value


_meta = sa.MetaData()
_deliveries = sa.Table(
    "channel_deliveries", _meta,
    sa.Column("id", sa.Integer, primary_key=True), sa.Column("channel", sa.String(16)),
    sa.Column("delivery_id", sa.String(160)), sa.Column("sender_id", sa.String(80)), sa.Column("payload", sa.JSON),
    sa.Column("received_at", sa.DateTime(timezone=True)), sa.Column("processed_at", sa.DateTime(timezone=True)),
    sa.Column("error", sa.Text))
_customers = sa.Table(
    "channel_customers", _meta,
    sa.Column("channel", sa.String(16), primary_key=True), sa.Column("user_id", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(255)), sa.Column("last_inbound_at", sa.DateTime(timezone=True)))
_messages = sa.Table(
    "channel_messages", _meta,
    sa.Column("id", sa.Integer, primary_key=True), sa.Column("channel", sa.String(16)),
    sa.Column("message_id", sa.String(160)), sa.Column("recipient_id", sa.String(64)), sa.Column("kind", sa.String(16)),
    sa.Column("template", sa.String(128)), sa.Column("status", sa.String(16)),
    *(sa.Column(f"{stage}_at", sa.DateTime(timezone=True)) for stage in STATUS_RANK), sa.Column("error", sa.Text),
    sa.Column("body", sa.JSON))
_callbacks = sa.Table(
    "telegram_callbacks", _meta,
    sa.Column("key", sa.String(32), primary_key=True), sa.Column("payload", sa.Text),
    sa.Column("created_at", sa.DateTime(timezone=True)))


def _sqlite_pragmas(connection: Any, _record: Any) -> None:
    """As the business DB's own engine (bot/core/db.py): write-ahead logging, one fsync per checkpoint."""
    cursor = connection.cursor()
    for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "foreign_keys=ON"):
        cursor.execute(f"PRAGMA {pragma}")
    cursor.close()


class ChannelStore:
    """Channel state in the business DB (migration 0004 creates the tables; ``python -m bot db
    upgrade`` runs it). Blocking SQL runs on one worker thread of the store's own; every method is a
    coroutine."""

    def __init__(self, url: Optional[str] = None) -> None:
        self.url = url or database_url()
        # SQLAlchemy 1.4 opens a new SQLite connection per use by default (NullPool); keep a few open.
        args = ({"connect_args": {"timeout": 15, "check_same_thread": False}, "poolclass": sa.pool.QueuePool, "pool_size": 8}
                if self.url.startswith("sqlite") else {"pool_pre_ping": True})
        self.engine = sa.create_engine(self.url, future=True, **args)
        if self.url.startswith("sqlite"):
            sa.event.listen(self.engine, "connect", _sqlite_pragmas)
        # One thread does this process's channel SQL: its writes queue here, in order, instead of
        # contending for SQLite's write lock (whose busy handler sleeps up to 100 ms at a time).
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="closer-channel-store")
        self._accepting: List[Tuple[Tuple[str, str, str, Dict[str, Any]], asyncio.Future]] = []
        self._writer: Optional[asyncio.Task] = None
        missing = {t.name for t in _meta.sorted_tables} - set(sa.inspect(self.engine).get_table_names())
        if missing:
            raise ChannelConfigError(f"{self.url}: tables {', '.join(sorted(missing))} are missing; "
                                     "run 'python -m bot db upgrade' (make install does)")

    async def _run(self, fn: Callable[[sa.engine.Connection], Any]) -> Any:
        def work() -> Any:
            with self.engine.begin() as connection:
                return fn(connection)
        return await asyncio.get_running_loop().run_in_executor(self._executor, work)

    async def accept(self, channel: str, delivery_id: str, sender_id: str, payload: Dict[str, Any]) -> Optional[int]:
        """Record a delivery; its row id, or None when this ``delivery_id`` was seen before (a replay).

        Deliveries arriving while a write is under way are written together in the next transaction
        (a group commit): a burst of webhooks costs a few commits instead of one each, and does not
        queue on the database's write lock. Raises what the database raises (the webhook then
        answers 5xx and the platform redelivers)."""
        loop = asyncio.get_running_loop()
        recorded: asyncio.Future = loop.create_future()
        self._accepting.append(((channel, delivery_id, sender_id, payload), recorded))
        if self._writer is None or self._writer.done():
            self._writer = loop.create_task(self._write_accepted())
        return await recorded

    async def _write_accepted(self) -> None:
        while self._accepting:
            batch, self._accepting = self._accepting, []
            try:
                try:
                    ids = await self._run(lambda c: self._insert_new([item for item, _ in batch], c))
                except sa.exc.IntegrityError:  # another process inserted one of them meanwhile: see it now
                    ids = await self._run(lambda c: self._insert_new([item for item, _ in batch], c))
            except Exception as exc:
                for _, recorded in batch:
                    if not recorded.done():
                        recorded.set_exception(exc)
                continue
            for (_, recorded), row_id in zip(batch, ids):
                if not recorded.done():
                    recorded.set_result(row_id)

    @staticmethod
    def _insert_new(items: List[Tuple[str, str, str, Dict[str, Any]]], connection: sa.engine.Connection) -> List[Optional[int]]:
        """Insert the deliveries not stored yet (nor earlier in ``items``); their ids, None for the others."""
        ids: List[Optional[int]] = []
        seen = set()
        for channel, delivery_id, sender_id, payload in items:
            if (channel, delivery_id) in seen or connection.execute(sa.select(_deliveries.c.id).where(
                    _deliveries.c.channel == channel, _deliveries.c.delivery_id == delivery_id)).first():
                ids.append(None)
                continue
            seen.add((channel, delivery_id))
            ids.append(connection.execute(_deliveries.insert().values(
                channel=channel, delivery_id=delivery_id, sender_id=sender_id, payload=payload,
                received_at=_now())).inserted_primary_key[0])
        return ids

    async def done(self, row_id: int, error_text: Optional[str] = None) -> None:
        """Mark a delivery processed (with the error, when processing failed)."""
        await self._run(lambda c: c.execute(_deliveries.update().where(_deliveries.c.id == row_id).values(
            processed_at=_now(), error=error_text)))

    async def unprocessed(self, channel: str) -> List[Tuple[int, str, Dict[str, Any]]]:
        """Deliveries acknowledged but never processed (the process stopped): ``(id, sender_id,
        payload)`` in arrival order."""
        rows = await self._run(lambda c: c.execute(
            sa.select(_deliveries.c.id, _deliveries.c.sender_id, _deliveries.c.payload).where(
                _deliveries.c.channel == channel, _deliveries.c.processed_at.is_(None)).order_by(_deliveries.c.id)).all())
        return [(row.id, row.sender_id, row.payload) for row in rows]

    async def prune(self, older_than_s: float = DELIVERY_RETENTION_S) -> int:
        """Forget processed deliveries older than ``older_than_s`` seconds; how many were removed."""
        cutoff = _now() - timedelta(seconds=older_than_s)
        return await self._run(lambda c: c.execute(_deliveries.delete().where(
            _deliveries.c.received_at < cutoff, _deliveries.c.processed_at.is_not(None))).rowcount)

    async def saw_customer(self, channel: str, user_id: str, name: Optional[str], at: Optional[datetime] = None) -> None:
        """Note an inbound message from ``user_id`` at ``at`` (default now; never moves backwards)."""
        at = at or _now()

        def upsert(connection: sa.engine.Connection) -> None:
            key = (_customers.c.channel == channel) & (_customers.c.user_id == user_id)
            row = connection.execute(sa.select(_customers.c.last_inbound_at).where(key)).first()
            if row is None:
                connection.execute(_customers.insert().values(channel=channel, user_id=user_id, name=name, last_inbound_at=at))
            elif _aware(row.last_inbound_at) < at:
                connection.execute(_customers.update().where(key).values(last_inbound_at=at, name=name or _customers.c.name))
        await self._run(upsert)

    async def last_inbound(self, channel: str, user_id: str) -> Optional[datetime]:
        """When ``user_id`` last wrote on ``channel`` (UTC), or None if never."""
        row = await self._run(lambda c: c.execute(sa.select(_customers.c.last_inbound_at).where(
            _customers.c.channel == channel, _customers.c.user_id == user_id)).first())
        return _aware(row.last_inbound_at) if row else None

    async def sent(self, channel: str, message_id: str, recipient_id: str, kind: str, template: Optional[str] = None) -> None:
        """Record an outbound message accepted by the platform (status ``sent``)."""
        await self.status(channel, message_id, recipient_id, "sent", _now(), kind=kind, template=template)

    async def status(self, channel: str, message_id: str, recipient_id: str, status: str, at: datetime,
                     error_text: Optional[str] = None, kind: Optional[str] = None, template: Optional[str] = None) -> None:
        """Record a delivery status of an outbound message. Each stage keeps its own time; the
        message's ``status`` only moves forward (sent < delivered < read < failed), so statuses
        arriving out of order end in the same state. An unknown ``status`` raises ValueError."""
        if status not in STATUS_RANK:
            raise ValueError(f"unknown message status {status!r}")

        def record(connection: sa.engine.Connection) -> None:
            key = (_messages.c.channel == channel) & (_messages.c.message_id == message_id)
            row = connection.execute(sa.select(_messages.c.status, _messages.c.kind).where(key)).first()
            stage = {f"{status}_at": at, **({"error": error_text} if error_text else {})}
            if row is None:
                connection.execute(_messages.insert().values(channel=channel, message_id=message_id, recipient_id=recipient_id,
                                                             kind=kind, template=template, status=status, **stage))
                return
            values = dict(stage)
            if STATUS_RANK[status] > STATUS_RANK.get(row.status, 0):
                values["status"] = status
            if kind and not row.kind:
                values.update(kind=kind, template=template)
            connection.execute(_messages.update().where(key).values(**values))
        try:
            await self._run(record)
        except sa.exc.IntegrityError:  # a status for the same message inserted concurrently
            await self._run(record)

    async def hold(self, channel: str, recipient_id: str, message: Dict[str, Any]) -> None:
        """Keep back a message (Rasa's message dict) that may not be sent now; see :meth:`take_held`."""
        await self._run(lambda c: c.execute(_messages.insert().values(
            channel=channel, message_id=f"held-{uuid.uuid4().hex}", recipient_id=recipient_id, status="held",
            body=message, sent_at=None)))

    async def take_held(self, channel: str, recipient_id: str) -> List[Dict[str, Any]]:
        """The messages held for ``recipient_id``, oldest first, removed from the store."""
        def take(connection: sa.engine.Connection) -> List[Dict[str, Any]]:
            key = (_messages.c.channel == channel) & (_messages.c.recipient_id == recipient_id) & (_messages.c.status == "held")
            rows = connection.execute(sa.select(_messages.c.id, _messages.c.body).where(key).order_by(_messages.c.id)).all()
            connection.execute(_messages.delete().where(_messages.c.id.in_([row.id for row in rows])))
            return [row.body for row in rows]
        return await self._run(take)

    async def callback_key(self, payload: str) -> str:
        """A short key for a long button payload, stored so the button press can be resolved."""
        key = hashlib.sha256(payload.encode()).hexdigest()[:32]

        def insert(connection: sa.engine.Connection) -> None:
            if connection.execute(sa.select(_callbacks.c.key).where(_callbacks.c.key == key)).first() is None:
                connection.execute(_callbacks.insert().values(key=key, payload=payload, created_at=_now()))
        try:
            await self._run(insert)
        except sa.exc.IntegrityError:
            pass
        return key

    async def callback_payload(self, key: str) -> Optional[str]:
        """The payload stored under ``key``, or None."""
        row = await self._run(lambda c: c.execute(sa.select(_callbacks.c.payload).where(_callbacks.c.key == key)).first())
        return row.payload if row else None

    async def last_sent(self, channel: str, recipient_id: str, kind: str) -> Optional[datetime]:
        """When the latest message of ``kind`` (e.g. ``template``) was sent to ``recipient_id`` (UTC), or None."""
        at = await self._run(lambda c: c.execute(sa.select(sa.func.max(_messages.c.sent_at)).where(
            _messages.c.channel == channel, _messages.c.recipient_id == recipient_id,
            _messages.c.kind == kind)).scalar())
        return _aware(at)


async def skip_over_limit(store: "ChannelStore", output: OutputChannel, limiter: RateLimiter, decision: Decision,
                          row_id: int, sender_id: str) -> None:
    """A delivery refused by the sender's rate limit, run in the sender's queue (after their earlier
    messages) instead of a Rasa turn: :data:`~connectors.ratelimit.SLOW_DOWN_REPLY` when this is
    the first refusal of the window (``decision.notify``), the delivery marked done with the error
    :data:`RATE_LIMITED`. Logged with the sender id and never the message: a warning for the first
    refusal of a window, debug for the rest."""
    log.log(logging.WARNING if decision.notify else logging.DEBUG,
            "%s is over the rate limit of %d messages per %g s: delivery %d not processed (next allowed in %.0f s)",
            sender_id, limiter.messages, limiter.window_s, row_id, decision.retry_after_s)
    if decision.notify:
        await output.send_response(sender_id, {"text": SLOW_DOWN_REPLY})
    await store.done(row_id, RATE_LIMITED)


class SenderQueues:
    """Runs ``await job()`` for each submitted job: one customer's jobs strictly one after another in
    submission order, different customers concurrently but at most ``max_concurrent`` at a time (a
    Rasa turn runs NLU and policies on the event loop; without a bound, a burst of turns would delay
    the webhook acknowledgements that share the loop). A failing job is logged; the next one runs."""

    def __init__(self, max_concurrent: int = MAX_CONCURRENT_TURNS) -> None:
        self._turns = asyncio.Semaphore(max_concurrent)
        self._queues: Dict[str, asyncio.Queue] = {}
        self._workers: Dict[str, asyncio.Task] = {}
        self._pending: Dict[str, int] = defaultdict(int)

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
                    log.exception("processing a message of %s failed", sender_id)
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
        self._loop: Optional[asyncio.AbstractEventLoop] = None
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
    loop, where the channel's HTTP clients live, and the turn waits for it."""

    def __init__(self, inner: OutputChannel, loop: asyncio.AbstractEventLoop) -> None:
        self.inner, self.server_loop = inner, loop

    def name(self) -> str:  # type: ignore[override]  # an instance's name: the wrapped channel's
        return self.inner.name()

    async def _on_server_loop(self, method: str, *args: Any, **kwargs: Any) -> None:
        call = getattr(self.inner, method)(*args, **kwargs)
        await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(call, self.server_loop))

    async def send_response(self, recipient_id: str, message: Dict[str, Any]) -> None:
        await self._on_server_loop("send_response", recipient_id, message)

    async def send_text_message(self, recipient_id: str, text: str, **kwargs: Any) -> None:
        await self._on_server_loop("send_text_message", recipient_id, text, **kwargs)


async def run_turn(on_new_message: Callable[[UserMessage], Awaitable[Any]], message: UserMessage) -> None:
    """Hand ``message`` to Rasa (``on_new_message``) on the turn thread and wait until the turn is done.

    Rasa 3.6 runs NLU, the policies and its SQL tracker store synchronously on the event loop of
    the task that handles a message: tens to hundreds of milliseconds per turn with the loop blocked.
    On the Sanic loop that would hold back every webhook acknowledgement (and Telegram and Meta
    redeliver slow ones). On a loop of its own the turn leaves the server's loop free between GIL
    switches; the bot's messages are still sent from the server's loop, where the channel's HTTP
    clients live. Exceptions of the turn are raised here."""
    server_loop = asyncio.get_running_loop()
    message.output_channel = _ServerLoopOutput(message.output_channel, server_loop)
    turn = asyncio.run_coroutine_threadsafe(on_new_message(message), _turns.loop)
    await asyncio.wrap_future(turn)
