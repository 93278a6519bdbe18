"""The channels' state in the business DB (the tables of :mod:`bot.contracts.channel_tables`): the
durable inbox of webhook deliveries (dedupe, kept ≥ 48 h, replayed after a restart, claimed by one Rasa server
replica at a time), customers (last
inbound time), outbound messages and their statuses, WhatsApp messages held back outside the 24-hour
window, long button payloads. Every call runs off the event loop."""

import asyncio
import contextlib
import enum
import functools
import hashlib
import os
import socket
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from bot.contracts.channel_tables import TABLES, customers, deliveries, messages, telegram_callbacks
from bot.contracts.database import default_url, set_sqlite_pragmas, synchronous
from connectors.config import ChannelConfigError

DELIVERY_RETENTION_S = 48 * 3600  # Telegram and Meta retry for up to 24 h; kept twice as long
# A delivery claimed this long ago and still unprocessed belongs to a replica that stopped: another one takes it over.
STALE_CLAIM_S = 120.0
STATUS_RANK = {"sent": 1, "delivered": 2, "read": 3, "failed": 4}


class Claim(enum.Enum):
    """What :meth:`ChannelStore.claim` found."""

    CLAIMED = "claimed"  # this replica processes the delivery now
    BEHIND = "behind"  # an earlier delivery of the same customer is unprocessed: later
    TAKEN = "taken"  # another replica's, or processed


def database_url() -> str:
    """The business DB as a synchronous SQLAlchemy URL: ``CLOSER_DATABASE_URL`` (the console's and
    action server's setting) without its async driver, by default the business's ``closer.db``
    (:func:`bot.contracts.database.default_url`)."""
    return synchronous(os.environ.get("CLOSER_DATABASE_URL") or default_url())


def replica_id() -> str:
    """This Rasa server's name among its replicas: ``CLOSER_REPLICA_ID`` (scripts/run_prod.py sets ``rasa-1``,
    ``rasa-2``), by default the host name (a container's, in docker-compose). Two replicas must not share one."""
    return os.environ.get("CLOSER_REPLICA_ID") or socket.gethostname()


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _aware(value: datetime | None) -> datetime | None:
    """SQLite returns naive datetimes for timezone-aware columns; they were stored in UTC."""
    return value.replace(tzinfo=timezone.utc) if value is not None and value.tzinfo is None else value


class ChannelStore:
    """Channel state in the business DB (migration 0004 creates the tables; ``python -m bot db
    upgrade`` runs it). Blocking SQL runs on one worker thread of the store's own; every method is a
    coroutine."""

    def __init__(self, url: str | None = None, replica: str | None = None) -> None:
        self.url = url or database_url()
        self.replica = replica or replica_id()
        self.stale_claim_s = STALE_CLAIM_S
        # SQLAlchemy 1.4 opens a new SQLite connection per use by default (NullPool); keep a few open.
        args = (
            {
                "connect_args": {"timeout": 15, "check_same_thread": False},
                "poolclass": sa.pool.QueuePool,
                "pool_size": 8,
            }
            if self.url.startswith("sqlite")
            else {"pool_pre_ping": True}
        )
        self.engine = sa.create_engine(self.url, future=True, **args)
        if self.url.startswith("sqlite"):
            sa.event.listen(self.engine, "connect", set_sqlite_pragmas)
        # One thread does this process's channel SQL: its writes queue here, in order, instead of
        # contending for SQLite's write lock (whose busy handler sleeps up to 100 ms at a time).
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="closer-channel-store")
        self._accepting: list[tuple[tuple[str, str, str, dict[str, Any]], asyncio.Future]] = []
        self._writer: asyncio.Task | None = None
        missing = {table.name for table in TABLES} - set(sa.inspect(self.engine).get_table_names())
        if missing:
            raise ChannelConfigError(
                f"{self.url}: tables {', '.join(sorted(missing))} are missing; "
                "run 'python -m bot db upgrade' (make install does)"
            )

    async def _run(self, fn: Callable[[sa.engine.Connection], Any]) -> Any:
        def work() -> Any:
            with self.engine.begin() as connection:
                return fn(connection)

        return await asyncio.get_running_loop().run_in_executor(self._executor, work)

    async def accept(self, channel: str, delivery_id: str, sender_id: str, payload: dict[str, Any]) -> int | None:
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
            insert = functools.partial(self._insert_new, [item for item, _ in batch])
            try:
                try:
                    ids = await self._run(insert)
                except sa.exc.IntegrityError:  # another process inserted one of them meanwhile: see it now
                    ids = await self._run(insert)
            except Exception as exc:
                for _, recorded in batch:
                    if not recorded.done():
                        recorded.set_exception(exc)
                continue
            for (_, recorded), row_id in zip(batch, ids, strict=True):
                if not recorded.done():
                    recorded.set_result(row_id)

    def _insert_new(
        self, items: list[tuple[str, str, str, dict[str, Any]]], connection: sa.engine.Connection
    ) -> list[int | None]:
        """Insert the deliveries not stored yet (nor earlier in ``items``), claimed by this replica; their ids, None
        for the others."""
        ids: list[int | None] = []
        seen = set()
        now = _now()
        for channel, delivery_id, sender_id, payload in items:
            if (channel, delivery_id) in seen or connection.execute(
                sa.select(deliveries.c.id).where(
                    deliveries.c.channel == channel, deliveries.c.delivery_id == delivery_id
                )
            ).first():
                ids.append(None)
                continue
            seen.add((channel, delivery_id))
            ids.append(
                connection.execute(
                    deliveries.insert().values(
                        channel=channel,
                        delivery_id=delivery_id,
                        sender_id=sender_id,
                        payload=payload,
                        received_at=now,
                        claimed_by=self.replica,
                        claimed_at=now,
                    )
                ).inserted_primary_key[0]
            )
        return ids

    async def done(self, row_id: int, error_text: str | None = None) -> None:
        """Mark a delivery processed (with the error, when processing failed)."""
        await self._run(
            lambda c: c.execute(
                deliveries.update().where(deliveries.c.id == row_id).values(processed_at=_now(), error=error_text)
            )
        )

    async def claim(self, row_id: int) -> Claim:
        """Take a delivery for processing here. :attr:`Claim.CLAIMED` when it is unprocessed, claimed by this replica
        or by no live one (its claim older than ``stale_claim_s``), and none of the same customer's earlier deliveries
        is unprocessed — its claim then renewed, in one statement (two replicas never both get it);
        :attr:`Claim.BEHIND` when only an earlier delivery is in the way (whichever replica has it: try again later);
        :attr:`Claim.TAKEN` when another replica holds it or it was processed."""
        now = _now()
        earlier = deliveries.alias("earlier")
        earlier_pending = sa.exists().where(
            earlier.c.channel == deliveries.c.channel,
            earlier.c.sender_id == deliveries.c.sender_id,
            earlier.c.processed_at.is_(None),
            earlier.c.id < deliveries.c.id,
        )
        takeable = sa.and_(
            deliveries.c.id == row_id,
            deliveries.c.processed_at.is_(None),
            sa.or_(
                deliveries.c.claimed_by == self.replica,
                deliveries.c.claimed_at.is_(None),
                deliveries.c.claimed_at < now - timedelta(seconds=self.stale_claim_s),
            ),
        )

        def claim(connection: sa.engine.Connection) -> Claim:
            update = deliveries.update().where(takeable, ~earlier_pending)
            if connection.execute(update.values(claimed_by=self.replica, claimed_at=now)).rowcount == 1:
                return Claim.CLAIMED
            behind = connection.execute(sa.select(deliveries.c.id).where(takeable, earlier_pending)).first()
            return Claim.BEHIND if behind else Claim.TAKEN

        return await self._run(claim)

    async def unprocessed(self, channel: str, own: bool) -> list[tuple[int, str, dict[str, Any]]]:
        """Deliveries acknowledged but not processed that this replica may take: those claimed longer than
        ``stale_claim_s`` ago (by a replica that stopped, or by this one when its claim failed) and, with ``own`` (at
        start: this replica's name, before it stopped), all its own. ``(id, sender_id, payload)`` in arrival order;
        :meth:`claim` each before processing."""
        stale = sa.or_(
            deliveries.c.claimed_at.is_(None),
            deliveries.c.claimed_at < _now() - timedelta(seconds=self.stale_claim_s),
        )
        mine = deliveries.c.claimed_by == self.replica
        rows = await self._run(
            lambda c: c.execute(
                sa.select(deliveries.c.id, deliveries.c.sender_id, deliveries.c.payload)
                .where(
                    deliveries.c.channel == channel,
                    deliveries.c.processed_at.is_(None),
                    sa.or_(stale, mine) if own else stale,
                )
                .order_by(deliveries.c.id)
            ).all()
        )
        return [(row.id, row.sender_id, row.payload) for row in rows]

    async def prune(self, older_than_s: float = DELIVERY_RETENTION_S) -> int:
        """Forget processed deliveries older than ``older_than_s`` seconds; how many were removed."""
        cutoff = _now() - timedelta(seconds=older_than_s)
        return await self._run(
            lambda c: (
                c.execute(
                    deliveries.delete().where(deliveries.c.received_at < cutoff, deliveries.c.processed_at.is_not(None))
                ).rowcount
            )
        )

    async def saw_customer(self, channel: str, user_id: str, name: str | None, at: datetime | None = None) -> None:
        """Note an inbound message from ``user_id`` at ``at`` (default now; never moves backwards)."""
        at = at or _now()

        def upsert(connection: sa.engine.Connection) -> None:
            # One statement: two replicas noting a new customer's first two messages at once both succeed.
            dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
            insert = dialect.insert(customers).values(channel=channel, user_id=user_id, name=name, last_inbound_at=at)
            connection.execute(
                insert.on_conflict_do_update(
                    index_elements=[customers.c.channel, customers.c.user_id],
                    set_={
                        "last_inbound_at": insert.excluded.last_inbound_at,
                        "name": sa.func.coalesce(insert.excluded.name, customers.c.name),
                    },
                    where=customers.c.last_inbound_at.is_(None)
                    | (customers.c.last_inbound_at < insert.excluded.last_inbound_at),
                )
            )

        await self._run(upsert)

    async def last_inbound(self, channel: str, user_id: str) -> datetime | None:
        """When ``user_id`` last wrote on ``channel`` (UTC), or None if never."""
        row = await self._run(
            lambda c: c.execute(
                sa.select(customers.c.last_inbound_at).where(
                    customers.c.channel == channel, customers.c.user_id == user_id
                )
            ).first()
        )
        return _aware(row.last_inbound_at) if row else None

    async def sent(
        self, channel: str, message_id: str, recipient_id: str, kind: str, template: str | None = None
    ) -> None:
        """Record an outbound message accepted by the platform (status ``sent``)."""
        await self.status(channel, message_id, recipient_id, "sent", _now(), kind=kind, template=template)

    async def status(
        self,
        channel: str,
        message_id: str,
        recipient_id: str,
        status: str,
        at: datetime,
        error_text: str | None = None,
        kind: str | None = None,
        template: str | None = None,
    ) -> None:
        """Record a delivery status of an outbound message. Each stage keeps its own time; the
        message's ``status`` only moves forward (sent < delivered < read < failed), so statuses
        arriving out of order end in the same state. An unknown ``status`` raises ValueError."""
        if status not in STATUS_RANK:
            raise ValueError(f"unknown message status {status!r}")

        def record(connection: sa.engine.Connection) -> None:
            key = (messages.c.channel == channel) & (messages.c.message_id == message_id)
            row = connection.execute(sa.select(messages.c.status, messages.c.kind).where(key)).first()
            stage = {f"{status}_at": at, **({"error": error_text} if error_text else {})}
            if row is None:
                connection.execute(
                    messages.insert().values(
                        channel=channel,
                        message_id=message_id,
                        recipient_id=recipient_id,
                        kind=kind,
                        template=template,
                        status=status,
                        **stage,
                    )
                )
                return
            values = dict(stage)
            if STATUS_RANK[status] > STATUS_RANK.get(row.status, 0):
                values["status"] = status
            if kind and not row.kind:
                values.update(kind=kind, template=template)
            connection.execute(messages.update().where(key).values(**values))

        try:
            await self._run(record)
        except sa.exc.IntegrityError:  # a status for the same message inserted concurrently
            await self._run(record)

    async def hold(self, channel: str, recipient_id: str, message: dict[str, Any]) -> None:
        """Keep back a message (Rasa's message dict) that may not be sent now; see :meth:`take_held`."""
        await self._run(
            lambda c: c.execute(
                messages.insert().values(
                    channel=channel,
                    message_id=f"held-{uuid.uuid4().hex}",
                    recipient_id=recipient_id,
                    status="held",
                    body=message,
                    sent_at=None,
                )
            )
        )

    async def take_held(self, channel: str, recipient_id: str) -> list[dict[str, Any]]:
        """The messages held for ``recipient_id``, oldest first, removed from the store."""

        def take(connection: sa.engine.Connection) -> list[dict[str, Any]]:
            key = (
                (messages.c.channel == channel)
                & (messages.c.recipient_id == recipient_id)
                & (messages.c.status == "held")
            )
            rows = connection.execute(
                sa.select(messages.c.id, messages.c.body).where(key).order_by(messages.c.id)
            ).all()
            connection.execute(messages.delete().where(messages.c.id.in_([row.id for row in rows])))
            return [row.body for row in rows]

        return await self._run(take)

    async def callback_key(self, payload: str) -> str:
        """A short key for a long button payload, stored so the button press can be resolved."""
        key = hashlib.sha256(payload.encode()).hexdigest()[:32]

        def insert(connection: sa.engine.Connection) -> None:
            stored = sa.select(telegram_callbacks.c.key).where(telegram_callbacks.c.key == key)
            if connection.execute(stored).first() is None:
                connection.execute(telegram_callbacks.insert().values(key=key, payload=payload, created_at=_now()))

        with contextlib.suppress(sa.exc.IntegrityError):  # the same payload stored concurrently
            await self._run(insert)
        return key

    async def callback_payload(self, key: str) -> str | None:
        """The payload stored under ``key``, or None."""
        row = await self._run(
            lambda c: c.execute(sa.select(telegram_callbacks.c.payload).where(telegram_callbacks.c.key == key)).first()
        )
        return row.payload if row else None

    async def last_sent(self, channel: str, recipient_id: str, kind: str) -> datetime | None:
        """When the latest message of ``kind`` (e.g. ``template``) was sent to ``recipient_id`` (UTC), or None."""
        at = await self._run(
            lambda c: c.execute(
                sa.select(sa.func.max(messages.c.sent_at)).where(
                    messages.c.channel == channel, messages.c.recipient_id == recipient_id, messages.c.kind == kind
                )
            ).scalar()
        )
        return _aware(at)
