"""`make run-prod`'s topology, started for real (scripts/run_prod.py on free ports, its data in a temp dir): 20
concurrent conversations, from greeting to a quote, through HAProxy over two Rasa servers (PostgreSQL tracker store,
Redis lock store) and two action servers; one Rasa server and one action server are stopped mid-conversation and
started again by the supervisor. Every user message must be in the PostgreSQL tracker exactly once, in order, and
every turn answered. Ten conversations go through the console's web chat API, ten straight to HAProxy's Rasa
frontend (whose replies name the Rasa server that answered: each conversation must have been served by both)."""

import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import psycopg2
import pytest

from bot.core.settings import ROOT
from tests.deploy.test_topology_files import run_prod

pytestmark = pytest.mark.e2e
CONVERSATIONS = 20
NAMES = ["Sara Khan", "Omar Haddad", "Lina Farouk", "Yusuf Rahman", "Maya Nasser", "Karim Aziz", "Noor Saleh"]
START_TIMEOUT_S = 900


def free_offset(ports: dict[str, int]) -> int:
    """A port offset at which every port of the topology is free."""
    for _ in range(50):
        offset = random.randrange(10, 7_400, 10)  # PostgreSQL at 55432 + offset stays below 65536
        try:
            for port in ports.values():
                with socket.socket() as s:
                    s.bind(("127.0.0.1", port + offset))
            return offset
        except OSError:
            continue
    raise RuntimeError("no free port range")


@pytest.fixture(scope="module")
def topology(tmp_path_factory: pytest.TempPathFactory):
    module = run_prod()
    var = Path(tempfile.mkdtemp(prefix="closer-prod-"))  # not under pytest's 0700 folder: PostgreSQL's user reads it
    var.chmod(0o755)
    offset = free_offset(module.PORTS)
    out = var / "run_prod.out"
    with out.open("wb") as log:
        process = subprocess.Popen(
            [str(ROOT / ".venv" / "bin" / "python"), "scripts/run_prod.py", "--var", str(var), "--port-offset",
             str(offset)],
            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
            # every simulated customer writes from 127.0.0.1: the per-IP limit of the web chat would stop them
            env={**os.environ, "CLOSER_SCHEDULER_ENABLED": "false", "CLOSER_RATE_LIMIT_IP_MESSAGES": "100000"},
        )  # fmt: skip
    deadline = time.monotonic() + START_TIMEOUT_S
    while "Closer is running" not in out.read_text():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            logs = "\n".join(f"--- {p.name}\n{p.read_text()[-3000:]}" for p in sorted((var / "logs").glob("*.log")))
            pytest.fail(f"run_prod.py did not start:\n{out.read_text()}\n{logs}")
        time.sleep(1)
    ports = {name: port + offset for name, port in module.PORTS.items()}
    yield var, ports, out
    process.send_signal(signal.SIGINT)  # Ctrl-C
    process.wait(120)
    assert "stopped" in out.read_text()
    shutil.copytree(var / "logs", tmp_path_factory.mktemp("prod-logs"), dirs_exist_ok=True)  # kept by pytest
    assert not list((var / "run").glob("*.pid")), "a process was left running"
    shutil.rmtree(var)


class Conversation:
    """One customer: greeting, products, cart, a quote (answering the lead form), with every turn's replies."""

    def __init__(self, number: int, ports: dict[str, int]) -> None:
        self.number, self.ports = number, ports
        self.direct = number % 2 == 0  # to HAProxy's Rasa frontend; otherwise the console's web chat API
        self.sender = f"topology-{number}-{random.getrandbits(32):08x}"
        self.conversation_id = self.sender if self.direct else f"web-{self.sender}"
        self.client = httpx.Client(timeout=120)
        self.sent: list[str] = []
        self.replicas: list[str] = []

    def say(self, message: str) -> str:
        if self.direct:
            response = self.client.post(
                f"http://127.0.0.1:{self.ports['lb-rasa']}/webhooks/rest/webhook",
                json={"sender": self.sender, "message": message},
            )
            assert response.status_code == 200, response.text
            self.replicas.append(response.headers["x-closer-replica"])
            messages = response.json()
        else:
            response = self.client.post(
                f"http://127.0.0.1:{self.ports['console']}/api/chat", json={"sender": self.sender, "message": message}
            )
            assert response.status_code == 200, response.text
            messages = response.json()["messages"]
        self.sent.append(message)
        text = "\n".join(m.get("text") or "" for m in messages)
        assert messages and text.strip(), f"no reply to {message!r}"
        return text

    def run(self, stage: threading.Barrier) -> None:
        self.say("hi")
        self.say("show me office chairs")
        stage.wait(600)  # every conversation is mid-way: the test stops a Rasa server and an action server now
        stage.wait(600)
        reply = self.say(f"add {2 + self.number} OC-1006 to my cart")
        assert "OC-1006) ×" in reply, reply
        reply = self.say("send me a quote")
        answers = {
            "email": f"buyer{self.number}@example.com",
            "phone": f"050 123 {4000 + self.number}",
            "company": f"Topology Trading {self.number} LLC",
            "how many": str(10 + self.number),
            "budget": "30000",
            "when": "this month",
            "name": NAMES[self.number % len(NAMES)],
        }
        for _ in range(10):
            if "Here is your quote" in reply:
                break
            answer = next((answer for key, answer in answers.items() if key in reply.lower()), None)
            assert answer, f"{self.conversation_id}: no answer to {reply!r} after {self.sent}"
            reply = self.say(answer)
        assert re.search(r"Here is your quote Q-\S+", reply), reply


def served_metrics(text: str) -> set[str]:
    """The sample names a Prometheus text page can hold, from its ``# TYPE`` lines (a metric with labels shows no
    sample before its first observation, but is declared)."""
    suffixes = {"counter": ("_total", "_created"), "histogram": ("_bucket", "_count", "_sum", "_created")}
    names = set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split()
            base = name.removesuffix("_total") if kind == "counter" else name  # the TYPE line may name the sample
            names |= {base + suffix for suffix in suffixes.get(kind, ("",))}
    return names


def check_metrics(ports: dict[str, int]) -> None:
    """Every process serves its metrics, with the turns and actions of the conversations counted, and every
    closer_* metric the Grafana dashboard (deploy/grafana/closer.json) queries is among them."""
    pages = {
        name: httpx.get(f"http://127.0.0.1:{ports[f'metrics-{name}']}/metrics", timeout=10).text
        for name in ("rasa-1", "rasa-2", "actions-1", "actions-2", "console")
    }
    assert re.search(r'^closer_turns_total\{channel="rest",intent="greet"\} [1-9]', pages["rasa-2"], re.MULTILINE)
    assert re.search(r'^closer_turn_seconds_count\{channel="rest"\} [1-9]', pages["rasa-2"], re.MULTILINE)
    assert re.search(
        r'^closer_action_seconds_count\{action="\w+",outcome="ok"\} [1-9]', pages["actions-2"], re.MULTILINE
    )
    assert re.search(r'^closer_escalations_open\{status="pending"\} \d', pages["console"], re.MULTILINE)
    served = set().union(*map(served_metrics, pages.values()))
    dashboard = json.loads((ROOT / "deploy" / "grafana" / "closer.json").read_text())
    queried = {
        name
        for panel in dashboard["panels"]
        for target in panel["targets"]
        for name in re.findall(r"\b(closer_\w+)", target["expr"])
    }
    assert len(queried) >= 10 and queried <= served, queried - served


def pid(var: Path, service: str) -> int:
    return int((var / "run" / f"{service}.pid").read_text())


def wait_restarted(var: Path, service: str, old_pid: int, url: str) -> None:
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        try:
            if pid(var, service) != old_pid and httpx.get(url, timeout=2).status_code == 200:
                return
        except (OSError, ValueError, httpx.HTTPError):
            pass
        time.sleep(1)
    pytest.fail(f"{service} was not started again")


def wait_in_rotation(ports: dict[str, int], backend: str, server: str) -> None:
    """Until HAProxy's health checks have put ``server`` of ``backend`` back (its statistics page says UP)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        rows = httpx.get(f"http://127.0.0.1:{ports['lb-stats']}/;csv", timeout=5).text.splitlines()
        if any(row.startswith(f"{backend},{server},") and ",UP," in row for row in rows):
            return
        time.sleep(0.5)
    pytest.fail(f"HAProxy did not put {server} back")


def test_conversations_survive_replica_restarts(topology) -> None:
    var, ports, out = topology
    conversations = [Conversation(n, ports) for n in range(CONVERSATIONS)]
    stage = threading.Barrier(CONVERSATIONS + 1)
    with ThreadPoolExecutor(CONVERSATIONS) as pool:
        futures = [pool.submit(c.run, stage) for c in conversations]
        stage.wait(600)
        rasa_1, actions_1 = pid(var, "rasa-1"), pid(var, "actions-1")
        os.kill(rasa_1, signal.SIGTERM)  # in-flight turns finish; new ones go to rasa-2 (HAProxy redispatches)
        os.kill(actions_1, signal.SIGTERM)
        stage.wait(600)  # the conversations go on while both are down and loading again
        for future in futures:
            future.result()
    wait_restarted(var, "rasa-1", rasa_1, f"http://127.0.0.1:{ports['rasa-1']}/")
    wait_restarted(var, "actions-1", actions_1, f"http://127.0.0.1:{ports['actions-1']}/health")
    wait_in_rotation(ports, "rasa", "rasa-1")
    for conversation in conversations:  # and after the restart, both Rasa servers serve every conversation again
        conversation.say("thanks")
        conversation.say("thank you, bye")
    assert "rasa-1 exited" in out.read_text() and "actions-1 exited" in out.read_text()
    check_metrics(ports)

    connection = psycopg2.connect(
        host="127.0.0.1", port=ports["postgres"], user="closer", password="closer", dbname="closer"
    )
    with connection, connection.cursor() as cursor:
        for conversation in conversations:
            cursor.execute(
                "SELECT data::json->>'text' FROM events WHERE sender_id = %s AND type_name = 'user' ORDER BY id",
                (conversation.conversation_id,),
            )
            stored = [row[0] for row in cursor.fetchall()]
            assert stored == conversation.sent, conversation.conversation_id
            if conversation.direct:
                assert set(conversation.replicas) == {"rasa-1", "rasa-2"}, conversation.replicas
    connection.close()


def test_a_conversation_whose_replica_is_killed_mid_turn_loses_no_acknowledged_message(topology) -> None:
    """SIGKILL to the Rasa server running a turn (it dies holding the conversation's lock in Redis); the customer
    writes twice more on the other replica while the dead one's lock is still there. Both are answered, one after
    the other, and stored once, in order (with Rasa's own Redis lock store the two overlapped and one was lost)."""
    var, ports, _ = topology
    wait_restarted(var, "rasa-1", 0, f"http://127.0.0.1:{ports['rasa-1']}/")  # up (after the test above)
    sender = f"killed-{random.getrandbits(32):08x}"

    def say(replica: str, message: str) -> httpx.Response:
        return httpx.post(
            f"http://127.0.0.1:{ports[replica]}/webhooks/rest/webhook",
            json={"sender": sender, "message": message},
            timeout=120,
        )

    assert say("rasa-2", "hi").json()
    with ThreadPoolExecutor(3) as pool:
        in_flight = pool.submit(say, "rasa-1", "show me office chairs")
        deadline = time.monotonic() + 30
        while redis_command(ports["redis"], "EXISTS", f"closer:lock:{sender}") != "1":
            assert time.monotonic() < deadline, "the turn never took the conversation's lock"
            time.sleep(0.01)
        os.kill(pid(var, "rasa-1"), signal.SIGKILL)
        with pytest.raises(httpx.HTTPError):
            in_flight.result()
        cart = pool.submit(say, "rasa-2", "add 3 OC-1006 to my cart")
        time.sleep(1)
        quote = pool.submit(say, "rasa-2", "send me a quote")
        assert "OC-1006) ×" in "\n".join(m.get("text") or "" for m in cart.result().json())
        assert quote.result().json()
    with (
        psycopg2.connect(
            host="127.0.0.1", port=ports["postgres"], user="closer", password="closer", dbname="closer"
        ) as connection,
        connection.cursor() as cursor,
    ):
        cursor.execute(
            "SELECT data::json->>'text' FROM events WHERE sender_id = %s AND type_name = 'user' ORDER BY id", (sender,)
        )
        stored = [row[0] for row in cursor.fetchall()]
    acknowledged = ["hi", "add 3 OC-1006 to my cart", "send me a quote"]
    assert stored in (acknowledged, [acknowledged[0], "show me office chairs", *acknowledged[1:]]), stored


def redis_command(port: int, *command: str) -> str:
    """One command through redis-cli (Debian's redis-tools, installed with redis-server) to make run-prod's lock DB."""
    return subprocess.run(
        ["redis-cli", "-p", str(port), "-n", "1", *command], capture_output=True, text=True, check=True, timeout=10
    ).stdout.strip()
