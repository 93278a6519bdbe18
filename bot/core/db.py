"""Business database: the async SQLAlchemy engine and sessions.

SQLite under ``var/`` by default (``sqlite+aiosqlite``; the default and the pragmas are
bot.contracts.database's), PostgreSQL in production (``postgresql+asyncpg``); the URL comes from
``CLOSER_DATABASE_URL``. The schema is owned by Alembic (``bot/migrations``): run :func:`upgrade`
(``python -m bot db upgrade``) before use.
"""

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from bot.contracts.database import set_sqlite_pragmas
from bot.core.settings import get_settings

MIGRATIONS = Path(__file__).resolve().parents[1] / "migrations"


def get_engine(url: str | None = None) -> AsyncEngine:
    """The engine of ``url`` (default: the settings' database URL), one per URL and event loop (an asyncpg
    connection belongs to the loop that opened it: a command that runs ``asyncio.run`` twice, or a test per loop,
    gets a new pool each time); outside a running loop, one per URL and process. Engines of loops that have closed
    are dropped, not disposed (their connections close when garbage-collected): dispose of one before its loop ends."""
    url = url or get_settings().database_url
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        engines = _loopless
    else:
        for closed in [other for other in _engines if other.is_closed()]:
            del _engines[closed]
        engines = _engines.setdefault(loop, {})
    if url not in engines:
        engines[url] = _engine(url)
    return engines[url]


def _is_sqlite(url: str) -> bool:
    """True for a SQLite URL; a file database's folder is created if missing."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return False
    if parsed.database not in (None, "", ":memory:"):
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    return True


# Not weakly keyed: a pooled connection refers to its loop, so a loop with a connected engine never went away.
_engines: dict[asyncio.AbstractEventLoop, dict[str, AsyncEngine]] = {}
_loopless: dict[str, AsyncEngine] = {}


def _engine(url: str) -> AsyncEngine:
    engine = create_async_engine(url, pool_pre_ping=True)
    if _is_sqlite(url):
        event.listen(engine.sync_engine, "connect", set_sqlite_pragmas)
    return engine


def use_wal(path: Path) -> None:
    """Create (if missing) the SQLite file at ``path`` and switch it to write-ahead logging, which
    the file keeps. Used for Rasa's SQLite tracker store, whose engine Rasa creates itself: about
    20 ms less per turn on these machines. Raises sqlite3.Error if the file is not a database."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(path) as connection:
        connection.execute("PRAGMA journal_mode=WAL")


@asynccontextmanager
async def session_scope(url: str | None = None) -> AsyncIterator[AsyncSession]:
    """A session that commits on success and rolls back (and re-raises) on any error."""
    maker = async_sessionmaker(get_engine(url), expire_on_commit=False)
    async with maker() as session:
        try:
            yield session
            await session.commit()
        except BaseException:
            await session.rollback()
            raise


def alembic_config(url: str | None = None) -> Config:
    """Alembic configuration for ``bot/migrations`` against ``url`` (default: the settings' URL)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url or get_settings().database_url)
    return config


def upgrade(url: str | None = None) -> None:
    """Apply every Alembic migration up to head (blocking; for the CLI and tests, not the event loop)."""
    url = url or get_settings().database_url
    _is_sqlite(url)
    command.upgrade(alembic_config(url), "head")
