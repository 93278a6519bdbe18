"""The Rasa server's logging (logging.yml, connectors/logs.py), applied as ``python -m rasa run --logging-config-file``
applies it, in a process of its own: Rasa's logging set-up with the file, coloredlogs as Rasa's CLI installs it next,
then Sanic's app (which configures Sanic's loggers), then a turn run by connectors.turns.run_turn that logs from Rasa's
and Sanic's loggers. tests/e2e/test_channels.py checks the log of a real `python -m rasa run`."""

import base64
import json
import os
import re
import subprocess
import sys
from pathlib import Path

from bot.contracts.conversation_ids import pseudonym

ROOT = Path(__file__).resolve().parents[2]
KEY = bytes(range(32))
CONVERSATION = "whatsapp-971501112233"
PROGRAM = f"""
import asyncio, logging
from rasa.core.channels.channel import CollectingOutputChannel, UserMessage
from rasa.utils.common import configure_logging_and_warnings
configure_logging_and_warnings(logging_config_file="logging.yml")
import rasa.utils.io
rasa.utils.io.configure_colored_logging(None)  # as rasa/__main__.py does right after
from sanic import Sanic
Sanic("rasa_server")  # as rasa.server.create_app: Sanic's logging defaults applied now
from connectors.turns import run_turn
from connectors.logs import ref

async def on_new_message(message):
    logging.getLogger("rasa.core.processor").error("an action failed")
    logging.getLogger("sanic.error").error("an exception in a handler")

async def main():
    await run_turn(on_new_message, UserMessage("hi", CollectingOutputChannel(), {CONVERSATION!r}))
    logging.getLogger("connectors.webhook").info("delivery 1 of %s failed", ref({CONVERSATION!r}))
    logging.getLogger("sanic.root").info("outside a turn")

asyncio.run(main())
"""


def run(log_format: str, program: str = PROGRAM) -> list[str]:
    environment = {
        **os.environ,
        "CLOSER_LOG_FORMAT": log_format,
        "CLOSER_PII_INDEX_KEY": base64.urlsafe_b64encode(KEY).rstrip(b"=").decode(),
    }
    done = subprocess.run(
        [sys.executable, "-c", program], cwd=ROOT, env=environment, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return (done.stdout + done.stderr).splitlines()


def test_json_lines_from_rasa_sanic_and_connectors_name_the_conversation_by_its_pseudonym() -> None:
    lines = run("json")
    records = [json.loads(line) for line in lines]  # every line, Sanic's too, is one JSON object
    by_message = {record["message"]: record for record in records}
    turn = pseudonym(KEY, CONVERSATION)
    assert by_message["an action failed"]["conversation"] == turn
    assert by_message["an action failed"]["logger"] == "rasa.core.processor"
    assert by_message["an exception in a handler"]["conversation"] == turn
    assert by_message[f"delivery 1 of {turn} failed"]["conversation"] is None
    assert by_message["outside a turn"]["level"] == "INFO" and by_message["outside a turn"]["time"]
    assert "971501112233" not in "\n".join(lines)


def test_rasas_own_text_lines_by_default() -> None:
    lines = run("text")
    assert any(re.search(r" ERROR +rasa.core.processor +- an action failed", line) for line in lines), lines
    assert not any(line.startswith("{") for line in lines)


def test_json_asked_for_without_logging_yml_applied_says_so() -> None:
    """As when the ``rasa`` script reads logging.yml without connectors/ on its path: Rasa only logs why at debug."""
    lines = run("json", PROGRAM.replace('logging_config_file="logging.yml"', "logging_config_file=None"))
    assert any("logging.yml was not applied" in line for line in lines), lines
