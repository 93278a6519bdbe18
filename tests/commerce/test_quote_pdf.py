"""Quotation PDF: rendered with the real fonts and parsed back with pypdf; in English, and in Arabic (right to left)
and Russian through the real gettext catalogs (bot/texts/locale) and the default business's terms."""

import csv
import itertools
import re
import unicodedata
from dataclasses import replace
from datetime import UTC, date, datetime
from decimal import Decimal
from io import BytesIO

import arabic_reshaper
import pytest
from pypdf import PdfReader

from bot.commerce import catalog, quotes
from bot.commerce.quote_pdf import CompanyBlock, CustomerBlock, QuoteDocLine, QuoteDocument, _shape, render_quote_pdf
from bot.core.business import get_company
from bot.core.models import Product, Quote, QuoteLine
from bot.core.money import format_money
from bot.core.settings import get_settings
from bot.texts import i18n

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
    assert "Issued 2 March 2026" in text and "Valid until 1 April 2026" in text
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


# The line table's header, left to right in English.
LABELS = ("#", "SKU", "Item", "Qty", "Unit price", "Discount", "Net")


def plain(text: str) -> str:
    """Text as read, for comparing: Arabic presentation forms back to letters and non-breaking spaces to spaces
    (NFKC), every run of whitespace (line breaks too) one space."""
    return " ".join(unicodedata.normalize("NFKC", text).split())


def arabic_runs(text: str) -> list[str]:
    """The runs of Arabic words in ``text`` as the PDF draws them (arabic_reshaper drops harakat), in logical order.
    pypdf gives each right-to-left run back in logical order, but places the digits, Latin and brackets between
    them its own way: the runs are what can be compared."""
    return re.findall(r"[\u0600-\u06ff]+(?: [\u0600-\u06ff]+)*", plain(arabic_reshaper.reshape(text)))


def positions(reader: PdfReader) -> dict[str, float]:
    """Each text piece pypdf reads on the first page (:func:`plain`) → x of its first occurrence, points from the
    left edge."""
    found: dict[str, float] = {}

    def visit(text, cm, tm, font, size):
        found.setdefault(plain(text), tm[4] * cm[0] + cm[4])

    reader.pages[0].extract_text(visitor_text=visit)
    return found


def quote_in(language: str) -> QuoteDocument:
    """What ``quotes.document`` prints for a quote issued in ``language`` with no contact: 12 × OC-1006 named as
    knowledge/catalog.csv names it in that language, the volume tier's 5% off, VAT 5%."""
    with open(get_settings().knowledge_dir / "catalog.csv", encoding="utf-8") as handle:
        row = next(row for row in csv.DictReader(handle) if row["sku"] == "OC-1006")
    with i18n.use(language):
        name = Product(**catalog.parse_product_row(row, catalog.DEFAULT_MAPPING)).display_name
    line = QuoteLine(
        position=1,
        sku="OC-1006",
        name=name,
        quantity=12,
        unit_price_minor=129_000,
        subtotal_minor=1_548_000,
        discount_pct="0.05",
        discount_minor=77_400,
        net_minor=1_470_600,
    )
    quote = Quote(
        number="Q-2026-0042",
        currency="AED",
        vat_rate="0.05",
        lines=[line],
        subtotal_minor=1_548_000,
        discount_minor=77_400,
        net_minor=1_470_600,
        vat_minor=73_530,
        total_minor=1_544_130,
        created_at=datetime(2026, 3, 2, tzinfo=UTC),
        valid_until=datetime(2026, 4, 1, tzinfo=UTC),
        language=language,
    )
    return quotes.document(quote, get_company())


@pytest.fixture(scope="module")
def arabic() -> tuple[QuoteDocument, PdfReader]:
    doc = quote_in("ar")
    return doc, PdfReader(BytesIO(render_quote_pdf(doc)))


@pytest.fixture(scope="module")
def russian() -> tuple[QuoteDocument, PdfReader]:
    doc = quote_in("ru")
    return doc, PdfReader(BytesIO(render_quote_pdf(doc)))


def test_an_arabic_quote_has_its_labels_name_terms_and_amounts_in_arabic(arabic):
    doc, reader = arabic
    text = plain(reader.pages[0].extract_text())
    with i18n.use("ar"):
        labels = [i18n.gettext(label) for label in (*LABELS[1:], "QUOTATION", "Prepared for", "Customer", "Total")]
        labels += [i18n.gettext("Terms"), i18n.gettext("Page %(page)s of %(pages)s") % {"page": 1, "pages": 1}]
        total = i18n.format_money(doc.total_minor, "AED")
        issued = i18n.gettext("Issued %(date)s") % {"date": i18n.format_date(date(2026, 3, 2))}
    assert doc.lines[0].name == "كرسي إرغو برو المريح، أسود"
    assert len(doc.terms) == 4 and "1 أبريل 2026" in doc.terms[3]  # company.yml's Arabic terms, the date in Arabic
    for expected in [*labels, issued, doc.lines[0].name, *doc.terms]:
        runs = arabic_runs(expected)
        assert runs, f"{expected!r} is not translated into Arabic"
        for run in runs:
            assert run in text, (expected, run)
    amount, symbol = re.search(r"[\d,.]+", total)[0], arabic_runs(total)
    assert (amount, symbol) == ("15,441.30", ["درهم"])
    assert any(amount in line and symbol[0] in line for line in map(plain, reader.pages[0].extract_text().split("\n")))


def test_an_arabic_quote_is_laid_out_right_to_left(arabic):
    _, reader = arabic
    at = positions(reader)
    with i18n.use("ar"):
        header = [plain(arabic_reshaper.reshape(i18n.gettext(label))) for label in LABELS]
        title = plain(arabic_reshaper.reshape(i18n.gettext("QUOTATION")))
    columns = [at[label] for label in header]
    assert columns == sorted(columns, reverse=True)  # "#" on the right, the net amount on the left
    # the seller on the right, the quote's number and dates on the left
    assert at[title] < at[COMPANY.name] and at[title] < 100


def test_arabic_too_long_for_its_cell_breaks_in_reading_order(arabic):
    """The words that come first are on the first line (breaking the visual-order text would put them last)."""
    doc, _ = arabic
    name = "كرسي تيتان لأصحاب القامات والأوزان الكبيرة"  # OC-1037: two lines in the Item column
    reader = PdfReader(BytesIO(render_quote_pdf(replace(doc, lines=[replace(doc.lines[0], name=name)]))))
    lines = [plain(line) for line in reader.pages[0].extract_text().split("\n")]
    assert name not in lines
    assert any(f"{first} {second}" == name for first, second in itertools.pairwise(lines))


def test_a_russian_quote_has_cyrillic_labels_the_translated_name_and_locale_amounts(russian):
    doc, reader = russian
    text = plain(reader.pages[0].extract_text())
    with i18n.use("ru"):
        labels = [i18n.gettext(label) for label in (*LABELS[1:], "QUOTATION", "Prepared for", "Customer", "Total")]
        labels += [i18n.gettext("Terms"), i18n.gettext("Page %(page)s of %(pages)s") % {"page": 1, "pages": 1}]
        amounts = [i18n.format_money(minor, "AED") for minor in (doc.total_minor, doc.vat_minor)]
        amounts.append(f"-{i18n.format_money(doc.discount_minor, 'AED')}")
        dates = [i18n.format_date(date(2026, 3, 2)), i18n.format_date(date(2026, 4, 1))]
        header = [plain(i18n.gettext(label)) for label in LABELS]
    assert doc.lines[0].name == "Эргономичное кресло ErgoPro, чёрное"
    assert amounts[0] == "15\xa0441,30\xa0AED" and dates[1] == "1 апреля 2026\u202fг."
    for expected in [*labels, doc.lines[0].name, *doc.terms, *amounts, *dates]:
        assert re.search("[а-яА-Я]", expected) or expected in amounts, f"{expected!r} is not in Russian"
        assert plain(expected) in text, expected
    columns = [positions(reader)[label] for label in header]
    assert columns == sorted(columns)  # left to right, as in English


def test_a_quote_without_a_language_is_in_the_default_one():
    doc = quote_in("en")
    assert doc.lines[0].name == "ErgoPro Ergonomic Chair, black"
    assert doc.terms[0] == "Prices are in AED and include the discounts shown; VAT is charged at 5%."
    reader = PdfReader(BytesIO(render_quote_pdf(replace(doc, language=None))))
    text = plain(reader.pages[0].extract_text())
    assert "Net (excl. VAT)" in text and "Valid until 1 April 2026" in text and "Total AED 15,441.30" in text
    at = positions(reader)
    assert [at[label] for label in LABELS] == sorted(at[label] for label in LABELS)
