"""The real stack on free ports: action server (.venv), Rasa server (.venv-rasa) with the trained
model and every channel of credentials.channels.yml (web, Telegram, WhatsApp) plus Avito, and the console,
sharing a fresh business DB and tracker store (SQLite files in a temp dir, or one new PostgreSQL database under
``CLOSER_TEST_DB=postgresql``, as in production) and the test session's Chroma index.
A local server speaking the Telegram Bot API stands in for Telegram (the customers' bot and the
managers' chat), one speaking the Graph API for WhatsApp Cloud API, one speaking Avito's Messenger API (and its
OAuth token endpoint) for Avito."""

import asyncio
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import httpx
import pytest
import yaml

from bot.contracts.business import model_path
from bot.core import caches, db
from bot.core.keys import pii_index_key, rasa_api_headers
from bot.core.settings import ROOT, Settings
from tests import postgres
from tests.fakes.avito_server import FakeAvito
from tests.fakes.graph_server import FakeGraph
from tests.fakes.telegram_server import FakeTelegram

T = TypeVar("T")
RASA = ROOT / ".venv-rasa" / "bin" / "rasa"
RASA_PYTHON = ROOT / ".venv-rasa" / "bin" / "python"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(url: str, process: subprocess.Popen, log: Path, seconds: float = 180, headers: dict | None = None) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"{url} exited with {process.returncode}:\n{log.read_text()[-4000:]}")
        try:
            if httpx.get(url, timeout=2, headers=headers).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    pytest.fail(f"{url} not ready after {seconds}s:\n{log.read_text()[-4000:]}")


@dataclass
class Stack:
    rasa_url: str
    actions_url: str
    console_url: str
    database_url: str
    logs: Path
    telegram: FakeTelegram
    graph: FakeGraph
    tracker_database_url: str  # Rasa's tracker store, as the console reads it
    avito: FakeAvito
    telegram_secret: str = "e2e-telegram-secret_0123456789"
    whatsapp_app_secret: str = "e2e-whatsapp-app-secret"
    avito_client_id: str = "e2e-avito-client-id"
    avito_client_secret: str = "e2e-avito-client-secret"
    avito_user_id: int = 94235311  # the Avito account the bot answers for
    avito_webhook_secret: str = "e2e-avito-webhook-secret_0123456789"  # the webhook URL's last segment
    rasa_jwt_secret: str = "e2e-rasa-jwt-secret-0123456789abcdef"
    action_server_token: str = "e2e-action-server-token-0123456789"

    def rasa_headers(self) -> dict[str, str]:
        """Headers that authenticate a call to the stack's Rasa HTTP API, as the console's do."""
        return rasa_api_headers(Settings(rasa_jwt_secret=self.rasa_jwt_secret))

    def run(self, awaitable: Awaitable[T]) -> T:
        """``asyncio.run(awaitable)``, then the engine that event loop opened on the business DB is disposed of:
        an engine belongs to its loop (bot.core.db.get_engine), and its pooled connections would stay open."""

        async def run_and_dispose() -> T:
            try:
                return await awaitable
            finally:
                await db.get_engine(self.database_url).dispose()

        return asyncio.run(run_and_dispose())


@pytest.fixture
def as_the_console(stack, monkeypatch) -> Stack:
    """The stack, with this process's settings as its console has them (the Rasa API secret), for tests that
    run the console's code (bot.handoff.takeover, bot.handoff.escalation) in this process against the stack."""
    monkeypatch.setenv("CLOSER_RASA_JWT_SECRET", stack.rasa_jwt_secret)
    caches.reset()
    yield stack
    caches.reset()


@contextmanager
def served_in_a_thread(fake):
    """A fake platform server (FakeTelegram, FakeGraph, FakeAvito) served from its own event loop in a background
    thread."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    server = asyncio.run_coroutine_threadsafe(fake.start(), loop).result(30)
    try:
        yield server
    finally:
        asyncio.run_coroutine_threadsafe(server.close(), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)


@pytest.fixture(scope="session")
def stack(tmp_path_factory, chroma_dir, postgres_server) -> Stack:
    yield from stack_with(tmp_path_factory, chroma_dir, postgres_server=postgres_server)


def stack_with(tmp_path_factory, chroma_dir, extra_env: dict[str, str] | None = None, postgres_server=None):
    """A whole stack (as the ``stack`` fixture's) with its own fake Telegram, Graph and Avito servers, every
    process also given ``extra_env`` (e.g. an LLM's ``CLOSER_LLM_*`` settings), its databases in a new database of
    ``postgres_server`` (the ``postgres_server`` fixture) if given; a generator for fixtures."""
    model = model_path({**os.environ, **(extra_env or {})})  # the business's (CLOSER_BUSINESS in extra_env)
    assert model.exists(), f"{model} is missing: run 'make train' (the README's test command does)"
    avito = FakeAvito(
        client_id=Stack.avito_client_id, client_secret=Stack.avito_client_secret, user_id=Stack.avito_user_id
    )
    with (
        served_in_a_thread(FakeTelegram()) as telegram,
        served_in_a_thread(FakeGraph()) as graph,
        served_in_a_thread(avito),
    ):
        yield from _stack(tmp_path_factory, chroma_dir, telegram, graph, avito, extra_env or {}, postgres_server)


def channel_credentials(path: Path, telegram: FakeTelegram, graph: FakeGraph, avito: FakeAvito | None = None) -> None:
    """credentials.channels.yml as it is, plus the fake servers' addresses as each channel's api_base; with
    ``avito``, an Avito block (commented out in credentials.channels.yml) for :class:`Stack`'s Avito account, its
    base_url the fake's, no webhook_url (nothing subscribed at start)."""
    credentials = yaml.safe_load((ROOT / "credentials.channels.yml").read_text())
    credentials["connectors.telegram.TelegramInput"]["api_base"] = f"{telegram.api_base}/bot"
    credentials["connectors.whatsapp.WhatsAppInput"]["api_base"] = graph.api_base
    if avito is not None:
        credentials["connectors.avito.AvitoInput"] = {
            "client_id": Stack.avito_client_id,
            "client_secret": Stack.avito_client_secret,
            "user_id": Stack.avito_user_id,
            "webhook_secret": Stack.avito_webhook_secret,
            "base_url": avito.base_url,
        }
    path.write_text(yaml.safe_dump(credentials))


def _stack(
    tmp_path_factory,
    chroma_dir,
    telegram: FakeTelegram,
    graph: FakeGraph,
    avito: FakeAvito,
    extra_env: dict[str, str],
    postgres_server: postgres.Server | None,
):
    tmp = tmp_path_factory.mktemp("stack")
    rasa_port, actions_port, console_port = free_port(), free_port(), free_port()
    if postgres_server:  # one database for both, as in production (deploy/endpoints.production.yml)
        database = postgres_server.create()
        database_url = tracker_url = postgres_server.url(database)
        tracker_store = (
            f"  type: SQL\n  dialect: postgresql\n  url: 127.0.0.1\n  port: {postgres_server.port}\n"
            f"  db: {database}\n  username: {postgres.USER}\n"
        )
    else:
        database_url = f"sqlite+aiosqlite:///{tmp / 'closer.db'}"
        tracker_url = f"sqlite+aiosqlite:///{tmp / 'tracker.db'}"
        tracker_store = f"  type: SQL\n  dialect: sqlite\n  db: {tmp / 'tracker.db'}\n"
    env = {
        **os.environ,
        "CLOSER_DATABASE_URL": database_url,
        "CLOSER_CONSOLE_PORT": str(console_port),
        "CLOSER_CONSOLE_HOST": "127.0.0.1",
        "CLOSER_RASA_URL": f"http://127.0.0.1:{rasa_port}",
        "CLOSER_CHROMA_PATH": str(chroma_dir),
        "CLOSER_PUBLIC_URL": f"http://127.0.0.1:{console_port}",
        "CLOSER_TELEGRAM_BOT_TOKEN": telegram.token,
        "CLOSER_TELEGRAM_MANAGER_CHAT_ID": "-1001234567890",
        "CLOSER_TELEGRAM_API_BASE": telegram.api_base,
        # the console reads the stack's tracker store; its NLU export and test stories go to a project copy
        "CLOSER_TRACKER_DATABASE_URL": tracker_url,
        "CLOSER_PROJECT_ROOT": str(tmp / "project"),
        # every e2e customer writes from 127.0.0.1: the per-IP limit (tests/web/test_chat_rate_limit.py) would
        # count the whole session's conversations as one client's
        "CLOSER_RATE_LIMIT_IP_MESSAGES": "100000",
        "CLOSER_RASA_JWT_SECRET": Stack.rasa_jwt_secret,
        "CLOSER_ACTION_SERVER_TOKEN": Stack.action_server_token,
        # credentials.channels.yml
        "TELEGRAM_BOT_TOKEN": telegram.token,
        "TELEGRAM_SECRET_TOKEN": Stack.telegram_secret,
        "TELEGRAM_WEBHOOK_URL": "https://closer.example.com/webhooks/telegram/webhook",  # Telegram wants https
        "WHATSAPP_ACCESS_TOKEN": graph.token,
        "WHATSAPP_APP_SECRET": Stack.whatsapp_app_secret,
        "WHATSAPP_VERIFY_TOKEN": "e2e-verify",
        "WHATSAPP_PHONE_NUMBER_ID": graph.phone_number_id,
        "WHATSAPP_TEMPLATE_NAME": next(iter(graph.templates)),
        **extra_env,
    }
    subprocess.run([sys.executable, "-m", "bot", "load-knowledge"], cwd=ROOT, env=env, check=True, capture_output=True)
    if not postgres_server:
        wal = [sys.executable, "-m", "bot", "sqlite-wal", str(tmp / "tracker.db")]
        subprocess.run(wal, cwd=ROOT, env=env, check=True)
    credentials = tmp / "credentials.yml"
    channel_credentials(credentials, telegram, graph, avito)
    endpoints = tmp / "endpoints.yml"
    endpoints.write_text(
        f"action_endpoint:\n  url: http://127.0.0.1:{actions_port}/webhook\n  token: ${{CLOSER_ACTION_SERVER_TOKEN}}\n"
        f"tracker_store:\n{tracker_store}"
    )
    commands = {
        "actions": [sys.executable, "-m", "bot.action_server", "--actions", "actions", "--port", str(actions_port)],
        "rasa": [  # as the launchers run it (python -m rasa: logging.yml's factories importable), logging JSON
            str(RASA_PYTHON),
            "-m",
            "rasa",
            "run",
            "--enable-api",
            "--jwt-secret",
            Stack.rasa_jwt_secret,
            "--port",
            str(rasa_port),
            "--model",
            str(model_path(env)),
            "--endpoints",
            str(endpoints),
            "--credentials",
            str(credentials),
            "--cors",
            "*",
            "--logging-config-file",
            "logging.yml",
        ],
        "console": [sys.executable, "-m", "bot", "console"],
    }
    rasa_env = {**env, "CLOSER_LOG_FORMAT": "json", "CLOSER_PII_INDEX_KEY": pii_index_key(Settings())}
    processes = {}
    for name, command in commands.items():
        log = tmp / f"{name}.log"
        processes[name] = (
            subprocess.Popen(
                command,
                cwd=ROOT,
                env=rasa_env if name == "rasa" else env,
                stdout=log.open("w"),
                stderr=subprocess.STDOUT,
            ),
            log,
        )
    try:
        wait_for(f"http://127.0.0.1:{actions_port}/health", *processes["actions"])
        wait_for(f"http://127.0.0.1:{console_port}/healthz", *processes["console"])
        wait_for(
            f"http://127.0.0.1:{rasa_port}/status",
            *processes["rasa"],
            headers=rasa_api_headers(Settings(rasa_jwt_secret=Stack.rasa_jwt_secret)),
        )
        started = time.monotonic()
        while telegram.webhook is None:  # the Telegram channel calls setWebhook once the server has started
            if time.monotonic() - started > 60:
                raise RuntimeError(f"the Telegram channel did not call setWebhook; see {processes['rasa'][1]}")
            time.sleep(0.1)
        yield Stack(
            f"http://127.0.0.1:{rasa_port}",
            f"http://127.0.0.1:{actions_port}",
            f"http://127.0.0.1:{console_port}",
            database_url,
            tmp,
            telegram,
            graph,
            tracker_url,
            avito,
        )
    finally:
        for process, _ in processes.values():
            process.terminate()
        for process, _ in processes.values():
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
        if postgres_server:
            postgres_server.drop(database)
