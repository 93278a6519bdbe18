"""Questions in Arabic and Russian on the real index (real Chroma; all-MiniLM-L6-v2, multilingual-e5-small and USE
multilingual): chunk languages in every collection, routing by script, passages in the customer's language preferred,
a passage only in English shown after a notice in the customer's language, and the LLM asked to answer in that
language from it, its figures still checked."""

import json

import numpy as np
import pytest
from sqlalchemy import select

from bot.answering import embeddings, extractive, index
from bot.answering.chunking import knowledge_chunks
from bot.answering.evaluation import evaluate, load_questions
from bot.answering.knowledge import answer_question
from bot.answering.retrieval import Retriever
from bot.core import db
from bot.core.business import get_company
from bot.core.models import KnowledgeAnswer
from bot.core.settings import ROOT
from bot.texts import i18n
from tests.fakes.llm_server import closer_on_a_fake_llm

QUESTIONS = {
    "ru": ROOT / "tests" / "data" / "knowledge_questions_ru.yml",
    "ar": ROOT / "tests" / "data" / "knowledge_questions_ar.yml",
}
ARABIC_CHARGES = "policies/ar/delivery.md#رسوم-التوصيل"
PAYMENT_METHODS = "policies/payment.md#accepted-payment-methods"
RUSSIAN_PAYMENT_METHODS = "policies/ru/payment.md#способы-оплаты"
ARABIC_CARD_QUESTION = "هل تقبلون الدفع بالبطاقة الائتمانية؟"  # payment.md has no Arabic version


@pytest.fixture(scope="module")
def retriever(chroma_dir) -> Retriever:
    client = index.open_client(chroma_dir)
    multilingual = (index.collection(client, index.KNOWLEDGE_E5), index.collection(client, index.KNOWLEDGE_USE))
    return Retriever(index.collection(client, index.KNOWLEDGE), multilingual=multilingual)


def test_a_policy_is_in_its_directorys_language_else_in_the_default_one(tmp_path):
    policies = tmp_path / "policies"
    for path in ("returns.md", "ru/returns.md", "xx/returns.md"):  # xx is none of company.yml's languages
        (policies / path).parent.mkdir(parents=True, exist_ok=True)
        (policies / path).write_text("# Returns\n\n## Change of mind\n\nWithin 14 days.\n")
    chunks = {c.id: c for c in knowledge_chunks(tmp_path)}
    language = {chunk_id: c.metadata["language"] for chunk_id, c in chunks.items()}
    assert language == {
        "policies/returns.md#change-of-mind": "en",
        "policies/ru/returns.md#change-of-mind": "ru",
        "policies/xx/returns.md#change-of-mind": "en",
    }
    hashes = {c.metadata["hash"] for c in chunks.values()}
    assert len(hashes) == 2  # the same text in another language is another chunk to embed


def test_every_collection_records_each_chunks_language_and_the_log_names_the_encoders(chroma_dir):
    client = index.open_client(chroma_dir)
    for name in (index.KNOWLEDGE, *index.MULTILINGUAL):
        stored = index.collection(client, name).get(include=["metadatas"])
        language = {m["chunk"]: m["language"] for m in stored["metadatas"]}
        assert language[ARABIC_CHARGES] == "ar" and language["policies/ru/delivery.md#стоимость-доставки"] == "ru"
        assert language["policies/delivery.md#delivery-charges"] == "en" and set(language.values()) == {
            "en",
            "ar",
            "ru",
        }
        same_day = [
            i for i in stored["ids"] if i.startswith("policies/ru/delivery.md#доставка-по-дубаю-в-день-заказа::")
        ]
        assert len(same_day) == 3  # Russian sentences are records of their own, as English ones are
    log = json.loads(max((chroma_dir / "logs").glob("*-knowledge.json")).read_text())
    assert (log["collection"], log["encoder"]) == ("knowledge", "all-MiniLM-L6-v2")
    assert [(c["collection"], c["encoder"], c["added"]) for c in log["companions"]] == [
        ("knowledge_e5", "multilingual-e5-small", log["added"]),
        ("knowledge_use", "universal-sentence-encoder-multilingual-3", log["added"]),
    ]


@pytest.mark.parametrize("language", ["ru", "ar"])
def test_the_question_sets_ask_about_every_policy_and_label_real_chunks(retriever, language):
    questions = load_questions(QUESTIONS[language])
    labels = {label for _, labels in questions for label in labels}
    assert len(questions) >= 40 and labels <= set(retriever.ids)
    policies = {p.relative_to(ROOT / "knowledge").as_posix() for p in (ROOT / "knowledge" / "policies").glob("*.md")}
    assert {label.split("#")[0] for label in labels} >= policies


@pytest.mark.parametrize("language", ["ru", "ar"])
def test_routed_retrieval_finds_the_answering_chunk_in_the_top_5(retriever, language):
    metrics = evaluate(retriever, load_questions(QUESTIONS[language]), "routed", language)
    assert metrics.hit_at_5 >= 0.85, metrics.misses


def minilm(retriever: Retriever, query: str, chunk_id: str) -> float:
    """The best MiniLM cosine between ``query`` and the records of ``chunk_id`` (the chunk and its sentences)."""
    vector = embeddings.embed([query])[0]
    stored = retriever.collection.get(where={"chunk": chunk_id}, include=["embeddings"])
    return max(float(np.dot(vector, e)) for e in stored["embeddings"])


def test_a_latin_question_takes_the_hybrid_path_and_another_script_the_multilingual_one(retriever):
    english = "can I pay with a credit card?"
    routed = retriever.search(english, 5, "routed", "ar")
    assert [h.id for h in routed] == [h.id for h in retriever.search(english, 5, "hybrid+e5", "ar")]
    assert routed[0].id == PAYMENT_METHODS
    assert [h.similarity for h in routed] == pytest.approx([minilm(retriever, english, h.id) for h in routed], abs=1e-4)
    arabic = ARABIC_CARD_QUESTION
    routed = retriever.search(arabic, 5, "routed", "ar")
    assert [h.id for h in routed] == [h.id for h in retriever.search(arabic, 5, "multilingual", "ar")]
    assert routed[0].id == PAYMENT_METHODS
    assert routed[0].similarity != pytest.approx(minilm(retriever, arabic, PAYMENT_METHODS), abs=1e-2)


def test_a_russian_question_is_answered_from_the_russian_policy_where_there_is_one(retriever):
    routed = retriever.search("можно оплатить картой?", 5, "routed", "ru")
    assert routed[0].id == RUSSIAN_PAYMENT_METHODS and {h.metadata["language"] for h in routed} <= {"ru", "en"}


def test_a_passage_in_the_customers_language_is_preferred_and_no_other_language_is_returned(retriever):
    question = "كم رسوم التوصيل داخل دبي؟"
    arabic = retriever.search(question, 5, "routed", "ar")
    assert arabic[0].id == ARABIC_CHARGES and {h.metadata["language"] for h in arabic} <= {"ar", "en"}
    english = retriever.search(question, 5, "routed", "en")  # the customer reads English: the English policy
    assert english[0].id == "policies/delivery.md#delivery-charges"
    assert {h.metadata["language"] for h in english} == {"en"}


async def test_an_arabic_question_is_answered_from_the_arabic_policy_without_a_notice(loaded_db):
    with i18n.use("ar"):
        reply = await answer_question("web-ar1", "كم رسوم التوصيل داخل دبي؟", get_company())
    assert reply.sources == [ARABIC_CHARGES] and reply.feedback
    chunk = next(c for c in knowledge_chunks(ROOT / "knowledge") if c.id == ARABIC_CHARGES)
    answer, source = reply.text.split("\n")
    assert answer.startswith(tuple(extractive.sentences(chunk.text))) and "درهم" in answer  # no notice before it
    assert source.endswith("التوصيل — رسوم التوصيل")


async def test_an_arabic_question_answered_from_an_english_passage_says_so_in_arabic(loaded_db):
    with i18n.use("ar"):
        reply = await answer_question("web-ar2", ARABIC_CARD_QUESTION, get_company())
    assert reply.sources == [PAYMENT_METHODS]
    notice, passage, source = reply.text.split("\n")
    assert notice == "هذا من صفحة «Payment» لدينا، وهي مكتوبة باللغة الإنجليزية:"
    assert "Visa, Mastercard and American Express" in passage and source.endswith("Payment — Accepted payment methods")


@pytest.fixture
async def llm(loaded_db, monkeypatch):
    async with closer_on_a_fake_llm(monkeypatch, "openai/gpt-4o-mini", timeout_s=3) as server:
        yield server


async def test_the_llm_answers_in_the_customers_language_from_an_english_passage(llm):
    llm.reply = "نعم، نقبل بطاقات Visa وMastercard وAmerican Express، والدفع نقدًا عند الاستلام حتى 5000 درهم [P1]."
    with i18n.use("ar"):
        reply = await answer_question("web-ar3", ARABIC_CARD_QUESTION, get_company())
    assert reply.text.startswith("نعم، نقبل بطاقات Visa") and reply.sources[0] == PAYMENT_METHODS
    prompt = llm.system_prompt()
    assert "The customer reads Arabic: answer in Arabic" in prompt
    assert "[P1] (Payment — Accepted payment methods; in English)" in prompt


@pytest.mark.parametrize(
    ("language", "question", "answer", "source"),
    [
        ("ru", "можно оплатить картой?", "Да, картой можно, а наличными — до 4 000 AED [P1].", RUSSIAN_PAYMENT_METHODS),
        ("ar", ARABIC_CARD_QUESTION, "نعم، ونقبل الدفع نقدًا عند الاستلام حتى ٤٬٠٠٠ درهم [P1].", PAYMENT_METHODS),
    ],
)
async def test_a_wrong_figure_in_an_arabic_or_russian_llm_answer_is_refused(llm, language, question, answer, source):
    llm.reply = answer
    with i18n.use(language):
        reply = await answer_question(f"web-{language}4", question, get_company())
    chunk = next(c for c in knowledge_chunks(ROOT / "knowledge") if c.id == source)
    assert reply.sources[0] == source and not reply.text.startswith(answer[:10])
    assert any(sentence in reply.text for sentence in extractive.sentences(chunk.text))  # the extractive answer
    async with db.session_scope() as session:
        row = await session.scalar(select(KnowledgeAnswer).where(KnowledgeAnswer.id == reply.answer_id))
    assert row.fallback_reason == "post-check: figure 4000 is not in the context"
