"""How Closer's processes log: text lines by default, or one JSON object per line with ``CLOSER_LOG_FORMAT=json``
(python-json-logger) for a log collector: ``time``, ``level``, ``logger``, ``message``, and ``conversation``, the
pseudonym of the conversation a custom action is serving (:meth:`bot.privacy.encryption.Keyring.conversation_ref`:
a conversation id can hold a phone number), set by ``actions.base.SafeAction.run`` through :func:`in_conversation`;
null elsewhere.
"""

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from pythonjsonlogger.json import JsonFormatter

from bot.privacy.encryption import get_keyring

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
conversation: ContextVar[str | None] = ContextVar("conversation", default=None)


class _ConversationFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.conversation = conversation.get()
        return True


def configure(log_format: str, level: int = logging.INFO) -> None:
    """Replace the root logger's handlers with one on stderr in ``log_format`` (``text`` or ``json``) at ``level``.
    Raises ValueError for another format."""
    handler = logging.StreamHandler()
    if log_format == "json":
        handler.setFormatter(
            JsonFormatter(
                "%(asctime)s %(levelname)s %(name)s %(message)s %(conversation)s",
                rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            )
        )
    elif log_format == "text":
        handler.setFormatter(logging.Formatter(TEXT_FORMAT))
    else:
        raise ValueError(f"unknown log format {log_format!r}: text or json")
    handler.addFilter(_ConversationFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


@contextmanager
def in_conversation(conversation_id: str) -> Iterator[None]:
    """Within the block, this task's log records carry ``conversation``, the pseudonym of ``conversation_id``.
    Raises KeyConfigError (bot.privacy.encryption) when the PII keys are missing or malformed."""
    token = conversation.set(get_keyring().conversation_ref(conversation_id))
    try:
        yield
    finally:
        conversation.reset(token)
