"""Radicale, the CalDAV server from PyPI (requirements-dev.txt), as a real manager's calendar for tests: started as a
subprocess on a free loopback port with a temporary storage folder and one htpasswd user (:func:`serve`), and a fresh
calendar collection per test (:func:`make_calendar`). The ``radicale`` fixture (tests/conftest.py) serves one per
session."""

import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from tests.servers import free_port

USER, PASSWORD = "manager", "radicale-test-password"


@dataclass(frozen=True)
class Radicale:
    url: str  # http://127.0.0.1:<port>
    username: str
    password: str


@contextmanager
def serve(folder: Path) -> Iterator[Radicale]:
    """A Radicale server keeping its data in ``folder``; stopped at the end. Raises RuntimeError when it does not
    answer in 20 s."""
    (folder / "users").write_text(f"{USER}:{PASSWORD}\n")
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "radicale",
        "--config",
        "",  # no configuration file: only these options
        "--server-hosts",
        f"127.0.0.1:{port}",
        "--storage-filesystem-folder",
        str(folder / "collections"),
        "--auth-type",
        "htpasswd",
        "--auth-htpasswd-filename",
        str(folder / "users"),
        "--auth-htpasswd-encryption",
        "plain",
        "--logging-level",
        "warning",
    ]
    log = (folder / "radicale.log").open("wb")
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait_for(port, process, folder / "radicale.log")
        yield Radicale(f"http://127.0.0.1:{port}", USER, PASSWORD)
    finally:
        process.terminate()
        process.wait(10)
        log.close()


def _wait_for(port: int, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 20
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"Radicale did not start: {log.read_text(errors='replace')[-2000:]}") from None
            time.sleep(0.05)


async def make_calendar(server: Radicale) -> str:
    """A new, empty calendar collection of the test user (MKCALENDAR); its URL."""
    url = f"{server.url}/{server.username}/{uuid.uuid4().hex[:12]}/"
    auth = aiohttp.BasicAuth(server.username, server.password)
    async with aiohttp.ClientSession() as client, client.request("MKCALENDAR", url, auth=auth) as response:
        assert response.status == 201, await response.text()
    return url
