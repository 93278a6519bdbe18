"""The Rasa server's logs: text, or one JSON object per line like the console's and the action server's
(:mod:`bot.observability.logs`): ``time``, ``level``, ``logger``, ``message`` and ``conversation``, the pseudonym of
the conversation whose turn logged it (:func:`bot.contracts.conversation_ids.pseudonym`, keyed with
``CLOSER_PII_INDEX_KEY``; null outside a turn or without the key), never the conversation id itself (a WhatsApp
customer's phone number).

Rasa reads it from a logging configuration file, logging.yml (``rasa run --logging-config-file logging.yml``: every
launcher passes it; text lines unless ``CLOSER_LOG_FORMAT=json``). Rasa applies that file before it creates its Sanic
app, and Sanic then gives its own loggers (``sanic.root``, ``sanic.error``, ``sanic.access``) text handlers from
``sanic.log.LOGGING_CONFIG_DEFAULTS``; :func:`formatter` empties those handlers in that configuration, so Sanic's
records reach the JSON handler too. Turns set the conversation in
:func:`connectors.turns.run_turn` (:func:`in_conversation`); connectors' own lines name a conversation by
:func:`ref`.
"""

import base64
import binascii
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache

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
    with logs.in_conversation(ref(conversation_id)):
        yield


def formatter() -> logging.Formatter:
    """The formatter of logging.yml (a ``()`` factory of :func:`logging.config.dictConfig`): text lines (the
    console's format), or with ``CLOSER_LOG_FORMAT=json`` JSON lines, and then it also empties the handlers Sanic
    will give its loggers (module docstring), which propagate to the root's instead, and has Python's warnings
    logged. An unknown format is logged
    and gives text (Rasa would swallow an exception here)."""
    log_format = os.environ.get("CLOSER_LOG_FORMAT", "text").strip().lower()
    if log_format != "json":
        if log_format != "text":
            logging.getLogger(__name__).error("CLOSER_LOG_FORMAT=%r: text or json; logging text", log_format)
        return logging.Formatter(logs.TEXT_FORMAT)
    for logger in LOGGING_CONFIG_DEFAULTS["loggers"].values():
        logger["handlers"] = []
        logger["propagate"] = True
    logging.captureWarnings(True)  # Python's warnings as log records (logger py.warnings), not raw stderr lines
    return logs.json_formatter()
