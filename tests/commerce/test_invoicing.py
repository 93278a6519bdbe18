"""Documents issued once a quote is paid (bot.commerce.invoicing) with the example pack: the invoice and the contract
written from the pack's template, numbered per kind and year, parsed back from their PDFs with the amounts in figures
and in words; issued once per payment; a template that does not render issues nothing; a business without a
contract template gets the invoice alone."""

import io
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pypdf import PdfReader
from sqlalchemy import func, select

from bot.commerce import invoicing, leads, quotes
from bot.commerce.configuring import as_cart
from bot.commerce.formula import load_formula
from bot.commerce.quote_pdf import render_quote_pdf
from bot.core import caches, db
from bot.core.business import get_company
from bot.core.models import Payment, SalesDocument
from bot.core.settings import ROOT
from bot.texts import i18n

PACK = ROOT / "examples" / "ai-studio" / "knowledge"
PAID_AT = datetime(2026, 12, 7, 9, 30, tzinfo=UTC)


@pytest.fixture
def pack(monkeypatch):
    monkeypatch.setenv("CLOSER_KNOWLEDGE_DIR", str(PACK))
    caches.reset()
    yield
    caches.reset()


def _text(pdf: bytes) -> str:
    text = "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)
    return " ".join(text.replace("\u00a0", " ").replace("\u202f", " ").split())


async def _paid_quote(session, language: str = "ru"):
    """An audit priced by the pack's formula (90,000 ₽ + VAT 22% = 109,800 ₽), quoted to a saved lead."""
    company = get_company()
    lead = leads.Lead(
        name="Ирина Волкова",
        company="ООО «Ромашка»",
        email="irina@example.ru",
        phone="+79161234567",
        quantity=None,
        budget_minor=None,
        currency="RUB",
        timeline=None,
        channel="web",
        sender_id="web-paid",
    )
    contact, deal, _ = await leads.save_lead(session, lead)
    formula = load_formula()
    with i18n.use(language):
        priced = formula.price("audit", {}, [])
        quote = await quotes.issue(
            session,
            "web-paid",
            as_cart(formula, priced, language),
            company.quote_validity_days,
            contact=contact,
            deal=deal,
            prefix=company.quote_prefix,
        )
    return quote


async def _payment(session, quote, amount_minor: int = 0) -> int:
    """A succeeded payment of ``quote`` (as bot.payments.service records one); its id."""
    payment = Payment(
        provider="yookassa",
        provider_payment_id=uuid.uuid4().hex,
        quote_id=quote.id,
        conversation_id=quote.conversation_id,
        amount_minor=amount_minor,
        currency=quote.currency,
        status="succeeded",
        idempotence_key=uuid.uuid4().hex,
        paid_at=PAID_AT,
    )
    session.add(payment)
    await session.flush()
    return payment.id


async def test_a_paid_quote_gets_an_invoice_and_a_contract_with_amounts_in_words(db_url, pack):
    company = get_company()
    async with db.session_scope() as session:
        quote = await _paid_quote(session)
        assert quote.total_minor == 10_980_000
        paid = await _payment(session, quote, 3_294_000)
        issued = await invoicing.issue_paid(
            session, quote, company, paid_minor=3_294_000, paid_at=PAID_AT, payment_id=paid
        )
        assert [d.kind for d in issued] == ["invoice", "contract"]
        year = datetime.now(UTC).year
        assert [d.number for d in issued] == [f"СЧ-{year}-0001", f"Д-{year}-0001"]
        invoice_pdf = render_quote_pdf(invoicing.document(issued[0], company))
        contract_pdf = render_quote_pdf(invoicing.document(issued[1], company))

    invoice = _text(invoice_pdf)
    assert "СЧЁТ НА ОПЛАТУ" in invoice
    assert f"СЧ-{year}-0001" in invoice and quote.number in invoice
    assert all(line in invoice for line in company.requisites)  # the seller's requisites from the pack's company.yml
    assert "Итого с НДС 109 800,00 ₽" in invoice
    assert "Оплачено 7 декабря 2026 г. 32 940,00 ₽" in invoice  # 30% of 109,800
    assert "К оплате 76 860,00 ₽" in invoice
    assert "Сто девять тысяч восемьсот рублей 00 копеек" in invoice

    contract = _text(contract_pdf)
    assert "ДОГОВОР" in contract
    assert f"Договор № Д-{year}-0001 на оказание услуг" in contract
    assert "ООО «Ромашка» в лице Ирина Волкова" in contract
    assert f"коммерческому предложению № {quote.number}" in contract
    assert "109 800,00 ₽ (Сто девять тысяч восемьсот рублей 00 копеек)" in contract
    assert "32 940,00 ₽ (Тридцать две тысячи девятьсот сорок рублей 00 копеек)" in contract
    assert "Остаток, 76 860,00 ₽" in contract
    assert "Спецификация" in contract
    assert len(contract_pdf) < 10 * 1024 * 1024


async def test_documents_are_issued_once_per_payment_and_numbered_on(db_url, pack):
    company = get_company()
    async with db.session_scope() as session:
        quote = await _paid_quote(session)
        paid = await _payment(session, quote)
        first = await invoicing.issue_paid(session, quote, company, paid_minor=100, paid_at=PAID_AT, payment_id=paid)
        again = await invoicing.issue_paid(session, quote, company, paid_minor=100, paid_at=PAID_AT, payment_id=paid)
        assert [d.id for d in again] == [d.id for d in first]
        other = await _paid_quote(session)
        paid = await _payment(session, other)
        second = await invoicing.issue_paid(session, other, company, paid_minor=100, paid_at=PAID_AT, payment_id=paid)
        assert [d.number[-4:] for d in second] == ["0002", "0002"]
        assert await session.scalar(select(func.count()).select_from(SalesDocument)) == 4


async def test_the_contract_keeps_the_text_it_was_issued_with(db_url, pack, tmp_path):
    company = get_company()
    knowledge = tmp_path / "knowledge"
    (knowledge / "documents").mkdir(parents=True)
    template = knowledge / "documents" / "contract.ru.txt.j2"
    template.write_text("## Договор {{ number }}\n\nИтого {{ total }}.", encoding="utf-8")
    async with db.session_scope() as session:
        quote = await _paid_quote(session)
        _, contract = await invoicing.issue_paid(
            session,
            quote,
            company,
            paid_minor=0,
            paid_at=PAID_AT,
            payment_id=await _payment(session, quote),
            knowledge_dir=knowledge,
        )
        template.write_text("Другой текст", encoding="utf-8")
        assert invoicing.document(contract, company).body[1][1].replace("\u00a0", " ") == "Итого 109 800,00 ₽."


async def test_a_template_that_does_not_render_issues_nothing(db_url, pack, tmp_path):
    company = get_company()
    knowledge = tmp_path / "knowledge"
    (knowledge / "documents").mkdir(parents=True)
    (knowledge / "documents" / "contract.ru.txt.j2").write_text("Заказчик {{ buyer.name }}", encoding="utf-8")
    async with db.session_scope() as session:
        quote = await _paid_quote(session)
        with pytest.raises(invoicing.DocumentTemplateError, match=r"contract\.ru\.txt\.j2.*buyer"):
            await invoicing.issue_paid(
                session,
                quote,
                company,
                paid_minor=0,
                paid_at=PAID_AT,
                payment_id=await _payment(session, quote),
                knowledge_dir=knowledge,
            )
        assert await session.scalar(select(func.count()).select_from(SalesDocument)) == 0


async def test_without_a_contract_template_the_invoice_goes_alone(db_url, pack, tmp_path: Path):
    company = get_company()
    async with db.session_scope() as session:
        quote = await _paid_quote(session, language="en")
        issued = await invoicing.issue_paid(
            session,
            quote,
            company,
            paid_minor=0,
            paid_at=PAID_AT,
            payment_id=await _payment(session, quote),
            knowledge_dir=tmp_path,
        )
        assert [d.kind for d in issued] == ["invoice"]
        text = _text(render_quote_pdf(invoicing.document(issued[0], company)))
    assert "INVOICE" in text and "Bill to" in text and "Balance due" not in text  # nothing paid yet


def test_contract_templates_fall_back_to_the_default_language(tmp_path):
    (tmp_path / "documents").mkdir()
    (tmp_path / "documents" / "contract.ru.txt.j2").write_text("x", encoding="utf-8")
    assert invoicing.contract_template(tmp_path, "en", "ru") == tmp_path / "documents" / "contract.ru.txt.j2"
    assert invoicing.contract_template(tmp_path, "en", "en") is None
    assert invoicing.blocks("## Title\n\nline one\nline two\n\n\n") == [
        ("heading", "Title"),
        ("text", "line one\nline two"),
    ]
