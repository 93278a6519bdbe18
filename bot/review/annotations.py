"""The NLU inbox: managers' corrections of customer messages (table ``nlu_annotations``) and their
export into Rasa training data, ``data/nlu/annotations.yml`` for the business's default language and
``data/nlu/<language>/annotations.yml`` for another (:func:`export_file`).

A correction names the right intent and the entities of one customer message (a user event of Rasa's
tracker store). :func:`annotate` checks it against the project's ``domain.yml`` and Rasa's annotation
syntax; :func:`export` merges the pending corrections into the export file of the language each message
was written in (Rasa 3.x YAML, entities written as ``[text](entity)`` or ``[text]{"entity": "e", "value":
"v"}``) so that ``rasa data validate --fail-on-warnings`` and ``rasa train`` accept it. The functions flush
but leave the commit to the caller (``bot.core.db.session_scope``).
"""

import asyncio
import json
import logging
import os
import re
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.business import get_company
from bot.core.models import NluAnnotation, utcnow
from bot.core.tracker import TrackerReader, TrackerStoreUnavailable
from bot.review.conversations import message_languages, served_language

log = logging.getLogger(__name__)

EXPORT_FILE = Path("data") / "nlu" / "annotations.yml"  # the default language's (export_file)
STATUSES = ("pending", "exported", "discarded")
TRAINING_DATA_VERSION = "3.1"

# Rasa's entity annotation syntax (rasa.shared.nlu.training_data.entities_parser, Rasa 3.6):
# [entity text](entity_type:value) | [entity text]{entity dict} | [entity text][{dict}, {dict}]
_ENTITY = re.compile(
    r"\[(?P<entity_text>[^\]]+?)\](\((?P<entity>[^:)]+?)(?:\:(?P<value>[^)]+))?\)|\{(?P<entity_dict>[^}]+?)\}"
    r"|\[(?P<list_entity_dicts>.*?)\])"
)
_SINGLE_ENTITY_DICT = re.compile(r"{(?P<entity_dict>[^}]+?)\}")
_ESCAPE_CHARS = set("\b\f\n\r\t")  # rasa.shared.nlu.training_data.util.ESCAPE_DCT
_STRIP = "\n\r "  # rasa.shared.nlu.training_data.formats.rasa_yaml.STRIP_SYMBOLS
_INTENT_MESSAGE_PREFIX = "/"
_HEADER = (
    "# Training examples from the manager console's NLU inbox (bot/review/annotations.py). Each export adds\n"
    "# to what is here; edits are kept, comments are not.\n"
)
_export_lock = asyncio.Lock()


class InvalidAnnotation(ValueError):
    """A correction that cannot become Rasa training data; the message says why (unknown intent or
    entity, a span outside the text, overlapping or misaligned spans, text Rasa's syntax cannot hold)."""


class AnnotationNotFound(LookupError):
    """No annotation with that id."""


class AnnotationNotPending(ValueError):
    """The annotation was already exported or discarded."""


class ExportError(RuntimeError):
    """The project's NLU training data could not be read or written, or the tracker store could not be read;
    no annotation was marked exported."""


@dataclass(frozen=True)
class DomainNames:
    """The intent and entity names a domain declares."""

    intents: frozenset[str]
    entities: frozenset[str]


@dataclass(frozen=True)
class Conflict:
    """A pending annotation :func:`export` left pending: ``reason`` says what it clashes with, e.g. the
    same text (case and whitespace aside) as an example of another intent in ``data/nlu/sales.yml``."""

    annotation_id: int
    text: str
    intent: str
    reason: str


@dataclass(frozen=True)
class ExportSummary:
    """What one :func:`export` did. ``paths``: the export files examples were added to, one per language
    (:func:`export_file`, under the project root), in the order of their first example; ``written``: ids of
    annotations added to them; ``duplicates``: ids whose text was already an example of the same intent (not
    written, marked exported too); ``conflicts``: annotations left pending."""

    paths: list[Path]
    written: list[int]
    duplicates: list[int]
    conflicts: list[Conflict]


@dataclass(frozen=True)
class _Example:
    annotation_id: int
    text: str
    intent: str
    entities: list[dict[str, Any]]
    language: str


def export_file(language: str) -> Path:
    """Where :func:`export` writes the examples of ``language`` (one of the business's, ISO 639-1), relative to
    the project root: :data:`EXPORT_FILE` for the default language, ``data/nlu/<language>/annotations.yml``
    for another (its NLU data's directory)."""
    if language == get_company().default_language:
        return EXPORT_FILE
    return EXPORT_FILE.parent / language / EXPORT_FILE.name


def read_domain(path: Path) -> DomainNames:
    """The intents and entities declared in a Rasa domain file (``domain.yml``); an entry may be a
    name or a one-key mapping (``- greet: {use_entities: true}``). Blocking file read. Raises OSError
    if the file cannot be read, yaml.YAMLError if it is not YAML."""
    raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}

    def names(entries: Iterable[Any] | None) -> frozenset[str]:
        return frozenset(str(next(iter(e))) if isinstance(e, dict) else str(e) for e in entries or ())

    return DomainNames(names(raw.get("intents")), names(raw.get("entities")))


# --- Rasa's annotation syntax -------------------------------------------------------------------------


def annotated_text(text: str, entities: list[Mapping[str, Any]]) -> str:
    """``text`` with ``entities`` (non-overlapping ``{start, end, entity, value}``, offsets into
    ``text``) written inline the way Rasa's TrainingDataWriter does: ``[span](entity)`` when the value
    is the span itself, else ``[span]{"entity": "e", "value": "v"}``."""
    parts, position = [], 0
    for entity in sorted(entities, key=lambda e: e["start"]):
        span = text[entity["start"] : entity["end"]]
        value = entity.get("value")
        if value is None or value == span:
            attributes = f"({entity['entity']})"
        else:
            attributes = json.dumps({"entity": entity["entity"], "value": value})
        parts += [text[position : entity["start"]], f"[{span}]", attributes]
        position = entity["end"]
    parts.append(text[position:])
    return "".join(parts)


def parse_annotated(example: str) -> tuple[str, list[dict[str, Any]]]:
    """The plain text and entities (``{start, end, entity, value}``) of an annotated example, read the
    way Rasa reads training data. Raises ValueError for an entity dict that is not JSON."""
    entities, offset = [], 0
    for match in _ENTITY.finditer(example):
        groups = match.groupdict()
        span = groups["entity_text"]
        start = match.start() - offset
        offset += len(match.group(0)) - len(span)
        if groups["entity_dict"]:
            attributes = [json.loads(f"{{{groups['entity_dict']}}}")]
        elif groups["entity"]:
            attributes = [{"entity": groups["entity"], "value": groups["value"] or span}]
        else:
            attributes = [
                json.loads(f"{{{m['entity_dict']}}}") for m in _SINGLE_ENTITY_DICT.finditer(groups["list_entity_dicts"])
            ]
        entities += [
            {"start": start, "end": start + len(span), "entity": a.get("entity"), "value": a.get("value", span)}
            for a in attributes
        ]
    return _ENTITY.sub(lambda m: m["entity_text"], example), entities


def rasa_example(text: str, entities: list[Mapping[str, Any]]) -> str | None:
    """``text`` annotated with ``entities`` (see :func:`annotated_text`), or None when Rasa would read
    the result back as another text or other entities (e.g. the text itself contains ``[a](b)``)."""
    example = annotated_text(text, entities)
    expected = [
        {
            "start": e["start"],
            "end": e["end"],
            "entity": e["entity"],
            "value": text[e["start"] : e["end"]] if e.get("value") is None else e["value"],
        }
        for e in sorted(entities, key=lambda e: e["start"])
    ]
    try:
        same = parse_annotated(example) == (text, expected)
    except ValueError:
        return None
    return example if same else None


def strip_message(text: str, entities: list[Mapping[str, Any]]) -> tuple[str, list[dict[str, Any]]]:
    """``text`` without surrounding whitespace (Rasa strips it when reading) and ``entities`` with their
    offsets moved to match."""
    lead = len(text) - len(text.lstrip())
    return text.strip(), [dict(e, start=e["start"] - lead, end=e["end"] - lead) for e in entities]


def normalise(text: str) -> str:
    """The form in which two examples count as the same text: case-folded, whitespace collapsed."""
    return " ".join(text.split()).casefold()


# --- YAML ------------------------------------------------------------------------------------------------


class Quoted(str):
    """A string written double-quoted (``version: "3.1"``)."""


class _Dumper(yaml.SafeDumper):
    pass


_STR = "tag:yaml.org,2002:str"
_OTHER_BREAKS = set("\r\x85\u2028\u2029")  # line breaks to YAML 1.1 (PyYAML), not to 1.2 (Rasa's ruamel.yaml)


def _style(s: str) -> str | None:
    """Double quotes (escapes) for a string with other line breaks than \\n, a literal block for lines."""
    return '"' if _OTHER_BREAKS & set(s) else "|" if "\n" in s else None


_Dumper.add_representer(str, lambda d, s: d.represent_scalar(_STR, s, style=_style(s)))
_Dumper.add_representer(Quoted, lambda d, s: d.represent_scalar(_STR, str(s), style='"'))


def dump_yaml(data: Any) -> str:
    """``data`` as YAML the way Rasa's files look: keys in insertion order, multi-line strings as
    literal blocks (``|``) where YAML allows, :class:`Quoted` strings double-quoted, Unicode as is."""
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=1 << 20)


def _needs_object_form(example: str) -> bool:
    """True for an example a ``- example`` line cannot hold (Rasa then writes ``- text: |`` items)."""
    return bool(_ESCAPE_CHARS & set(example)) or len(example.splitlines()) != 1


def _read_examples(examples: Any) -> list[str]:
    """The examples of an ``examples:`` value, as Rasa's RasaYAMLReader reads them."""
    if isinstance(examples, str):
        return [line[1:].strip(_STRIP) for line in examples.splitlines() if line.startswith("-")]
    if isinstance(examples, list):
        return [str(item.get("text", "")).strip(_STRIP) for item in examples if isinstance(item, dict)]
    return []


def _add_examples(examples: Any, new: list[str]) -> str | list[dict[str, Any]]:
    """An ``examples:`` value (a ``- example`` block or a list of ``text:`` items, None for a new intent)
    with ``new`` appended; existing entries are kept as they are, or turned into ``text:`` items when a
    new example needs that form."""
    if isinstance(examples, list) or any(_needs_object_form(e) for e in new):
        items = examples if isinstance(examples, list) else [{"text": e + "\n"} for e in _read_examples(examples)]
        return items + [{"text": e + "\n"} for e in new]
    block = examples.rstrip("\n") + "\n" if isinstance(examples, str) and examples.strip() else ""
    return block + "".join(f"- {e}\n" for e in new)


def _survives_yaml(example: str) -> bool:
    """True if ``example`` reads back unchanged from an NLU file's ``examples:``."""
    loaded = yaml.safe_load(dump_yaml({"examples": _add_examples(None, [example])}))
    return _read_examples(loaded["examples"]) == [example]


# --- the inbox -------------------------------------------------------------------------------------------


def _validated(domain: DomainNames, text: str, intent: str, entities: Any) -> tuple[str, list[dict[str, Any]]]:
    """The stripped text and normalised entities of a correction; raises InvalidAnnotation."""
    if not isinstance(intent, str) or intent not in domain.intents:
        raise InvalidAnnotation(f"unknown intent {intent!r}: domain.yml declares {', '.join(sorted(domain.intents))}")
    if not text.strip():
        raise InvalidAnnotation("the message is empty")
    if text.strip().startswith(_INTENT_MESSAGE_PREFIX):
        raise InvalidAnnotation(f"{text.strip()!r} is a button payload (/intent), not a customer's words")
    if not isinstance(entities, list):
        raise InvalidAnnotation("entities must be a list of {start, end, entity, value}")
    checked = []
    for entity in entities:
        if not isinstance(entity, Mapping):
            raise InvalidAnnotation(f"an entity must be a mapping with start, end, entity and value, not {entity!r}")
        name, start, end, value = entity.get("entity"), entity.get("start"), entity.get("end"), entity.get("value")
        if name not in domain.entities:
            declared = ", ".join(sorted(domain.entities))
            raise InvalidAnnotation(f"unknown entity {name!r}: domain.yml declares {declared}")
        offsets = all(isinstance(n, int) and not isinstance(n, bool) for n in (start, end))
        if not offsets or not 0 <= start < end <= len(text):
            raise InvalidAnnotation(
                f"entity {name!r}: span {start!r}–{end!r} is not inside the {len(text)}-character text"
            )
        span = text[start:end]
        if span != span.strip():
            raise InvalidAnnotation(f"entity {name!r}: span {span!r} starts or ends with whitespace")
        if (start > 0 and text[start - 1].isalnum() and span[0].isalnum()) or (
            end < len(text) and text[end].isalnum() and span[-1].isalnum()
        ):
            raise InvalidAnnotation(
                f"entity {name!r}: span {span!r} cuts a word of {text!r} (Rasa's tokens are whole words)"
            )
        if value is not None and not isinstance(value, str):
            raise InvalidAnnotation(f"entity {name!r}: value must be text, not {value!r}")
        checked.append({"start": start, "end": end, "entity": name, "value": (value or "").strip() or span})
    checked.sort(key=lambda e: e["start"])
    for before, after in pairwise(checked):
        if after["start"] < before["end"]:
            raise InvalidAnnotation(f"entities {before['entity']!r} and {after['entity']!r} overlap")
    text, checked = strip_message(text, checked)
    example = rasa_example(text, checked)
    if example is None or not _survives_yaml(example):
        raise InvalidAnnotation(
            f"{text!r} cannot be written in Rasa's training data syntax with these entities "
            "(e.g. brackets or braces in the text would read as entity markup)"
        )
    return text, checked


async def annotate(
    session: AsyncSession,
    project_root: Path,
    *,
    conversation_id: str,
    event_id: int,
    text: str,
    predicted_intent: str | None,
    predicted_confidence: float | None,
    intent: str,
    entities: list[Mapping[str, Any]],
    created_by: str,
) -> NluAnnotation:
    """Record a manager's correction of one customer message as a pending annotation.

    ``event_id``: the user event's id in Rasa's tracker store (``conversation_messages.id``); ``text``
    the message as the tracker holds it; ``predicted_intent``/``predicted_confidence`` (0…1) what Rasa's
    NLU said; ``intent`` the right intent; ``entities`` a list of ``{"start", "end", "entity",
    "value"?}`` with character offsets into ``text`` (end exclusive), ``value`` defaulting to the span
    (give it for a synonym, e.g. "chairs" → "office_chair"); ``created_by`` the manager's email.

    The stored ``text`` has surrounding whitespace removed and entity offsets moved to match. A message
    has at most one pending annotation: a second correction replaces the first. Reads
    ``<project_root>/domain.yml`` (in a thread). Raises InvalidAnnotation — logged, nothing stored —
    when the intent or an entity is not in the domain, a span is outside the text, cuts a word, has
    surrounding whitespace or overlaps another, or the text cannot be written as a Rasa example;
    OSError or yaml.YAMLError if ``domain.yml`` cannot be read. Flushes; the caller commits."""
    domain = await asyncio.to_thread(read_domain, project_root / "domain.yml")
    try:
        text, checked = _validated(domain, text, intent, entities)
    except InvalidAnnotation as exc:
        log.warning("annotation of event %s in %s rejected: %s", event_id, conversation_id, exc)
        raise
    query = select(NluAnnotation).where(NluAnnotation.event_id == event_id, NluAnnotation.status == "pending")
    annotation = (await session.execute(query.with_for_update())).scalar_one_or_none()
    if annotation is None:
        annotation = NluAnnotation(event_id=event_id, status="pending")
        session.add(annotation)
    annotation.conversation_id, annotation.text = conversation_id, text
    annotation.predicted_intent, annotation.predicted_confidence = predicted_intent, predicted_confidence
    annotation.corrected_intent, annotation.corrected_entities = intent, checked
    annotation.created_by, annotation.created_at = created_by, utcnow()
    await session.flush()
    return annotation


async def discard(session: AsyncSession, annotation_id: int) -> NluAnnotation:
    """Mark a pending annotation ``discarded`` (kept for the record, never exported). Raises
    AnnotationNotFound for an unknown id, AnnotationNotPending if it was exported or discarded.
    Flushes; the caller commits."""
    annotation = await session.get(NluAnnotation, annotation_id, with_for_update=True)
    if annotation is None:
        raise AnnotationNotFound(f"no annotation {annotation_id}")
    if annotation.status != "pending":
        raise AnnotationNotPending(f"annotation {annotation_id} is already {annotation.status}")
    annotation.status = "discarded"
    await session.flush()
    return annotation


async def counts(session: AsyncSession) -> dict[str, int]:
    """How many corrections have each status (pending, exported, discarded), for the statuses that have any."""
    rows = await session.execute(select(NluAnnotation.status, func.count()).group_by(NluAnnotation.status))
    return dict(rows.tuples().all())


async def list_annotations(
    session: AsyncSession, *, status: str | None = None, conversation_id: str | None = None
) -> list[NluAnnotation]:
    """Annotations, oldest first, optionally only those with ``status`` (one of :data:`STATUSES`) or of
    one conversation. Raises ValueError for an unknown status."""
    if status is not None and status not in STATUSES:
        raise ValueError(f"unknown status {status!r}; expected one of {', '.join(STATUSES)}")
    query = select(NluAnnotation).order_by(NluAnnotation.id)
    if status is not None:
        query = query.where(NluAnnotation.status == status)
    if conversation_id is not None:
        query = query.where(NluAnnotation.conversation_id == conversation_id)
    return list((await session.scalars(query)).all())


# --- export ----------------------------------------------------------------------------------------------


def _nlu_files(data_dir: Path) -> list[Path]:
    return sorted(p for p in data_dir.rglob("*") if p.suffix in (".yml", ".yaml") and p.is_file())


def _load(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ExportError(f"cannot read {path}: {exc}") from exc


def _nlu_items(document: Any) -> list[dict[str, Any]]:
    items = document.get("nlu") if isinstance(document, dict) else None
    return [item for item in items or () if isinstance(item, dict)]


def _known(project_root: Path) -> tuple[dict[str, dict[str, str]], dict[str, str]]:
    """What the project's NLU data already holds: normalised example text → {intent: file}, and entity
    synonyms (lower-case text → value) from ``synonym:`` items and ``"value"`` annotations."""
    examples: dict[str, dict[str, str]] = {}
    synonyms: dict[str, str] = {}
    for path in _nlu_files(project_root / "data"):
        where = str(path.relative_to(project_root))
        for item in _nlu_items(_load(path)):
            if "synonym" in item:
                synonyms.update((e.lower(), str(item["synonym"])) for e in _read_examples(item.get("examples")))
            if "intent" not in item:
                continue
            for example in _read_examples(item.get("examples")):
                try:
                    text, entities = parse_annotated(example)
                except ValueError:  # malformed entity markup: Rasa rejects the file; the text still counts
                    text, entities = _ENTITY.sub(lambda m: m["entity_text"], example), []
                examples.setdefault(normalise(text), {}).setdefault(str(item["intent"]), where)
                synonyms.update(
                    (text[e["start"] : e["end"]].lower(), str(e["value"]))
                    for e in entities
                    if e["value"] != text[e["start"] : e["end"]]
                )
    return examples, synonyms


def _synonym_clash(example: _Example, synonyms: dict[str, str]) -> str | None:
    for entity in example.entities:
        span = example.text[entity["start"] : entity["end"]]
        known = synonyms.get(span.lower())
        if entity["value"] != span and known is not None and known != entity["value"]:
            return f"{span!r} is already a synonym of {known!r}, not {entity['value']!r}"
    return None


def _write_atomically(path: Path, content: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = path.stat().st_mode & 0o777 if path.exists() else 0o644
    with tempfile.NamedTemporaryFile(
        "w", encoding="utf-8", dir=path.parent, prefix=f".{path.name}.", delete=False
    ) as handle:
        try:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
            os.chmod(handle.name, mode)
            os.replace(handle.name, path)
        except BaseException:
            os.unlink(handle.name)
            raise


def _merged(target: Path, new: dict[str, list[str]]) -> str:
    """The content of the export file ``target`` with ``new`` (intent → annotated examples) added: its items and
    examples kept in order, new intents appended. Raises ExportError when the file is no Rasa NLU data."""
    document = (_load(target) if target.exists() else None) or {}
    if not isinstance(document, dict):
        raise ExportError(f"{target} is not Rasa training data (a mapping with nlu:)")
    items = _nlu_items(document)
    by_intent = {str(item["intent"]): item for item in items if "intent" in item}
    for intent, added in new.items():
        item = by_intent.get(intent)
        if item is None:
            item = by_intent[intent] = {"intent": intent, "examples": None}
            items.append(item)
        item["examples"] = _add_examples(item.get("examples"), added)
    others = {key: value for key, value in document.items() if key not in ("version", "nlu")}
    return _HEADER + dump_yaml({"version": Quoted(TRAINING_DATA_VERSION), **others, "nlu": items})


def _export_files(project_root: Path, pending: list[_Example]) -> ExportSummary:
    """Blocking part of :func:`export`: decide each example's fate and rewrite the export files it adds to."""
    try:
        domain = read_domain(project_root / "domain.yml")
    except (OSError, yaml.YAMLError) as exc:
        raise ExportError(f"cannot read {project_root / 'domain.yml'}: {exc}") from exc
    examples, synonyms = _known(project_root)
    new: dict[Path, dict[str, list[str]]] = {}  # export file → intent → annotated examples
    written, duplicates, conflicts = [], [], []
    for example in pending:
        labelled = examples.get(normalise(example.text), {})
        others = {intent: where for intent, where in labelled.items() if intent != example.intent}
        clash = _synonym_clash(example, synonyms)
        entity_names = {e["entity"] for e in example.entities}
        undeclared = sorted(({example.intent} - domain.intents) | (entity_names - domain.entities))
        if undeclared:
            conflicts.append(
                Conflict(
                    example.annotation_id,
                    example.text,
                    example.intent,
                    f"domain.yml no longer declares {', '.join(undeclared)}",
                )
            )
        elif others:
            where = ", ".join(f"{intent} ({path})" for intent, path in sorted(others.items()))
            conflicts.append(
                Conflict(
                    example.annotation_id,
                    example.text,
                    example.intent,
                    f"the same text is already an example of another intent: {where}",
                )
            )
        elif example.intent in labelled:
            duplicates.append(example.annotation_id)
        elif clash:
            conflicts.append(Conflict(example.annotation_id, example.text, example.intent, clash))
        else:
            target = export_file(example.language)
            new.setdefault(target, {}).setdefault(example.intent, []).append(
                annotated_text(example.text, example.entities)
            )
            examples.setdefault(normalise(example.text), {})[example.intent] = str(target)
            synonyms.update(
                (example.text[e["start"] : e["end"]].lower(), e["value"])
                for e in example.entities
                if e["value"] != example.text[e["start"] : e["end"]]
            )
            written.append(example.annotation_id)
    contents = {project_root / target: _merged(project_root / target, added) for target, added in new.items()}
    for path, content in contents.items():
        _write_atomically(path, content)
    return ExportSummary(list(contents), written, duplicates, conflicts)


async def export(session: AsyncSession, project_root: Path, tracker: TrackerReader) -> ExportSummary:
    """Write every pending annotation as a Rasa 3.x training example of its corrected intent into the export
    file of its message's language (:func:`export_file`, under ``project_root``), merged with what the file
    already holds (its examples and items kept in order; new intents appended; the file replaced
    atomically). The language is the conversation's ``language`` slot right after the message in
    ``tracker`` (:func:`bot.review.conversations.message_languages`), the default language for a message the
    tracker store does not have.

    An annotation whose text (case and whitespace aside) is already an example of the same intent in
    any NLU file under ``data/`` is not written again but marked exported (a duplicate). One whose text
    is an example of another intent, or whose entity value contradicts a known synonym, is a
    :class:`Conflict`: not written, left pending, reported for the manager to resolve (``rasa data
    validate`` would reject the data otherwise); so is one whose intent or entity ``domain.yml`` no
    longer declares. Written annotations and duplicates become ``exported``
    with ``exported_at`` now. File work runs in a thread; exports in this process run one at a time.
    Raises ExportError (logged; nothing marked) if the tracker store, ``domain.yml`` or an NLU file cannot
    be read (nothing written) or an export file cannot be written (those of other languages may be).
    Flushes; the caller commits — if that fails, the files already hold the examples and the next export
    counts them as duplicates."""
    async with _export_lock:
        pending = await list_annotations(session, status="pending")
        try:
            languages: dict[int, str] = {}
            for conversation_id in sorted({a.conversation_id for a in pending}):
                languages |= message_languages(await tracker.conversation_events(conversation_id))
            batch = [
                _Example(
                    a.id,
                    a.text,
                    a.corrected_intent,
                    list(a.corrected_entities),
                    languages.get(a.event_id) or served_language(None),
                )
                for a in pending
            ]
            summary = await asyncio.to_thread(_export_files, project_root, batch)
        except (OSError, TrackerStoreUnavailable) as exc:
            log.error("NLU export failed: %s", exc)
            raise ExportError(f"NLU export failed: {exc}") from exc
        except ExportError as exc:
            log.error("NLU export failed: %s", exc)
            raise
        done, now = set(summary.written) | set(summary.duplicates), utcnow()
        for annotation in pending:
            if annotation.id in done:
                annotation.status, annotation.exported_at = "exported", now
        await session.flush()
    log.info(
        "NLU export to %s: %d written, %d duplicates, %d conflicts",
        ", ".join(map(str, summary.paths)) or "no file",
        len(summary.written),
        len(summary.duplicates),
        len(summary.conflicts),
    )
    return summary
