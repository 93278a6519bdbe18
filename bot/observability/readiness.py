"""Readiness of a process (``GET /ready`` on the console and on the action server), for load balancers and
orchestrators: liveness (``/healthz``, ``/health``) says the process answers; readiness says what it needs answers too.

Each check runs on every request, all at once, each bounded by :data:`TIMEOUT_S` seconds:

- ``database``: ``SELECT 1`` on the business database (``CLOSER_DATABASE_URL``);
- ``rasa``: the Rasa server's ``GET /`` (``CLOSER_RASA_URL``), which answers without a token (console only);
- ``chroma``: the Chroma server's ``GET /api/v2/heartbeat`` when ``CLOSER_CHROMA_HOST`` is set; the embedded index
  (the default) lives in the process and is not checked;
- ``actions``: the action servers' ``GET /health`` (through the load balancer) when ``CLOSER_ACTIONS_URL`` is set
  (console only);
- ``redis``: Redis answers ``PING`` when ``CLOSER_REDIS_URL`` is set (the Rasa servers' lock store; console only).

The answer is ``{"status": "ready" | "not ready", "checks": {name: "ok" | reason}}`` with 200 when every check
passed, 503 otherwise. A reason names the failure's kind only ("timeout after 2.0 s", "HTTP 502", the exception's
class): never a URL, a host or a credential. Each failure is logged as a warning with its exception.
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

import aiohttp
from sqlalchemy import text

from bot.core.db import get_engine
from bot.core.settings import Settings

log = logging.getLogger(__name__)

TIMEOUT_S = 2.0  # seconds one check may take

Check = Callable[[Settings], Awaitable[None]]


class NotReady(RuntimeError):
    """A dependency answered, but not as a ready one does (its message is the reason shown)."""


async def database(settings: Settings) -> None:
    """``SELECT 1`` on the business database; the driver's exception when it cannot."""
    async with get_engine(settings.database_url).connect() as connection:
        await connection.execute(text("SELECT 1"))


async def _get_ok(url: str) -> None:
    timeout = aiohttp.ClientTimeout(total=TIMEOUT_S)
    async with aiohttp.ClientSession(timeout=timeout) as session, session.get(url) as response:
        if response.status != 200:
            raise NotReady(f"HTTP {response.status}")


async def rasa(settings: Settings) -> None:
    """The Rasa server's ``GET /`` answers 200 (it does once its HTTP server is up)."""
    await _get_ok(settings.rasa_url.rstrip("/") + "/")


async def chroma(settings: Settings) -> None:
    """The Chroma server's heartbeat answers 200; nothing to check for the embedded index."""
    if settings.chroma_host:
        scheme = "https" if settings.chroma_ssl else "http"
        await _get_ok(f"{scheme}://{settings.chroma_host}:{settings.chroma_port}/api/v2/heartbeat")


async def actions(settings: Settings) -> None:
    """The action server's ``GET /health`` answers 200, when ``actions_url`` is set."""
    if settings.actions_url:
        await _get_ok(settings.actions_url.rstrip("/") + "/health")


async def redis(settings: Settings) -> None:
    """Redis at ``redis_url`` (``redis://host:port``) answers ``PING`` with ``+PONG``, when it is set."""
    if not settings.redis_url:
        return
    url = urlsplit(settings.redis_url)
    reader, writer = await asyncio.open_connection(url.hostname or "localhost", url.port or 6379)
    try:
        writer.write(b"PING\r\n")
        await writer.drain()
        answer = await reader.readline()
    finally:
        writer.close()
        await writer.wait_closed()
    if not answer.startswith(b"+PONG"):
        raise NotReady(f"PING answered {answer[:16]!r}")


CONSOLE_CHECKS: dict[str, Check] = {
    "database": database,
    "rasa": rasa,
    "chroma": chroma,
    "actions": actions,
    "redis": redis,
}
ACTION_SERVER_CHECKS: dict[str, Check] = {"database": database, "chroma": chroma}


async def _outcome(name: str, check: Check, settings: Settings) -> str:
    try:
        await asyncio.wait_for(check(settings), TIMEOUT_S)
    except TimeoutError:
        log.warning("readiness: %s did not answer within %.1f s", name, TIMEOUT_S)
        return f"timeout after {TIMEOUT_S} s"
    except NotReady as error:
        log.warning("readiness: %s answered %s", name, error)
        return str(error)
    except Exception as error:  # any failure of a dependency makes the process not ready; it is reported, not raised
        log.warning("readiness: %s failed", name, exc_info=True)
        return f"unreachable ({type(error).__name__})"
    return "ok"


async def readiness(settings: Settings, checks: dict[str, Check]) -> tuple[int, dict]:
    """(HTTP status, body) of ``GET /ready`` after running ``checks`` concurrently (module docstring)."""
    outcomes = await asyncio.gather(*(_outcome(name, check, settings) for name, check in checks.items()))
    results = dict(zip(checks, outcomes, strict=True))
    ready = all(outcome == "ok" for outcome in results.values())
    return (200 if ready else 503), {"status": "ready" if ready else "not ready", "checks": results}
