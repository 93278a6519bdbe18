"""Shared fixtures: a real business DB per test, migrated and loaded with knowledge/ (SQLite, or PostgreSQL with
``CLOSER_TEST_DB=postgresql``: tests/postgres.py), and a real Chroma index of knowledge/ and the default catalog
(real embeddings), built once per session."""

import asyncio
import os
import socket
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from bot.answering import chunking, index
from bot.commerce import catalog
from bot.core import business, caches, db
from bot.core.settings import ROOT, get_settings
from tests import local_llm as local_llm_server
from tests import postgres
from tests import radicale as radicale_server

# connectors/ and nlu/ run inside the Rasa server: their tests run under .venv-rasa (scripts/test.sh).
collect_ignore = ["channels", "nlu"]

SHARED = ROOT.parent / "shared" / "data"

# No console started by a test (in this process or as a subprocess of the e2e stack, which inherits the
# environment) runs the scheduled jobs on the real clock: they would chase the tests' escalations and write to
# their customers. Tests of the scheduler turn it on for the processes they start, and run jobs with a given time.
os.environ["CLOSER_SCHEDULER_ENABLED"] = "false"


@pytest.fixture(scope="session")
def postgres_server() -> postgres.Server | None:
    """The session's PostgreSQL server under ``CLOSER_TEST_DB=postgresql``, else None."""
    if not postgres.enabled():
        yield None
        return
    with postgres.serve() as server:
        yield server


@pytest.fixture
def db_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, postgres_server: postgres.Server | None) -> str:
    """URL of a fresh, migrated DB (SQLite, or a new PostgreSQL database), also set as CLOSER_DATABASE_URL for code
    under test."""
    name = postgres_server.create() if postgres_server else None
    url = postgres_server.url(name) if name else f"sqlite+aiosqlite:///{tmp_path / 'closer.db'}"
    monkeypatch.setenv("CLOSER_DATABASE_URL", url)
    caches.reset()
    db.upgrade(url)
    yield url
    caches.reset()
    if name:
        postgres_server.drop(name)


@pytest.fixture
async def loaded_db(db_url: str, indexed: Path) -> str:
    """``db_url`` with the default business's catalog and stock imported; the session's Chroma index in use."""
    knowledge = get_settings().knowledge_dir
    async with db.session_scope(db_url) as session:
        await catalog.import_catalog(session, knowledge / "catalog.csv")
        await catalog.import_stock(session, knowledge / "stock.csv")
    caches.reset()
    yield db_url
    caches.reset()
    await db.get_engine(db_url).dispose()


async def _catalog_chunks(url: str) -> list[chunking.Chunk]:
    knowledge = get_settings().knowledge_dir
    async with db.session_scope(url) as session:
        await catalog.import_catalog(session, knowledge / "catalog.csv")
        await catalog.import_stock(session, knowledge / "stock.csv")
        caches.reset()
        chunks = await chunking.catalog_chunks(session, (await business.get_vocabulary(session)).labels)
    caches.reset()
    await db.get_engine(url).dispose()
    return chunks


@pytest.fixture(scope="session")
def chroma_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Chroma directory holding the ``knowledge`` and ``products`` collections of the default business."""
    path = tmp_path_factory.mktemp("chroma")
    client = index.open_client(path)
    knowledge = get_settings().knowledge_dir
    index.sync(client, index.KNOWLEDGE, chunking.knowledge_chunks(knowledge), path / "logs")
    url = f"sqlite+aiosqlite:///{path / 'catalog.db'}"
    with ThreadPoolExecutor(1) as pool:  # the fixture may be set up inside a running event loop
        pool.submit(db.upgrade, url).result()
        products = pool.submit(asyncio.run, _catalog_chunks(url)).result()
    index.sync(client, index.PRODUCTS, products, path / "logs")
    return path


@pytest.fixture
def indexed(chroma_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Code under test reads the session's Chroma index (CLOSER_CHROMA_PATH) with fresh retrievers."""
    monkeypatch.setenv("CLOSER_CHROMA_PATH", str(chroma_dir))
    caches.reset()
    yield chroma_dir
    caches.reset()


@pytest.fixture(scope="session")
def local_llm(tmp_path_factory: pytest.TempPathFactory) -> local_llm_server.LocalLLM:
    """The real local LLM (scripts/llm.sh) on a free port, installed on first use into CLOSER_LLM_HOME
    (default var/llm), for the tests that need a real model; stopped at the end of the session."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    yield from local_llm_server.serve(port, tmp_path_factory.mktemp("llm") / "llm.log")


@pytest.fixture(scope="session")
def radicale(tmp_path_factory: pytest.TempPathFactory):
    """A real CalDAV server (Radicale) for the session: tests/radicale.py."""
    with radicale_server.serve(tmp_path_factory.mktemp("radicale")) as server:
        yield server
