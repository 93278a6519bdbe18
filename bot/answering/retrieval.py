"""Hybrid retrieval over one Chroma collection: dense (all-MiniLM-L6-v2, cosine, queried in Chroma;
a chunk scores the best cosine among its records, the whole chunk or one of its sentences, see
:mod:`bot.answering.index`) and lexical (BM25 from ``bm25s`` over whole chunks, spaCy blank-tokenizer tokens,
Snowball-stemmed), fused by reciprocal rank fusion: ``score = Σ 1 / (RRF_K + rank)`` over the two
rankings.

The BM25 index is built in memory from the collection's documents when a :class:`Retriever` is
made (about 1 s for the 3,694-item catalog); :func:`get_retriever` rebuilds it when the collection
changed (the ``generation`` that :func:`bot.answering.index.sync` stamps on it).
"""

import asyncio
import threading
import time
from dataclasses import dataclass
from typing import Literal

import bm25s
import numpy as np
import spacy
import Stemmer
from chromadb.api.models.Collection import Collection

from bot.answering import embeddings, index
from bot.core import caches
from bot.core.settings import get_settings

RRF_K = 5  # tuned on tests/data/knowledge_questions.yml with bench/retrieval.py (60 is the paper's)
DENSE_WEIGHT = 1.5  # weighted RRF: the dense ranking's vote relative to BM25's (tuned likewise)
CANDIDATES = 20  # chunks per method, before fusion
REFRESH_S = 10.0  # how often get_retriever looks for a newer generation of the collection
Mode = Literal["hybrid", "dense", "bm25"]
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
    """A retrieved chunk. ``similarity`` is the cosine between query and chunk (-1…1); ``score``
    the fused RRF score (or the single method's when ``mode`` is not hybrid)."""

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


class Retriever:
    """Search one collection. Blocking (embedding, Chroma); use :meth:`asearch` from async code."""

    def __init__(self, target: Collection, language: str = "en"):
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

    def search(self, query: str, k: int = 5, mode: Mode = "hybrid") -> list[Hit]:
        """The ``k`` best chunks for ``query``, best first. Each hit's similarity is its cosine to
        the query, computed for BM25-only hits too, so it can be compared with a threshold."""
        if not self.ids or not query.strip():
            return []
        n = min(len(self.ids), max(CANDIDATES, k))
        vector = embeddings.embed([query])[0]
        similarity = self._dense(vector, n) if mode != "bm25" else {}
        lexical = self._lexical(query, n) if mode != "dense" else []
        dense = sorted(similarity, key=similarity.__getitem__, reverse=True)
        scores: dict[str, float] = {}
        for weight, ranking in ((DENSE_WEIGHT, dense), (1.0, lexical)):
            for rank, chunk_id in enumerate(ranking, start=1):
                scores[chunk_id] = scores.get(chunk_id, 0.0) + weight / (RRF_K + rank)
        best = sorted(scores, key=lambda i: (-scores[i], i))[:k]
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

    async def asearch(self, query: str, k: int = 5, mode: Mode = "hybrid") -> list[Hit]:
        """:meth:`search` in a worker thread, for async callers."""
        return await asyncio.to_thread(self.search, query, k, mode)

    async def arank(self, query: str, ids: list[str]) -> list[tuple[str, float]]:
        """:meth:`rank` in a worker thread, for async callers."""
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
            current = _live[name] = Retriever(target, get_settings().knowledge_language)
        return current
