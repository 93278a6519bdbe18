"""Quotation PDF: a ``QuoteDocument`` rendered to A4 PDF bytes with reportlab platypus.

Money is integer minor units of ``QuoteDocument.currency`` (ISO 4217), printed with
``bot.core.money.format_money``. Percentages are ``Decimal`` fractions (``Decimal("0.05")`` = 5%), as in
``bot.core.models.Quote``. Text is set in the vendored DejaVu Sans (``bot/commerce/fonts/``, subset-embedded), so
Latin, Cyrillic and Arabic names print; Arabic is shaped and put in visual order before drawing.

``render_quote_pdf`` is blocking and CPU-bound (tens of milliseconds): async callers use
``await asyncio.to_thread(render_quote_pdf, doc)``.
"""

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from functools import cache
from io import BytesIO
from pathlib import Path
from xml.sax.saxutils import escape

import arabic_reshaper

# The pure-Python algorithm on purpose: python-bidi's default (Rust) ``bidi.get_display`` skips rule L4,
# so "(فرع دبي)" would print with its brackets pointing outwards (python-bidi issue #25).
from bidi.algorithm import get_display
from reportlab.lib import colors
from reportlab.lib.enums import TA_RIGHT
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen import canvas
from reportlab.platypus import KeepTogether, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from bot.core.money import format_money

FONTS = Path(__file__).resolve().parent / "fonts"
FONT, FONT_BOLD = "DejaVuSans", "DejaVuSans-Bold"
MARGIN = 15 * mm
PAD = 6  # platypus Frame padding on each side, points
LINE_HEADER = ("#", "SKU", "Item", "Qty", "Unit price", "Discount", "Net")
_RTL = re.compile("[\u0590-\u08ff\ufb1d-\ufdff\ufe70-\ufefc]")  # Hebrew, Arabic and their presentation forms


@dataclass(frozen=True)
class CompanyBlock:
    """The seller as printed in the header; ``address`` may hold newlines; ``trn`` is printed after
    ``trn_label`` ("TRN 100384729600003")."""

    name: str
    trn: str
    address: str
    phone: str
    email: str
    website: str
    trn_label: str = ""

    @property
    def tax_id(self) -> str:
        """``"TRN 100384729600003"``: the label and the number, whichever are set."""
        return " ".join(part for part in (self.trn_label, self.trn) if part)


@dataclass(frozen=True)
class CustomerBlock:
    """The buyer; empty strings are left out."""

    name: str
    company: str = ""
    email: str = ""
    phone: str = ""


@dataclass(frozen=True)
class QuoteDocLine:
    """One line item. Amounts in minor units: ``net_minor = quantity * unit_price_minor -
    discount_minor``; ``discount_pct`` is a fraction (0.10 = 10%)."""

    position: int
    sku: str
    name: str
    quantity: int
    unit_price_minor: int
    discount_pct: Decimal
    discount_minor: int
    net_minor: int


@dataclass(frozen=True)
class QuoteDocument:
    """Everything printed on a quotation, already computed (the renderer does no arithmetic).
    ``number`` like ``"Q-2026-0001"``; amounts in minor units of ``currency``; ``net_minor =
    subtotal_minor - discount_minor``, ``total_minor = net_minor + vat_minor``; ``vat_rate`` is a
    fraction (0.05 = 5%); ``terms`` are printed as bullet points."""

    number: str
    issued_on: date
    valid_until: date
    currency: str
    company: CompanyBlock
    customer: CustomerBlock
    lines: Sequence[QuoteDocLine]
    subtotal_minor: int
    discount_minor: int
    net_minor: int
    vat_rate: Decimal
    vat_minor: int
    total_minor: int
    terms: Sequence[str] = ()


def render_quote_pdf(doc: QuoteDocument) -> bytes:
    """The quotation as A4 PDF bytes: header, customer, line table (header row repeated on every
    page), totals, terms, "Page N of M" footer; PDF title = quote number, author = company name.
    Blocking: call through ``asyncio.to_thread`` from async code."""
    _register_fonts()
    buffer = BytesIO()
    template = SimpleDocTemplate(
        buffer,
        pagesize=A4,
        leftMargin=MARGIN,
        rightMargin=MARGIN,
        topMargin=MARGIN,
        bottomMargin=20 * mm,
        title=doc.number,
        author=doc.company.name,
        subject=f"Quotation {doc.number}",
        creator="Closer",
        initialFontName=FONT,
        initialFontSize=9,  # else every page also references Helvetica
    )

    def footer(canv: canvas.Canvas, _template: SimpleDocTemplate) -> None:
        canv.saveState()
        canv.setFont(FONT, 7.5)
        canv.setFillColor(colors.grey)
        canv.drawString(MARGIN + PAD, 10 * mm, _shape(f"{doc.company.name} · {doc.company.tax_id} · {doc.number}"))
        canv.restoreState()

    template.build(_story(doc), onFirstPage=footer, onLaterPages=footer, canvasmaker=_NumberedCanvas)
    return buffer.getvalue()


class _NumberedCanvas(canvas.Canvas):
    """Two-pass page numbering (the well-known reportlab recipe): keep every page's state until
    ``save``, when the page count is known, then draw "Page N of M" on each."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._pages: list[dict] = []

    def showPage(self) -> None:
        self._pages.append(dict(self.__dict__))
        self._startPage()

    def save(self) -> None:
        for state in self._pages:
            self.__dict__.update(state)
            self.setFont(FONT, 7.5)
            self.setFillColor(colors.grey)
            self.drawRightString(A4[0] - MARGIN - PAD, 10 * mm, f"Page {self._pageNumber} of {len(self._pages)}")
            super().showPage()
        super().save()


@cache
def _register_fonts() -> None:
    """Load DejaVu Sans regular and bold once per process (parsing the TTFs is the slow part)."""
    pdfmetrics.registerFont(TTFont(FONT, str(FONTS / "DejaVuSans.ttf")))
    pdfmetrics.registerFont(TTFont(FONT_BOLD, str(FONTS / "DejaVuSans-Bold.ttf")))
    pdfmetrics.registerFontFamily(FONT, normal=FONT, bold=FONT_BOLD, italic=FONT, boldItalic=FONT_BOLD)


def _shape(text: str) -> str:
    """Arabic (and Hebrew) → joined glyph forms in visual, left-to-right drawing order; other text
    unchanged. Only right for single-line text: a wrapped RTL paragraph would break in the wrong place."""
    if not _RTL.search(text):
        return text
    return get_display(arabic_reshaper.reshape(text))


def _para(text: str, style: ParagraphStyle) -> Paragraph:
    """Plain text (never markup) as a Paragraph; newlines become line breaks."""
    return Paragraph("<br/>".join(escape(_shape(part)) for part in text.split("\n")), style)


def _percent(fraction: Decimal) -> str:
    """``Decimal("0.05")`` → ``"5%"``, ``Decimal("0.125")`` → ``"12.5%"``."""
    return f"{(fraction * 100).normalize():f}%"


def _date(day: date) -> str:
    return f"{day.day} {day:%b %Y}"


_S = ParagraphStyle("quote", fontName=FONT, fontSize=9, leading=12)
_SMALL = ParagraphStyle("small", parent=_S, fontSize=8, leading=10)
_SMALL_RIGHT = ParagraphStyle("small-right", parent=_SMALL, alignment=TA_RIGHT)
_TITLE = ParagraphStyle("title", parent=_S, fontName=FONT_BOLD, fontSize=16, leading=20)
_H = ParagraphStyle("heading", parent=_S, fontName=FONT_BOLD, fontSize=10, leading=13, spaceBefore=8, spaceAfter=3)
_RIGHT = ParagraphStyle("right", parent=_S, alignment=TA_RIGHT)
_TITLE_RIGHT = ParagraphStyle("title-right", parent=_TITLE, alignment=TA_RIGHT)
_BULLET = ParagraphStyle("bullet", parent=_SMALL, leftIndent=10, bulletIndent=0, bulletFontName=FONT)


def _story(doc: QuoteDocument) -> list:
    money = lambda minor: format_money(minor, doc.currency)  # noqa: E731
    minus = lambda minor: f"-{money(minor)}" if minor else money(0)  # noqa: E731
    width = A4[0] - 2 * (MARGIN + PAD)
    company, customer = doc.company, doc.customer

    seller = [
        _para(company.name, _TITLE),
        _para(company.address, _SMALL),
        _para(company.tax_id, _SMALL),
        _para(f"{company.phone} · {company.email} · {company.website}", _SMALL),
    ]
    meta = [
        _para("QUOTATION", _TITLE_RIGHT),
        _para(doc.number, _RIGHT),
        _para(f"Issued {_date(doc.issued_on)}", _SMALL_RIGHT),
        _para(f"Valid until {_date(doc.valid_until)}", _SMALL_RIGHT),
    ]
    header = Table([[seller, meta]], colWidths=[width * 0.62, width * 0.38])
    header.setStyle(
        TableStyle(
            [
                ("FONT", (0, 0), (-1, -1), FONT, 9),  # a Table's default cell font is Helvetica
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("LEFTPADDING", (0, 0), (0, -1), 0),
                ("RIGHTPADDING", (-1, 0), (-1, -1), 0),
            ]
        )
    )

    buyer = [_para("Prepared for", _H)]
    buyer += [_para(value, _S) for value in (customer.name, customer.company, customer.email, customer.phone) if value]

    # Cell padding 4 pt a side: Unit price fits AED 999,999.99, Discount -AED 999,999.99, Net AED 9,999,999.99.
    fixed = [8 * mm, 22 * mm, None, 11 * mm, 26 * mm, 27 * mm, 29 * mm]
    fixed[2] = width - sum(w for w in fixed if w)
    rows = [list(LINE_HEADER)]
    for line in doc.lines:
        discount = f"{_percent(line.discount_pct)}\n{minus(line.discount_minor)}" if line.discount_minor else ""
        rows.append(
            [
                str(line.position),
                _para(line.sku, _SMALL),
                _para(line.name, _SMALL),
                str(line.quantity),
                money(line.unit_price_minor),
                discount,
                money(line.net_minor),
            ]
        )
    items = Table(rows, colWidths=fixed, repeatRows=1)
    items.setStyle(
        TableStyle(
            [
                ("FONT", (0, 0), (-1, 0), FONT_BOLD, 8),
                ("FONT", (0, 1), (-1, -1), FONT, 8),
                ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#EDE7DD")),
                ("LINEBELOW", (0, 0), (-1, 0), 0.75, colors.HexColor("#8A6D3B")),
                ("LINEBELOW", (0, 1), (-1, -1), 0.25, colors.lightgrey),
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("ALIGN", (3, 0), (-1, -1), "RIGHT"),
                ("LEFTPADDING", (0, 0), (-1, -1), 4),
                ("RIGHTPADDING", (0, 0), (-1, -1), 4),
            ]
        )
    )

    totals_rows = [
        ["Subtotal", money(doc.subtotal_minor)],
        ["Discounts", minus(doc.discount_minor)],
        ["Net (excl. VAT)", money(doc.net_minor)],
        [f"VAT {_percent(doc.vat_rate)}", money(doc.vat_minor)],
        ["Total", money(doc.total_minor)],
    ]
    totals = Table(totals_rows, colWidths=[40 * mm, 45 * mm], hAlign="RIGHT")
    totals.setStyle(
        TableStyle(
            [
                ("FONT", (0, 0), (-1, -1), FONT, 9),
                ("FONT", (0, -1), (-1, -1), FONT_BOLD, 10),
                ("ALIGN", (1, 0), (1, -1), "RIGHT"),
                ("LINEABOVE", (0, -1), (-1, -1), 0.75, colors.black),
            ]
        )
    )

    terms = [_para("Terms", _H)]
    terms += [Paragraph(escape(_shape(term)), _BULLET, bulletText="•") for term in doc.terms]
    terms.append(
        _para(
            f"This quotation is valid until {_date(doc.valid_until)}. Prices are in "
            f"{doc.currency}; VAT {_percent(doc.vat_rate)} is shown separately.",
            _SMALL,
        )
    )

    return [
        header,
        Spacer(0, 4 * mm),
        *buyer,
        Spacer(0, 5 * mm),
        items,
        Spacer(0, 4 * mm),
        KeepTogether([totals, Spacer(0, 4 * mm), *terms]),
    ]
