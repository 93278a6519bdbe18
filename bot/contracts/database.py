"""The business database as both environments open it: its default URL and the SQLite pragmas.

The URL comes from ``CLOSER_DATABASE_URL`` (read by ``bot.core.settings`` and ``connectors.store``);
without it, :func:`default_url`. The console and action server use it with its async driver; the Rasa
server's channels with the matching synchronous one (:func:`synchronous`).
"""

from collections.abc import Mapping
from typing import Any

from bot.contracts.business import var_dir

# Write-ahead logging (readers never block the writer), one fsync per checkpoint rather than per
# commit, and foreign keys enforced; set on every new SQLite connection.
SQLITE_PRAGMAS = ("journal_mode=WAL", "synchronous=NORMAL", "foreign_keys=ON")


def default_url(environ: Mapping[str, str] | None = None) -> str:
    """The business's SQLite database, ``closer.db`` in its ``var`` folder (:func:`bot.contracts.business.var_dir`),
    as an async SQLAlchemy URL."""
    folder = var_dir() if environ is None else var_dir(environ)  # by default, the process's environment
    return f"sqlite+aiosqlite:///{folder / 'closer.db'}"


def synchronous(url: str) -> str:
    """``url`` with its async driver replaced by the synchronous one: ``sqlite+aiosqlite`` → ``sqlite``,
    ``postgresql+asyncpg`` → ``postgresql+psycopg2``; any other URL unchanged."""
    return url.replace("+aiosqlite", "").replace("+asyncpg", "+psycopg2")


def set_sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    """A ``connect`` event listener of a SQLite engine (``event.listen(engine, "connect", …)``; for an
    async engine, on its ``sync_engine``): runs :data:`SQLITE_PRAGMAS` on the new DB-API connection."""
    cursor = dbapi_connection.cursor()
    for pragma in SQLITE_PRAGMAS:
        cursor.execute(f"PRAGMA {pragma}")
    cursor.close()
