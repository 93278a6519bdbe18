"""Chunking, incremental indexing and retrieval quality on a real Chroma index with real embeddings."""

import json
import shutil
from pathlib import Path

import chromadb.utils.embedding_functions as chroma_functions
import pytest

from bot.answering import chunking, index
from bot.answering.evaluation import evaluate, load_questions
from bot.answering.retrieval import Retriever, Tokenizer
from bot.core.settings import ROOT

QUESTIONS = ROOT / "tests" / "data" / "knowledge_questions.yml"

POLICY = """# Delivery

We deliver across the UAE.

## Delivery charges

| Area | Charge |
|---|---|
| Dubai | **Free** over AED 2,000 |
| Rest of the UAE | AED 250 |

## Same-day delivery in Dubai

Order before 11:00 for same-day delivery.
"""


def test_markdown_is_split_by_heading_with_tables_as_sentences():
    chunks = chunking.split_markdown(POLICY, "policies/delivery.md")
    assert [c.id for c in chunks] == [
        "policies/delivery.md#delivery",
        "policies/delivery.md#delivery-charges",
        "policies/delivery.md#same-day-delivery-in-dubai",
    ]
    charges = chunks[1]
    assert charges.text.splitlines() == [
        "Delivery — Delivery charges",
        "Area: Dubai; Charge: Free over AED 2,000.",
        "Area: Rest of the UAE; Charge: AED 250.",
    ]
    assert charges.metadata["source"] == "policies/delivery.md" and charges.metadata["heading"] == "Delivery charges"
    assert len(charges.metadata["hash"]) == 64


def test_a_long_section_is_cut_on_lines_with_overlap():
    lines = [f"- Rule number {n} says something about deliveries and their schedule." for n in range(40)]
    chunks = chunking.split_markdown(
        "# Rules\n\n## Many rules\n\n" + "\n".join(lines), "rules.md", max_chars=500, overlap_chars=150
    )
    assert [c.id for c in chunks][:3] == ["rules.md#many-rules", "rules.md#many-rules/2", "rules.md#many-rules/3"]
    assert all(len(c.text) <= 500 + len("Rules — Many rules\n") for c in chunks)
    first, second = chunks[0].text.splitlines(), chunks[1].text.splitlines()
    assert second[1] in first  # the overlap: the second part starts with the end of the first
    body = [line for c in chunks for line in c.text.splitlines()[1:]]
    assert all(line.lstrip("- ") in " ".join(body) for line in lines)


def test_tokenizer_stems_and_drops_stop_words():
    assert Tokenizer("en")("How long does the delivery of chairs take?") == ["long", "deliveri", "chair"]


def _log(path: Path) -> dict:
    return json.loads(path.read_text())


def test_reindex_adds_replaces_deletes_and_skips_by_content_hash(tmp_path, monkeypatch):
    def no_default_embeddings(*args, **kwargs):
        raise AssertionError("Chroma's default embedding function ran")

    monkeypatch.setattr(chroma_functions.DefaultEmbeddingFunction, "__call__", no_default_embeddings)
    knowledge = tmp_path / "knowledge"
    shutil.copytree(ROOT / "knowledge" / "policies", knowledge / "policies")
    client, logs = index.open_client(tmp_path / "chroma"), tmp_path / "logs"
    first = index.sync(client, index.KNOWLEDGE, chunking.knowledge_chunks(knowledge), logs)
    total = first.added
    assert total > 40 and (first.updated, first.deleted, first.skipped, first.failed) == (0, 0, 0, [])

    again = index.sync(client, index.KNOWLEDGE, chunking.knowledge_chunks(knowledge), logs)
    assert (again.added, again.updated, again.deleted, again.skipped) == (0, 0, 0, total)

    delivery = knowledge / "policies" / "delivery.md"
    text = delivery.read_text()
    text = text.replace("There are no deliveries on Sunday.", "There are no deliveries on Sunday or on Eid.")
    text = text.replace("## Deliveries outside the UAE", "## Deliveries to the GCC")
    text += "\n## Delivery by drone\n\nNot yet: we deliver by van only.\n"
    delivery.write_text(text)
    (knowledge / "policies" / "empty.md").write_text("# Empty\n\n## Nothing here\n\n")
    edited = index.sync(client, index.KNOWLEDGE, chunking.knowledge_chunks(knowledge), logs)
    assert (edited.added, edited.updated, edited.deleted, edited.skipped) == (2, 1, 1, total - 2)

    logged = sorted(logs.glob("*-knowledge.json"))
    assert len(logged) == 3
    record = _log(logged[-1])
    assert {k: record[k] for k in ("collection", "added", "updated", "deleted", "skipped", "failed")} == {
        "collection": "knowledge",
        "added": 2,
        "updated": 1,
        "deleted": 1,
        "skipped": total - 2,
        "failed": [],
    }
    assert record["duration_s"] >= record["embedding_s"] > 0

    retriever = Retriever(index.collection(client, index.KNOWLEDGE))
    ids = set(retriever.ids)
    assert (
        "policies/delivery.md#delivery-by-drone" in ids and "policies/delivery.md#deliveries-outside-the-uae" not in ids
    )
    assert "Eid" in retriever.documents["policies/delivery.md#delivery-days-and-times"]
    sentences = index.collection(client, index.KNOWLEDGE).get(
        where={"chunk": "policies/delivery.md#delivery-days-and-times"}
    )
    assert sum("Eid" in d for d in sentences["documents"]) == 2  # the chunk and its one changed sentence, no stale copy


def test_a_failing_batch_is_logged_with_its_reason_and_retried_next_run(tmp_path, monkeypatch):
    client, logs = index.open_client(tmp_path / "chroma"), tmp_path / "logs"
    chunks = chunking.split_markdown(POLICY, "policies/delivery.md")
    real_embed = index.embeddings.embed
    monkeypatch.setattr(index.embeddings, "embed", lambda texts: (_ for _ in ()).throw(RuntimeError("model crashed")))
    failed = index.sync(client, index.KNOWLEDGE, [*chunks, chunking.Chunk("x.md#empty", " ", {"hash": "0"})], logs)
    assert failed.added == 0 and {f["reason"] for f in failed.failed} == {"RuntimeError: model crashed", "empty text"}
    assert _log(max(logs.glob("*.json")))["failed"][0]["reason"] in {"RuntimeError: model crashed", "empty text"}
    monkeypatch.setattr(index.embeddings, "embed", real_embed)
    assert index.sync(client, index.KNOWLEDGE, chunks, logs).added == 3


@pytest.fixture(scope="module")
def knowledge_retriever(chroma_dir) -> Retriever:
    return Retriever(index.collection(index.open_client(chroma_dir), index.KNOWLEDGE))


def test_question_set_is_big_enough_and_labels_real_chunks(knowledge_retriever):
    questions = load_questions(QUESTIONS)
    assert len(questions) >= 60
    assert {label for _, labels in questions for label in labels} <= set(knowledge_retriever.ids)


def test_hybrid_retrieval_finds_the_answering_chunk_in_the_top_5(knowledge_retriever):
    metrics = evaluate(knowledge_retriever, load_questions(QUESTIONS), "hybrid")
    assert metrics.hit_at_5 >= 0.9, metrics.misses
