"""A PostgreSQL server of the test session's own, for ``CLOSER_TEST_DB=postgresql`` (default: SQLite).

:func:`serve` runs ``initdb`` (trust authentication, role ``closer``) into a new temp folder and starts
``postgres`` from Debian's ``/usr/lib/postgresql/<version>/bin`` on a free port of 127.0.0.1, its socket in
that folder; as root, both run as the ``postgres`` user (PostgreSQL refuses root). Each test then gets a
database of its own (:meth:`Server.create`, :meth:`Server.drop`). The server stops and its folder goes at the end.
"""

import glob
import itertools
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import psycopg2

from tests.servers import free_port

USER = "closer"


def enabled() -> bool:
    """True when the tests run on PostgreSQL (``CLOSER_TEST_DB=postgresql``)."""
    return os.environ.get("CLOSER_TEST_DB", "sqlite").lower() == "postgresql"


def _bin(program: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{program}"), key=lambda p: float(Path(p).parts[-3]))
    found = found[-1:] or [shutil.which(program)]
    if found[0] is None:
        raise RuntimeError(f"{program} not found: install PostgreSQL (apt-get install postgresql)")
    return found[0]


@dataclass
class Server:
    """A running server on 127.0.0.1:``port`` accepting ``closer`` without a password."""

    port: int
    _names: Iterator[int] = field(default_factory=itertools.count)

    def connect(self, database: str = "postgres"):
        """A psycopg2 connection (autocommit) to ``database``."""
        connection = psycopg2.connect(host="127.0.0.1", port=self.port, user=USER, dbname=database, connect_timeout=5)
        connection.autocommit = True
        return connection

    def url(self, database: str, driver: str = "asyncpg") -> str:
        """The SQLAlchemy URL of ``database``."""
        return f"postgresql+{driver}://{USER}@127.0.0.1:{self.port}/{database}"

    def create(self, template: str | None = None) -> str:
        """The name of a new database: empty, or a copy of database ``template`` (which nobody may be connected to)."""
        name = f"test_{next(self._names)}"
        copy = f' TEMPLATE "{template}"' if template else ""
        self._execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', f'CREATE DATABASE "{name}"{copy}')
        return name

    def drop(self, name: str) -> None:
        """Drop database ``name``, closing any connection still open to it."""
        self._execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def _execute(self, *statements: str) -> None:
        with closing(self.connect()) as connection, connection.cursor() as cursor:
            for statement in statements:
                cursor.execute(statement)


@contextmanager
def serve() -> Iterator[Server]:
    """A new server for the duration of the ``with`` block."""
    user = "postgres" if os.geteuid() == 0 else None
    root = Path(tempfile.mkdtemp(prefix="closer-pg-"))  # not under pytest's folder: the postgres user must reach it
    data = root / "data"
    data.mkdir()
    if user:
        owner = pwd.getpwnam(user)
        for path in (root, data):
            os.chown(path, owner.pw_uid, owner.pw_gid)
    log = (root / "postgres.log").open("wb")
    process = None
    try:
        initdb = [_bin("initdb"), "-D", str(data), "-U", USER, "--auth=trust", "--encoding=UTF8", "--locale=C.UTF-8"]
        subprocess.run(initdb, user=user, cwd=root, check=True, capture_output=True)
        port = free_port()
        settings = ["listen_addresses=127.0.0.1", f"unix_socket_directories={root}", "fsync=off"]
        settings += ["max_connections=300", "full_page_writes=off", "synchronous_commit=off"]
        command = [_bin("postgres"), "-D", str(data), "-p", str(port)]
        for setting in settings:
            command += ["-c", setting]
        process = subprocess.Popen(command, user=user, cwd=root, stdout=log, stderr=subprocess.STDOUT)
        server = Server(port)
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"postgres exited with {process.returncode}: {(root / 'postgres.log').read_text()}")
            try:
                server.connect().close()
                break
            except psycopg2.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        yield server
    finally:
        if process is not None:
            process.send_signal(signal.SIGINT)  # fast shutdown: disconnects clients
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        log.close()
        shutil.rmtree(root, ignore_errors=True)
