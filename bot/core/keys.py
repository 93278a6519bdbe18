"""The shared secrets between Closer's processes, and the credentials the console and CLI send to Rasa.

- Rasa HTTP API JWT secret (HS256): setting (environment) ``CLOSER_RASA_JWT_SECRET``, development default
  ``var/rasa-jwt.secret``; held by the Rasa server (``--jwt-secret``); the console and CLI sign short-lived
  tokens with it.
- action server token: setting (environment) ``CLOSER_ACTION_SERVER_TOKEN``, development default
  ``var/action-server.token``; held by Rasa (``endpoints.yml``: ``action_endpoint.token``); the action server
  checks it.

In development (``CLOSER_ENVIRONMENT=development``, the default) a secret that is not set is generated once
into its file under ``var/`` (mode 0600) and read from there by every process, so ``make run`` needs no keys.
In production a missing secret stops the process at start-up (:class:`bot.core.settings.Settings` validation).

``python -m bot.core.keys rasa-jwt|action-server|pii-index`` prints one secret (generating it in development): the
scripts pass it to the Rasa server, which cannot import this package.
"""

import logging
import os
import secrets
import sys
import time
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

import jwt

from bot.core.settings import ROOT, Settings, get_settings

log = logging.getLogger(__name__)

RASA_JWT_FILE = ROOT / "var" / "rasa-jwt.secret"
ACTION_SERVER_TOKEN_FILE = ROOT / "var" / "action-server.token"
PII_INDEX_KEY_FILE = ROOT / "var" / "pii-index.key"  # development's blind-index key (bot.privacy.encryption)
RASA_TOKEN_TTL_S = 300  # lifetime of a token the console signs for one call to Rasa's HTTP API
RASA_API_USER = "closer-console"


@lru_cache
def load_or_create_secret(path: Path, make: Callable[[], bytes] = lambda: secrets.token_urlsafe(32).encode()) -> bytes:
    """The secret kept in ``path``, read once per process (the console signs a Rasa token per request;
    a new value takes a restart); on first use ``make()`` is written there with mode 0600 (atomically:
    concurrent starts agree on one value). Raises OSError if the file cannot be read or made."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        draft = path.with_name(f".{path.name}.{os.getpid()}")
        with os.fdopen(os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as file:
            file.write(make())
        try:
            os.link(draft, path)
            log.info("new secret in %s", path)
        except FileExistsError:
            pass
        finally:
            draft.unlink()
    return path.read_bytes().strip()


def rasa_jwt_secret(settings: Settings) -> str:
    """The HS256 secret of Rasa's HTTP API: ``CLOSER_RASA_JWT_SECRET``, else (development) ``var/rasa-jwt.secret``."""
    return settings.rasa_jwt_secret or load_or_create_secret(RASA_JWT_FILE).decode()


def action_server_token(settings: Settings) -> str:
    """The token Rasa sends on every action call: ``CLOSER_ACTION_SERVER_TOKEN``, else (development)
    ``var/action-server.token``."""
    return settings.action_server_token or load_or_create_secret(ACTION_SERVER_TOKEN_FILE).decode()


def rasa_api_headers(settings: Settings | None = None, now: float | None = None) -> dict[str, str]:
    """HTTP headers that authenticate one call to Rasa's HTTP API (``rasa run --enable-api --jwt-secret``):
    ``Authorization: Bearer <JWT>``, an HS256 token with Rasa's admin role (``{"user": {"username",
    "role": "admin"}}``) that expires ``RASA_TOKEN_TTL_S`` seconds after ``now`` (Unix seconds, default the
    current time). Unlike Rasa's ``?token=`` query parameter, the secret never travels or lands in a log."""
    settings = settings or get_settings()
    issued = int(time.time() if now is None else now)
    token = jwt.encode(
        {"user": {"username": RASA_API_USER, "role": "admin"}, "iat": issued, "exp": issued + RASA_TOKEN_TTL_S},
        rasa_jwt_secret(settings),
        algorithm="HS256",
    )
    return {"Authorization": f"Bearer {token}"}


def pii_index_key(settings: Settings) -> str:
    """The blind-index key of bot.privacy.encryption in base64url: ``CLOSER_PII_INDEX_KEY``, else (development)
    ``var/pii-index.key``. The Rasa server keys the conversation pseudonyms of its logs with it (connectors/logs.py)."""
    return settings.pii_index_key or load_or_create_secret(PII_INDEX_KEY_FILE).decode()


SECRETS = {"rasa-jwt": rasa_jwt_secret, "action-server": action_server_token, "pii-index": pii_index_key}


def main(argv: list[str]) -> int:
    if len(argv) != 1 or argv[0] not in SECRETS:
        print(f"usage: python -m bot.core.keys {'|'.join(SECRETS)}", file=sys.stderr)
        return 2
    print(SECRETS[argv[0]](get_settings()))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
