"""SQLite files run in write-ahead-logging mode: the business DB through its engine, Rasa's tracker store through the
CLI. Every migration goes down to an empty database and up again (on PostgreSQL too: ``CLOSER_TEST_DB``)."""

import asyncio
import sqlite3
import subprocess
import sys

import pytest
from alembic import command
from sqlalchemy import inspect, text

from bot.core import db
from bot.core.models import Base
from bot.core.settings import ROOT
from tests import postgres


@pytest.mark.skipif(postgres.enabled(), reason="SQLite pragmas (write-ahead log, foreign keys)")
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


def test_every_migration_goes_down_to_an_empty_database_and_up_again(db_url):
    config = db.alembic_config(db_url)
    command.downgrade(config, "base")
    assert tables(db_url) <= {"alembic_version"}
    command.upgrade(config, "head")
    assert tables(db_url) == {*Base.metadata.tables, "alembic_version"}


def tables(url: str) -> set[str]:
    async def names() -> set[str]:
        async with db.get_engine(url).connect() as connection:
            found = await connection.run_sync(lambda sync: set(inspect(sync).get_table_names()))
        await db.get_engine(url).dispose()
        return found

    return asyncio.run(names())
