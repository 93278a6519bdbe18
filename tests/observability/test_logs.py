"""CLOSER_LOG_FORMAT: text lines, or one JSON object per line naming the conversation by its pseudonym."""

import json
import logging

import pytest

from bot.observability import logs
from bot.privacy.encryption import get_keyring


@pytest.fixture
def root_logger():
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield root
    root.handlers[:], root.level = handlers, level


def test_json_lines_carry_the_conversation_pseudonym_and_no_id(root_logger, capsys) -> None:
    logs.configure("json")
    with logs.in_conversation("whatsapp-971501112233"):
        logging.getLogger("actions.test").warning("quote %s made", "Q-2026-0001")
    logging.getLogger("bot.test").info("outside a conversation")
    first, second = (json.loads(line) for line in capsys.readouterr().err.splitlines())
    assert (first["level"], first["logger"], first["message"]) == ("WARNING", "actions.test", "quote Q-2026-0001 made")
    assert first["conversation"] == get_keyring().conversation_ref("whatsapp-971501112233")
    assert first["conversation"].startswith("c") and "971501112233" not in json.dumps(first)
    assert first["time"] and second["conversation"] is None


def test_text_lines_and_an_unknown_format(root_logger, capsys) -> None:
    logs.configure("text")
    logging.getLogger("bot.test").info("plain")
    assert capsys.readouterr().err.strip().endswith("INFO bot.test: plain")
    with pytest.raises(ValueError, match="unknown log format"):
        logs.configure("xml")
