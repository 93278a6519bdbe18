"""How Closer's processes log: text lines by default, or one JSON object per line with ``CLOSER_LOG_FORMAT=json``
(:mod:`bot.contracts.logs`) for a log collector: ``time``, ``level``, ``logger``, ``message``, and ``conversation``, the
pseudonym of the conversation a custom action is serving (:meth:`bot.privacy.encryption.Keyring.conversation_ref`:
a conversation id can hold a phone number), set by ``actions.base.SafeAction.run`` through :func:`in_conversation`;
null elsewhere.
"""

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from bot.contracts import logs
from bot.privacy.encryption import get_keyring


def configure(log_format: str, level: int = logging.INFO) -> None:
    """Replace the root logger's handlers with one on stderr in ``log_format`` (``text`` or ``json``) at ``level``.
    Raises ValueError for another format."""
    handler = logging.StreamHandler()
    if log_format == "json":
        handler.setFormatter(logs.json_formatter())
    elif log_format == "text":
        handler.setFormatter(logging.Formatter(logs.TEXT_FORMAT))
    else:
        raise ValueError(f"unknown log format {log_format!r}: text or json")
    handler.addFilter(logs.ConversationFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


@contextmanager
def in_conversation(conversation_id: str) -> Iterator[None]:
    """Within the block, this task's log records carry ``conversation``, the pseudonym of ``conversation_id``.
    Raises KeyConfigError (bot.privacy.encryption) when the PII keys are missing or malformed."""
    with logs.in_conversation(get_keyring().conversation_ref(conversation_id)):
        yield
