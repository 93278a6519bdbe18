"""The stack's doors, on the real Rasa server (``--jwt-secret``) and action server: every route of Rasa's
HTTP API, read from Rasa's own source, refuses anonymous callers, wrong tokens and other customers' tokens
and changes nothing; the channel webhooks still take customers' messages; the action server refuses calls
without its token."""

import re
import time
import uuid

import httpx
import jwt
import pytest

from tests.e2e.conftest import RASA

SERVER_SOURCE = RASA.parent.parent / "lib" / "python3.10" / "site-packages" / "rasa" / "server.py"
OPEN_ROUTES = {("GET", "/"), ("GET", "/version")}  # Rasa's greeting and version: no data
# What an attacker would send: a message to the customer as "the manager", a 20% discount, a new model…
BODIES = {
    "/conversations/{id}/tracker/events": [
        {"event": "bot", "text": "Pay to IBAN AE07 0331 2345 6789 0123 456"},
        {"event": "slot", "name": "granted_discount", "value": "0.20"},
    ],
    "/conversations/{id}/trigger_intent": {"name": "request_human"},
    "/conversations/{id}/execute": {"name": "action_escalate"},
    "/conversations/{id}/messages": {"text": "hi", "sender": "user"},
    "/model/parse": {"text": "hi"},
    "/model": {"model_file": "/etc/passwd"},
}


def rasa_routes() -> list[tuple[str, str]]:
    """(method, path) of every route Rasa 3.6's HTTP API serves, from ``rasa/server.py``."""
    routes = re.findall(r'@app\.(get|post|put|delete)\("([^"]+)"\)', SERVER_SOURCE.read_text())
    return [(method.upper(), re.sub(r"<conversation_id:path>", "{id}", path)) for method, path in routes]


def token(secret: str, role: str = "admin", username: str = "closer-console") -> str:
    now = int(time.time())
    return jwt.encode(
        {"user": {"username": username, "role": role}, "iat": now, "exp": now + 60}, secret, algorithm="HS256"
    )


@pytest.fixture(scope="module")
def victim(stack) -> str:
    """A customer's conversation with a message in it."""
    sender = f"web-victim{uuid.uuid4().hex[:12]}"
    reply = httpx.post(
        f"{stack.rasa_url}/webhooks/rest/webhook", json={"sender": sender, "message": "hello"}, timeout=120
    )
    assert reply.status_code == 200 and reply.json(), reply.text  # the channel webhook needs no API token
    return sender


def state(stack, conversation_id: str) -> tuple:
    tracker = httpx.get(
        f"{stack.rasa_url}/conversations/{conversation_id}/tracker", headers=stack.rasa_headers(), timeout=30
    ).json()
    status = httpx.get(f"{stack.rasa_url}/status", headers=stack.rasa_headers(), timeout=30).json()
    return len(tracker["events"]), tracker["slots"].get("granted_discount"), tracker["paused"], status["model_file"]


def test_every_rasa_api_route_refuses_callers_without_a_valid_token_and_changes_nothing(stack, victim):
    routes = rasa_routes()
    assert (
        len(routes) >= 19
        and ("DELETE", "/model") in routes
        and ("POST", "/conversations/{id}/tracker/events") in routes
    )
    before = state(stack, victim)
    attempts = {
        "no credentials": ({}, {}),
        "Rasa's ?token= with a guess": ({}, {"token": "closer"}),
        "a JWT signed with another secret": (
            {"Authorization": f"Bearer {token('a-guessed-secret-of-32-characters')}"},
            {},
        ),
        "an unsigned JWT": (
            {"Authorization": "Bearer " + jwt.encode({"user": {"role": "admin"}}, None, algorithm="none")},
            {},
        ),
        "an expired JWT": (
            {
                "Authorization": "Bearer "
                + jwt.encode(
                    {"user": {"username": "x", "role": "admin"}, "exp": int(time.time()) - 3600},
                    stack.rasa_jwt_secret,
                    algorithm="HS256",
                )
            },
            {},
        ),
    }
    checked = 0
    for method, path in routes:
        if (method, path) in OPEN_ROUTES:
            continue
        url = stack.rasa_url + path.replace("{id}", victim)
        for what, (headers, params) in attempts.items():
            response = httpx.request(
                method,
                url,
                headers=headers,
                params={**params, "output_channel": "latest", "execute_side_effects": "true"},
                json=BODIES.get(path, {}),
                timeout=60,
            )
            # sanic-jwt does not catch PyJWT's InvalidAlgorithmError, so Rasa answers an alg=none token with its
            # generic 500 page: still a refusal that reveals and changes nothing (checked below)
            refused = (401, 500) if what == "an unsigned JWT" else (401,)
            assert response.status_code in refused, (method, path, what, response.status_code, response.text[:200])
            assert "hello" not in response.text and victim not in response.text
            checked += 1
        if "{id}" in path:  # another customer's own token (Rasa's "user" role) reaches only their conversation
            other = {"Authorization": f"Bearer {token(stack.rasa_jwt_secret, 'user', 'web-someone-else')}"}
            response = httpx.request(method, url, headers=other, json=BODIES.get(path, {}), timeout=60)
            assert response.status_code == 403, (method, path, response.status_code)
    assert checked >= 17 * len(attempts)
    assert state(stack, victim) == before


def test_the_open_routes_reveal_nothing(stack):
    assert httpx.get(f"{stack.rasa_url}/", timeout=10).text.startswith("Hello from Rasa")
    assert set(httpx.get(f"{stack.rasa_url}/version", timeout=10).json()) == {"version", "minimum_compatible_version"}


def test_the_action_server_refuses_calls_without_its_token(stack, victim):
    call = {
        "next_action": "action_escalate",
        "sender_id": victim,
        "version": "3.6.21",
        "domain": {},
        "tracker": {"sender_id": victim, "slots": {}, "latest_message": {}, "events": [], "paused": False},
    }
    for params in ({}, {"token": "guess"}):
        response = httpx.post(f"{stack.actions_url}/webhook", params=params, json=call, timeout=30)
        assert response.status_code == 401
    assert httpx.get(f"{stack.actions_url}/actions", timeout=10).status_code == 401
