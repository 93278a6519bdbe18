"""The JSON log line of every Closer process (``CLOSER_LOG_FORMAT=json``; python-json-logger): ``time``, ``level``,
``logger``, ``message`` and ``conversation``, the pseudonym of the conversation being served
(:func:`bot.contracts.conversation_ids.pseudonym`; null outside one). The console, action server and CLI use it
through :mod:`bot.observability.logs`, the Rasa server through :mod:`connectors.logs`."""

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from pythonjsonlogger.json import JsonFormatter

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"  # without CLOSER_LOG_FORMAT=json
conversation: ContextVar[str | None] = ContextVar("closer_conversation", default=None)


def json_formatter() -> JsonFormatter:
    """One JSON object per record, with the fields above."""
    return JsonFormatter(
        "%(asctime)s %(levelname)s %(name)s %(message)s %(conversation)s",
        rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
    )


class ConversationFilter(logging.Filter):
    """Adds ``conversation`` (the current task's pseudonym, or None) to every record of the handler it is on."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.conversation = conversation.get()
        return True


@contextmanager
def in_conversation(pseudonym: str) -> Iterator[None]:
    """Within the block, this task's log records carry ``conversation``: ``pseudonym``."""
    token = conversation.set(pseudonym)
    try:
        yield
    finally:
        conversation.reset(token)
