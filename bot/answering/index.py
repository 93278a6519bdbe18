"""The Chroma index of ``knowledge/`` and the catalog, kept in step incrementally.

Collections in cosine space, embeddings always computed by our encoders and passed in (no Chroma embedding
function is attached, so Chroma's default model never runs):

- ``knowledge``: Markdown chunks (:func:`bot.answering.chunking.knowledge_chunks`), each stored as one record
  for the whole chunk plus one record per sentence (``<chunk id>::s<n>``, prefixed with the chunk's
  "Title — Heading"), so that a question can match the one sentence that answers it; all-MiniLM-L6-v2
  (:mod:`bot.answering.embeddings`);
- ``knowledge_e5`` and ``knowledge_use``: the same records embedded by multilingual-e5-small and by the
  Universal Sentence Encoder multilingual (:mod:`bot.answering.multilingual`), for questions in other languages;
- ``products``: one record per catalog product (:func:`bot.answering.chunking.product_chunk`); all-MiniLM-L6-v2.

Every record's metadata is its chunk's (``language`` among it) and names its ``chunk`` and its ``view``
(``chunk`` or ``sentence``).

:func:`sync` compares content hashes: new chunks are added, changed ones replaced, removed ones
deleted, unchanged ones skipped, and a JSON import log naming the encoder is written under ``index_log_dir``.
"""

import json
import logging
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import chromadb
from chromadb.api import ClientAPI
from chromadb.api.models.Collection import Collection
from chromadb.config import Settings as ChromaSettings
from tqdm import tqdm

from bot.answering import embeddings, multilingual
from bot.answering.chunking import Chunk
from bot.answering.extractive import sentences
from bot.core.caches import process_cache
from bot.core.settings import get_settings

KNOWLEDGE = "knowledge"
KNOWLEDGE_E5 = "knowledge_e5"
KNOWLEDGE_USE = "knowledge_use"
MULTILINGUAL = (KNOWLEDGE_E5, KNOWLEDGE_USE)  # kept in step with KNOWLEDGE by every sync of it
PRODUCTS = "products"
BATCH = 64
PROGRESS_ABOVE = 200  # chunks to embed before a progress bar is shown

log = logging.getLogger(__name__)


def open_client(path: Path | None = None) -> ClientAPI:
    """An embedded client persisting under ``path``, or, with no path, the configured one: an
    ``HttpClient`` to ``chroma_host:chroma_port`` when ``CLOSER_CHROMA_HOST`` is set, else an embedded
    client under ``chroma_path``. Telemetry is off (the machine may have no network)."""
    settings = get_settings()
    chroma = ChromaSettings(anonymized_telemetry=False)
    if path is None and settings.chroma_host:
        return chromadb.HttpClient(
            host=settings.chroma_host, port=settings.chroma_port, ssl=settings.chroma_ssl, settings=chroma
        )
    target = path or settings.chroma_path
    target.mkdir(parents=True, exist_ok=True)
    return chromadb.PersistentClient(path=str(target), settings=chroma)


@process_cache
def get_client() -> ClientAPI:
    """The process's configured client (see :func:`open_client`)."""
    return open_client()


def collection(client: ClientAPI, name: str) -> Collection:
    """The collection ``name`` in cosine space, created when missing."""
    return client.get_or_create_collection(name, embedding_function=None, configuration={"hnsw": {"space": "cosine"}})


def encoder(name: str) -> str:
    """The model that embeds the records of collection ``name``."""
    return {KNOWLEDGE_E5: multilingual.E5_MODEL, KNOWLEDGE_USE: multilingual.USE_MODEL}.get(name, embeddings.MODEL_NAME)


def _embed(name: str, texts: list[str]) -> list[list[float]]:
    if name == KNOWLEDGE_E5:
        return multilingual.e5_passages(texts)
    if name == KNOWLEDGE_USE:
        return multilingual.use(texts).tolist()
    return embeddings.embed(texts)


@dataclass
class IndexReport:
    """What one :func:`sync` run did to ``collection``, whose records ``encoder`` embeds; durations in seconds.
    ``failed`` holds ``{"id", "reason"}``; ``companions`` the reports of the :data:`MULTILINGUAL` collections
    synced with ``knowledge`` (their failures are in ``failed`` too, the reason prefixed with the collection)."""

    collection: str
    encoder: str = ""
    added: int = 0
    updated: int = 0
    deleted: int = 0
    skipped: int = 0
    failed: list[dict[str, str]] = field(default_factory=list)
    duration_s: float = 0.0
    embedding_s: float = 0.0
    started_at: str = ""
    companions: list["IndexReport"] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        """Whether any record was added, replaced or deleted here or in a companion."""
        return bool(self.added or self.updated or self.deleted or any(c.changed for c in self.companions))

    def summary(self) -> str:
        """For the command line: counts and seconds, one line per collection."""
        own = (
            f"{self.collection} ({self.encoder}): {self.added} added, {self.updated} updated, {self.deleted} "
            f"deleted, {self.skipped} unchanged, {len(self.failed)} failed in {self.duration_s:.1f} s "
            f"(embedding {self.embedding_s:.1f} s)"
        )
        return "\n".join([own, *(c.summary() for c in self.companions)])


def _valid(chunks: list[Chunk], report: IndexReport) -> list[Chunk]:
    seen: set[str] = set()
    valid = []
    for chunk in chunks:
        if not chunk.text.strip():
            report.failed.append({"id": chunk.id, "reason": "empty text"})
        elif chunk.id in seen:
            report.failed.append({"id": chunk.id, "reason": "duplicate id (two sections with the same heading?)"})
        else:
            seen.add(chunk.id)
            valid.append(chunk)
    return valid


def records(chunk: Chunk, sentence_views: bool) -> list[tuple[str, str, dict]]:
    """(id, text, metadata) of the records stored for ``chunk``: the chunk, then its sentences."""
    found = [(chunk.id, chunk.text, {**chunk.metadata, "chunk": chunk.id, "view": "chunk"})]
    if sentence_views:
        label = chunk.text.splitlines()[0]
        for n, sentence in enumerate(sentences(chunk.text), start=1):
            found.append(
                (f"{chunk.id}::s{n}", f"{label}: {sentence}", {**chunk.metadata, "chunk": chunk.id, "view": "sentence"})
            )
    return found


def sync(
    client: ClientAPI, name: str, chunks: list[Chunk], log_dir: Path | None = None, sentence_views: bool | None = None
) -> IndexReport:
    """Make collection ``name`` hold exactly ``chunks``, embedding only new and changed ones, and
    write the report as JSON to ``log_dir`` (default ``index_log_dir``). ``sentence_views``
    (default: for ``knowledge`` only) adds a record per sentence. Syncing ``knowledge`` first syncs the
    :data:`MULTILINGUAL` collections with the same records. A batch that fails
    (embedding or Chroma) is recorded under ``failed`` with the reason and the rest goes on; the
    next run retries it, since its chunks' hashes were not stored. The collection's ``generation`` is
    stamped anew when anything changed (the retriever rebuilds on it)."""
    started = time.perf_counter()
    report = IndexReport(name, encoder(name), started_at=datetime.now(UTC).isoformat(timespec="seconds"))
    views = name == KNOWLEDGE if sentence_views is None else sentence_views
    chunks = _valid(chunks, report)
    for companion in MULTILINGUAL if name == KNOWLEDGE else ():
        done = IndexReport(companion, encoder(companion), started_at=report.started_at)
        _update(client, done, chunks, views)
        report.companions.append(done)
        report.failed.extend({"id": f["id"], "reason": f"{companion}: {f['reason']}"} for f in done.failed)
    _update(client, report, chunks, views)
    if report.changed:
        collection(client, name).modify(metadata={"generation": f"{report.started_at} {time.time_ns()}"})
    report.duration_s = time.perf_counter() - started
    write_log(report, log_dir or get_settings().index_log_dir)
    return report


def _update(client: ClientAPI, report: IndexReport, chunks: list[Chunk], views: bool) -> None:
    """Bring ``report.collection`` in step with (valid) ``chunks`` by its encoder, counting into ``report``."""
    started = time.perf_counter()
    name = report.collection
    target = collection(client, name)
    stored = target.get(where={"view": "chunk"}, include=["metadatas"])
    hashes = {i: (m or {}).get("hash") for i, m in zip(stored["ids"], stored["metadatas"], strict=True)}
    todo = [c for c in chunks if hashes.get(c.id) != c.metadata["hash"]]
    report.skipped = len(chunks) - len(todo)
    gone = sorted(set(hashes) - {c.id for c in chunks})

    bar = tqdm(total=len(todo), desc=f"indexing {name}", unit="chunk", disable=len(todo) <= PROGRESS_ABOVE)
    for start in range(0, len(todo), BATCH):
        batch = todo[start : start + BATCH]
        rows = [r for c in batch for r in records(c, views)]
        try:
            t = time.perf_counter()
            vectors = _embed(name, [text for _, text, _ in rows])
            report.embedding_s += time.perf_counter() - t
            replaced = [c.id for c in batch if c.id in hashes]
            if replaced:
                target.delete(where={"chunk": {"$in": replaced}})
            target.add(
                ids=[i for i, _, _ in rows],
                embeddings=vectors,
                documents=[t for _, t, _ in rows],
                metadatas=[m for _, _, m in rows],
            )
        except Exception as exc:  # one bad batch must not lose the rest of the run
            log.exception("indexing a batch of %s failed", name)
            report.failed.extend({"id": c.id, "reason": f"{type(exc).__name__}: {exc}"} for c in batch)
        else:
            report.updated += sum(1 for c in batch if c.id in hashes)
            report.added += sum(1 for c in batch if c.id not in hashes)
        bar.update(len(batch))
    bar.close()
    if gone:
        target.delete(where={"chunk": {"$in": gone}})
        report.deleted = len(gone)
    report.duration_s = time.perf_counter() - started


def write_log(report: IndexReport, log_dir: Path) -> Path:
    """``<log_dir>/<UTC time>-<collection>.json`` with the report's fields."""
    log_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    path = log_dir / f"{stamp}-{report.collection}.json"
    path.write_text(json.dumps(asdict(report), indent=2), encoding="utf-8")
    return path
