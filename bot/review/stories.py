"""Rasa test stories from real conversations ("save as test story" in the manager console).

A conversation's tracker events become a test story file for ``rasa test core --stories``, written
by the rules of Rasa's own exporter (``rasa interactive``: YAMLStoryWriter with ``is_test_story``):
user messages with their entities inline and their intent, actions, ``slot_was_set`` and
``active_loop`` steps; ``action_listen``, ``action_session_start``, ``action_unlikely_intent``, bot
utterances and bookkeeping events (session_started, user_featurization, pause, …) are left out, and a
``restart`` starts a new story. Where a manager corrected a message in the NLU inbox
(:mod:`bot.review.annotations`), the story holds the corrected intent and entities.
"""

import asyncio
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.contracts.languages import DETECTED_BY
from bot.core.models import NluAnnotation
from bot.review.annotations import TRAINING_DATA_VERSION, Quoted, dump_yaml, rasa_example, strip_message

STORIES_DIR = Path("tests") / "stories"
# Rasa only treats files named test_*.yml as test stories (rasa.shared.constants.TEST_STORIES_FILE_PREFIX).
FILE_PREFIX = "test_"
_SKIPPED_ACTIONS = {"action_listen", "action_session_start", "action_unlikely_intent", "..."}


class InvalidStoryName(ValueError):
    """A story name without a letter or digit."""


class StoryExists(FileExistsError):
    """A test story file of that name exists and overwriting was not asked for."""


class NothingToSave(ValueError):
    """The events hold no customer message, so there is no story to test."""


def story_path(project_root: Path, name: str) -> Path:
    """Where the test story ``name`` is saved: ``<project_root>/tests/stories/test_<slug>.yml``, the slug
    being the name's letters and digits, lower-case, joined by ``_`` (at most 80 characters). Raises
    InvalidStoryName if nothing is left."""
    slug = re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")[:80].rstrip("_")
    if not slug:
        raise InvalidStoryName(f"story name {name!r} needs at least one letter or digit")
    return project_root / STORIES_DIR / f"{FILE_PREFIX}{slug}.yml"


def _entities(text: str, entities: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Entities that can be written inline: with offsets, duplicates (several extractors), spans overlapping an
    earlier, longer one and the detected language (the whole message, not words) dropped."""
    kept: list[dict[str, Any]] = []
    spans = sorted(
        (
            e
            for e in entities
            if isinstance(e.get("start"), int) and isinstance(e.get("end"), int) and e.get("extractor") != DETECTED_BY
        ),
        key=lambda e: (e["start"], -e["end"]),
    )
    for entity in spans:
        if not kept or entity["start"] >= kept[-1]["end"]:
            value = entity.get("value")
            kept.append(
                {
                    "start": entity["start"],
                    "end": entity["end"],
                    "entity": entity["entity"],
                    "value": text[entity["start"] : entity["end"]] if value is None else value,
                }
            )
    return kept


def _user_step(text: str, intent: str | None, entities: Sequence[Mapping[str, Any]]) -> dict[str, Any] | None:
    """A ``user:`` step (text with inline entities, plus ``intent:``); for a message whose text Rasa's
    syntax cannot hold, an ``intent:`` step with ``entities:``; None for a message with neither."""
    text, entities = strip_message(text, _entities(text, entities))
    # As in Rasa's writer, a button payload (/intent{...}) is written as is: Rasa parses it when testing.
    example = text if text.startswith("/") else rasa_example(text, entities) if text else None
    if example is not None:
        return {"user": example + "\n", **({"intent": intent} if intent else {})}
    if not intent:
        return None
    step: dict[str, Any] = {"intent": intent}
    if entities:
        step["entities"] = [{e["entity"]: e["value"]} for e in entities]
    return step


def _step(event: Mapping[str, Any], correction: NluAnnotation | None) -> dict[str, Any] | None:
    kind = event.get("event")
    if kind == "user":
        if correction is not None:
            return _user_step(correction.text, correction.corrected_intent, correction.corrected_entities)
        parse_data = event.get("parse_data") or {}
        return _user_step(
            event.get("text") or "", (parse_data.get("intent") or {}).get("name"), parse_data.get("entities") or []
        )
    if kind == "action":
        if event.get("name"):
            return None if event["name"] in _SKIPPED_ACTIONS else {"action": event["name"]}
        return {"bot": event["action_text"]} if event.get("action_text") else None
    if kind == "slot":
        return {"slot_was_set": [{event["name"]: event.get("value")}]}
    if kind == "active_loop":
        return {"active_loop": event.get("name")}
    return None


def story_yaml(
    name: str,
    events: Sequence[tuple[int, Mapping[str, Any]]],
    corrections: Mapping[int, NluAnnotation],
    comment: str = "",
) -> str:
    """The test story file (YAML text) for ``events``: (tracker event id, event dict as stored in the
    tracker store's ``data`` column) in the order they happened; ``corrections`` maps a user event's id
    to its annotation, whose text, corrected intent and entities replace the NLU's. A conversation with
    ``restart`` events becomes several stories, ``<name> (2)`` … ; ``comment`` (lines without ``#``)
    heads the file. Raises NothingToSave when no story has a customer message."""
    parts: list[list[dict[str, Any]]] = [[]]
    has_user = [False]
    for event_id, event in events:
        if event.get("event") == "restart":
            parts.append([])
            has_user.append(False)
            continue
        step = _step(event, corrections.get(event_id))
        if step is not None:
            parts[-1].append(step)
            has_user[-1] = has_user[-1] or "user" in step or "intent" in step
    steps = [part for part, user in zip(parts, has_user, strict=True) if user]
    if not steps:
        raise NothingToSave("the conversation has no customer message")
    stories = [
        {"story": name if len(steps) == 1 else f"{name} ({n})", "steps": part} for n, part in enumerate(steps, start=1)
    ]
    header = "".join(f"# {line}\n" for line in comment.splitlines())
    return header + dump_yaml({"version": Quoted(TRAINING_DATA_VERSION), "stories": stories})


def _write(path: Path, content: str, overwrite: bool) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if overwrite:
        temporary = path.with_name(f".{path.name}.tmp")
        temporary.write_text(content, encoding="utf-8")
        temporary.replace(path)
        return
    try:
        with path.open("x", encoding="utf-8") as handle:
            handle.write(content)
    except FileExistsError:
        raise StoryExists(f"{path} exists") from None


async def save_test_story(
    session: AsyncSession,
    project_root: Path,
    conversation_id: str,
    events: Sequence[tuple[int, Mapping[str, Any]]],
    name: str,
    *,
    overwrite: bool = False,
) -> Path:
    """Save conversation ``conversation_id`` as the Rasa test story ``name`` in
    ``<project_root>/tests/stories/test_<slug>.yml`` (see :func:`story_path`) and return the path.

    ``events``: the conversation's tracker events as (``events.id``, the ``data`` JSON decoded), in id
    order. The conversation's annotations that are not discarded (the latest per message) correct
    its user messages. Run it with ``rasa test core --stories tests/stories --model models/closer.tar.gz``.
    Raises InvalidStoryName, NothingToSave, or StoryExists when the file exists and ``overwrite`` is
    false (the file is then left as it was). The file is written in a thread."""
    path = story_path(project_root, name)
    query = (
        select(NluAnnotation)
        .where(NluAnnotation.conversation_id == conversation_id, NluAnnotation.status != "discarded")
        .order_by(NluAnnotation.id)
    )
    corrections = {a.event_id: a for a in (await session.scalars(query)).all()}
    content = story_yaml(name, events, corrections, f"Conversation {conversation_id}, saved from the manager console.")
    await asyncio.to_thread(_write, path, content, overwrite)
    return path
