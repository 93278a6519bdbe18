"""Benchmark (run by hand: `make bench-webhooks`): the Telegram and WhatsApp webhooks under load,
through the real Rasa server (both connectors from credentials.channels.yml) and action server,
with local servers speaking the Bot API and the Graph API.

For each channel: 50 concurrent senders post 1,000 deliveries, 20% of them replays of a delivery
already sent (platforms redeliver); the acknowledgement latency (HTTP 200 back at the sender) is
timed, then the run waits until every delivery is processed and checks, per conversation, that
Rasa's tracker holds exactly one user event per distinct delivery (none lost, none doubled) and that
the fake platform received exactly the bot messages the tracker holds (no reply lost or sent twice).
Baseline, same run, same load: Rasa's REST channel, which answers only once the turn is done.
A last phase ("telegram+web") sends the Telegram load again, to other chats, while 20 web chat
customers write through the REST channel, whose turns then run alongside.

Prints a table with ratios against the baseline. Takes about 6 minutes on 2 cores.
"""

import asyncio
import base64
import hashlib
import hmac
import json
import os
import random
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

from bench.turn_latency import free_port, percentile, start, wait_ready
from bot.contracts.business import model_path
from tests.e2e.conftest import RASA, channel_credentials, served_in_a_thread
from tests.fakes.graph_server import FakeGraph
from tests.fakes.telegram_server import FakeTelegram

ROOT = Path(__file__).resolve().parent.parent

SENDERS, DELIVERIES, REPLAY_SHARE = 50, 1000, 0.20
WEB_CHATS, WEB_CHAT_MESSAGES = 20, 10  # web chat traffic (Rasa turns) during the mixed phase
MIXED, MIXED_CHATS = "telegram+web", 820_000_000
TEXTS = ["hi", "what are your delivery charges?", "do you have ergonomic chairs?", "thanks"]
TELEGRAM_SECRET, WHATSAPP_SECRET = "bench-telegram-secret", "bench-whatsapp-app-secret"

MODEL = model_path()  # the business's trained model (CLOSER_BUSINESS)


def channel_environment(telegram: FakeTelegram, graph: FakeGraph) -> dict[str, str]:
    """The variables credentials.channels.yml reads, for the local Bot API and Graph API servers."""
    return {
        "TELEGRAM_BOT_TOKEN": telegram.token,
        "TELEGRAM_SECRET_TOKEN": TELEGRAM_SECRET,
        "TELEGRAM_WEBHOOK_URL": "",
        "WHATSAPP_ACCESS_TOKEN": graph.token,
        "WHATSAPP_APP_SECRET": WHATSAPP_SECRET,
        "WHATSAPP_VERIFY_TOKEN": "bench",
        "WHATSAPP_PHONE_NUMBER_ID": graph.phone_number_id,
        "WHATSAPP_TEMPLATE_NAME": next(iter(graph.templates)),
    }


def plan(seed: int) -> list[tuple[int, int, bool]]:
    """(sender index, message number, is replay) for every delivery, in sending order per sender."""
    rng = random.Random(seed)
    unique = int(DELIVERIES * (1 - REPLAY_SHARE))
    per_sender = [[(s, n, False) for n in range(unique // SENDERS)] for s in range(SENDERS)]
    for _ in range(DELIVERIES - unique):
        sender = rng.randrange(SENDERS)
        position = rng.randrange(1, len(per_sender[sender]) + 1)
        earlier = [n for s, n, replay in per_sender[sender][:position] if not replay]
        per_sender[sender].insert(position, (sender, rng.choice(earlier), True))
    return [item for items in per_sender for item in items]


def telegram_request(
    sender: int, number: int, url: str, chats: int = 810_000_000, text: str | None = None
) -> tuple[str, dict, bytes]:
    """A Telegram update of chat ``chats + sender``, its ``number``-th message (``text``, by default from TEXTS)."""
    chat = chats + sender
    update = {
        "update_id": chat * 1000 + number,
        "message": {
            "message_id": number + 1,
            "date": int(time.time()),
            "text": text or TEXTS[number % len(TEXTS)],
            "from": {"id": chat, "is_bot": False, "first_name": f"Bench {sender}"},
            "chat": {"id": chat, "first_name": f"Bench {sender}", "type": "private"},
        },
    }
    return (
        url,
        {"X-Telegram-Bot-Api-Secret-Token": TELEGRAM_SECRET, "Content-Type": "application/json"},
        json.dumps(update).encode(),
    )


def whatsapp_request(
    sender: int, number: int, url: str, phone_number_id: str, text: str | None = None
) -> tuple[str, dict, bytes]:
    """A signed WhatsApp Cloud API notification of wa_id ``9715<sender>``'s ``number``-th message (``text``, by
    default from TEXTS)."""
    wa_id = f"9715{sender:08d}"
    payload = {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": "102290129340398",
                "changes": [
                    {
                        "field": "messages",
                        "value": {
                            "messaging_product": "whatsapp",
                            "metadata": {"display_phone_number": "15550783881", "phone_number_id": phone_number_id},
                            "contacts": [{"profile": {"name": f"Bench {sender}"}, "wa_id": wa_id}],
                            "messages": [
                                {
                                    "from": wa_id,
                                    "id": f"wamid.bench{sender:03d}{number:04d}",
                                    "timestamp": str(int(time.time())),
                                    "type": "text",
                                    "text": {"body": text or TEXTS[number % len(TEXTS)]},
                                }
                            ],
                        },
                    }
                ],
            }
        ],
    }
    body = json.dumps(payload).encode()
    signature = "sha256=" + hmac.new(WHATSAPP_SECRET.encode(), body, hashlib.sha256).hexdigest()
    return url, {"X-Hub-Signature-256": signature, "Content-Type": "application/json"}, body


def rest_request(sender: int, number: int, url: str, prefix: str = "bench-rest") -> tuple[str, dict, bytes]:
    body = json.dumps({"sender": f"{prefix}-{sender}", "message": TEXTS[number % len(TEXTS)]}).encode()
    return url, {"Content-Type": "application/json"}, body


async def send_all(requests: list[list[tuple[str, dict, bytes]]]) -> tuple[list[float], float]:
    """Each sender posts its requests one after another on a keep-alive connection, the senders
    concurrently; latencies in ms. aiohttp rather than httpx: on 2 cores httpx's client took about a
    core of its own at 160 requests/s, starving the server it measured."""
    latencies: list[float] = []
    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=SENDERS), timeout=aiohttp.ClientTimeout(total=120)
    ) as client:

        async def sender(items):
            for url, headers, body in items:
                began = time.perf_counter()
                async with client.post(url, data=body, headers=headers) as response:
                    text = await response.read()
                latencies.append((time.perf_counter() - began) * 1000)
                assert response.status == 200, (response.status, text[:200])

        began = time.perf_counter()
        await asyncio.gather(*(sender(items) for items in requests))
    return latencies, time.perf_counter() - began


def start_sending(requests: list[list[tuple[str, dict, bytes]]], tmp: Path, name: str) -> tuple[subprocess.Popen, Path]:
    """:func:`send_all` in a process of its own, so that the fake platforms answering the bot (threads
    of this process) do not slow the senders down and inflate the measured latencies; see
    :func:`sent`."""
    job, result = tmp / f"requests-{name}.json", tmp / f"latencies-{name}.json"
    job.write_text(
        json.dumps(
            [[(url, headers, base64.b64encode(body).decode()) for url, headers, body in items] for items in requests]
        )
    )
    return subprocess.Popen([sys.executable, "-m", "bench.webhooks", "--send", str(job), str(result)], cwd=ROOT), result


def sent(sending: tuple[subprocess.Popen, Path]) -> tuple[list[float], float]:
    """Wait for a :func:`start_sending` process: (latencies in ms, seconds it took)."""
    process, result = sending
    if process.wait() != 0:
        raise SystemExit(f"the senders failed (exit {process.returncode})")
    latencies, elapsed = json.loads(result.read_text())
    return latencies, elapsed


def send_in_own_process(
    requests: list[list[tuple[str, dict, bytes]]], tmp: Path, name: str
) -> tuple[list[float], float]:
    return sent(start_sending(requests, tmp, name))


def by_sender(deliveries, make) -> list[list[tuple[str, dict, bytes]]]:
    requests = [[] for _ in range(SENDERS)]
    for sender, number, _ in deliveries:
        requests[sender].append(make(sender, number))
    return requests


def wait_processed(database: Path, channel: str, expected: int, seconds: float = 900) -> float:
    began = time.monotonic()
    with sqlite3.connect(database) as connection:
        while time.monotonic() - began < seconds:
            (done,) = connection.execute(
                "select count(*) from channel_deliveries where channel = ? and processed_at is not null", (channel,)
            ).fetchone()
            if done >= expected:
                return time.monotonic() - began
            time.sleep(0.5)
    raise SystemExit(f"{channel}: only {done} of {expected} deliveries processed after {seconds} s")


def tracker_counts(tracker: Path, sender_id: str) -> tuple[int, int]:
    """(user events, bot messages meant for the customer) of a conversation in Rasa's tracker store;
    the web widget's feedback metadata (a custom payload with ``answer_id`` and no text) is not one."""
    with sqlite3.connect(tracker) as connection:
        rows = connection.execute(
            "select type_name, data from events where sender_id = ? and type_name in ('user', 'bot')", (sender_id,)
        ).fetchall()
    users = sum(1 for kind, _ in rows if kind == "user")
    bots = 0
    for kind, data in rows:
        event = json.loads(data) if kind == "bot" else None
        if event and (event.get("text") or "answer_id" not in ((event.get("data") or {}).get("custom") or {})):
            bots += 1
    return users, bots


def check(tmp: Path, deliveries, sender_id, sent_to) -> tuple[int, int, int, int]:
    """(lost turns, doubled turns, lost replies, doubled replies) over all conversations."""
    lost = doubled = lost_replies = doubled_replies = 0
    for sender in range(SENDERS):
        distinct = len({number for s, number, _ in deliveries if s == sender})
        users, bots = tracker_counts(tmp / "tracker.db", sender_id(sender))
        lost, doubled = lost + max(0, distinct - users), doubled + max(0, users - distinct)
        received = sent_to(sender)
        lost_replies, doubled_replies = (
            lost_replies + max(0, bots - received),
            doubled_replies + max(0, received - bots),
        )
    return lost, doubled, lost_replies, doubled_replies


def main() -> int:
    assert MODEL.exists(), "no trained model: run make train"
    tmp = Path(tempfile.mkdtemp(prefix="closer-bench-webhooks-"))
    deliveries = plan(seed=7)
    with served_in_a_thread(FakeTelegram()) as telegram, served_in_a_thread(FakeGraph()) as graph:
        rasa_port, actions_port = free_port(), free_port()
        env = {
            **os.environ,
            **channel_environment(telegram, graph),
            "CLOSER_DATABASE_URL": f"sqlite+aiosqlite:///{tmp / 'closer.db'}",
            "CLOSER_ACTION_SERVER_TOKEN": "bench-action-server-token",
        }
        python = str(ROOT / ".venv" / "bin" / "python")
        subprocess.run([python, "-m", "bot", "load-knowledge"], cwd=ROOT, env=env, check=True, capture_output=True)
        subprocess.run([python, "-m", "bot", "sqlite-wal", str(tmp / "tracker.db")], cwd=ROOT, env=env, check=True)
        channel_credentials(tmp / "credentials.yml", telegram, graph)
        (tmp / "endpoints.yml").write_text(
            f"action_endpoint:\n  url: http://127.0.0.1:{actions_port}/webhook\n"
            "  token: ${CLOSER_ACTION_SERVER_TOKEN}\n"
            f"tracker_store:\n  type: SQL\n  dialect: sqlite\n  db: {tmp / 'tracker.db'}\n"
        )
        processes = [
            start(
                [python, "-m", "bot.action_server", "--actions", "actions", "--port", str(actions_port)],
                ROOT,
                env,
                tmp / "actions.log",
            ),
            start(
                [
                    str(RASA),
                    "run",
                    "--port",
                    str(rasa_port),
                    "--model",
                    str(MODEL),
                    "--endpoints",
                    str(tmp / "endpoints.yml"),
                    "--credentials",
                    str(tmp / "credentials.yml"),
                ],
                ROOT,
                env,
                tmp / "rasa.log",
            ),
        ]
        try:
            wait_ready(f"http://127.0.0.1:{actions_port}/health")
            wait_ready(f"http://127.0.0.1:{rasa_port}/")
            base = f"http://127.0.0.1:{rasa_port}/webhooks"
            for graph_sender in range(SENDERS):  # the customers wrote: their 24-hour windows are open
                graph.customer_wrote(f"9715{graph_sender:08d}")
            results = {}
            unique = int(DELIVERIES * (1 - REPLAY_SHARE))
            results["rest (baseline)"] = send_in_own_process(
                by_sender(deliveries, lambda s, n: rest_request(s, n, f"{base}/rest/webhook")), tmp, "rest"
            )
            results["telegram"] = send_in_own_process(
                by_sender(deliveries, lambda s, n: telegram_request(s, n, f"{base}/telegram/webhook")), tmp, "telegram"
            )
            drained = {"telegram": wait_processed(tmp / "closer.db", "telegram", unique)}
            results["whatsapp"] = send_in_own_process(
                by_sender(
                    deliveries, lambda s, n: whatsapp_request(s, n, f"{base}/whatsapp/webhook", graph.phone_number_id)
                ),
                tmp,
                "whatsapp",
            )
            drained["whatsapp"] = wait_processed(tmp / "closer.db", "whatsapp", unique)
            web_chat = start_sending(
                [
                    [rest_request(s, n, f"{base}/rest/webhook", "bench-web") for n in range(WEB_CHAT_MESSAGES)]
                    for s in range(WEB_CHATS)
                ],
                tmp,
                "web-chat",
            )
            time.sleep(2)  # web chat turns under way
            results[MIXED] = send_in_own_process(
                by_sender(deliveries, lambda s, n: telegram_request(s, n, f"{base}/telegram/webhook", MIXED_CHATS)),
                tmp,
                "mixed",
            )
            sent(web_chat)
            drained[MIXED] = wait_processed(tmp / "closer.db", "telegram", 2 * unique)
            time.sleep(2)  # the last turns' replies
            checks = {
                "telegram": check(
                    tmp,
                    deliveries,
                    lambda s: f"telegram-{810_000_000 + s}",
                    lambda s: sum(1 for m in telegram.messages if m["chat"]["id"] == 810_000_000 + s),
                ),
                "whatsapp": check(
                    tmp, deliveries, lambda s: f"whatsapp-9715{s:08d}", lambda s: len(graph.sent(to=f"9715{s:08d}"))
                ),
                MIXED: check(
                    tmp,
                    deliveries,
                    lambda s: f"telegram-{MIXED_CHATS + s}",
                    lambda s: sum(1 for m in telegram.messages if m["chat"]["id"] == MIXED_CHATS + s),
                ),
            }
        finally:
            for process in processes:
                process.terminate()
                process.wait(30)

    replays = sum(1 for *_, replay in deliveries if replay)
    baseline = percentile(results["rest (baseline)"][0], 99)
    print(
        f"\n{DELIVERIES} deliveries per channel ({replays} replays), {SENDERS} concurrent senders; "
        "acknowledgement latency in ms; ratios against Rasa's REST channel (which answers after the turn)"
    )
    print(f"{'channel':<16}{'p50':>9}{'p99':>9}{'max':>9}{'p99 ratio':>11}{'sent in s':>11}{'all processed s':>17}")
    for name, (latencies, elapsed) in results.items():
        p99 = percentile(latencies, 99)
        done = f"{drained[name]:.1f}" if name in drained else "(in the ack)"
        print(
            f"{name:<16}{percentile(latencies, 50):>9.1f}{p99:>9.1f}{max(latencies):>9.1f}"
            f"{p99 / baseline:>10.2f}×{elapsed:>11.1f}{done:>17}"
        )
    print(f"\n{'channel':<16}{'turns lost':>12}{'turns doubled':>15}{'replies lost':>14}{'replies doubled':>17}")
    for name, (lost, doubled, lost_replies, doubled_replies) in checks.items():
        print(f"{name:<16}{lost:>12}{doubled:>15}{lost_replies:>14}{doubled_replies:>17}")
    print(f"\nlogs in {tmp}")
    return 0 if all(sum(values) == 0 for values in checks.values()) else 1


def send_main(job: str, result: str) -> int:
    requests = [
        [(url, headers, base64.b64decode(body)) for url, headers, body in items]
        for items in json.loads(Path(job).read_text())
    ]
    Path(result).write_text(json.dumps(asyncio.run(send_all(requests))))
    return 0


if __name__ == "__main__":
    sys.exit(send_main(*sys.argv[2:4]) if sys.argv[1:2] == ["--send"] else main())
