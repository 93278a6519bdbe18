"""A local HTTP server speaking the OpenAI chat-completions protocol (``POST /v1/chat/completions``),
standing in for an LLM provider in tests. Each test sets what it answers: a reply text, an HTTP
error status, or a delay longer than the client's timeout; or ``respond``, a function of each request's body
(``{"model", "messages": [{"role", "content"}, …], …}``) returning the reply text, for replies that depend on
what was asked. Requests are kept for inspection."""

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from aiohttp import web
from aiohttp.test_utils import TestServer


@dataclass
class FakeLLM:
    reply: str = "OK [P1]"
    status: int = 200
    delay_s: float = 0.0
    requests: list[dict] = field(default_factory=list)
    server: TestServer | None = None
    respond: Callable[[dict], str] | None = None

    @property
    def api_base(self) -> str:
        return str(self.server.make_url("/v1"))

    async def _completions(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.requests.append(body)
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        if self.status != 200:
            error = {"error": {"message": "upstream failure", "type": "server_error", "code": None}}
            return web.json_response(error, status=self.status)
        reply = self.respond(body) if self.respond else self.reply
        prompt_tokens = sum(len(m["content"].split()) for m in body["messages"])
        return web.json_response(
            {
                "id": "chatcmpl-test",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": body["model"],
                "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": reply}}],
                "usage": {
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": len(reply.split()),
                    "total_tokens": prompt_tokens + len(reply.split()),
                },
            }
        )

    def settings(self, model: str, api_key: str = "sk-test", **more: str) -> dict[str, str]:
        """Closer's ``CLOSER_LLM_*`` environment variables pointing at this server: ``model`` (litellm's name,
        e.g. ``openai/qwen-fake``), ``api_key``, no retries, and ``more`` (e.g. ``TIMEOUT="10"``, seconds)."""
        values = {"MODEL": model, "API_BASE": self.api_base, "API_KEY": api_key, "RETRIES": "0", **more}
        return {f"CLOSER_LLM_{key}": value for key, value in values.items()}

    def system_prompt(self, n: int = -1) -> str:
        return self.requests[n]["messages"][0]["content"]

    def sent_text(self) -> str:
        return json.dumps(self.requests)

    async def start(self) -> "FakeLLM":
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._completions)
        self.server = TestServer(app, host="127.0.0.1")
        await self.server.start_server()
        return self

    async def close(self) -> None:
        await self.server.close()


@asynccontextmanager
async def closer_on_a_fake_llm(monkeypatch, model: str, timeout_s: float, **settings: str) -> AsyncIterator[FakeLLM]:
    """A started :class:`FakeLLM` with Closer's ``CLOSER_LLM_*`` settings pointed at it: ``model``, no retries,
    ``timeout_s`` (seconds) and any further ``settings`` (e.g. ``REPHRASE="true"``). litellm's one-time set-up is
    done first by a warm-up call with a generous timeout (seconds on a loaded machine; not what a test measures)
    and its request forgotten. Stops the server and resets Closer's caches on exit."""
    from bot.answering.llm import complete
    from bot.core import caches

    server = await FakeLLM().start()
    for name, value in server.settings(model, **settings, TIMEOUT="60").items():
        monkeypatch.setenv(name, value)
    caches.reset()
    await complete([{"role": "user", "content": "warm-up"}])
    server.requests.clear()
    monkeypatch.setenv("CLOSER_LLM_TIMEOUT", str(timeout_s))
    caches.reset()
    try:
        yield server
    finally:
        await server.close()
        caches.reset()
