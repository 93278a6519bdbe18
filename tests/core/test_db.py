"""SQLite files run in write-ahead-logging mode: the business DB through its engine, Rasa's tracker store through the
CLI."""

import sqlite3
import subprocess
import sys

from sqlalchemy import text

from bot.core import db
from bot.core.settings import ROOT


async def test_business_db_uses_wal_and_foreign_keys(db_url):
    async with db.session_scope(db_url) as session:
        assert (await session.execute(text("PRAGMA journal_mode"))).scalar() == "wal"
        assert (await session.execute(text("PRAGMA foreign_keys"))).scalar() == 1
    await db.get_engine(db_url).dispose()


def test_cli_switches_a_tracker_store_file_to_wal(tmp_path):
    path = tmp_path / "var" / "tracker.db"
    subprocess.run([sys.executable, "-m", "bot", "sqlite-wal", str(path)], cwd=ROOT, check=True)
    with sqlite3.connect(path) as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    broken = tmp_path / "not-a-db"
    broken.write_text("hello, I am not SQLite" * 100)
    result = subprocess.run(
        [sys.executable, "-m", "bot", "sqlite-wal", str(broken)], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 2 and "error:" in result.stderr
    assert broken.read_text() == "hello, I am not SQLite" * 100
