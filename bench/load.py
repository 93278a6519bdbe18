"""Benchmark (run by hand: `make bench-load`): Closer under a real load tool, Locust (bench/locustfile.py), on
this machine: 200 web chat customers and 50 Telegram/WhatsApp customers (local servers speak the Bot API and the
Graph API) for LOAD_DURATION_S seconds (default 300), each customer a conversation after another, greeting → search →
cart → quote, a few seconds between messages. Two set-ups, one after the other, same load:

- **1 process, SQLite**: today's default (`make run`): one Rasa server (SQLite tracker store, in-memory lock store),
  one action server, the console;
- **2 replicas, PostgreSQL + Redis**: `make run-prod`'s topology (scripts/run_prod.py), in which one Rasa server
  and one action server are killed (SIGKILL) at 40 % of the run and started again by its supervisor.

For each: web chat turn latency p50/p95/p99 (the console answers with the turn's replies), turns/s, webhook
acknowledgement latency, failed requests, every process's RSS and CPU seconds at the end, and, from Rasa's tracker
store, every acknowledged message lost or stored twice, and every conversation whose acknowledged messages are stored
in another order than sent (all must be 0; a message a killed replica never acknowledged may be stored or not). CPU
seconds per turn give what the same load needs on another host: turns/s at N cores ≈ N / (CPU seconds per turn),
while the tools' own CPU (Locust's, the fakes') is left out. Prints the table with the topology's ratios to the
baseline. Takes about LOAD_DURATION_S × 2 + 10 minutes.
"""

import csv
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import psutil
import sqlalchemy as sa

from bench.turn_latency import free_port, rss_mb, start, wait_ready
from bench.webhooks import channel_environment
from bot.contracts.business import model_path
from tests.deploy.test_topology import free_offset
from tests.deploy.test_topology_files import run_prod
from tests.e2e.conftest import RASA, channel_credentials, served_in_a_thread
from tests.fakes.graph_server import FakeGraph
from tests.fakes.telegram_server import FakeTelegram

ROOT = Path(__file__).resolve().parent.parent
PYTHON = str(ROOT / ".venv" / "bin" / "python")
DURATION_S = int(os.environ.get("LOAD_DURATION_S", "300"))
USERS, SPAWN_RATE = 250, 10  # Locust's weights make 200 web chat and 50 messenger customers
KILL_AT = 0.4  # of the run: one Rasa server and one action server of the topology are killed
DRAIN_TIMEOUT_S = 600.0  # for the webhook deliveries acknowledged at the end (a killed replica's: ≥ STALE_CLAIM_S)

MODEL = model_path()  # the business's trained model (CLOSER_BUSINESS)


def environment(tmp: Path, telegram: FakeTelegram, graph: FakeGraph) -> dict[str, str]:
    """This process's environment plus the channels' credentials (written to ``tmp``) for the two fakes."""
    credentials = tmp / "credentials.yml"
    channel_credentials(credentials, telegram, graph)
    return {
        **os.environ,
        **channel_environment(telegram, graph),
        "CLOSER_CREDENTIALS": str(credentials),
        "CLOSER_SCHEDULER_ENABLED": "false",
        # every simulated customer writes from 127.0.0.1
        "CLOSER_RATE_LIMIT_IP_MESSAGES": "1000000",
    }


def run_locust(console_url: str, webhooks: str, env: dict[str, str], out: Path, on_start=None) -> Path:
    """Locust against the running set-up; the CSV prefix of its statistics. ``on_start(seconds)`` runs in a thread."""
    record = out / "record.json"
    command = [
        str(ROOT / ".venv" / "bin" / "locust"),
        "-f",
        str(ROOT / "bench" / "locustfile.py"),
        "--headless",
        "--users",
        str(USERS),
        "--spawn-rate",
        str(SPAWN_RATE),
        "--run-time",
        f"{DURATION_S}s",
        "--host",
        console_url,
        "--csv",
        str(out / "locust"),
        "--only-summary",
        "--stop-timeout",
        "30",
    ]
    locust_env = {
        **env,
        "LOAD_WEBHOOKS": webhooks,
        "LOAD_RECORD": str(record),
        "LOAD_PHONE_NUMBER_ID": env["WHATSAPP_PHONE_NUMBER_ID"],
        "PYTHONPATH": str(ROOT),
    }
    if on_start:
        threading.Thread(target=on_start, args=(DURATION_S,), daemon=True).start()
    with (out / "locust.log").open("w") as log:
        subprocess.run(command, cwd=ROOT, env=locust_env, stdout=log, stderr=subprocess.STDOUT, check=False)
    return out / "locust"


def stats(prefix: Path) -> dict[str, dict[str, float]]:
    with open(f"{prefix}_stats.csv") as file:
        return {
            row["Name"]: {
                "count": float(row["Request Count"]),
                "failures": float(row["Failure Count"]),
                "p50": float(row["50%"]),
                "p95": float(row["95%"]),
                "p99": float(row["99%"]),
                "rps": float(row["Requests/s"]),
            }
            for row in csv.DictReader(file)
        }


def wait_drained(database_url: str) -> float:
    """Seconds until no webhook delivery is left unprocessed (raises RuntimeError after DRAIN_TIMEOUT_S)."""
    engine = sa.create_engine(database_url)
    started = time.monotonic()
    try:
        while time.monotonic() - started < DRAIN_TIMEOUT_S:
            with engine.connect() as connection:
                left = connection.scalar(sa.text("SELECT count(*) FROM channel_deliveries WHERE processed_at IS NULL"))
            if not left:
                return time.monotonic() - started
            time.sleep(2)
    finally:
        engine.dispose()
    raise RuntimeError(f"{left} webhook deliveries still unprocessed after {DRAIN_TIMEOUT_S:.0f} s")


def lost_and_doubled(record_file: Path, tracker_url: str) -> tuple[int, int, int, int, int]:
    """(acknowledged messages, lost, stored twice or more, unacknowledged ones stored anyway, conversations whose
    acknowledged messages are stored in another order than sent) over every conversation of the run, from Locust's
    record and the user events of Rasa's tracker store."""
    record = json.loads(record_file.read_text())
    engine = sa.create_engine(tracker_url)
    with engine.connect() as connection:
        rows = connection.execute(sa.text("SELECT sender_id, data FROM events WHERE type_name = 'user' ORDER BY id"))
        stored: dict[str, list[str]] = {}
        for sender_id, data in rows:
            if sender_id in record:
                stored.setdefault(sender_id, []).append(json.loads(data).get("text"))
    engine.dispose()
    acknowledged = lost = doubled = in_doubt = out_of_order = 0
    for conversation, messages in record.items():
        sent = Counter(text for text, ok in messages if ok)
        unacknowledged = Counter(text for text, ok in messages if not ok)
        have = Counter(stored.get(conversation, []))
        sent_order = [text for text, ok in messages if ok]
        out_of_order += [text for text in stored.get(conversation, []) if text in sent] != sent_order
        acknowledged += sum(sent.values())
        for text, count in sent.items():
            lost += max(0, count - have[text])
            doubled += max(0, have[text] - count - unacknowledged[text])
        in_doubt += sum(min(unacknowledged[text], max(0, have[text] - sent[text])) for text in unacknowledged)
    return acknowledged, lost, doubled, in_doubt, out_of_order


def usage(pids: dict[str, int]) -> dict[str, tuple[int, float, float]]:
    """Per process: (PID, RSS in MiB, CPU seconds so far, its children's included)."""
    result = {}
    for name, pid in pids.items():
        try:
            times = psutil.Process(pid).cpu_times()
            result[name] = (pid, rss_mb(pid), times.user + times.system + times.children_user + times.children_system)
        except psutil.NoSuchProcess:
            result[name] = (pid, 0.0, 0.0)
    return result


def cpu_seconds(before: dict, after: dict) -> float:
    """CPU seconds of every process between the two :func:`usage` readings (a process started again in between:
    its new one's; the killed one's are not counted)."""
    total = 0.0
    for name, (pid, _rss, cpu) in after.items():
        same = before.get(name, (None, 0.0, 0.0))[0] == pid
        total += cpu - (before[name][2] if same else 0.0)
    return total


def single(tmp: Path, env: dict[str, str]) -> dict:
    """The baseline: one Rasa server on SQLite, one action server, the console, on free ports."""
    tmp.mkdir()
    rasa_port, actions_port, console_port = free_port(), free_port(), free_port()
    env = {
        **env,
        "CLOSER_DATABASE_URL": f"sqlite+aiosqlite:///{tmp / 'closer.db'}",
        "CLOSER_TRACKER_DATABASE_URL": f"sqlite+aiosqlite:///{tmp / 'tracker.db'}",
        "CLOSER_RASA_URL": f"http://127.0.0.1:{rasa_port}",
        "CLOSER_CONSOLE_PORT": str(console_port),
        "CLOSER_ACTION_SERVER_TOKEN": "bench-action-server-token",
        "CLOSER_RASA_JWT_SECRET": "bench-rasa-jwt",
    }
    subprocess.run([PYTHON, "-m", "bot", "load-knowledge"], cwd=ROOT, env=env, check=True, capture_output=True)
    subprocess.run([PYTHON, "-m", "bot", "sqlite-wal", str(tmp / "tracker.db")], cwd=ROOT, env=env, check=True)
    (tmp / "endpoints.yml").write_text(
        f"action_endpoint:\n  url: http://127.0.0.1:{actions_port}/webhook\n  token: ${{CLOSER_ACTION_SERVER_TOKEN}}\n"
        f"tracker_store:\n  type: SQL\n  dialect: sqlite\n  db: {tmp / 'tracker.db'}\n"
    )
    processes = {
        "actions": start(
            [PYTHON, "-m", "bot.action_server", "--actions", "actions", "--port", str(actions_port)],
            ROOT,
            env,
            tmp / "actions.log",
        ),
        "rasa": start(
            [
                str(RASA),
                "run",
                "--enable-api",
                "--jwt-secret",
                env["CLOSER_RASA_JWT_SECRET"],
                "--port",
                str(rasa_port),
                "--model",
                str(MODEL),
                "--endpoints",
                str(tmp / "endpoints.yml"),
                "--credentials",
                env["CLOSER_CREDENTIALS"],
            ],
            ROOT,
            env,
            tmp / "rasa.log",
        ),
        "console": start([PYTHON, "-m", "bot", "console"], ROOT, env, tmp / "console.log"),
    }
    try:
        wait_ready(f"http://127.0.0.1:{actions_port}/health")
        wait_ready(f"http://127.0.0.1:{rasa_port}/")
        wait_ready(f"http://127.0.0.1:{console_port}/ready")
        pids = {name: process.pid for name, process in processes.items()}
        before = usage(pids)
        prefix = run_locust(f"http://127.0.0.1:{console_port}", f"http://127.0.0.1:{rasa_port}/webhooks", env, tmp)
        after = usage(pids)
        drained = wait_drained(f"sqlite:///{tmp / 'closer.db'}")
        checked = lost_and_doubled(tmp / "record.json", f"sqlite:///{tmp / 'tracker.db'}")
    finally:
        for process in processes.values():
            process.send_signal(signal.SIGTERM)
        for process in processes.values():
            process.wait(60)
    return result(prefix, before, after, drained, checked)


def topology(tmp: Path, env: dict[str, str]) -> dict:
    """`make run-prod`'s topology on shifted ports, one Rasa server and one action server killed mid-run."""
    tmp.mkdir(mode=0o755)
    module = run_prod()
    offset = free_offset(module.PORTS)
    ports = {name: port + offset for name, port in module.PORTS.items()}
    out = tmp / "run_prod.out"
    supervisor = subprocess.Popen(
        [PYTHON, "scripts/run_prod.py", "--var", str(tmp / "var"), "--port-offset", str(offset)],
        cwd=ROOT,
        env=env,
        stdout=out.open("w"),
        stderr=subprocess.STDOUT,
    )
    run = tmp / "var" / "run"
    killed: list[str] = []

    def kill(duration: float) -> None:
        time.sleep(duration * KILL_AT)
        for service in ("rasa-1", "actions-1"):
            os.kill(int((run / f"{service}.pid").read_text()), signal.SIGKILL)
            killed.append(f"{service} at {duration * KILL_AT:.0f} s")

    try:
        deadline = time.monotonic() + 900
        while "Closer is running" not in out.read_text():
            if supervisor.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"run_prod.py did not start:\n{out.read_text()}")
            time.sleep(1)
        (tmp / "var").chmod(0o755)
        pids = {path.stem: int(path.read_text()) for path in run.glob("*.pid")}
        before = usage(pids)
        prefix = run_locust(
            f"http://127.0.0.1:{ports['console']}", f"http://127.0.0.1:{ports['lb-rasa']}/webhooks", env, tmp, kill
        )
        pids = {path.stem: int(path.read_text()) for path in run.glob("*.pid")}  # the restarted ones' new PIDs
        after = usage(pids)
        database = f"postgresql+psycopg2://closer:closer@127.0.0.1:{ports['postgres']}/closer"
        drained = wait_drained(database)
        checked = lost_and_doubled(tmp / "record.json", database)
    finally:
        supervisor.send_signal(signal.SIGINT)
        supervisor.wait(180)
    outcome = result(prefix, before, after, drained, checked)
    outcome["killed"] = ", ".join(killed)
    return outcome


def result(prefix: Path, before: dict, after: dict, drained: float, checked: tuple[int, int, int, int]) -> dict:
    numbers = stats(prefix)
    web = numbers.get("web chat turn", {})
    hooks = [numbers[name] for name in ("telegram webhook", "whatsapp webhook") if name in numbers]
    cpu = cpu_seconds(before, after)
    turns = web.get("count", 0) + sum(hook["count"] for hook in hooks)
    return {
        "web": web,
        "webhook p50": max((hook["p50"] for hook in hooks), default=0),
        "webhook p95": max((hook["p95"] for hook in hooks), default=0),
        "webhook acks": sum(hook["count"] - hook["failures"] for hook in hooks),
        "failures": sum(row["failures"] for name, row in numbers.items() if name != "Aggregated"),
        "turns/s": turns / DURATION_S,
        "cpu s/turn": cpu / turns if turns else 0,
        "rss": {name: rss for name, (_pid, rss, _cpu) in after.items()},
        "drained s": drained,
        "acknowledged, lost, doubled, in doubt, out of order": checked,
    }


def main() -> int:
    assert MODEL.exists(), "no trained model: run make train"
    tmp = Path(tempfile.mkdtemp(prefix="closer-bench-load-"))
    tmp.chmod(0o755)  # PostgreSQL's own user reads the topology's data folder
    with served_in_a_thread(FakeTelegram()) as telegram, served_in_a_thread(FakeGraph()) as graph:
        for n in range(50_000):  # the WhatsApp customers wrote: their 24-hour windows are open
            graph.customer_wrote(f"9715{n:08d}")
        env = environment(tmp, telegram, graph)
        print(f"load: {USERS} users for {DURATION_S} s per set-up; logs in {tmp}", flush=True)
        results = {"1 process, SQLite": single(tmp / "single", env)}
        results["2 replicas, PostgreSQL + Redis"] = topology(tmp / "topology", env)
    report(results)
    return 0


def report(results: dict[str, dict]) -> None:
    base, top = results["1 process, SQLite"], results["2 replicas, PostgreSQL + Redis"]
    rows = [
        ("web chat turn p50 (ms)", lambda r: r["web"].get("p50", 0)),
        ("web chat turn p95 (ms)", lambda r: r["web"].get("p95", 0)),
        ("web chat turn p99 (ms)", lambda r: r["web"].get("p99", 0)),
        ("web chat turns/s", lambda r: r["web"].get("rps", 0)),
        ("all turns/s (web chat + webhooks)", lambda r: r["turns/s"]),
        ("webhook ack p50 / p95 (ms)", lambda r: f"{r['webhook p50']:.0f} / {r['webhook p95']:.0f}"),
        ("failed requests", lambda r: r["failures"]),
        ("CPU s per turn (all processes)", lambda r: r["cpu s/turn"]),
        ("turns/s at 2 / 6 cores by CPU", lambda r: f"{2 / r['cpu s/turn']:.1f} / {6 / r['cpu s/turn']:.1f}"),
        ("webhook backlog drained after (s)", lambda r: r["drained s"]),
    ]
    print(f"\n| measure | {' | '.join(results)} | ratio |\n|---|---|---|---|")
    for label, value in rows:
        a, b = value(base), value(top)
        ratio = f"{b / a:.2f}×" if isinstance(a, float | int) and a else ""
        shown = [
            f"{v:.3f}" if isinstance(v, float) and v < 1 else f"{v:.1f}" if isinstance(v, float) else v for v in (a, b)
        ]
        print(f"| {label} | {shown[0]} | {shown[1]} | {ratio} |")
    for name, r in results.items():
        acknowledged, lost, doubled, in_doubt, out_of_order = r["acknowledged, lost, doubled, in doubt, out of order"]
        print(
            f"\n{name}: {acknowledged} acknowledged messages, {lost} lost, {doubled} stored twice, {in_doubt} "
            f"unacknowledged but stored, {out_of_order} conversations out of order"
            f"{'; killed ' + r['killed'] if r.get('killed') else ''}"
        )
        print("  RSS MiB: " + ", ".join(f"{p} {rss:.0f}" for p, rss in sorted(r["rss"].items())))


if __name__ == "__main__":
    sys.exit(main())
