"""Tests of connectors/, run by the Rasa server's interpreter (.venv-rasa, Python 3.10) with
``--confcutdir tests/channels`` so that tests/conftest.py (the .venv side) is not loaded; see
scripts/test.sh. The business DB they use is migrated once per session by the real Alembic migrations
(``python -m bot db upgrade`` in .venv) and copied fresh for each test: a SQLite file, or with
``CLOSER_TEST_DB=postgresql`` a database on a PostgreSQL server of the session's own (tests/postgres.py)."""

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from sanic import Sanic

from connectors.store import ChannelStore
from tests import postgres

ROOT = Path(__file__).resolve().parents[2]

# The key of the conversation pseudonyms in log lines (connectors/logs.py), as the launchers pass it.
os.environ.setdefault("CLOSER_PII_INDEX_KEY", "Y2xvc2VyLXRlc3RzLWNvbnZlcnNhdGlvbi1wc2V1ZG8")

# Several Sanic apps are started in one process (one per test); Sanic refuses that outside test mode.
Sanic.test_mode = True


def migrate(url: str) -> None:
    """Runs the Alembic migrations on the business DB at SQLAlchemy URL ``url`` (an async driver's)."""
    subprocess.run(
        [str(ROOT / ".venv" / "bin" / "python"), "-m", "bot", "db", "upgrade"],
        cwd=ROOT,
        env={**os.environ, "CLOSER_DATABASE_URL": url},
        check=True,
        capture_output=True,
    )


@pytest.fixture(scope="session")
def migrated_db(tmp_path_factory) -> Iterator[Path | tuple[postgres.Server, str]]:
    """The migrated business DB each test copies: a SQLite file, or (server, template database) on PostgreSQL."""
    if not postgres.enabled():
        path = tmp_path_factory.mktemp("db") / "closer.db"
        migrate(f"sqlite+aiosqlite:///{path}")
        yield path
        return
    with postgres.serve() as server:
        template = server.create()
        migrate(server.url(template))
        yield server, template


@pytest.fixture
def database_url(migrated_db, tmp_path, monkeypatch) -> Iterator[str]:
    """A fresh migrated business DB; CLOSER_DATABASE_URL points at it, as it would in the Rasa server."""
    if isinstance(migrated_db, Path):
        path = tmp_path / "closer.db"
        shutil.copyfile(migrated_db, path)
        monkeypatch.setenv("CLOSER_DATABASE_URL", f"sqlite+aiosqlite:///{path}")
        yield f"sqlite:///{path}"
        return
    server, template = migrated_db
    name = server.create(template)
    monkeypatch.setenv("CLOSER_DATABASE_URL", server.url(name))
    yield server.url(name, driver="psycopg2")
    server.drop(name)


@pytest.fixture
def store(database_url) -> ChannelStore:
    return ChannelStore(database_url)
