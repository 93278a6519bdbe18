"""The real Closer stack for benchmarks and data captures run by hand: a fresh business DB (knowledge/ loaded)
and SQLite tracker store in a temporary directory, the action server and the Rasa server (models/closer.tar.gz,
REST channel) on free ports, stopped on exit."""

import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from bench.turn_latency import RASA, free_port, start, wait_ready
from bot.core import caches
from bot.core.settings import ROOT, Settings

JWT_SECRET = "bench-rasa-jwt-secret"


@dataclass(frozen=True)
class Stack:
    """A running stack: its ``work`` directory, ``database_url`` (business DB), ``tracker`` (SQLite file of the
    tracker store), ``rasa_url``, and ``settings`` for talking to it as the console would."""

    work: Path
    database_url: str
    tracker: Path
    rasa_url: str
    settings: Settings

    @property
    def database(self) -> Path:
        return self.work / "closer.db"


@contextmanager
def closer_stack(prefix: str) -> Iterator[Stack]:
    """Start the stack in a new temporary directory named ``prefix…`` (its logs stay there); this process's
    environment is pointed at its DB. Raises RuntimeError when a server is not ready within 4 minutes."""
    work = Path(tempfile.mkdtemp(prefix=prefix))
    database, tracker = work / "closer.db", work / "tracker.db"
    url = f"sqlite+aiosqlite:///{database}"
    env = {
        **os.environ,
        "CLOSER_DATABASE_URL": url,
        "CLOSER_TRACKER_DATABASE_URL": f"sqlite+aiosqlite:///{tracker}",
        "CLOSER_ACTION_SERVER_TOKEN": "bench-action-server-token",
        "CLOSER_RASA_JWT_SECRET": JWT_SECRET,
        "CLOSER_RATE_LIMIT_MESSAGES": "1000000",
        "CLOSER_RATE_LIMIT_IP_MESSAGES": "1000000",
    }
    os.environ.update(env)
    caches.reset()
    subprocess.run(
        [sys.executable, "-m", "bot", "load-knowledge"], cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL
    )
    subprocess.run([sys.executable, "-m", "bot", "sqlite-wal", str(tracker)], cwd=ROOT, check=True)
    rasa_port, actions_port = free_port(), free_port()
    endpoints = work / "endpoints.yml"
    endpoints.write_text(
        f"action_endpoint:\n  url: http://127.0.0.1:{actions_port}/webhook\n  token: ${{CLOSER_ACTION_SERVER_TOKEN}}\n"
        f"tracker_store:\n  type: SQL\n  dialect: sqlite\n  db: {tracker}\n"
    )
    processes = [
        start([sys.executable, "-m", "bot.action_server", "--actions", "actions", "--port", str(actions_port)],
              ROOT, env, work / "actions.log"),
        start([str(RASA), "run", "--port", str(rasa_port), "--enable-api",
               "--jwt-secret", JWT_SECRET, "--model", str(ROOT / "models" / "closer.tar.gz"),
               "--endpoints", str(endpoints), "--credentials", "credentials.yml"], ROOT, env, work / "rasa.log"),
    ]  # fmt: skip
    rasa_url = f"http://127.0.0.1:{rasa_port}"
    settings = Settings(
        database_url=url,
        tracker_database_url=env["CLOSER_TRACKER_DATABASE_URL"],
        rasa_url=rasa_url,
        rasa_jwt_secret=JWT_SECRET,
    )
    try:
        wait_ready(f"{rasa_url}/")
        wait_ready(f"http://127.0.0.1:{actions_port}/health")
        yield Stack(work, url, tracker, rasa_url, settings)
    finally:
        for process in processes:
            process.terminate()
            process.wait(30)
