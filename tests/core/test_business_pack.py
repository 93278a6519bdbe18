"""The example business pack under examples/ai-studio is data only: its company, pricing rules and formula load
through the code every business uses, its knowledge is indexed and answers questions in its languages with the
source named, and no file outside the pack mentions the business (its names, tax number, phone, e-mail or website
are read from the pack itself; tests of the pack name its folder, nothing else)."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from bot.answering import chunking, index
from bot.answering.retrieval import get_retriever
from bot.commerce.formula import load_formula
from bot.commerce.pricing import load_pricing
from bot.core import caches
from bot.core.business import get_company
from bot.core.settings import ROOT

PACK = ROOT / "examples" / "ai-studio"


@pytest.fixture
def pack(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """The pack's knowledge/ in use, with a Chroma index of it under ``tmp_path``."""
    monkeypatch.setenv("CLOSER_KNOWLEDGE_DIR", str(PACK / "knowledge"))
    monkeypatch.setenv("CLOSER_KNOWLEDGE_LANGUAGE", "ru")
    monkeypatch.setenv("CLOSER_CHROMA_PATH", str(tmp_path / "chroma"))
    caches.reset()
    yield PACK / "knowledge"
    caches.reset()


def test_the_pack_loads_as_any_business_does(pack):
    company = get_company()
    assert (company.languages, company.default_language, company.currency) == (("ru", "en"), "ru", "RUB")
    assert company.vat_rate == load_pricing().vat_rate
    formula = load_formula()
    assert formula is not None and formula.currency == "RUB"
    assert set(formula.packages) == {"chatbot", "document_search", "automation", "audit", "support"}


def test_the_packs_knowledge_answers_in_russian_and_english_naming_its_source(pack, tmp_path):
    chunks = chunking.knowledge_chunks(pack)
    assert {c.metadata["language"] for c in chunks} == {"ru", "en"}
    assert not [c for c in chunks if c.metadata["source"].lower() == "readme.md"]
    index.sync(index.get_client(), index.KNOWLEDGE, chunks, tmp_path / "logs")
    retriever = get_retriever(index.KNOWLEDGE)
    for question, language, source in [
        ("Сколько времени занимает запуск чат-бота?", "ru", "services/chatbot.md"),
        ("Из каких систем поиск по документам берёт файлы?", "ru", "services/document_search.md"),
        ("Какие уровни поддержки есть в абонементе?", "ru", "services/support.md"),
        ("Можно оплатить картой?", "ru", "policies/payment.md"),
        ("Do you take cash?", "en", "policies/en/payment.md"),
    ]:
        [best, *_] = retriever.search(question, k=3, language=language)
        assert best.metadata["source"] == source, (question, [h.metadata["source"] for h in retriever.search(question)])


def _markers() -> set[str]:
    """What names the pack's business: its legal name and brand, tax number, phone numbers, e-mail domain, site."""
    company = yaml.safe_load((PACK / "knowledge" / "company.yml").read_text(encoding="utf-8"))
    digits = ["".join(ch for ch in company[key] if ch.isdigit()) for key in ("phone", "whatsapp")]
    domain = company["email"].split("@")[1]
    brand_words = [word for word in company["brand"].split() if len(word) > 3]
    return {company["name"], company["brand"], company["trn"], *digits, domain, *brand_words} - {""}


def test_no_file_outside_the_pack_mentions_its_business():
    files = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout.split(b"\0")
    markers = _markers()
    words = [re.compile(rf"\b{re.escape(m)}\b", re.IGNORECASE) for m in markers if not m.isdigit()]
    numbers = [m for m in markers if m.isdigit()]
    mentions = []
    for name in filter(None, (f.decode() for f in files)):
        path = ROOT / name
        if name.startswith("examples/ai-studio/") or not path.is_file():
            continue
        text = path.read_bytes().decode("utf-8", errors="ignore")
        digits = re.sub(r"\D", "", text)  # a phone number however it is spaced
        mentions += [(name, m) for m in words if m.search(text)] + [(name, n) for n in numbers if n in digits]
    assert not mentions


def test_loading_the_pack_migrates_its_database_and_imports_no_catalog_it_does_not_have(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLOSER_")}
    url = f"sqlite+aiosqlite:///{tmp_path / 'closer.db'}"
    result = subprocess.run(
        [sys.executable, "-m", "bot", "load-knowledge"],
        cwd=ROOT,
        env={**env, "CLOSER_BUSINESS": "examples/ai-studio", "CLOSER_DATABASE_URL": url},
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert f"{PACK / 'knowledge' / 'catalog.csv'}: none, nothing to import" in result.stdout
    assert (tmp_path / "closer.db").stat().st_size > 0
