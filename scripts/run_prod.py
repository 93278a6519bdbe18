"""`make run-prod`: Closer's production topology on one machine, without Docker.

PostgreSQL and Redis (Debian's ``postgresql`` and ``redis-server``, a cluster of their own with the data under
``--var``), a Chroma server (``chroma run``), two action servers and two Rasa servers (PostgreSQL tracker store,
Redis lock store: ``deploy/endpoints.production.yml``), the console with the scheduler, and HAProxy
(``deploy/haproxy.cfg``) spreading the channels' webhooks and the web chat over the Rasa servers and Rasa's action
calls over the action servers. The configuration files are the ones ``docker-compose.yml`` mounts; the services'
names, ports and variables are those of :data:`SERVICES` (``tests/deploy/test_topology_files.py`` holds the two
together).

A Rasa server, action server or console that exits is started again after a second (compose's
``restart: unless-stopped``); PostgreSQL, Redis, Chroma or HAProxy exiting stops everything. Ctrl-C (or SIGTERM)
stops every process this script started. Each process's output goes to ``<var>/logs/<service>.log`` and its PID
to ``<var>/run/<service>.pid``.

    .venv/bin/python scripts/run_prod.py [--var var/prod] [--port-offset 0]

Ports (plus ``--port-offset``): web chat and console 8000, Rasa through HAProxy 5005 (replicas 5015, 5025),
actions through HAProxy 5055 (replicas 5065, 5075), HAProxy's statistics 8404, PostgreSQL 55432, Redis 56379,
Chroma 58000, Prometheus metrics 9101 (actions-1), 9102 (actions-2), 9103 (console), 9104 (rasa-1), 9105 (rasa-2).
"""

import argparse
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PORTS = {
    "console": 8000,
    "lb-rasa": 5005,
    "rasa-1": 5015,
    "rasa-2": 5025,
    "lb-actions": 5055,
    "actions-1": 5065,
    "actions-2": 5075,
    "lb-stats": 8404,
    "postgres": 55432,
    "redis": 56379,
    "chroma": 58000,
    "metrics-actions-1": 9101,
    "metrics-actions-2": 9102,
    "metrics-console": 9103,
    "metrics-rasa-1": 9104,
    "metrics-rasa-2": 9105,
}
POSTGRES = {"user": "closer", "db": "closer"}
READY_TIMEOUT_S = 300.0  # a Rasa server loads its model in ≈ 30 s on 2 cores; migrations and indexing take longer


@dataclass
class Service:
    """One process of the topology: its command, environment, the URL that answers 200 once it is ready, and
    whether it is started again when it exits (``restart``) or its exit stops the topology."""

    name: str
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    ready_url: str | None = None
    restart: bool = False
    user: str | None = None  # run as this user (PostgreSQL refuses root)


def _postgres_bin(program: str) -> str:
    found = shutil.which(program) or next(iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{program}"))[-1:]), None)
    if not found:
        sys.exit(f"{program} not found: install Debian's postgresql (apt-get install postgresql)")
    return found


def topology(var: Path, offset: int) -> tuple[dict[str, int], dict[str, str], list[Service]]:
    """The ports (:data:`PORTS` plus ``offset``), the environment shared by Closer's processes, and every service
    in start order."""
    from bot.contracts.business import model_path
    from bot.core.keys import action_server_token, pii_index_key, rasa_jwt_secret
    from bot.core.settings import Settings

    port = {name: number + offset for name, number in PORTS.items()}
    password = os.environ.get("POSTGRES_PASSWORD", "closer")
    database = f"postgresql+asyncpg://{POSTGRES['user']}:{password}@127.0.0.1:{port['postgres']}/{POSTGRES['db']}"
    settings = Settings()
    shared = {
        "CLOSER_DATABASE_URL": database,
        "CLOSER_TRACKER_DATABASE_URL": database,
        "CLOSER_RASA_URL": f"http://127.0.0.1:{port['lb-rasa']}",
        "CLOSER_CHROMA_HOST": "127.0.0.1",
        "CLOSER_CHROMA_PORT": str(port["chroma"]),
        "CLOSER_PUBLIC_URL": os.environ.get("CLOSER_PUBLIC_URL", f"http://localhost:{port['console']}"),
        "CLOSER_RASA_JWT_SECRET": rasa_jwt_secret(settings),
        "CLOSER_ACTION_SERVER_TOKEN": action_server_token(settings),
    }
    rasa_env = {  # deploy/endpoints.production.yml
        "ACTION_SERVER_URL": f"http://127.0.0.1:{port['lb-actions']}/webhook",
        "POSTGRES_HOST": "127.0.0.1",
        "POSTGRES_PORT": str(port["postgres"]),
        "POSTGRES_DB": POSTGRES["db"],
        "POSTGRES_USER": POSTGRES["user"],
        "POSTGRES_PASSWORD": password,
        "REDIS_HOST": "127.0.0.1",
        "REDIS_PORT": str(port["redis"]),
        "CLOSER_PII_INDEX_KEY": pii_index_key(settings),  # the pseudonyms of its logs (connectors/logs.py)
    }
    lb_env = {  # deploy/haproxy.cfg
        "LB_RASA_BIND": f"127.0.0.1:{port['lb-rasa']}",
        "LB_ACTIONS_BIND": f"127.0.0.1:{port['lb-actions']}",
        "LB_STATS_BIND": f"127.0.0.1:{port['lb-stats']}",
        "RASA_1": f"127.0.0.1:{port['rasa-1']}",
        "RASA_2": f"127.0.0.1:{port['rasa-2']}",
        "ACTIONS_1": f"127.0.0.1:{port['actions-1']}",
        "ACTIONS_2": f"127.0.0.1:{port['actions-2']}",
    }
    root_user = "postgres" if os.geteuid() == 0 else None
    venv = str(ROOT / ".venv" / "bin" / "python")
    credentials = os.environ.get("CLOSER_CREDENTIALS", "credentials.yml")
    services = [
        Service(
            "postgres",
            [
                _postgres_bin("postgres"),
                "-D",
                str(var / "postgres"),
                "-p",
                str(port["postgres"]),
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                f"unix_socket_directories={var / 'run'}",
                "-c",
                "max_connections=200",
            ],
            user=root_user,
        ),
        Service(
            "redis",
            [
                "redis-server",
                str(ROOT / "deploy" / "redis.conf"),
                "--port",
                str(port["redis"]),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(var / "redis"),
            ],
        ),
        Service(
            "chroma",
            [
                str(ROOT / ".venv" / "bin" / "chroma"),
                "run",
                "--path",
                str(var / "chroma"),
                "--host",
                "127.0.0.1",
                "--port",
                str(port["chroma"]),
            ],
            env={"ANONYMIZED_TELEMETRY": "False"},
            ready_url=f"http://127.0.0.1:{port['chroma']}/api/v2/heartbeat",
        ),
        Service("lb", ["haproxy", "-db", "-f", str(ROOT / "deploy" / "haproxy.cfg")], env=lb_env),
    ]
    services += [
        Service(
            f"actions-{n}",
            [venv, "-m", "bot.action_server", "--actions", "actions", "--port", str(port[f"actions-{n}"])],
            env={"CLOSER_METRICS_PORT": str(port[f"metrics-actions-{n}"])},
            ready_url=f"http://127.0.0.1:{port[f'actions-{n}']}/ready",
            restart=True,
        )
        for n in (1, 2)
    ]
    rasa_run = [  # python -m rasa: the working directory on sys.path before Rasa reads logging.yml (connectors.logs)
        str(ROOT / ".venv-rasa" / "bin" / "python"),
        "-m",
        "rasa",
        "run",
        "--enable-api",
        "--jwt-secret",
        shared["CLOSER_RASA_JWT_SECRET"],
        "--model",
        str(model_path()),  # the business's (CLOSER_BUSINESS)
        "--endpoints",
        "deploy/endpoints.production.yml",
        "--credentials",
        credentials,
        "--logging-config-file",
        "logging.yml",
    ]
    services += [
        Service(
            f"rasa-{n}",
            [*rasa_run, "--port", str(port[f"rasa-{n}"])],
            env={**rasa_env, "CLOSER_METRICS_PORT": str(port[f"metrics-rasa-{n}"]), "CLOSER_REPLICA_ID": f"rasa-{n}"},
            ready_url=f"http://127.0.0.1:{port[f'rasa-{n}']}/",
            restart=True,
        )
        for n in (1, 2)
    ]
    services.append(
        Service(
            "console",
            [venv, "-m", "bot", "console"],
            env={
                "CLOSER_METRICS_PORT": str(port["metrics-console"]),
                "CLOSER_CONSOLE_PORT": str(port["console"]),
                "CLOSER_ACTIONS_URL": f"http://127.0.0.1:{port['lb-actions']}",
                "CLOSER_REDIS_URL": f"redis://127.0.0.1:{port['redis']}",
            },
            ready_url=f"http://127.0.0.1:{port['console']}/ready",
            restart=True,
        )
    )
    if settings.crm_provider != "sql":
        services.append(Service("crm-worker", [venv, "-m", "bot", "crm-worker"], restart=True))
    return port, shared, services


class Supervisor:
    """Starts services, restarts the ones that may restart, and stops all of them in reverse order."""

    def __init__(self, var: Path, shared: dict[str, str]) -> None:
        self.var, self.shared = var, shared
        self.running: dict[str, tuple[Service, subprocess.Popen]] = {}
        self.stopping = False

    def start(self, service: Service) -> subprocess.Popen:
        """Start ``service`` in a session of its own, its output appended to ``<var>/logs/<name>.log``, its PID
        written to ``<var>/run/<name>.pid``."""
        log = open(self.var / "logs" / f"{service.name}.log", "ab")  # noqa: SIM115 (the child keeps it)
        process = subprocess.Popen(
            service.argv,
            cwd=ROOT,
            user=service.user,
            env={**os.environ, **self.shared, **service.env},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches this script only; it stops the children in order
        )
        log.close()
        (self.var / "run" / f"{service.name}.pid").write_text(f"{process.pid}\n")
        self.running[service.name] = (service, process)
        print(f"  {service.name} started (pid {process.pid}, log {self.var / 'logs' / service.name}.log)", flush=True)
        return process

    def wait_ready(self, service: Service, check=None) -> None:
        """Return once ``check()`` (default: ``service.ready_url`` answers 200) is true; SystemExit when the
        service exits first or READY_TIMEOUT_S pass."""
        deadline = time.monotonic() + READY_TIMEOUT_S
        process = self.running[service.name][1]
        while time.monotonic() < deadline and not self.stopping:
            if process.poll() is not None:
                raise SystemExit(
                    f"{service.name} exited with {process.returncode}: see {self.var}/logs/{service.name}.log"
                )
            if check() if check else _answers(service.ready_url):
                return
            time.sleep(0.5)
        raise SystemExit(
            f"{service.name} not ready after {READY_TIMEOUT_S:.0f} s: see {self.var}/logs/{service.name}.log"
        )

    def supervise(self) -> None:
        """Until stopped: restart a restartable service that exited; stop everything when another one exits."""
        while not self.stopping:
            for name, (service, process) in list(self.running.items()):
                if process.poll() is None:
                    continue
                if not service.restart:
                    raise SystemExit(f"{name} exited with {process.returncode}: stopping the topology")
                print(f"  {name} exited with {process.returncode}; starting it again", flush=True)
                time.sleep(1)
                self.start(service)
            time.sleep(0.5)

    def stop(self) -> None:
        """Stop every running service, the last started first (SIGTERM; PostgreSQL SIGINT: its fast shutdown), each
        killed after 30 s."""
        self.stopping = True
        for name, (_service, process) in reversed(list(self.running.items())):
            if process.poll() is None:
                process.send_signal(signal.SIGINT if name == "postgres" else signal.SIGTERM)  # postgres: fast shutdown
                try:
                    process.wait(30)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
            (self.var / "run" / f"{name}.pid").unlink(missing_ok=True)
        print("stopped", flush=True)


def _interrupt(*_: object) -> None:
    raise KeyboardInterrupt  # SIGTERM stops the topology as Ctrl-C does


def _answers(url: str | None) -> bool:
    if url is None:
        return True
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def _redis_answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as connection:
            connection.sendall(b"PING\r\n")
            return connection.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def _postgres_connect(shared: dict[str, str], database: str | None = None):
    import psycopg2
    from sqlalchemy.engine import make_url

    url = make_url(shared["CLOSER_DATABASE_URL"])
    return psycopg2.connect(
        host=url.host,
        port=url.port,
        user=url.username,
        password=url.password,
        dbname=database or url.database,
        connect_timeout=2,
    )


def _postgres_answers(shared: dict[str, str]) -> bool:
    import psycopg2

    try:
        _postgres_connect(shared, "postgres").close()
        return True
    except psycopg2.OperationalError:
        return False


def init_postgres(var: Path, user: str | None) -> None:
    """A new cluster in ``var/postgres`` (owned by ``user`` when running as root) with the role and database of
    :data:`POSTGRES` and scram-sha-256 password authentication over TCP."""
    data = var / "postgres"
    if (data / "PG_VERSION").exists():
        return
    data.mkdir(parents=True, exist_ok=True)
    password_file = var / "run" / "postgres.pw"
    password_file.write_text(os.environ.get("POSTGRES_PASSWORD", "closer") + "\n")
    if user:
        owner = pwd.getpwnam(user)
        for path in (data, var / "run", password_file):
            os.chown(path, owner.pw_uid, owner.pw_gid)
    argv = [
        _postgres_bin("initdb"),
        "-D",
        str(data),
        "-U",
        POSTGRES["user"],
        "--auth=scram-sha-256",
        f"--pwfile={password_file}",
        "--encoding=UTF8",
        "--locale=C.UTF-8",
    ]
    try:
        subprocess.run(argv, user=user, cwd=data, check=True, capture_output=True)
    except subprocess.CalledProcessError as error:
        reach = f" (the {user} user must be able to reach {var})" if user else ""
        sys.exit(f"initdb failed{reach}: {error.stderr.decode()[-2000:]}")
    finally:
        password_file.unlink()


def create_database(shared: dict[str, str]) -> None:
    """The database of :data:`POSTGRES` in the cluster, unless it exists."""
    connection = _postgres_connect(shared, "postgres")
    connection.autocommit = True
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", (POSTGRES["db"],))
        if cursor.fetchone() is None:
            cursor.execute(f'CREATE DATABASE "{POSTGRES["db"]}"')
    connection.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--var", type=Path, default=ROOT / "var" / "prod", help="data, logs and PID files")
    parser.add_argument("--port-offset", type=int, default=0, help="added to every port (several topologies)")
    args = parser.parse_args(argv)
    var = args.var.resolve()
    for folder in ("logs", "run", "redis", "chroma"):
        (var / folder).mkdir(parents=True, exist_ok=True)
    for program in ("redis-server", "haproxy"):
        if not shutil.which(program):
            sys.exit(f"{program} not found: scripts/setup.sh --prod installs Debian's redis-server and haproxy")
    port, shared, services = topology(var, args.port_offset)
    by_name = {service.name: service for service in services}
    supervisor = Supervisor(var, shared)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        print(f"Closer's production topology under {var}", flush=True)
        postgres_user = by_name["postgres"].user
        init_postgres(var, postgres_user)
        supervisor.start(by_name["postgres"])
        supervisor.wait_ready(by_name["postgres"], lambda: _postgres_answers(shared))
        create_database(shared)
        supervisor.start(by_name["redis"])
        supervisor.wait_ready(by_name["redis"], lambda: _redis_answers(port["redis"]))
        supervisor.start(by_name["chroma"])
        supervisor.wait_ready(by_name["chroma"])
        print("  migrations, catalog and knowledge index", flush=True)
        env = {**os.environ, **shared}
        python = str(ROOT / ".venv" / "bin" / "python")
        with open(var / "logs" / "migrate.log", "ab") as log:
            for command in (["load-knowledge"], ["index"]):
                if subprocess.run(
                    [python, "-m", "bot", *command], cwd=ROOT, env=env, stdout=log, stderr=log
                ).returncode:
                    raise SystemExit(f"python -m bot {command[0]} failed: see {var}/logs/migrate.log")
        supervisor.start(by_name["lb"])
        for service in services[4:]:  # the action servers, then the Rasa servers one by one (the first creates the
            supervisor.start(service)  # tracker store's table), then the console
            supervisor.wait_ready(service)
        print(
            f"Closer is running: chat at {shared['CLOSER_PUBLIC_URL']}/ (Rasa through HAProxy on "
            f"{shared['CLOSER_RASA_URL']}). Ctrl-C stops it.",
            flush=True,
        )
        supervisor.supervise()
    except KeyboardInterrupt:
        pass
    finally:
        supervisor.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
