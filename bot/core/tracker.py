"""Read-only access to Rasa's tracker store (``SQLTrackerStore`` of Rasa 3.6): its one ``events`` table.

Rasa writes one row per event and only ever appends (``SQLTrackerStore.save`` inserts the tracker's
events that are not stored yet; nothing is updated or deleted), so ``id`` orders the events of a
conversation and a reader can follow the table by id. The console never writes there and adds no
index: a SQLite file is opened with ``mode=ro``, a PostgreSQL connection runs every transaction
READ ONLY (``CLOSER_TRACKER_DATABASE_URL``, a SQLAlchemy async URL).
"""

import json
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from typing import Any

from sqlalchemy import Column, Float, Integer, MetaData, String, Table, Text, func, select
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from bot.core.settings import get_settings

# Rasa's SQLTrackerStore.SQLEvent, column for column.
events = Table(
    "events",
    MetaData(),
    Column("id", Integer, primary_key=True),
    Column("sender_id", String(255), nullable=False, index=True),
    Column("type_name", String(255), nullable=False),
    Column("timestamp", Float),
    Column("intent_name", String(255)),
    Column("action_name", String(255)),
    Column("data", Text),
)


class TrackerStoreUnavailable(RuntimeError):
    """The tracker store cannot be read: the database is unreachable or missing, or has no ``events``
    table yet (Rasa creates it when it first starts)."""


@dataclass(frozen=True)
class TrackerEvent:
    """One stored Rasa event. ``type_name``: Rasa's event type (user, bot, action, slot, pause, resume,
    session_started, restart, …); ``timestamp``: Unix seconds; ``name``: the action name of an
    ``action`` event or the slot name of a ``slot`` event (Rasa's ``action_name`` column), else None;
    ``data``: the event as Rasa serialised it (``Event.as_dict()``), decoded from ``raw`` on first use."""

    id: int
    sender_id: str
    type_name: str
    timestamp: float
    name: str | None
    raw: str | None = field(repr=False)

    @cached_property
    def data(self) -> dict[str, Any]:
        return json.loads(self.raw) if self.raw else {}


def read_only_url(url: str) -> URL:
    """``url`` made read-only where the URL can say so: a SQLite file becomes ``file:<path>?mode=ro``
    (SQLite then refuses every write). Other databases are returned as they are; the engine makes
    their transactions read-only. Raises ValueError for an in-memory SQLite URL (nothing to read)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return parsed
    if parsed.database in (None, "", ":memory:"):
        raise ValueError(f"the tracker store URL {url!r} names no SQLite file")
    if parsed.database.startswith("file:"):
        return parsed.update_query_dict({"mode": "ro", "uri": "true"})
    return parsed.set(database=f"file:{parsed.database}").update_query_dict({"mode": "ro", "uri": "true"})


class TrackerReader:
    """Reads Rasa's tracker store at ``url`` (default: settings' ``tracker_database_url``) without
    ever writing to it. Every method raises TrackerStoreUnavailable when the store cannot be read."""

    def __init__(self, url: str | None = None) -> None:
        url = url or get_settings().tracker_database_url
        parsed = read_only_url(url)
        options = {} if parsed.get_backend_name() == "sqlite" else {"postgresql_readonly": True}
        self.engine: AsyncEngine = create_async_engine(parsed, pool_pre_ping=True, execution_options=options)
        self.dialect = parsed.get_backend_name()

    async def last_event_id(self) -> int:
        """The highest event id stored (0 for an empty store): one query on the primary key."""
        return await self._scalar(select(func.coalesce(func.max(events.c.id), 0)))

    async def events_after(self, after_id: int, limit: int) -> list[TrackerEvent]:
        """Up to ``limit`` events with an id above ``after_id``, in id order, all conversations."""
        query = select(events).where(events.c.id > after_id).order_by(events.c.id).limit(limit)
        return await self._events(query)

    async def conversation_events(self, conversation_id: str) -> list[TrackerEvent]:
        """Every event of the conversation ``conversation_id`` (Rasa's sender id), in id order; an
        empty list for a conversation the store does not know."""
        return await self._events(select(events).where(events.c.sender_id == conversation_id).order_by(events.c.id))

    async def close(self) -> None:
        """Close the connection pool."""
        await self.engine.dispose()

    async def _scalar(self, query) -> Any:
        try:
            async with self.engine.connect() as connection:
                return (await connection.execute(query)).scalar_one()
        except (DBAPIError, OSError) as error:
            raise TrackerStoreUnavailable(f"cannot read the tracker store: {error}") from error

    async def _events(self, query) -> list[TrackerEvent]:
        try:
            async with self.engine.connect() as connection:
                rows = (await connection.execute(query)).all()
        except (DBAPIError, OSError) as error:
            raise TrackerStoreUnavailable(f"cannot read the tracker store: {error}") from error
        return [
            TrackerEvent(row.id, row.sender_id, row.type_name, row.timestamp or 0.0, row.action_name, row.data)
            for row in rows
        ]


def get_reader(url: str | None = None) -> TrackerReader:
    """The process's reader of ``url`` (default: the settings' tracker store), one per URL."""
    return _reader(url or get_settings().tracker_database_url)


@lru_cache
def _reader(url: str) -> TrackerReader:
    return TrackerReader(url)
