"""Rasa's lock store for Rasa servers that share Redis, with leases that live as long as their holder.

Rasa serializes the turns of one conversation with a ticket lock (``agent.handle_message``, the HTTP API's
tracker changes, reminders). Its ``RedisLockStore`` gives every ticket a fixed lifetime (``TICKET_LOCK_LIFETIME``,
60 s) counted from when it was *issued*, and reads, changes and writes the lock in separate Redis calls. When a
replica dies holding a conversation's lock (SIGKILL, OOM), the next message of that conversation waits on the other
replica until the dead ticket expires; by then the waiting ticket has spent its own lifetime waiting and expires
while its turn runs, so the message after it runs at the same time. Two turns of one conversation at once lose
events: Rasa's SQL tracker store saves ``tracker.events[stored count:]``, so one turn's user message is never
stored although its reply was sent (``make bench-load`` lost two acknowledged messages that way).

:class:`RedisLeaseLockStore` keeps Rasa's protocol (tickets served in the order issued) with two changes:

- a ticket is a **lease** of ``lease_seconds`` (default 15) that its holder renews while it waits (every poll) and
  while its turn runs (every third of the lease), so a live turn never loses the lock however long its LLM call
  takes, and a dead replica's lock frees within one lease;
- every change is one Lua script over one Redis hash per conversation (Redis's clock), so two replicas cannot
  interleave.

A turn that holds the lock longer than ``max_turn_seconds`` (default 300) stops renewing it and is logged as an
error, so a hung turn cannot block its conversation for good. Configured in the endpoints file::

    lock_store:
      type: connectors.lock_store.RedisLeaseLockStore
      url: localhost       # Redis host
      port: 6379
      db: 1
      password: null
      use_ssl: false
      lease_seconds: 15
"""

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from rasa.core.lock_store import LockError, LockStore
from rasa.utils.endpoints import EndpointConfig
from redis.asyncio import Redis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

LAPSED = -1

# KEYS[1]: the conversation's lock, a hash of ticket number → lease deadline (ms, Redis's clock) and "next" (the last
# ticket issued). ARGV[1]: the lease (ms); ARGV[2]: a ticket to renew, 0 to issue one. Drops lapsed tickets and
# returns {ticket, the ticket served now} — {ticket, -1} when that ticket's lease had lapsed.
RENEW = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local lease = tonumber(ARGV[1])
local ticket = tonumber(ARGV[2])
if ticket == 0 then
  ticket = redis.call('HINCRBY', KEYS[1], 'next', 1)
else
  local deadline = redis.call('HGET', KEYS[1], ARGV[2])
  if not deadline or tonumber(deadline) <= now then
    return {ticket, -1}
  end
end
redis.call('HSET', KEYS[1], ticket, now + lease)
local fields = redis.call('HGETALL', KEYS[1])
local serving = nil
for i = 1, #fields, 2 do
  if fields[i] ~= 'next' then
    local number = tonumber(fields[i])
    if tonumber(fields[i + 1]) <= now then
      redis.call('HDEL', KEYS[1], fields[i])
    elseif serving == nil or number < serving then
      serving = number
    end
  end
end
redis.call('PEXPIRE', KEYS[1], lease)
return {ticket, serving}
"""

# KEYS[1]: the conversation's lock; ARGV[1]: the ticket done. The lock goes when no ticket is left.
RELEASE = """
redis.call('HDEL', KEYS[1], ARGV[1])
if redis.call('HLEN', KEYS[1]) <= 1 then
  redis.call('DEL', KEYS[1])
end
return 0
"""


class RedisLeaseLockStore(LockStore):
    """A Rasa ``LockStore`` on Redis whose tickets are renewed leases (module docstring). Rasa calls only
    :meth:`lock`; Redis is reached with ``socket_timeout`` (default 5 s) on every call."""

    def __init__(self, endpoint_config: EndpointConfig) -> None:
        """From the endpoints file's ``lock_store`` section: ``url`` (the Redis host), ``port``, ``db``,
        ``password``, ``use_ssl``, ``key_prefix`` (default ``closer:lock:``), ``socket_timeout``, ``lease_seconds``,
        ``poll_seconds`` (how often a waiting turn asks, default 0.1) and ``max_turn_seconds``. Connects lazily."""
        settings: dict[str, Any] = endpoint_config.kwargs
        self.lease_seconds = float(settings.get("lease_seconds", 15))
        self.poll_seconds = float(settings.get("poll_seconds", 0.1))
        self.max_turn_seconds = float(settings.get("max_turn_seconds", 300))
        self.key_prefix = str(settings.get("key_prefix", "closer:lock:"))
        timeout = float(settings.get("socket_timeout", 5))
        self.redis = Redis(
            host=endpoint_config.url or "localhost",
            port=int(settings.get("port", 6379)),
            db=int(settings.get("db", 0)),
            password=settings.get("password"),
            ssl=bool(settings.get("use_ssl", False)),
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
        )
        self._renew = self.redis.register_script(RENEW)
        self._release = self.redis.register_script(RELEASE)
        super().__init__()

    @asynccontextmanager
    async def lock(  # type: ignore[override]  # Rasa's arguments are kept, the lease replaces the lifetime
        self, conversation_id: str, lock_lifetime: float | None = None, wait_time_in_seconds: float | None = None
    ) -> AsyncIterator[None]:
        """Holds ``conversation_id``'s lock for the ``async with`` body, after every ticket issued before this one
        (FIFO). ``lock_lifetime`` is ignored (the lease applies); ``wait_time_in_seconds`` overrides
        ``poll_seconds``. Raises rasa's LockError when Redis cannot be reached or this ticket lapsed while waiting
        (its event loop was blocked longer than the lease)."""
        key = self.key_prefix + conversation_id
        ticket = 0
        try:
            ticket, serving = await self._call(self._renew, key, 0)
            while serving != ticket:
                if serving == LAPSED:
                    raise LockError("A conversation's lock ticket lapsed while waiting.")  # no id: it can be a phone
                await asyncio.sleep(wait_time_in_seconds or self.poll_seconds)
                _, serving = await self._call(self._renew, key, ticket)
            renewing = asyncio.create_task(self._keep(key, ticket))
            try:
                yield
            finally:
                renewing.cancel()
        finally:
            if ticket:
                await asyncio.shield(self._let_go(key, ticket))

    async def _call(self, script: Any, key: str, ticket: int) -> tuple[int, int]:
        try:
            issued, serving = await script(keys=[key], args=[round(self.lease_seconds * 1000), ticket])
        except (RedisError, OSError) as error:
            raise LockError(f"Error while acquiring lock: {error}") from error
        return int(issued), LAPSED if serving is None else int(serving)

    async def _keep(self, key: str, ticket: int) -> None:
        """Renews the held lease every third of it, up to ``max_turn_seconds``."""
        loop = asyncio.get_running_loop()
        give_up = loop.time() + self.max_turn_seconds
        while True:
            await asyncio.sleep(self.lease_seconds / 3)
            if loop.time() > give_up:
                log.error("A turn held the lock longer than %.0f s; its lock lapses now.", self.max_turn_seconds)
                return
            try:
                _, serving = await self._call(self._renew, key, ticket)
            except LockError as error:
                log.warning("Could not renew a conversation's lock, trying again: %s", error)
                continue
            if serving != ticket:
                log.error("A turn lost its conversation's lock (its lease lapsed): turns may overlap.")
                return

    async def _let_go(self, key: str, ticket: int) -> None:
        """Gives the ticket back; when Redis cannot be reached, its lease lapses by itself."""
        try:
            await self._release(keys=[key], args=[ticket])
        except (RedisError, OSError) as error:
            log.warning("Could not release a conversation's lock (%s); it frees when its lease lapses.", error)
