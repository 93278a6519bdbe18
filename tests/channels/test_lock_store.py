"""connectors.lock_store.RedisLeaseLockStore on a real redis-server, with the turns of one conversation coming from
two store instances (two Rasa replicas) and a holder in another process killed with SIGKILL (a replica that dies
holding the lock). Rasa's own RedisLockStore is run through the same scenario to show why Closer replaces it."""

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from rasa.core.lock_store import LockError, LockStore, RedisLockStore
from rasa.core.utils import AvailableEndpoints, number_of_sanic_workers
from rasa.utils.endpoints import EndpointConfig

from connectors.lock_store import RedisLeaseLockStore
from tests.servers import free_port, redis_server

ROOT = Path(__file__).resolve().parents[2]
CONVERSATION = "+971501234567"


@pytest.fixture(scope="module")
def redis_port():
    with redis_server() as port:
        yield port


def store(port: int, **settings) -> RedisLeaseLockStore:
    return RedisLeaseLockStore(EndpointConfig(url="127.0.0.1", port=port, **settings))


class Turns:
    """Turns of one conversation that record when each held the lock and how many held it at once."""

    def __init__(self) -> None:
        self.holding = 0
        self.most_at_once = 0
        self.order: list[str] = []

    async def run(self, lock_store: LockStore, name: str, seconds: float, after: float = 0) -> None:
        """Asks for the lock ``after`` seconds from now and holds it ``seconds``."""
        await asyncio.sleep(after)
        async with lock_store.lock(CONVERSATION):
            self.holding += 1
            self.most_at_once = max(self.most_at_once, self.holding)
            self.order.append(name)
            await asyncio.sleep(seconds)
            self.holding -= 1


def hold_and_die(port: int, lease_seconds: float) -> subprocess.Popen:
    """A process that takes the conversation's lock and holds it (renewing its lease) until killed."""
    program = (
        "import asyncio\n"
        "from rasa.utils.endpoints import EndpointConfig\n"
        "from connectors.lock_store import RedisLeaseLockStore\n"
        "async def hold():\n"
        f"    config = EndpointConfig(url='127.0.0.1', port={port}, lease_seconds={lease_seconds})\n"
        "    store = RedisLeaseLockStore(config)\n"
        f"    async with store.lock({CONVERSATION!r}):\n"
        "        print('holding', flush=True)\n"
        "        await asyncio.sleep(3600)\n"
        "asyncio.run(hold())\n"
    )
    process = subprocess.Popen([sys.executable, "-c", program], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == "holding"
    return process


async def test_a_dead_replicas_lock_frees_and_the_turns_after_it_run_one_at_a_time(redis_port) -> None:
    holder = hold_and_die(redis_port, lease_seconds=1)
    early = asyncio.create_task(Turns().run(store(redis_port, lease_seconds=1), "early", 0))
    await asyncio.sleep(2.5)  # longer than the lease: the holder renews it while alive
    assert not early.done()
    early.cancel()

    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
    turns = Turns()
    first, second = store(redis_port, lease_seconds=1), store(redis_port, lease_seconds=1)  # two replicas
    await asyncio.wait_for(
        asyncio.gather(
            turns.run(first, "after the kill", 3),  # three leases long: renewed, never lapses
            turns.run(second, "the next message", 0.1, after=0.2),
        ),
        timeout=30,
    )
    assert turns.order == ["after the kill", "the next message"]
    assert turns.most_at_once == 1
    assert await first.redis.keys("*") == []  # nothing left behind


async def test_rasas_redis_lock_store_lets_the_turns_after_a_dead_holder_overlap(redis_port) -> None:
    """Why Closer has its own: a ticket's lifetime counts from its issue, so the turn that waited for the dead
    holder's ticket to expire loses its own while it runs, and the next turn starts beside it."""
    rasa_store = RedisLockStore(host="127.0.0.1", port=redis_port, key_prefix="rasa")
    rasa_store.issue_ticket(CONVERSATION, lock_lifetime=2)  # the replica that died holding the lock
    turns = Turns()

    async def run(name: str, seconds: float, after: float) -> None:
        await asyncio.sleep(after)
        async with rasa_store.lock(CONVERSATION, lock_lifetime=2, wait_time_in_seconds=0.1):
            turns.holding += 1
            turns.most_at_once = max(turns.most_at_once, turns.holding)
            turns.order.append(name)
            await asyncio.sleep(seconds)
            turns.holding -= 1

    await asyncio.wait_for(asyncio.gather(run("after the kill", 2, 0.2), run("the next message", 0.1, 0.6)), 30)
    assert turns.most_at_once == 2


async def test_turns_from_two_replicas_run_one_at_a_time_in_the_order_they_came(redis_port) -> None:
    replicas = [store(redis_port), store(redis_port)]
    turns = Turns()
    await asyncio.gather(*(turns.run(replicas[n % 2], f"message {n}", 0.02, after=0.05 * n) for n in range(20)))
    assert turns.order == [f"message {n}" for n in range(20)]
    assert turns.most_at_once == 1
    assert await replicas[0].redis.keys("*") == []


async def test_a_turn_given_up_while_waiting_does_not_hold_up_the_next(redis_port) -> None:
    """A waiting request cancelled (its client went) gives its ticket back at once, not when its lease lapses."""
    lock_store = store(redis_port, lease_seconds=60)
    turns = Turns()
    holding = asyncio.create_task(turns.run(lock_store, "holding", 0.5))
    gone = asyncio.create_task(turns.run(lock_store, "gone", 0, after=0.1))
    await asyncio.sleep(0.3)
    gone.cancel()
    await asyncio.wait_for(asyncio.gather(holding, turns.run(lock_store, "next", 0, after=0.1)), timeout=10)
    assert turns.order == ["holding", "next"]


async def test_an_unreachable_redis_is_a_lock_error() -> None:
    with pytest.raises(LockError):
        async with store(free_port(), socket_timeout=1).lock(CONVERSATION):
            pass


def test_the_production_endpoints_use_it_and_allow_several_workers(monkeypatch, redis_port) -> None:
    environment = {"REDIS_HOST": "127.0.0.1", "REDIS_PORT": str(redis_port), "ACTION_SERVER_URL": "http://x"}
    for name in ("CLOSER_ACTION_SERVER_TOKEN", "POSTGRES_HOST", "POSTGRES_PORT", "POSTGRES_DB", "POSTGRES_USER",
                 "POSTGRES_PASSWORD"):  # fmt: skip
        environment.setdefault(name, "x")
    environment["SANIC_WORKERS"] = "2"
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    endpoints = AvailableEndpoints.read_endpoints(str(ROOT / "deploy" / "endpoints.production.yml"))
    lock_store = LockStore.create(endpoints.lock_store)
    assert isinstance(lock_store, RedisLeaseLockStore)
    assert lock_store.lease_seconds == 15
    assert number_of_sanic_workers(endpoints.lock_store) == 2  # Rasa allows several with its in-memory one
