"""Fixtures of the web tests: a local server standing in for Rasa's REST channel."""

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from tests.web.test_chat_rate_limit import FakeRest


@pytest.fixture
async def rasa():
    """Rasa's REST webhook and tracker endpoints on a local port (:class:`FakeRest`); ``.url`` is its base URL."""
    fake = FakeRest()
    app = web.Application()
    app.router.add_post("/webhooks/rest/webhook", fake.webhook)
    app.router.add_get("/conversations/{id}/tracker", fake.tracker)
    async with TestServer(app, host="127.0.0.1") as server:
        fake.url = str(server.make_url("")).rstrip("/")
        yield fake
