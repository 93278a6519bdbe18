"""GET /ready of the console and of the action server on the whole stack (real Rasa server, action server,
console, SQLite and the embedded Chroma index): every check passes, without a token."""

import httpx
import pytest

pytestmark = pytest.mark.e2e


def test_the_console_and_the_action_server_are_ready(stack):
    console = httpx.get(f"{stack.console_url}/ready", timeout=30)
    assert (console.status_code, console.json()) == (
        200,
        {"status": "ready", "checks": {"database": "ok", "rasa": "ok", "chroma": "ok", "actions": "ok", "redis": "ok"}},
    )
    actions = httpx.get(f"{stack.actions_url}/ready", timeout=30)
    assert (actions.status_code, actions.json()) == (
        200,
        {"status": "ready", "checks": {"database": "ok", "chroma": "ok"}},
    )
