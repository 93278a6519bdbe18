"""Shared secrets (bot.core.keys): generated once under var/ in development, required in production; the
tokens the console signs for Rasa's HTTP API."""

import base64
import os
import stat
import subprocess

import jwt
import pytest
from pydantic import ValidationError

from bot.contracts.conversation_ids import pseudonym
from bot.core import keys
from bot.core.settings import ROOT, Settings
from bot.privacy.encryption import Keyring


def test_development_generates_each_secret_once_with_owner_only_access(tmp_path, monkeypatch):
    monkeypatch.delenv("CLOSER_RASA_JWT_SECRET", raising=False)
    monkeypatch.delenv("CLOSER_ACTION_SERVER_TOKEN", raising=False)
    monkeypatch.setattr(keys, "RASA_JWT_FILE", tmp_path / "var" / "rasa-jwt.secret")
    monkeypatch.setattr(keys, "ACTION_SERVER_TOKEN_FILE", tmp_path / "var" / "action-server.token")
    settings = Settings()
    first = keys.rasa_jwt_secret(settings)
    assert len(first) >= 32 and keys.rasa_jwt_secret(settings) == first
    assert stat.S_IMODE(os.stat(keys.RASA_JWT_FILE).st_mode) == 0o600
    token = keys.action_server_token(settings)
    assert token != first and keys.action_server_token(Settings()) == token
    assert keys.rasa_jwt_secret(Settings(rasa_jwt_secret="from-the-environment")) == "from-the-environment"


def test_rasa_api_headers_carry_a_short_lived_admin_token():
    settings = Settings(rasa_jwt_secret="s" * 32)
    header = keys.rasa_api_headers(settings, now=1_700_000_000)["Authorization"]
    assert header.startswith("Bearer ")
    claims = jwt.decode(header[7:], "s" * 32, algorithms=["HS256"], options={"verify_exp": False})
    assert claims == {
        "user": {"username": "closer-console", "role": "admin"},
        "iat": 1_700_000_000,
        "exp": 1_700_000_000 + keys.RASA_TOKEN_TTL_S,
    }
    with pytest.raises(jwt.ExpiredSignatureError):
        jwt.decode(header[7:], "s" * 32, algorithms=["HS256"])
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(keys.rasa_api_headers(settings)["Authorization"][7:], "t" * 32, algorithms=["HS256"])


def test_production_refuses_to_start_without_its_secrets():
    with pytest.raises(ValidationError) as error:
        Settings(environment="production", console_secret_key="k" * 44)
    message = str(error.value)
    assert "CLOSER_RASA_JWT_SECRET" in message and "CLOSER_ACTION_SERVER_TOKEN" in message
    assert "CLOSER_CONSOLE_SECRET_KEY" not in message


def test_scripts_stop_before_starting_rasa_when_production_lacks_a_secret():
    env = {key: value for key, value in os.environ.items() if not key.startswith("CLOSER_")}
    env["CLOSER_ENVIRONMENT"] = "production"
    done = subprocess.run(
        ["bash", "-c", ". scripts/secrets.sh && echo started"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0 and "started" not in done.stdout
    assert "CLOSER_ACTION_SERVER_TOKEN" in done.stderr


def test_the_index_key_handed_to_rasa_gives_the_same_conversation_pseudonyms_as_the_action_server():
    """scripts/secrets.sh and run_prod.py pass ``pii-index`` to the Rasa server (connectors/logs.py): its log lines
    name a conversation exactly as the action server's (Keyring.conversation_ref) do."""
    settings = Settings(pii_index_key=base64.urlsafe_b64encode(bytes(range(32))).decode().rstrip("="))
    printed = keys.pii_index_key(settings)
    index_key = base64.urlsafe_b64decode(printed + "=" * (-len(printed) % 4))
    conversation = "whatsapp-971501112233"
    assert pseudonym(index_key, conversation) == Keyring.from_settings(settings).conversation_ref(conversation)
    assert index_key == bytes(range(32))
