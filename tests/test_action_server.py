"""The action server as started in production (``python -m bot.action_server``, a real process on a free
port, a real SQLite catalog): calls without the token Rasa sends are refused before any action runs, and a
failure never echoes the tracker."""

import os
import subprocess
import sys
import time

import httpx
import pytest
from sqlalchemy import create_engine, text

from bot.contracts.database import synchronous
from bot.core.settings import ROOT
from tests.e2e.conftest import free_port

TOKEN = "action-server-test-token-0123456789"
METRICS_PORT = free_port()
SECRET = "sara.khan@example.com"  # stands for customer data inside a tracker


def action_call(action: str, tracker: object) -> dict:
    return {"next_action": action, "sender_id": "web-attacker01", "tracker": tracker, "domain": {}, "version": "3.6.21"}


def add_to_cart(sku: str) -> dict:
    message = {
        "text": f"add 2 {sku}",
        "intent": {"name": "add_to_cart", "confidence": 0.99},
        "entities": [{"entity": "sku", "value": sku}, {"entity": "quantity", "value": "2"}],
    }
    return action_call(
        "action_add_to_cart",
        {
            "sender_id": "web-attacker01",
            "slots": {"email": SECRET},
            "latest_message": message,
            "paused": False,
            "events": [{"event": "user", "text": message["text"], "parse_data": message, "input_channel": "rest"}],
            "latest_event_time": time.time(),
            "followup_action": None,
            "active_loop": {},
            "latest_action_name": "action_listen",
            "latest_input_channel": "rest",
        },
    )


@pytest.fixture
def server(loaded_db, tmp_path):
    port = free_port()
    env = {
        **os.environ,
        "CLOSER_DATABASE_URL": loaded_db,
        "CLOSER_ACTION_SERVER_TOKEN": TOKEN,
        "CLOSER_METRICS_PORT": str(METRICS_PORT),
    }
    log = tmp_path / "actions.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "bot.action_server", "--actions", "actions", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert process.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.3)
        yield url, log
    finally:
        process.terminate()
        process.wait(20)


def cart_lines(db_url: str) -> list[tuple]:
    engine = create_engine(synchronous(db_url))
    with engine.connect() as connection:
        return connection.execute(
            text("SELECT c.conversation_id, l.sku, l.quantity FROM carts c JOIN cart_lines l ON l.cart_id = c.id")
        ).all()


def test_calls_without_the_token_are_refused_before_any_action_runs(server, loaded_db):
    url, log = server
    for params in ({}, {"token": ""}, {"token": "wrong"}, {"token": TOKEN[:-1] + "X"}, {"token": TOKEN + "0"}):
        response = httpx.post(f"{url}/webhook", params=params, json=add_to_cart("DK-2001"), timeout=30)
        assert response.status_code == 401, params
        assert SECRET not in response.text
        assert httpx.get(f"{url}/actions", params=params, timeout=10).status_code == 401
    assert cart_lines(loaded_db) == []  # the action never ran
    assert "refused" in log.read_text() and TOKEN not in log.read_text()

    response = httpx.post(f"{url}/webhook", params={"token": TOKEN}, json=add_to_cart("DK-2001"), timeout=60)
    assert response.status_code == 200, response.text
    assert cart_lines(loaded_db) == [("web-attacker01", "DK-2001", 2)]
    assert httpx.get(f"{url}/actions", params={"token": TOKEN}, timeout=10).status_code == 200
    assert httpx.get(f"{url}/health", timeout=10).json() == {"status": "ok"}  # open, and says nothing else
    metrics = httpx.get(f"http://127.0.0.1:{METRICS_PORT}/metrics", timeout=10).text  # only the call with the token ran
    assert 'closer_action_seconds_count{action="action_add_to_cart",outcome="ok"} 1.0' in metrics
    assert "DK-2001" not in metrics and "web-attacker01" not in metrics
    ready = httpx.get(f"{url}/ready", timeout=10)  # open too: the database and the (embedded) index
    assert (ready.status_code, ready.json()) == (200, {"status": "ready", "checks": {"database": "ok", "chroma": "ok"}})


def test_a_failing_call_never_echoes_the_tracker(server):
    url, _ = server
    response = httpx.post(
        f"{url}/webhook",
        params={"token": TOKEN},
        timeout=30,
        json=action_call("action_greet", f"not a tracker: {SECRET}"),
    )
    assert response.status_code == 500
    assert response.json() == {"error": "the action failed; see the action server's log"}


def test_production_refuses_to_start_without_the_token(tmp_path):
    env = {key: value for key, value in os.environ.items() if not key.startswith("CLOSER_")}
    env.update(CLOSER_ENVIRONMENT="production", CLOSER_RASA_JWT_SECRET="x" * 32, CLOSER_CONSOLE_SECRET_KEY="k" * 44)
    done = subprocess.run(
        [sys.executable, "-m", "bot.action_server", "--actions", "actions", "--port", str(free_port())],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0
    assert "CLOSER_ACTION_SERVER_TOKEN" in done.stderr
    assert "CLOSER_RASA_JWT_SECRET" not in done.stderr.split("needs", 1)[-1].split("(")[0]
