"""The action server: rasa-sdk's own (``python -m rasa_sdk``, same options) with Closer's guard attached
through rasa-sdk's plugin hook ``attach_sanic_app_extensions``.

    python -m bot.action_server --actions actions --port 5055

The guard:

- ``GET /ready`` answers readiness (the database, and a Chroma server when configured:
  :mod:`bot.observability.readiness`), 200 or 503, without a token, as ``GET /health`` (liveness) does;
- every other request must carry the action server token (``bot.core.keys.action_server_token``)
  as the ``token`` query parameter, which is how Rasa sends ``action_endpoint.token`` from
  ``endpoints.yml``; a missing or wrong one gets 401 ``{"error": ...}`` before any action runs, compared
  in constant time (``hmac.compare_digest``), and is logged with the client address (never the token);
- a 500 answer carries only ``{"error": "the action failed; see the action server's log"}``: rasa-sdk's
  own handler would echo the request body, which is the whole tracker (customers' messages and slots).

Registering the plugin here, instead of through a ``rasa_sdk_plugins`` package that rasa-sdk imports when
it can, means the guard cannot silently go missing: this entry point always has it.
"""

import hmac
import logging

import pluggy
from rasa_sdk.__main__ import main as rasa_sdk_main
from rasa_sdk.plugin import plugin_manager
from sanic import Request, Sanic, response
from sanic.response import HTTPResponse

from bot.core.keys import action_server_token
from bot.core.settings import get_settings
from bot.observability import logs, metrics
from bot.observability.readiness import ACTION_SERVER_CHECKS, readiness

log = logging.getLogger(__name__)
hookimpl = pluggy.HookimplMarker("rasa_sdk")

# for load balancers and orchestrators: /health says only {"status": "ok"}, /ready names each check's outcome
OPEN_PATHS = frozenset({"/health", "/ready"})
UNAUTHORIZED = {"error": "missing or wrong action server token (endpoints.yml: action_endpoint.token)"}
FAILED = {"error": "the action failed; see the action server's log"}


def guard(app: Sanic, token: str) -> None:
    """Attach the token check and the 500 scrubber (module docstring) to rasa-sdk's Sanic ``app``."""
    expected = token.encode()

    @app.on_request
    async def authenticate(request: Request) -> HTTPResponse | None:
        if request.path in OPEN_PATHS:
            return None
        provided = request.args.get("token", "").encode()
        if not hmac.compare_digest(provided, expected):
            log.warning(
                "action server: %s %s from %s refused: %s token",
                request.method,
                request.path,
                request.ip,
                "wrong" if provided else "no",
            )
            return response.json(UNAUTHORIZED, status=401)
        return None

    @app.get("/ready")
    async def ready(request: Request) -> HTTPResponse:
        status, body = await readiness(get_settings(), ACTION_SERVER_CHECKS)
        return response.json(body, status=status)

    @app.on_response
    async def scrub_errors(request: Request, answer: HTTPResponse) -> HTTPResponse | None:
        return response.json(FAILED, status=answer.status) if answer.status >= 500 else None


class CloserGuardPlugin:
    """rasa-sdk plugin: guards the app rasa-sdk builds, with the token from settings, and logs in the format of
    ``CLOSER_LOG_FORMAT`` (bot.observability.logs)."""

    @hookimpl
    def attach_sanic_app_extensions(self, app: Sanic) -> None:
        logs.configure(get_settings().log_format)  # after rasa-sdk's own logging set-up
        guard(app, action_server_token(get_settings()))


def main() -> None:
    """Run rasa-sdk's action server (its command line) with the guard, and its Prometheus metrics on
    ``CLOSER_METRICS_PORT`` when set. Raises pydantic.ValidationError at start-up in production without
    ``CLOSER_ACTION_SERVER_TOKEN``, OSError when the metrics port is taken."""
    metrics.serve(get_settings().metrics_port)
    plugin_manager().register(CloserGuardPlugin())
    rasa_sdk_main()


if __name__ == "__main__":
    main()
