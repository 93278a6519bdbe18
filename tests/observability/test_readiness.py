"""GET /ready of the console (aiohttp) on a real SQLite database, with local servers in Rasa's and Chroma's place
answering as a ready, a failing or a hung one would; the action server's /ready is checked where the real one runs
(tests/test_action_server.py) and both on the whole stack (tests/e2e/test_readiness.py)."""

import asyncio
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from bot.observability import readiness
from bot.web.app import create_app
from tests.servers import free_port, redis_server
from tests.web.test_console_auth import console_settings


async def answering(status: int) -> AsyncIterator[str]:
    """A local server whose every GET answers ``status``; yields its base URL."""

    async def handler(request: web.Request) -> web.Response:
        return web.Response(status=status, text="Hello from Rasa: 3.6.21" if status == 200 else "bad gateway")

    app = web.Application()
    app.router.add_get("/{tail:.*}", handler)
    async with TestServer(app, host="127.0.0.1") as server:
        yield str(server.make_url("")).rstrip("/")


@pytest.fixture
async def rasa_up():
    async for url in answering(200):
        yield url


@pytest.fixture
async def rasa_failing():
    async for url in answering(502):
        yield url


@pytest.fixture
async def silent_port():
    """A port that accepts connections and never answers (a hung server)."""
    connections = []

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(writer)

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    yield server.sockets[0].getsockname()[1]
    for writer in connections:
        writer.close()
    server.close()


async def ready(settings) -> tuple[int, dict]:
    async with TestClient(TestServer(create_app(settings.model_copy(update={"scheduler_enabled": False})))) as client:
        response = await client.get("/ready")
        return response.status, await response.json()


async def test_ready_when_the_database_and_rasa_answer(db_url, rasa_up):
    assert await ready(console_settings(db_url, rasa_url=rasa_up)) == (
        200,
        {"status": "ready", "checks": {"database": "ok", "rasa": "ok", "chroma": "ok", "actions": "ok", "redis": "ok"}},
    )


async def test_not_ready_names_what_failed_and_no_address(db_url, rasa_failing, caplog):
    status, body = await ready(console_settings(db_url, rasa_url=rasa_failing))
    assert status == 503
    checks = {"database": "ok", "rasa": "HTTP 502", "chroma": "ok", "actions": "ok", "redis": "ok"}
    assert body == {"status": "not ready", "checks": checks}

    port = free_port()
    status, body = await ready(console_settings(db_url, rasa_url=f"http://127.0.0.1:{port}"))
    assert (status, body["checks"]["rasa"]) == (503, "unreachable (ClientConnectorError)")
    assert str(port) not in str(body)
    assert "readiness: rasa failed" in caplog.text  # logged, with the exception


async def test_a_hung_chroma_server_and_a_broken_database_are_reported_within_the_timeout(
    tmp_path, rasa_up, silent_port, monkeypatch
):
    monkeypatch.setattr(readiness, "TIMEOUT_S", 0.5)
    a_folder = tmp_path / "closer.db"  # a database file that is a folder: SQLite cannot open it
    a_folder.mkdir()
    settings = console_settings(
        f"sqlite+aiosqlite:///{a_folder}", rasa_url=rasa_up, chroma_host="127.0.0.1"
    ).model_copy(update={"chroma_port": silent_port})
    started = asyncio.get_running_loop().time()
    status, body = await ready(settings)
    assert asyncio.get_running_loop().time() - started < 5  # the checks run at once, each bounded
    assert status == 503
    assert body["checks"]["chroma"] == "timeout after 0.5 s"
    assert body["checks"]["database"] == "unreachable (OperationalError)"
    assert body["checks"]["rasa"] == "ok"


@pytest.fixture
def redis_port():
    with redis_server() as port:
        yield port


@pytest.fixture
async def redis_asking_for_a_password():
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readline()
        writer.write(b"-NOAUTH Authentication required.\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    yield server.sockets[0].getsockname()[1]
    server.close()


async def test_the_action_servers_and_redis_are_checked_when_configured(
    db_url, rasa_up, rasa_failing, redis_port, redis_asking_for_a_password
):
    settings = console_settings(db_url, rasa_url=rasa_up)
    configured = settings.model_copy(update={"actions_url": rasa_up, "redis_url": f"redis://127.0.0.1:{redis_port}"})
    status, body = await ready(configured)
    assert (status, body["checks"]["actions"], body["checks"]["redis"]) == (200, "ok", "ok")

    failing = settings.model_copy(
        update={"actions_url": rasa_failing, "redis_url": f"redis://127.0.0.1:{redis_asking_for_a_password}"}
    )
    status, body = await ready(failing)
    assert (status, body["checks"]["actions"]) == (503, "HTTP 502")
    assert body["checks"]["redis"] == "PING answered b'-NOAUTH Authenti'"
    down = settings.model_copy(update={"redis_url": f"redis://127.0.0.1:{free_port()}"})
    assert (await ready(down))[1]["checks"]["redis"] == "unreachable (ConnectionRefusedError)"
