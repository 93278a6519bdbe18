"""Retrieval quality on a labelled question set: hit@1, hit@5 and MRR@10.

A question file (YAML) has ``questions: [{q, chunk}]``, ``chunk`` one chunk id or a list of the chunks that
answer the question (in any language); a hit counts when a retrieved chunk id is a labelled one or one of its
parts (``<label>/2`` …).
"""

from dataclasses import dataclass
from pathlib import Path

import yaml

from bot.answering.retrieval import Mode, Retriever


@dataclass(frozen=True)
class Metrics:
    """Fractions in 0…1 over ``questions`` questions; ``misses`` are the questions not in the top 5."""

    questions: int
    hit_at_1: float
    hit_at_5: float
    mrr_at_10: float
    misses: tuple[str, ...]


def load_questions(path: Path) -> list[tuple[str, tuple[str, ...]]]:
    """(question, the chunk ids that answer it) pairs from a question file."""
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    labels = [item["chunk"] if isinstance(item["chunk"], list) else [item["chunk"]] for item in raw["questions"]]
    return [(item["q"], tuple(chunks)) for item, chunks in zip(raw["questions"], labels, strict=True)]


def rank(ids: list[str], labels: tuple[str, ...]) -> int | None:
    """The 1-based position of the first of ``ids`` that is one of ``labels`` or a part of one; None if none is."""
    for n, chunk_id in enumerate(ids, start=1):
        if any(chunk_id == label or chunk_id.startswith(label + "/") for label in labels):
            return n
    return None


def evaluate(
    retriever: Retriever,
    questions: list[tuple[str, tuple[str, ...]]],
    mode: Mode = "hybrid",
    language: str | None = None,
) -> Metrics:
    """Run every question through ``retriever`` (top 10; ``language`` the customer's, as in
    :meth:`~bot.answering.retrieval.Retriever.search`) and score the first labelled chunk's rank."""
    ranks = [rank([h.id for h in retriever.search(q, 10, mode, language)], labels) for q, labels in questions]
    n = len(questions)
    return Metrics(
        n,
        sum(1 for r in ranks if r == 1) / n,
        sum(1 for r in ranks if r and r <= 5) / n,
        sum(1 / r for r in ranks if r) / n,
        tuple(q for (q, _), r in zip(questions, ranks, strict=True) if not r or r > 5),
    )
