"""Shared fixtures: a real SQLite business DB per test, migrated and loaded with knowledge/."""

from pathlib import Path

import pytest

from bot import business, catalog, db
from bot.settings import ROOT, get_settings

SHARED = ROOT.parent / "shared" / "data"


@pytest.fixture
def db_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """URL of a fresh, migrated SQLite DB, also set as CLOSER_DATABASE_URL for code under test."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'closer.db'}"
    monkeypatch.setenv("CLOSER_DATABASE_URL", url)
    get_settings.cache_clear()
    db.upgrade(url)
    yield url
    get_settings.cache_clear()


@pytest.fixture
async def loaded_db(db_url: str) -> str:
    """``db_url`` with the default business's catalog and stock imported."""
    knowledge = get_settings().knowledge_dir
    async with db.session_scope(db_url) as session:
        await catalog.import_catalog(session, knowledge / "catalog.csv")
        await catalog.import_stock(session, knowledge / "stock.csv")
    business._vocabulary = None
    yield db_url
    business._vocabulary = None
    await db.get_engine(db_url).dispose()
