"""Hybrid retrieval over one Chroma collection: dense (all-MiniLM-L6-v2, cosine, queried in Chroma;
a chunk scores the best cosine among its records, the whole chunk or one of its sentences, see
:mod:`bot.answering.index`) and lexical (BM25 from ``bm25s`` over whole chunks, spaCy blank-tokenizer tokens,
Snowball-stemmed), fused by reciprocal rank fusion: ``score = Σ 1 / (RRF_K + rank)`` over the two
rankings.

The BM25 index is built in memory from the collection's documents when a :class:`Retriever` is
made (about 1 s for the 3,694-item catalog); :func:`get_retriever` rebuilds it when the collection
changed (the ``generation`` that :func:`bot.answering.index.sync` stamps on it).

Knowledge questions are routed by script (``mode="routed"``), as measured by bench/retrieval.py on the question
sets in English, Russian and Arabic (tests/data/knowledge_questions*.yml):

- mostly Latin letters: the hybrid above plus a third vote, multilingual-e5-small's ranking (``E5_WEIGHT``);
- any other script: multilingual only (``mode="multilingual"``). Every record of the ``knowledge_e5`` and
  ``knowledge_use`` collections is held in memory; a record scores the sum of its e5 and USE cosines to the
  question, each standardised over all records (z-scores: the two cosines live on different scales), a chunk
  its best record's. Chunks in the default language are ranked, and each in turn gives its place to the best
  remaining chunk of the same file in the customer's language when there is one (``policies/ru/delivery.md``
  for ``policies/delivery.md``): e5 scores a passage in the question's own language far above any passage in
  another, whatever it says, so passages in two languages are never compared by score.

Whatever the route, only chunks in the default language or the customer's are returned.
"""

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Literal

import bm25s
import numpy as np
import spacy
import Stemmer
from chromadb.api.models.Collection import Collection

from bot.answering import embeddings, index, multilingual
from bot.core import caches
from bot.core.business import get_company
from bot.core.settings import get_settings
from bot.observability.metrics import RETRIEVAL_SECONDS

RRF_K = 5  # tuned on tests/data/knowledge_questions.yml with bench/retrieval.py (60 is the paper's)
DENSE_WEIGHT = 1.5  # weighted RRF: the dense ranking's vote relative to BM25's (tuned likewise)
E5_WEIGHT = 1.5  # weighted RRF: e5's vote beside those two for a Latin-script question (tuned likewise; 1.0 lost 2)
USE_SCALE = 1.54
"""A multilingual hit's similarity is its USE cosine × this: at 0.40 (``answer_min_similarity``, a MiniLM cosine)
it answers as large a share of the English question set (87%) as MiniLM's cosine does. e5's cosine cannot serve:
off-topic questions ("в чём смысл жизни") score 0.73–0.83 against the knowledge, on-topic ones 0.78–0.87."""
CANDIDATES = 20  # chunks per method, before fusion
REFRESH_S = 10.0  # how often get_retriever looks for a newer generation of the collection
Mode = Literal["hybrid", "dense", "bm25", "hybrid+e5", "e5", "multilingual", "routed"]
_E5_THREADS = ThreadPoolExecutor(2, thread_name_prefix="e5-query")  # e5 beside MiniLM for a Latin-script question
_SNOWBALL = {
    "en": "english",
    "ar": "arabic",
    "ru": "russian",
    "de": "german",
    "fr": "french",
    "es": "spanish",
    "it": "italian",
    "pt": "portuguese",
    "nl": "dutch",
    "tr": "turkish",
}


@dataclass(frozen=True)
class Hit:
    """A retrieved chunk. ``similarity`` is the MiniLM cosine between query and chunk (-1…1), for a
    multilingual hit its USE cosine × :data:`USE_SCALE`; ``score`` the fused score (RRF, or the sum of z-scores
    for a multilingual hit; the single method's when ``mode`` is ``dense``, ``bm25`` or ``e5``)."""

    id: str
    text: str
    metadata: dict
    similarity: float
    score: float

    @property
    def source(self) -> str:
        """What a customer is told the answer came from: "Delivery — Delivery charges"."""
        title, heading = self.metadata.get("title", ""), self.metadata.get("heading", "")
        return title if not heading or heading == title else f"{title} — {heading}"


class Tokenizer:
    """Lower-case word tokens from spaCy's blank tokenizer for ``language``, stop words and
    punctuation dropped, stemmed with Snowball when it has the language."""

    def __init__(self, language: str = "en"):
        self._nlp = spacy.blank(language)
        self._stem = Stemmer.Stemmer(_SNOWBALL[language]).stemWord if language in _SNOWBALL else (lambda w: w)

    def __call__(self, text: str) -> list[str]:
        return [self._stem(t.lower_) for t in self._nlp.make_doc(text) if not (t.is_stop or t.is_punct or t.is_space)]


@dataclass(frozen=True)
class _Vectors:
    """The records of the multilingual collections, row by row: ``chunks`` their chunks' positions in
    :attr:`Retriever.ids`, ``e5`` (records, 384) and ``use`` (records, 512) their unit vectors."""

    chunks: np.ndarray
    e5: np.ndarray
    use: np.ndarray


def _load_vectors(e5: Collection, use: Collection, ids: list[str]) -> _Vectors | None:
    """The records both collections hold, of chunks among ``ids``; None when there are none (not indexed yet)."""
    position = {chunk_id: n for n, chunk_id in enumerate(ids)}
    found = e5.get(include=["embeddings", "metadatas"])
    other = use.get(include=["embeddings"])
    use_of = dict(zip(other["ids"], other["embeddings"], strict=True))
    rows = [
        (position[metadata["chunk"]], vector, use_of[record])
        for record, vector, metadata in zip(found["ids"], found["embeddings"], found["metadatas"], strict=True)
        if metadata["chunk"] in position and record in use_of
    ]
    if not rows:
        return None
    return _Vectors(np.array([r[0] for r in rows]), np.array([r[1] for r in rows]), np.array([r[2] for r in rows]))


def _z(values: np.ndarray) -> np.ndarray:
    return (values - values.mean()) / (values.std() or 1.0)


class Retriever:
    """Search one collection, and for ``knowledge`` also the multilingual collections ``multilingual``
    (``knowledge_e5``, ``knowledge_use``). Blocking (embedding, Chroma); use :meth:`asearch` from async code."""

    def __init__(
        self, target: Collection, language: str = "en", multilingual: tuple[Collection, Collection] | None = None
    ):
        self.collection = target
        data = target.get(where={"view": "chunk"}, include=["documents", "metadatas"])
        self.ids: list[str] = data["ids"]
        self.documents: dict[str, str] = dict(zip(self.ids, data["documents"], strict=True))
        self.metadatas: dict[str, dict] = {i: m or {} for i, m in zip(self.ids, data["metadatas"], strict=True)}
        self.generation = (target.metadata or {}).get("generation")
        self.tokenize = Tokenizer(language)
        self._bm25 = bm25s.BM25()
        if self.ids:
            self._bm25.index([self.tokenize(d) for d in data["documents"]], show_progress=False)
        self.default_language = get_company().default_language
        self.language_of = {i: m.get("language") or self.default_language for i, m in self.metadatas.items()}
        self._vectors = _load_vectors(*multilingual, self.ids) if multilingual else None

    def _dense(self, vector: list[float], n: int) -> dict[str, float]:
        """Best cosine per chunk among the ``n`` × 4 nearest records."""
        result = self.collection.query(query_embeddings=[vector], n_results=n * 4, include=["distances", "metadatas"])
        best: dict[str, float] = {}
        for distance, metadata in zip(result["distances"][0], result["metadatas"][0], strict=True):
            chunk_id = metadata["chunk"]
            best[chunk_id] = max(best.get(chunk_id, -1.0), 1.0 - distance)
        return best

    def _lexical(self, query: str, n: int) -> list[str]:
        scores = self._bm25.get_scores(self.tokenize(query))
        top = np.argsort(-scores, kind="stable")[:n]
        return [self.ids[i] for i in top if scores[i] > 0]

    def _best(self, record_scores: np.ndarray) -> np.ndarray:
        """Per chunk (positions of :attr:`ids`), the best of its records' scores (-inf: no record)."""
        assert self._vectors is not None
        best = np.full(len(self.ids), -np.inf)
        np.maximum.at(best, self._vectors.chunks, record_scores)
        return best

    def _preferred(self, scores: np.ndarray, language: str | None) -> list[int]:
        """Chunk positions by ``scores``, best first: the default language's, each giving its place to the best
        remaining chunk in ``language`` of the same file (``policies/<language>/x.md`` for ``policies/x.md``),
        and the chunks in ``language`` of files that have no such counterpart (module docstring)."""
        default = self.default_language
        sources = {m.get("source") for i, m in self.metadatas.items() if self.language_of[i] == default}
        ranked: list[int] = []
        queues: dict[str, list[int]] = {}  # default-language file → its counterpart's chunks, best first
        for n in map(int, np.argsort(-scores, kind="stable")):
            chunk_id = self.ids[n]
            if self.language_of[chunk_id] == default:
                ranked.append(n)
            elif language != default and self.language_of[chunk_id] == language:
                counterpart = self.metadatas[chunk_id].get("source", "").replace(f"/{language}/", "/", 1)
                if counterpart in sources:
                    queues.setdefault(counterpart, []).append(n)
                else:
                    ranked.append(n)
        preferred = []
        for n in ranked:
            queue = queues.get(self.metadatas[self.ids[n]].get("source", ""))
            preferred.append(queue.pop(0) if queue else n)
        return preferred

    def _multilingual(self, query: str, k: int, language: str | None, with_use: bool) -> list[Hit]:
        """The ``k`` best chunks by e5 (``with_use``: and USE, z-scores summed), preferring ``language``'s."""
        assert self._vectors is not None
        e5 = self._vectors.e5 @ multilingual.e5_query(query)
        use = self._vectors.use @ multilingual.use([query])[0]
        scores = self._best(_z(e5) + _z(use) if with_use else e5)
        similarity = self._best(use) * USE_SCALE
        hits = []
        for n in self._preferred(scores, language)[:k]:
            chunk_id = self.ids[n]
            metadata = self.metadatas[chunk_id]
            hits.append(Hit(chunk_id, self.documents[chunk_id], metadata, float(similarity[n]), float(scores[n])))
        return hits

    def search(self, query: str, k: int = 5, mode: Mode = "hybrid", language: str | None = None) -> list[Hit]:
        """The ``k`` best chunks for ``query``, best first, in the default language or ``language`` (the
        customer's; None: the default). ``routed``: ``hybrid+e5`` for a question in mostly Latin letters,
        ``multilingual`` for any other (the module docstring; both fall back to ``hybrid`` when the retriever
        has no multilingual collections). Each hybrid hit's similarity is its MiniLM cosine to the query, computed for
        BM25-only hits too, so it can be compared with a threshold."""
        if not self.ids or not query.strip():
            return []
        if mode == "routed":
            mode = "hybrid+e5" if multilingual.latin(query) else "multilingual"
        if self._vectors is None and mode in ("hybrid+e5", "e5", "multilingual"):
            mode = "hybrid"
        if mode in ("e5", "multilingual"):
            return self._multilingual(query, k, language, mode == "multilingual")
        n = min(len(self.ids), max(CANDIDATES, k))
        e5_vector = _E5_THREADS.submit(multilingual.e5_query, query) if mode == "hybrid+e5" else None
        vector = embeddings.embed([query])[0]  # while e5 embeds the query on another core (both free the GIL)
        similarity = self._dense(vector, n) if mode != "bm25" else {}
        lexical = self._lexical(query, n) if mode != "dense" else []
        dense = sorted(similarity, key=similarity.__getitem__, reverse=True)
        rankings = [(DENSE_WEIGHT, dense), (1.0, lexical)]
        if e5_vector is not None:
            assert self._vectors is not None
            e5 = self._best(self._vectors.e5 @ e5_vector.result())
            rankings.append((E5_WEIGHT, [self.ids[i] for i in np.argsort(-e5, kind="stable")[:n]]))
        allowed = {self.default_language, language or self.default_language}
        scores: dict[str, float] = {}
        for weight, ranking in rankings:
            for rank, chunk_id in enumerate(ranking, start=1):
                scores[chunk_id] = scores.get(chunk_id, 0.0) + weight / (RRF_K + rank)
        best = sorted((i for i in scores if self.language_of[i] in allowed), key=lambda i: (-scores[i], i))[:k]
        missing = [i for i in best if i not in similarity]
        if missing:
            stored = self.collection.get(where={"chunk": {"$in": missing}}, include=["embeddings", "metadatas"])
            for metadata, emb in zip(stored["metadatas"], stored["embeddings"], strict=True):
                chunk_id = metadata["chunk"]
                similarity[chunk_id] = max(similarity.get(chunk_id, -1.0), float(np.dot(vector, emb)))
        return [Hit(i, self.documents[i], self.metadatas[i], similarity[i], scores[i]) for i in best]

    def rank(self, query: str, ids: list[str]) -> list[tuple[str, float]]:
        """``ids`` (present in the collection) ordered by cosine to ``query``, with the cosine."""
        if not ids or not query.strip():
            return [(i, 0.0) for i in ids]
        vector = np.asarray(embeddings.embed([query])[0])
        stored = self.collection.get(ids=ids, include=["embeddings"])
        cosine = {i: float(np.dot(vector, e)) for i, e in zip(stored["ids"], stored["embeddings"], strict=True)}
        return sorted(((i, cosine.get(i, -1.0)) for i in ids), key=lambda pair: -pair[1])

    async def asearch(self, query: str, k: int = 5, mode: Mode = "hybrid", language: str | None = None) -> list[Hit]:
        """:meth:`search` in a worker thread, for async callers (timed in ``closer_retrieval_seconds``)."""
        with RETRIEVAL_SECONDS.labels(mode).time():
            return await asyncio.to_thread(self.search, query, k, mode, language)

    async def arank(self, query: str, ids: list[str]) -> list[tuple[str, float]]:
        """:meth:`rank` in a worker thread, for async callers (timed in ``closer_retrieval_seconds{mode="rank"}``)."""
        with RETRIEVAL_SECONDS.labels("rank").time():
            return await asyncio.to_thread(self.rank, query, ids)


_live: dict[str, Retriever] = {}
_checked: dict[str, float] = {}
caches.on_reset(_live.clear)
caches.on_reset(_checked.clear)
# One thread at a time opens the client and builds retrievers: chromadb's client set-up is not thread-safe
# (the first questions after a start, each in its own worker thread, failed in it), and one build is enough.
_building = threading.Lock()


def get_retriever(name: str) -> Retriever:
    """The retriever of the configured client's collection ``name``. At most every ``REFRESH_S``
    seconds it checks the collection's generation and rebuilds after a re-index. Blocking; safe to
    call from several threads at once."""
    with _building:
        now = time.monotonic()
        current = _live.get(name)
        if current is not None and now - _checked.get(name, 0.0) < REFRESH_S:
            return current
        _checked[name] = now
        target = index.collection(index.get_client(), name)
        if current is None or (target.metadata or {}).get("generation") != current.generation:
            client = index.get_client()
            companions = (
                (index.collection(client, index.KNOWLEDGE_E5), index.collection(client, index.KNOWLEDGE_USE))
                if name == index.KNOWLEDGE
                else None
            )
            current = _live[name] = Retriever(target, get_settings().knowledge_language, companions)
        return current
