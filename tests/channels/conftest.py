"""Tests of connectors/, run by the Rasa server's interpreter (.venv-rasa, Python 3.10) with
``--confcutdir tests/channels`` so that tests/conftest.py (the .venv side) is not loaded; see
scripts/test.sh. The business DB they use is a fresh SQLite file migrated by the real Alembic
migrations (``python -m bot db upgrade`` in .venv)."""

import os
import subprocess
from pathlib import Path

import pytest

from connectors.common import ChannelStore

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def database_url(tmp_path, monkeypatch) -> str:
    """A migrated business DB; CLOSER_DATABASE_URL points at it, as it would in the Rasa server."""
    path = tmp_path / "closer.db"
    env = {**os.environ, "CLOSER_DATABASE_URL": f"sqlite+aiosqlite:///{path}"}
    subprocess.run([str(ROOT / ".venv" / "bin" / "python"), "-m", "bot", "db", "upgrade"], cwd=ROOT, env=env,
                   check=True, capture_output=True)
    monkeypatch.setenv("CLOSER_DATABASE_URL", env["CLOSER_DATABASE_URL"])
    return f"sqlite:///{path}"


@pytest.fixture
def store(database_url) -> ChannelStore:
    return ChannelStore(database_url)
