"""Capture the conversations the quality scorer is validated on (run by hand, about 5 minutes, with a trained
model in models/): ``.venv/bin/python -m tests.data.scoring.capture``.

Runs every dialogue of dialogues.yml through the real stack (:func:`bench.stack.closer_stack`: Rasa server,
action server, a fresh business DB, no LLM) on the REST channel, one conversation each, then writes
conversations.json: per dialogue id, the conversation's tracker events as Rasa stored them
(``[id, type_name, timestamp, action_name, data]``), the knowledge answers its bot messages carry
(:class:`bot.review.conversations.KnowledgeDetail` fields) and the :class:`bot.review.scoring.Facts` read from
the business DB. Labels (labels.yml) are given by a person reading the transcripts, not by this script.
"""

import asyncio
import dataclasses
import json
import sys
from pathlib import Path

import httpx
import yaml

from bench.stack import closer_stack
from bot.core import db
from bot.core.models import Conversation
from bot.core.tracker import TrackerReader
from bot.review import conversations, scoring

HERE = Path(__file__).resolve().parent
SENDER = "web-scoring-{}"


async def talk(rasa_url: str, dialogues: list[dict]) -> None:
    async with httpx.AsyncClient(timeout=120) as client:
        for dialogue in dialogues:
            for message in dialogue["messages"]:
                response = await client.post(
                    f"{rasa_url}/webhooks/rest/webhook",
                    json={"sender": SENDER.format(dialogue["id"]), "message": message},
                )
                response.raise_for_status()
            print(f"{dialogue['id']}: {len(dialogue['messages'])} messages", flush=True)


async def dump(database_url: str, tracker_url: str, dialogues: list[dict]) -> dict[str, dict]:
    reader = TrackerReader(tracker_url)
    captured: dict[str, dict] = {}
    async with db.session_scope(database_url) as session:
        await conversations.refresh(reader, session)
        for dialogue in dialogues:
            conversation_id = SENDER.format(dialogue["id"])
            events = await reader.conversation_events(conversation_id)
            row = await session.get(Conversation, conversation_id)
            knowledge = await conversations.knowledge_details(
                session, conversation_id, conversations.answer_ids(events)
            )
            captured[dialogue["id"]] = {
                "events": [[e.id, e.type_name, e.timestamp, e.name, e.data] for e in events],
                "knowledge": {answer_id: dataclasses.asdict(detail) for answer_id, detail in knowledge.items()},
                "facts": dataclasses.asdict(await scoring.facts_of(session, row)),
            }
    await reader.close()
    return captured


def main() -> int:
    dialogues = yaml.safe_load((HERE / "dialogues.yml").read_text())
    with closer_stack("closer-scoring-capture-") as stack:
        asyncio.run(talk(stack.rasa_url, dialogues))
        captured = asyncio.run(dump(stack.database_url, stack.settings.tracker_database_url, dialogues))
    (HERE / "conversations.json").write_text(json.dumps(captured, ensure_ascii=False, indent=1) + "\n")
    print(f"wrote {HERE / 'conversations.json'}: {len(captured)} conversations")
    return 0


if __name__ == "__main__":
    sys.exit(main())
