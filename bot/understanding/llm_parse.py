"""The LLM as a second NLU for messages NLU could not place (intent ``nlu_fallback``): like Rasa Pro's
command generator, it is shown the domain's intents with one-line descriptions (``intents.yml``), its
entities, the last few messages and the message, and answers a strict JSON object
``{"intent": "<one of the intents>", "entities": [{"entity": "<one of the entities>", "value": "…"}]}``
(requested with OpenAI's ``response_format`` JSON schema, which llama.cpp's server enforces by a grammar).

The answer is validated against the domain: an unknown intent, or an answer that is not that JSON, means
nothing was understood (the caller keeps today's fallback); an entity not in the domain, or whose value is
not written in the message, is dropped — the LLM only points at words the customer wrote, so it never
decides a price, a discount or a stock figure; those values go through the same parsing and catalog
lookups as NLU's entities.

Bounded like every LLM call: only with ``CLOSER_LLM_MODEL`` set, within the budget
(:func:`bot.answering.budget.exceeded`; each call that got an answer is counted in it, recorded in
``llm_calls`` by :func:`bot.answering.budget.record`), with the configured timeout and retries
(:func:`bot.answering.llm.complete`). The system prompt depends on the domain only, so it stays the same
prefix call after call (a local server caches it).
"""

import json
import logging
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from bot.answering import budget, llm
from bot.core import db
from bot.core.settings import get_settings
from bot.core.turn import Turn
from bot.privacy.pii import Masker

log = logging.getLogger(__name__)

DESCRIPTIONS = Path(__file__).with_name("intents.yml")
FALLBACK_INTENT = "nlu_fallback"
HISTORY_MESSAGES = 6  # messages before the customer's latest one shown to the LLM
MAX_TOKENS = 120  # the JSON answer: an intent and a few entities
MAX_VALUE_CHARS = 100
PURPOSE = "understanding"  # the calls' ``purpose`` in ``llm_calls``

SYSTEM_PROMPT = """You classify one message of a customer chatting with the sales assistant of an office \
furniture company. Choose the ONE intent below that best matches what the customer wants in their latest \
message, and list the entities written in that message. Use the conversation only as context.

Intents:
{intents}

Entities (copy each value exactly as the customer wrote it; leave the list empty when there is none):
{entities}

Answer with JSON only: {{"intent": "<intent>", "entities": [{{"entity": "<entity>", "value": "<value>"}}]}}"""


@dataclass(frozen=True)
class Understanding:
    """What the LLM understood: ``intent`` (a domain intent), ``entities`` as Rasa's parse data has them
    (dicts with ``entity``, ``value``, ``start``, ``end`` (character offsets in the message),
    ``extractor`` ``"llm"``), and the call's ``model`` and ``latency_s`` (seconds)."""

    intent: str
    entities: list[dict[str, Any]]
    model: str
    latency_s: float


@cache
def descriptions() -> tuple[dict[str, str], dict[str, str]]:
    """(intent → description, entity → description) from ``intents.yml`` next to this module, read once. Raises
    OSError or yaml.YAMLError when the file cannot be read, KeyError when it lacks ``intents`` or ``entities``."""
    raw = yaml.safe_load(DESCRIPTIONS.read_text(encoding="utf-8"))
    return dict(raw["intents"]), dict(raw["entities"])


def choices(domain_intents: list[str], domain_entities: list[str]) -> tuple[list[str], list[str]]:
    """The intents and entities the LLM may choose: the domain's that have a description, in the order of
    ``intents.yml`` (Rasa sends the domain's sorted; a fixed order keeps the prompt, and so the answers of a
    local model and its cached prefix, the same whoever calls); ``nlu_fallback`` never."""
    intent_lines, entity_lines = descriptions()
    intents = [name for name in intent_lines if name in domain_intents and name != FALLBACK_INTENT]
    return intents, [name for name in entity_lines if name in domain_entities]


def system_prompt(intents: list[str], entities: list[str]) -> str:
    """The system prompt for these choices (names from :func:`choices`; depends on nothing else, so it is a stable
    cacheable prefix)."""
    intent_lines, entity_lines = descriptions()
    return SYSTEM_PROMPT.format(
        intents="\n".join(f"- {name}: {intent_lines[name]}" for name in intents),
        entities="\n".join(f"- {name}: {entity_lines[name]}" for name in entities),
    )


def messages_for(turn: Turn, intents: list[str], entities: list[str], masker: Masker) -> list[dict[str, str]]:
    """The chat messages of the call (``[{"role": "system", "content": …}, {"role": "user", "content": …}]``):
    the system prompt, then one user message with the last
    :data:`HISTORY_MESSAGES` messages before the latest and the latest message itself, e-mail addresses
    and phone numbers masked by ``masker``."""
    said = [(speaker, text) for speaker, text in turn.said if (speaker, text) != ("customer", turn.text)]
    history = "\n".join(f"{speaker}: {masker.mask(text)}" for speaker, text in said[-HISTORY_MESSAGES:])
    latest = masker.mask(turn.text)
    return [
        {"role": "system", "content": system_prompt(intents, entities)},
        {
            "role": "user",
            "content": f"Conversation so far:\n{history or '(none)'}\n\nLatest customer message:\n{latest}",
        },
    ]


def response_format(intents: list[str], entities: list[str]) -> dict[str, Any]:
    """OpenAI's ``response_format`` with the JSON schema of the answer (intent and entity names as enums)."""
    schema = {
        "type": "object",
        "properties": {
            "intent": {"type": "string", "enum": intents},
            "entities": {
                "type": "array",
                "maxItems": 8,
                "items": {
                    "type": "object",
                    "properties": {
                        "entity": {"type": "string", "enum": entities},
                        "value": {"type": "string", "maxLength": MAX_VALUE_CHARS},
                    },
                    "required": ["entity", "value"],
                    "additionalProperties": False,
                },
            },
        },
        "required": ["intent", "entities"],
        "additionalProperties": False,
    }
    return {"type": "json_schema", "json_schema": {"name": "nlu_parse", "strict": True, "schema": schema}}


def validate(
    answer: str, text: str, intents: list[str], entities: list[str], masker: Masker | None = None
) -> tuple[str, list[dict]] | None:
    """(intent, Rasa entity dicts as :class:`Understanding` has them) from the LLM's ``answer`` for the message
    ``text``, or None when the answer is not a JSON object naming one of ``intents``. Entity values have
    ``masker``'s placeholders restored; entities not in ``entities``, with a value that is not a string written
    in ``text`` (case-insensitive), or repeated, are dropped."""
    match = re.search(r"\{.*\}", answer, re.DOTALL)  # a model may wrap the JSON in a code fence
    try:
        parsed = json.loads(match.group(0) if match else answer)
    except ValueError:
        log.info("LLM understanding: the answer is not JSON (%d characters)", len(answer))
        return None
    if not isinstance(parsed, dict) or parsed.get("intent") not in intents:
        log.info(
            "LLM understanding: no domain intent in the answer (%r)",
            parsed.get("intent") if isinstance(parsed, dict) else None,
        )
        return None
    found: list[dict] = []
    raw = parsed.get("entities")
    for item in raw if isinstance(raw, list) else []:
        if not isinstance(item, dict) or item.get("entity") not in entities or not isinstance(item.get("value"), str):
            continue
        value = (masker.restore(item["value"]) if masker else item["value"]).strip()
        start = text.lower().find(value.lower()) if value and len(value) <= MAX_VALUE_CHARS else -1
        if start < 0 or any(e["entity"] == item["entity"] and e["start"] == start for e in found):
            continue
        end = start + len(value)
        found.append(
            {"entity": item["entity"], "value": text[start:end], "start": start, "end": end, "extractor": "llm"}
        )
    return parsed["intent"], found


async def understand(turn: Turn, domain_intents: list[str], domain_entities: list[str]) -> Understanding | None:
    """What the LLM understood of ``turn``'s message, choosing among ``domain_intents`` and
    ``domain_entities`` (the domain's); None when no LLM is configured, the budget is spent, the call
    failed or timed out, or the answer names no domain intent (the caller keeps NLU's fallback). A call that got
    an answer (valid or not) is recorded for the budget (:func:`bot.answering.budget.record`). Never raises
    for the LLM's failures: they are logged; raises SQLAlchemy's errors when the business DB cannot be used."""
    if not llm.configured() or not turn.text.strip():
        return None
    async with db.session_scope() as session:
        over = await budget.exceeded(session, turn.conversation_id)
    if over:
        log.info("LLM understanding skipped in %s: %s", turn.conversation_id, over)
        return None
    intents, entities = choices(domain_intents, domain_entities)
    masker = Masker(get_settings().default_phone_region)
    try:
        completion = await llm.complete(
            messages_for(turn, intents, entities, masker),
            response_format=response_format(intents, entities),
            max_tokens=MAX_TOKENS,
            temperature=0.0,
        )
    except llm.LLMError as exc:
        log.warning("LLM understanding failed in %s: %s", turn.conversation_id, exc)
        return None
    async with db.session_scope() as session:
        await budget.record(session, turn.conversation_id, PURPOSE, completion)
    parsed = validate(completion.text, turn.text, intents, entities, masker)
    if parsed is None:
        return None
    log.info(
        "LLM understanding in %s: %s %s (%s, %.1f s)",
        turn.conversation_id,
        parsed[0],
        [e["entity"] for e in parsed[1]],
        completion.model,
        completion.latency_s,
    )
    return Understanding(parsed[0], parsed[1], completion.model, completion.latency_s)
