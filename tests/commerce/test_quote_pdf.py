"""Quotation PDF: rendered with the real fonts and parsed back with pypdf."""

from datetime import date
from decimal import Decimal
from io import BytesIO

import pytest
from pypdf import PdfReader

from bot.commerce.quote_pdf import CompanyBlock, CustomerBlock, QuoteDocLine, QuoteDocument, _shape, render_quote_pdf
from bot.core.money import format_money

ARABIC = "شركة الخليج للتجارة"
CYRILLIC = "Ольга Иванова"
COMPANY = CompanyBlock(
    name="Desert Oak Office Furniture LLC",
    trn="100384729600003",
    address="Warehouse 12, Street 17, Al Quoz Industrial Area 3, Dubai, UAE",
    phone="+971 4 555 0142",
    email="sales@desertoak.example",
    website="https://desertoak.example",
    trn_label="TRN",
)


def make_quote(n_lines: int) -> QuoteDocument:
    """A consistent quote of ``n_lines`` lines (every third line 10% off), VAT 5%, in AED."""
    lines = []
    for i in range(1, n_lines + 1):
        quantity, unit = i % 4 + 1, 45_000 + 1_250 * i
        pct = Decimal("0.10") if i % 3 == 0 else Decimal(0)
        discount = int(quantity * unit * pct)
        lines.append(
            QuoteDocLine(
                i,
                f"DO-{i:03d}",
                f"Ergonomic task chair, mesh back, model {i}",
                quantity,
                unit,
                pct,
                discount,
                quantity * unit - discount,
            )
        )
    subtotal = sum(line.quantity * line.unit_price_minor for line in lines)
    discount = sum(line.discount_minor for line in lines)
    net = subtotal - discount
    vat = net * 5 // 100
    return QuoteDocument(
        number="Q-2026-0001",
        issued_on=date(2026, 3, 2),
        valid_until=date(2026, 4, 1),
        currency="AED",
        company=COMPANY,
        customer=CustomerBlock(CYRILLIC, ARABIC, "olga@example.com", "+971 50 123 4567"),
        lines=lines,
        subtotal_minor=subtotal,
        discount_minor=discount,
        net_minor=net,
        vat_rate=Decimal("0.05"),
        vat_minor=vat,
        total_minor=net + vat,
        terms=["Delivery and assembly in Dubai within 5 working days of payment.", "50% advance, balance on delivery."],
    )


@pytest.fixture(scope="module")
def short() -> tuple[QuoteDocument, PdfReader]:
    doc = make_quote(3)
    return doc, PdfReader(BytesIO(render_quote_pdf(doc)))


@pytest.fixture(scope="module")
def long() -> tuple[QuoteDocument, PdfReader]:
    doc = make_quote(60)
    return doc, PdfReader(BytesIO(render_quote_pdf(doc)))


def test_numbers_skus_and_amounts_are_text(short):
    doc, reader = short
    text = "\n".join(page.extract_text() for page in reader.pages)
    assert doc.number in text
    for line in doc.lines:
        assert line.sku in text
        assert format_money(line.net_minor, "AED") in text
    assert format_money(doc.total_minor, "AED") in text
    assert "VAT 5%" in text
    assert "Page 1 of 1" in text
    assert CYRILLIC in text


def test_metadata(short):
    doc, reader = short
    assert reader.metadata.title == doc.number
    assert reader.metadata.author == COMPANY.name


def test_only_embedded_dejavu_fonts(short):
    """Every font used is an embedded DejaVu Sans subset: nothing falls back to a base-14 font,
    which could not draw Arabic or Cyrillic."""
    _, reader = short
    fonts = [font.get_object() for page in reader.pages for font in page["/Resources"]["/Font"].values()]
    assert {str(font["/BaseFont"]).split("+")[-1] for font in fonts} == {"DejaVuSans", "DejaVuSans-Bold"}
    assert all("/FontFile2" in font["/FontDescriptor"] for font in fonts)


def test_arabic_is_shaped_into_presentation_forms(short):
    """The Arabic company name is drawn as joined glyphs (presentation forms), not isolated letters."""
    _, reader = short
    text = reader.pages[0].extract_text()
    assert any("\ufe70" <= char <= "\ufefc" for char in text)


def test_long_quote_breaks_across_pages(long):
    doc, reader = long
    pages = [page.extract_text() for page in reader.pages]
    total = len(pages)
    assert total >= 2
    assert "Unit price" in pages[1] and "SKU" in pages[1]
    assert f"Page 2 of {total}" in pages[1]
    for number, page in enumerate(pages, start=1):
        assert f"Page {number} of {total}" in page
    text = "\n".join(pages)
    for line in doc.lines:
        assert text.count(line.sku) == 1, line.sku
    assert format_money(doc.total_minor, "AED") in pages[-1]


def test_brackets_in_arabic_are_mirrored():
    """In visual order the bracket drawn left of an Arabic phrase is "(" (rule L4)."""
    assert [c for c in _shape("فرع (دبي)") if c in "()"] == ["(", ")"]
    assert _shape(CYRILLIC) == CYRILLIC
