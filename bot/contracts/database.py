"""The business database as both environments open it: its default URL and the SQLite pragmas.

The URL comes from ``CLOSER_DATABASE_URL`` (read by ``bot.core.settings`` and ``connectors.store``);
without it, :data:`DEFAULT_URL`. The console and action server use it with its async driver; the Rasa
server's channels with the matching synchronous one (:func:`synchronous`).
"""

from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_URL = f"sqlite+aiosqlite:///{ROOT / 'var' / 'closer.db'}"
# Write-ahead logging (readers never block the writer), one fsync per checkpoint rather than per
# commit, and foreign keys enforced; set on every new SQLite connection.
SQLITE_PRAGMAS = ("journal_mode=WAL", "synchronous=NORMAL", "foreign_keys=ON")


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
