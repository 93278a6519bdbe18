"""The answer Closer gives with no LLM: the retrieved passage's sentences that best answer the
question, cut to whole sentences and kept in the passage's order, with the passage's source."""

import re

import numpy as np

from bot.answering import embeddings, multilingual

_SENTENCE_END = re.compile(r"(?<=[.!?؟])\s+(?=[A-Z0-9\"'(А-ЯЁ\u0600-\u06ff])")  # Latin, Cyrillic, Arabic
KEEP_RATIO = 0.7
_BULLET = re.compile(r"^\s*(?:[-*•]|\d+[.)])\s+")


def sentences(passage: str) -> list[str]:
    """Whole sentences of a chunk's text (its first line, the "Title — Heading" label, left out);
    a bullet item is one sentence or more, without its bullet mark."""
    out: list[str] = []
    for line in passage.splitlines()[1:]:
        line = _BULLET.sub("", line).strip()
        out.extend(s.strip() for s in _SENTENCE_END.split(line) if s.strip())
    return out


def extract(question: str, passage: str, max_chars: int = 450) -> str:
    """The sentences of ``passage`` closest to ``question`` (cosine of embeddings: all-MiniLM-L6-v2's for a
    question in mostly Latin letters, else the multilingual USE's, whose cosines run on a like scale), as many as
    fit in ``max_chars`` (at least one, never cut mid-sentence) and at least ``KEEP_RATIO`` × the best
    one's cosine, in the passage's order. Blocking."""
    found = sentences(passage)
    if len(found) <= 1:
        return found[0] if found else passage.strip()
    label = passage.splitlines()[0]  # sentences are read with their "Title — Heading", as indexed
    texts = [question, *(f"{label}: {s}" for s in found)]
    vectors = np.asarray(embeddings.embed(texts)) if multilingual.latin(question) else multilingual.use(texts)
    cosine = vectors[1:] @ vectors[0]
    order = np.argsort(-cosine, kind="stable")
    kept: list[int] = []
    length = 0
    for i in order:
        if kept and (length + len(found[i]) > max_chars or cosine[i] < KEEP_RATIO * cosine[order[0]]):
            break
        kept.append(int(i))
        length += len(found[i]) + 1
    return " ".join(found[i] for i in sorted(kept))
