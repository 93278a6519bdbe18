"""Business database: the async SQLAlchemy engine and sessions.

SQLite under ``var/`` by default (``sqlite+aiosqlite``), PostgreSQL in production
(``postgresql+asyncpg``); the URL comes from ``CLOSER_DATABASE_URL``. The schema is owned by
Alembic (``bot/migrations``): run :func:`upgrade` (``python -m bot db upgrade``) before use.
"""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import lru_cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from bot.settings import get_settings

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def get_engine(url: str | None = None) -> AsyncEngine:
    """The engine of ``url`` (default: the settings' database URL), one per URL and process."""
    return _engine(url or get_settings().database_url)


@lru_cache
def _engine(url: str) -> AsyncEngine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    return create_async_engine(url, pool_pre_ping=True)


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
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url or get_settings().database_url)
    return config


def upgrade(url: str | None = None) -> None:
    """Apply every Alembic migration up to head (blocking; for the CLI and tests, not the event loop)."""
    url = url or get_settings().database_url
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database:
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    command.upgrade(alembic_config(url), "head")


async def upgrade_async(url: str | None = None) -> None:
    """:func:`upgrade` off the event loop."""
    await asyncio.to_thread(upgrade, url)
