"""The first knowledge questions after the action server starts arrive together (tests/e2e/test_injection.py
sends eight at a time): each asks for the retriever from its own worker thread, and chromadb's client set-up
is not thread-safe ("Could not connect to tenant default_tenant", so "Sorry, something went wrong")."""

import shutil
import threading

from bot.answering import retrieval
from bot.answering.index import KNOWLEDGE
from bot.core import caches


def test_threads_asking_for_the_retriever_at_once_get_the_same_one(indexed, tmp_path, monkeypatch):
    fresh = shutil.copytree(indexed, tmp_path / "chroma")  # a path no client of this process has opened yet
    monkeypatch.setenv("CLOSER_CHROMA_PATH", str(fresh))
    caches.reset()
    start, got, failed = threading.Barrier(8), [], []

    def ask() -> None:
        start.wait()
        try:
            got.append(retrieval.get_retriever(KNOWLEDGE))
        except Exception as exc:
            failed.append(exc)

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert failed == [] and len(got) == 8 and len({id(r) for r in got}) == 1
