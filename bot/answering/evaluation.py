"""Retrieval quality on a labelled question set: hit@1, hit@5 and MRR@10.

A question file (YAML) has ``questions: [{q, chunk}]``; a hit counts when a retrieved chunk id is
the labelled one or one of its parts (``<label>/2`` …).
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


def load_questions(path: Path) -> list[tuple[str, str]]:
    """(question, chunk id) pairs from a question file."""
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    return [(item["q"], item["chunk"]) for item in raw["questions"]]


def _rank(ids: list[str], label: str) -> int | None:
    for n, chunk_id in enumerate(ids, start=1):
        if chunk_id == label or chunk_id.startswith(label + "/"):
            return n
    return None


def evaluate(retriever: Retriever, questions: list[tuple[str, str]], mode: Mode = "hybrid") -> Metrics:
    """Run every question through ``retriever`` (top 10) and score the labelled chunk's rank."""
    ranks = [_rank([h.id for h in retriever.search(q, k=10, mode=mode)], label) for q, label in questions]
    n = len(questions)
    return Metrics(
        n,
        sum(1 for r in ranks if r == 1) / n,
        sum(1 for r in ranks if r and r <= 5) / n,
        sum(1 / r for r in ranks if r) / n,
        tuple(q for (q, _), r in zip(questions, ranks, strict=True) if not r or r > 5),
    )
