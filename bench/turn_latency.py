"""Benchmark (run by hand: `make bench`): REST-channel turn latency and throughput of Closer's
product-search turn against Rasa's own `rasa init` bot, both trained and served here in the same
run; full `rasa train` time; resident memory of the Rasa servers and of the action server.

Prints a table with Closer/init ratios. Takes about 10–12 minutes on 2 cores.
"""

import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
RASA = ROOT / ".venv-rasa" / "bin" / "rasa"
SEQUENTIAL_TURNS = 60  # one conversation's turns, each round
ROUNDS = 5  # sequential conversations per bot, alternating with the other bot's
CONCURRENT, TURNS_EACH = 20, 15
CONCURRENT_ROUNDS = 3
CLOSER_TURN = "show me ergonomic chairs under 1500"
INIT_TURN = "I am feeling great"


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def timed(command: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    subprocess.run(command, cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def rss_mb(pid: int) -> float:
    """Resident set size of a process and its children, in MiB (from /proc)."""
    total, pids = 0, [pid]
    while pids:
        current = pids.pop()
        try:
            for line in Path(f"/proc/{current}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
            pids.extend(int(c) for c in children)
        except FileNotFoundError:
            continue
    return total / 1024


def start(command: list[str], cwd: Path, env: dict, log: Path) -> subprocess.Popen:
    return subprocess.Popen(command, cwd=cwd, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT)


def wait_ready(url: str, seconds: float = 240) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"{url} not ready")


async def load(url: str, text: str, conversations: int, turns: int) -> tuple[list[float], float]:
    """Latencies (s) of ``conversations`` concurrent senders × ``turns`` each, and wall time (s)."""
    latencies: list[float] = []
    async with httpx.AsyncClient(timeout=120) as client:

        async def conversation() -> None:
            sender = uuid.uuid4().hex
            for _ in range(turns):
                start = time.perf_counter()
                response = await client.post(f"{url}/webhooks/rest/webhook", json={"sender": sender, "message": text})
                response.raise_for_status()
                assert response.json(), "empty reply"
                latencies.append(time.perf_counter() - start)

        start = time.perf_counter()
        await asyncio.gather(*(conversation() for _ in range(conversations)))
        return latencies, time.perf_counter() - start


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def measure(bots: dict[str, tuple[str, str]]) -> dict[str, dict[str, float]]:
    """Per bot (name → (URL, message)): p50/p95 of ``ROUNDS`` sequential conversations of ``SEQUENTIAL_TURNS`` turns,
    and of ``CONCURRENT_ROUNDS`` rounds of ``CONCURRENT``×``TURNS_EACH`` concurrent turns, with turns/s. The bots take
    turns round by round (the order flipped every round), so a slower or faster spell of the machine (on a shared
    2-core VM the same bot's p50 moved by 50 % between runs) falls on both and not on one side of the ratio."""
    for url, text in bots.values():
        asyncio.run(load(url, text, 2, 5))  # warm-up
    sequential: dict[str, list[float]] = {name: [] for name in bots}
    concurrent: dict[str, list[float]] = {name: [] for name in bots}
    walls: dict[str, float] = dict.fromkeys(bots, 0.0)
    for round_ in range(max(ROUNDS, CONCURRENT_ROUNDS)):
        order = list(bots) if round_ % 2 == 0 else list(reversed(bots))
        for name in order:
            url, text = bots[name]
            if round_ < ROUNDS:
                sequential[name] += asyncio.run(load(url, text, 1, SEQUENTIAL_TURNS))[0]
            if round_ < CONCURRENT_ROUNDS:
                latencies, wall = asyncio.run(load(url, text, CONCURRENT, TURNS_EACH))
                concurrent[name] += latencies
                walls[name] += wall
    return {
        name: {
            "p50 ms (1 conv)": percentile(sequential[name], 50) * 1000,
            "p95 ms (1 conv)": percentile(sequential[name], 95) * 1000,
            "p50 ms (20 conv)": percentile(concurrent[name], 50) * 1000,
            "p95 ms (20 conv)": percentile(concurrent[name], 95) * 1000,
            "turns/s (20 conv)": len(concurrent[name]) / walls[name],
        }
        for name in bots
    }


def main() -> int:
    work = Path(tempfile.mkdtemp(prefix="closer-bench-"))
    env = {
        **os.environ,
        "CLOSER_DATABASE_URL": f"sqlite+aiosqlite:///{work / 'closer.db'}",
        "CLOSER_ACTION_SERVER_TOKEN": "bench-action-server-token",
        "CLOSER_RASA_JWT_SECRET": "bench-rasa-jwt-secret",
        # one sender sends every turn: the channels' per-sender limit (20 messages per 60 s) would answer 429
        "CLOSER_RATE_LIMIT_MESSAGES": "1000000",
    }
    processes: list[subprocess.Popen] = []
    try:
        print("training Rasa's init bot and Closer (full, --force)…", flush=True)
        init_dir = work / "initbot"
        init_dir.mkdir()
        subprocess.run(
            [str(RASA), "init", "--no-prompt", "--init-dir", str(init_dir)],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        init_train = timed([str(RASA), "train", "--force", "--fixed-model-name", "init"], init_dir)
        closer_train = timed(
            [str(RASA), "train", "--force", "--fixed-model-name", "bench", "--out", str(work / "models")], ROOT
        )
        subprocess.run(
            [sys.executable, "-m", "bot", "load-knowledge"], cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL
        )
        subprocess.run([sys.executable, "-m", "bot", "sqlite-wal", str(work / "tracker.db")], cwd=ROOT, check=True)

        init_port, rasa_port, actions_port = free_port(), free_port(), free_port()
        endpoints = work / "endpoints.yml"
        endpoints.write_text(
            f"action_endpoint:\n  url: http://127.0.0.1:{actions_port}/webhook\n"
            "  token: ${CLOSER_ACTION_SERVER_TOKEN}\n"
            f"tracker_store:\n  type: SQL\n  dialect: sqlite\n  db: {work / 'tracker.db'}\n"
        )
        init_bot = start(
            [str(RASA), "run", "--port", str(init_port), "--enable-api", "--model", "models/init.tar.gz"],
            init_dir,
            env,
            work / "init.log",
        )
        actions = start(
            [sys.executable, "-m", "bot.action_server", "--actions", "actions", "--port", str(actions_port)],
            ROOT,
            env,
            work / "actions.log",
        )
        closer = start(
            [
                str(RASA),
                "run",
                "--port",
                str(rasa_port),
                "--enable-api",
                "--jwt-secret",
                env["CLOSER_RASA_JWT_SECRET"],
                "--model",
                str(work / "models" / "bench.tar.gz"),
                "--endpoints",
                str(endpoints),
                "--credentials",
                "credentials.yml",
            ],
            ROOT,
            env,
            work / "rasa.log",
        )
        processes += [init_bot, actions, closer]
        # Closer's /status needs a token; its / answers once the model is loaded, as /status does
        for url in (
            f"http://127.0.0.1:{init_port}/status",
            f"http://127.0.0.1:{rasa_port}/",
            f"http://127.0.0.1:{actions_port}/health",
        ):
            wait_ready(url)

        print("measuring…", flush=True)
        measured = measure(
            {
                "init": (f"http://127.0.0.1:{init_port}", INIT_TURN),
                "closer": (f"http://127.0.0.1:{rasa_port}", CLOSER_TURN),
            }
        )
        baseline, ours = measured["init"], measured["closer"]
        baseline |= {
            "rasa train s": init_train,
            "Rasa server RSS MiB": rss_mb(init_bot.pid),
            "action server RSS MiB": float("nan"),
        }
        ours |= {
            "rasa train s": closer_train,
            "Rasa server RSS MiB": rss_mb(closer.pid),
            "action server RSS MiB": rss_mb(actions.pid),
        }
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=30)
        shutil.rmtree(work, ignore_errors=True)

    print(
        f"\nturn: Closer {CLOSER_TURN!r} vs init bot {INIT_TURN!r}; {ROUNDS} conversations × {SEQUENTIAL_TURNS} "
        f"sequential turns, {CONCURRENT_ROUNDS} rounds × {CONCURRENT}×{TURNS_EACH} concurrent, the bots alternating "
        f"round by round; {os.cpu_count()} cores\n"
    )
    print(f"| {'metric':<22} | {'rasa init bot':>13} | {'Closer':>9} | {'Closer / init':>13} |")
    print(f"|{'-' * 24}|{'-' * 15}|{'-' * 11}|{'-' * 15}|")
    for metric in ours:
        a, b = baseline[metric], ours[metric]
        ratio = f"{b / a:.2f}" if a == a and a else "—"
        print(f"| {metric:<22} | {a:>13.1f} | {b:>9.1f} | {ratio:>13} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
