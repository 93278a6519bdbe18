"""Benchmark (run by hand: `make bench-retrieval`, or `python -m bench.retrieval PART…` with parts
``knowledge``, ``languages``, ``catalog``): retrieval quality and speed, all measured in this run on real Chroma
with real embeddings.

1. ``knowledge``: hit@1, hit@5 and MRR@10 of BM25 only (the baseline), dense only and hybrid (weighted RRF) on
   tests/data/knowledge_questions.yml over the knowledge/ index; query latency p50/p95 per method, embedding
   included (200 queries each);
2. ``languages``: per question set in English, Russian and Arabic (tests/data/knowledge_questions{,_ru,_ar}.yml,
   the customer's language set to the set's), hit@5, MRR@10 and query latency p50/p95 (200 queries each) of
   MiniLM hybrid (the baseline, today's retrieval), e5 alone, e5 + USE (``multilingual``), hybrid + e5's vote and
   the routed retriever (what customers get), with ratios against the baseline;
3. ``catalog``: indexing the real 3,694-row IKEA catalog (../shared/data/catalog/) into a fresh collection; the
   top-5 IKEA products for the 480 real shopper queries of WANDS (../shared/data/queries/wands_queries.tsv),
   written to bench/results/wands_top5.tsv for reading.

Prints tables with ratios against the baseline measured in the same run. Takes about 3–4 minutes on 2 cores.
"""

import asyncio
import csv
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from chromadb.api import ClientAPI

from bot.answering import chunking, embeddings, index, multilingual
from bot.answering.evaluation import evaluate, load_questions
from bot.answering.retrieval import Mode, Retriever
from bot.commerce import catalog
from bot.core import db

ROOT = Path(__file__).resolve().parent.parent

SHARED = ROOT.parent / "shared" / "data"
QUESTIONS = ROOT / "tests" / "data" / "knowledge_questions.yml"
LANGUAGE_QUESTIONS = {
    "en": QUESTIONS,
    "ru": ROOT / "tests" / "data" / "knowledge_questions_ru.yml",
    "ar": ROOT / "tests" / "data" / "knowledge_questions_ar.yml",
}
LANGUAGE_METHODS: dict[str, Mode] = {
    "MiniLM hybrid": "hybrid",
    "e5": "e5",
    "e5+USE": "multilingual",
    "hybrid+e5": "hybrid+e5",
    "routed": "routed",
}
IKEA = SHARED / "catalog" / "ikea_sa_furniture.csv"
MAPPING = ROOT / "tests" / "data" / "ikea_sa_mapping.yml"
WANDS = SHARED / "queries" / "wands_queries.tsv"
OUT = ROOT / "bench" / "results" / "wands_top5.tsv"
MODES = ("bm25", "dense", "hybrid")
LATENCY_QUERIES = 200


def percentile(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100)[q - 1]


def ratio(value: float, baseline: float) -> str:
    return f"{value / baseline:.2f}×" if baseline else "–"


async def import_ikea(url: str) -> tuple[catalog.ImportReport, list[chunking.Chunk]]:
    async with db.session_scope(url) as session:
        report = await catalog.import_catalog(session, IKEA, catalog.ColumnMapping.load(MAPPING))
    async with db.session_scope(url) as session:
        chunks = await chunking.catalog_chunks(session, {})
    await db.get_engine(url).dispose()
    return report, chunks


def languages(knowledge: Retriever) -> None:
    """Part 2: the per-language table."""
    print(
        f"\nRetrieval per language: hit@5, MRR@10, query latency ({LATENCY_QUERIES} queries, ms); "
        "ratios against MiniLM hybrid"
    )
    print(f"{'lang':<5} {'method':<14} {'hit@5':>6} {'MRR@10':>7} {'p50':>6} {'p95':>6}", end=" ")
    print(f"{'hit@5 ×':>8} {'MRR ×':>6} {'p95 ×':>6}")
    for language, path in LANGUAGE_QUESTIONS.items():
        questions = load_questions(path)
        texts = [q for q, _ in questions] * (LATENCY_QUERIES // len(questions) + 1)
        rows = {}
        for name, mode in LANGUAGE_METHODS.items():
            metrics = evaluate(knowledge, questions, mode, language)
            times = []
            for text in texts[:LATENCY_QUERIES]:
                start = time.perf_counter()
                knowledge.search(text, 5, mode, language)
                times.append((time.perf_counter() - start) * 1000)
            rows[name] = (metrics, statistics.median(times), percentile(times, 95))
        base, _, base_p95 = rows["MiniLM hybrid"]
        for name, (m, p50, p95) in rows.items():
            vs = [ratio(m.hit_at_5, base.hit_at_5), ratio(m.mrr_at_10, base.mrr_at_10), ratio(p95, base_p95)]
            print(f"{language:<5} {name:<14} {m.hit_at_5:>6.3f} {m.mrr_at_10:>7.3f} {p50:>6.1f} {p95:>6.1f}", end=" ")
            print(f"{vs[0]:>8} {vs[1]:>6} {vs[2]:>6}")
        print(
            f"{language:<5} 1-minute load average: {os.getloadavg()[0]:.2f} (latency is wall time: other work slows it)"
        )
        print(f"{language:<5} routed misses ({len(rows['routed'][0].misses)}): " + " | ".join(rows["routed"][0].misses))


def knowledge_tables(knowledge: Retriever) -> None:
    """Part 1: the methods on the English question set, quality and latency."""
    questions = load_questions(QUESTIONS)

    print(
        f"\nRetrieval quality on {len(questions)} questions ({QUESTIONS.relative_to(ROOT)}), "
        f"{len(knowledge.ids)} chunks; ratios against BM25"
    )
    print(f"{'method':<8} {'hit@1':>7} {'hit@5':>7} {'MRR@10':>7} {'MRR ratio':>10}")
    metrics = {mode: evaluate(knowledge, questions, mode) for mode in MODES}
    for mode, m in metrics.items():
        vs_bm25 = ratio(m.mrr_at_10, metrics["bm25"].mrr_at_10)
        print(f"{mode:<8} {m.hit_at_1:>7.3f} {m.hit_at_5:>7.3f} {m.mrr_at_10:>7.3f} {vs_bm25:>10}")

    texts = [q for q, _ in questions] * (LATENCY_QUERIES // len(questions) + 1)
    print(f"\nQuery latency, {LATENCY_QUERIES} queries each, embedding included (ms); ratios against BM25")
    print(f"{'method':<8} {'p50':>7} {'p95':>7} {'p95 ratio':>10}")
    latency = {}
    for mode in MODES:
        times = []
        for text in texts[:LATENCY_QUERIES]:
            start = time.perf_counter()
            knowledge.search(text, k=5, mode=mode)
            times.append((time.perf_counter() - start) * 1000)
        latency[mode] = (statistics.median(times), percentile(times, 95))
    for mode, (p50, p95) in latency.items():
        print(f"{mode:<8} {p50:>7.1f} {p95:>7.1f} {ratio(p95, latency['bm25'][1]):>10}")


def catalog_tables(client: ClientAPI, work: Path) -> None:
    """Part 3: indexing the IKEA catalog and the WANDS queries."""
    url = f"sqlite+aiosqlite:///{work / 'ikea.db'}"
    db.upgrade(url)
    imported, chunks = asyncio.run(import_ikea(url))
    started = time.perf_counter()
    report = index.sync(client, index.PRODUCTS, chunks, work / "logs")
    indexing_s = time.perf_counter() - started
    rebuild = time.perf_counter()
    products = Retriever(index.collection(client, index.PRODUCTS))
    bm25_build_s = time.perf_counter() - rebuild
    unchanged = index.sync(client, index.PRODUCTS, chunks, work / "logs")
    print(f"\nIndexing the IKEA catalog: {imported.summary()}")
    print(f"{'step':<34} {'seconds':>8}")
    print(f"{'embed + store ' + str(report.added) + ' products':<34} {indexing_s:>8.1f}")
    print(f"{'  of which embedding':<34} {report.embedding_s:>8.1f}")
    print(f"{'BM25 index built on load':<34} {bm25_build_s:>8.1f}")
    print(f"{'re-index, nothing changed':<34} {unchanged.duration_s:>8.1f}")

    with WANDS.open(encoding="utf-8") as f:
        queries = list(csv.DictReader(f, delimiter="\t"))
    OUT.parent.mkdir(parents=True, exist_ok=True)
    times = []
    with OUT.open("w", encoding="utf-8", newline="") as f:
        out = csv.writer(f, delimiter="\t")
        out.writerow(["query_id", "query", "query_class", "rank", "sku", "name", "category", "similarity"])
        for q in queries:
            start = time.perf_counter()
            hits = products.search(q["query"], k=5)
            times.append((time.perf_counter() - start) * 1000)
            for rank, hit in enumerate(hits, start=1):
                out.writerow(
                    [
                        q["query_id"],
                        q["query"],
                        q["query_class"],
                        rank,
                        hit.metadata["sku"],
                        hit.metadata["title"],
                        hit.metadata["heading"],
                        f"{hit.similarity:.3f}",
                    ]
                )
    print(
        f"\nWANDS: {len(queries)} shopper queries over {len(products.ids)} products, "
        f"hybrid top 5 → {OUT.relative_to(ROOT)}"
    )
    print(f"latency p50 {statistics.median(times):.1f} ms, p95 {percentile(times, 95):.1f} ms")


def main() -> int:
    parts = sys.argv[1:] or ["knowledge", "languages", "catalog"]
    embeddings.load()
    multilingual.load()
    work = Path(tempfile.mkdtemp(prefix="closer-bench-"))
    client = index.open_client(work / "chroma")
    report = index.sync(client, index.KNOWLEDGE, chunking.knowledge_chunks(ROOT / "knowledge"), work / "logs")
    print(report.summary())
    knowledge = Retriever(
        index.collection(client, index.KNOWLEDGE),
        multilingual=(index.collection(client, index.KNOWLEDGE_E5), index.collection(client, index.KNOWLEDGE_USE)),
    )
    if "knowledge" in parts:
        knowledge_tables(knowledge)
    if "languages" in parts:
        languages(knowledge)
    if "catalog" in parts:
        catalog_tables(client, work)
    return 0


if __name__ == "__main__":
    sys.exit(main())
