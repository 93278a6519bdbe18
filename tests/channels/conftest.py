"""Tests of connectors/, run by the Rasa server's interpreter (.venv-rasa, Python 3.10) with
``--confcutdir tests/channels`` so that tests/conftest.py (the .venv side) is not loaded; see
scripts/test.sh. The business DB they use is a SQLite file migrated once per session by the real
Alembic migrations (``python -m bot db upgrade`` in .venv) and copied fresh for each test."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from sanic import Sanic

from connectors.store import ChannelStore

ROOT = Path(__file__).resolve().parents[2]

# Several Sanic apps are started in one process (one per test); Sanic refuses that outside test mode.
Sanic.test_mode = True


@pytest.fixture(scope="session")
def migrated_db(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("db") / "closer.db"
    env = {**os.environ, "CLOSER_DATABASE_URL": f"sqlite+aiosqlite:///{path}"}
    subprocess.run(
        [str(ROOT / ".venv" / "bin" / "python"), "-m", "bot", "db", "upgrade"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
    )
    return path


@pytest.fixture
def database_url(migrated_db, tmp_path, monkeypatch) -> str:
    """A fresh migrated business DB; CLOSER_DATABASE_URL points at it, as it would in the Rasa server."""
    path = tmp_path / "closer.db"
    shutil.copyfile(migrated_db, path)
    monkeypatch.setenv("CLOSER_DATABASE_URL", f"sqlite+aiosqlite:///{path}")
    return f"sqlite:///{path}"


@pytest.fixture
def store(database_url) -> ChannelStore:
    return ChannelStore(database_url)
