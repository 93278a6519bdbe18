"""What a webhook request gets back when it is refused, and its body read within a size limit."""

import json
import logging
from typing import Any

from sanic.request import Request
from sanic.response import HTTPResponse
from sanic.response import json as json_response

log = logging.getLogger(__name__)

DEFAULT_MAX_BODY_BYTES = 1024 * 1024


class Refused(Exception):
    """A webhook request answered with HTTP ``status`` and ``{"error": reason}`` (see :func:`error`)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(f"{status} {reason}")
        self.status, self.reason = status, reason


def error(status: int, message: str) -> HTTPResponse:
    """A JSON error response ``{"error": message}`` with HTTP ``status``."""
    return json_response({"error": message}, status=status)


def read_json(request: Request, max_bytes: int) -> dict[str, Any]:
    """The request's body as a JSON object. Raises :class:`Refused` with 413 for a body over
    ``max_bytes`` bytes, 400 for one that is not a JSON object (logged with the path)."""
    raw = request.body or b""
    if len(raw) > max_bytes:
        log.warning("%s: body of %d bytes refused (limit %d)", request.path, len(raw), max_bytes)
        raise Refused(413, f"body over {max_bytes} bytes")
    try:
        parsed = json.loads(raw)
    except ValueError:
        log.warning("%s: body is not valid JSON", request.path)
        raise Refused(400, "body is not valid JSON") from None
    if not isinstance(parsed, dict):
        log.warning("%s: body is not a JSON object", request.path)
        raise Refused(400, "body must be a JSON object")
    return parsed
