"""The Rasa server's logs: text, or one JSON object per line like the console's and the action server's
(:mod:`bot.observability.logs`): ``time``, ``level``, ``logger``, ``message`` and ``conversation``, the pseudonym of
the conversation whose turn logged it (:func:`bot.contracts.conversation_ids.pseudonym`, keyed with
``CLOSER_PII_INDEX_KEY``; null outside a turn or without the key), never the conversation id itself (a WhatsApp
customer's phone number).

Rasa reads it from a logging configuration file, logging.yml, which every launcher passes as ``python -m rasa run
--logging-config-file logging.yml`` (``python -m``: the project's folder must be on ``sys.path`` when Rasa applies the
file, before it adds it itself; the ``rasa`` script would ignore the file, and this module logs an error then). Rasa's
text lines unless ``CLOSER_LOG_FORMAT=json``. Two things would write text beside the JSON: Rasa's CLI installs
coloredlogs on the root logger right after applying the file (:func:`coloredlogs_slot` mutes it), and Sanic gives its
loggers (``sanic.root``, ``sanic.error``, ``sanic.access``) text handlers from ``sanic.log.LOGGING_CONFIG_DEFAULTS``
when Rasa creates its app (:func:`handler` empties them there first). Turns set the conversation in
:func:`connectors.turns.run_turn` (:func:`in_conversation`); connectors' own lines name a conversation by :func:`ref`.
"""

import base64
import binascii
import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache

from pythonjsonlogger.json import JsonFormatter
from sanic.log import LOGGING_CONFIG_DEFAULTS

from bot.contracts import logs
from bot.contracts.conversation_ids import pseudonym


@lru_cache(maxsize=1)
def _index_key() -> bytes | None:
    text = os.environ.get("CLOSER_PII_INDEX_KEY", "").strip()
    try:
        key = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)) if text else b""
    except binascii.Error:
        key = b""
    if len(key) != 32:
        if text:
            logging.getLogger(__name__).warning("CLOSER_PII_INDEX_KEY is not 32 bytes in base64url: no pseudonyms")
        return None
    return key


def ref(conversation_id: str) -> str:
    """How a log line names a conversation: its pseudonym, or ``c?`` without ``CLOSER_PII_INDEX_KEY``."""
    key = _index_key()
    return pseudonym(key, conversation_id) if key else "c?"


@contextmanager
def in_conversation(conversation_id: str) -> Iterator[None]:
    """Within the block, this task's log records carry ``conversation``: :func:`ref` of ``conversation_id``."""
    _check_applied()
    with logs.in_conversation(ref(conversation_id)):
        yield


def _json_wanted() -> bool:
    log_format = os.environ.get("CLOSER_LOG_FORMAT", "text").strip().lower()
    if log_format not in ("text", "json"):
        logging.getLogger(__name__).error("CLOSER_LOG_FORMAT=%r: text or json; logging text", log_format)
    return log_format == "json"


class _StandardError:
    """Writes to whatever ``sys.stderr`` is when a record comes (a stream other than ``sys.stderr`` itself, which
    coloredlogs would take for its own and replace)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


class _Reject(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return False


def handler() -> logging.Handler:
    """logging.yml's handler (a ``()`` factory of :func:`logging.config.dictConfig`): with ``CLOSER_LOG_FORMAT=json``,
    JSON lines on standard error, and Sanic's loggers emptied of the handlers Sanic will give them (module
    docstring) and Python's warnings logged, so everything reaches it; otherwise none (Rasa's text lines as usual)."""
    if not _json_wanted():
        return logging.NullHandler()
    for logger in LOGGING_CONFIG_DEFAULTS["loggers"].values():
        logger["handlers"] = []
        logger["propagate"] = True
    logging.captureWarnings(True)  # Python's warnings as records of logger py.warnings, not raw lines
    json_lines = logging.StreamHandler(_StandardError())  # type: ignore[arg-type]
    json_lines.setFormatter(logs.json_formatter())
    json_lines.addFilter(logs.ConversationFilter())
    return json_lines


def coloredlogs_slot() -> logging.Handler:
    """logging.yml's second handler: with ``CLOSER_LOG_FORMAT=json``, a handler on ``sys.stderr`` that lets nothing
    through. Rasa's CLI installs coloredlogs after reading logging.yml; coloredlogs replaces the root's handler on
    standard error with its coloured text one and keeps that handler's filters, so its text lines are muted too.
    Otherwise none."""
    if not _json_wanted():
        return logging.NullHandler()
    slot = logging.StreamHandler(sys.stderr)
    slot.addFilter(_Reject())
    return slot


@lru_cache(maxsize=1)
def _check_applied() -> None:
    """Rasa ignores a logging file it cannot apply (it logs why at debug level): say so, once, at the first turn."""
    if _json_wanted() and not any(isinstance(h.formatter, JsonFormatter) for h in logging.getLogger().handlers):
        logging.getLogger(__name__).error(
            "CLOSER_LOG_FORMAT=json, but logging.yml was not applied: start the Rasa server from the project's folder"
            " as `python -m rasa run --logging-config-file logging.yml` (the `rasa` script cannot import connectors/"
            " while it reads that file)"
        )
