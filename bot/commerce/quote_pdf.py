"""Quotation, invoice and contract PDFs: a ``QuoteDocument`` rendered to A4 PDF bytes with reportlab platypus.

One layout for the three kinds (``QuoteDocument.kind``): the seller's header with the title, number and dates, the
buyer, the line items and totals. A quotation adds its terms and validity; an invoice the amount paid and the
balance due; a contract prints its text (``QuoteDocument.body``, written from the business's template by
:mod:`bot.commerce.invoicing`) before the line items, which are its specification.

The PDF is in ``QuoteDocument.language``: its labels through gettext, money with
:func:`bot.texts.i18n.format_money`, dates with :func:`bot.texts.i18n.format_date`; a language written right to
left (Arabic; Babel's ``Locale.character_order``) gets a mirrored page: the header's blocks, the line table's
columns and the totals swap sides, and text is set from the right. Money is integer minor units of
``QuoteDocument.currency`` (ISO 4217). Percentages are ``Decimal`` fractions (``Decimal("0.05")`` = 5%), as in
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
from reportlab.platypus import Flowable, KeepTogether, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from bot.texts import i18n
from bot.texts.i18n import _

FONTS = Path(__file__).resolve().parent / "fonts"
FONT, FONT_BOLD = "DejaVuSans", "DejaVuSans-Bold"
MARGIN = 15 * mm
PAD = 6  # platypus Frame padding on each side, points
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
    requisites: tuple[str, ...] = ()  # further lines: registration numbers, bank details (company.yml)

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
    fraction (0.05 = 5%); ``terms`` are printed as bullet points; ``language`` (ISO 639-1) is the one the PDF
    is in, None for the business's default language."""

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
    language: str | None = None
    total_in_words: str = ""  # printed under the totals when set (company.yml amounts_in_words)
    kind: str = "quotation"  # one of KINDS
    reference: str = ""  # an invoice's or contract's quote, printed under its number ("Quotation Q-2026-0001")
    paid_minor: int = 0  # an invoice: what was already paid (then "Paid" and "Balance due" are printed)
    paid_on: date | None = None
    # a contract's text, in order: ("heading", text) or ("text", text) (a paragraph; newlines break lines)
    body: Sequence[tuple[str, str]] = ()


KINDS = ("quotation", "invoice", "contract")


def _title(kind: str) -> str:
    """The document's title in the active language. Raises ValueError for a kind not in :data:`KINDS`."""
    titles = {"quotation": _("QUOTATION"), "invoice": _("INVOICE"), "contract": _("CONTRACT")}
    if kind not in titles:
        raise ValueError(f"unknown document kind {kind!r}: one of {', '.join(KINDS)}")
    return titles[kind]


def render_quote_pdf(doc: QuoteDocument) -> bytes:
    """The document as A4 PDF bytes in ``doc.language``: header, customer, (a contract's text,) line table (header
    row repeated on every page), totals, (a quotation's terms, an invoice's payment,) "Page N of M" footer; PDF title =
    the document's number, author = company name. Raises ValueError for a ``doc.kind`` not in :data:`KINDS`.
    Blocking: call through ``asyncio.to_thread`` from async code. Raises FileNotFoundError when the
    language's compiled catalog is missing (:func:`bot.texts.i18n.gettext`)."""
    _register_fonts()
    _title(doc.kind)
    buffer = BytesIO()
    with i18n.use(doc.language):
        template = SimpleDocTemplate(
            buffer,
            pagesize=A4,
            leftMargin=MARGIN,
            rightMargin=MARGIN,
            topMargin=MARGIN,
            bottomMargin=20 * mm,
            title=doc.number,
            author=doc.company.name,
            subject=f"{_title(doc.kind)} {doc.number}",
            creator="Closer",
            initialFontName=FONT,
            initialFontSize=9,  # else every page also references Helvetica
        )

        def footer(canv: canvas.Canvas, _template: SimpleDocTemplate) -> None:
            canv.saveState()
            canv.setFont(FONT, 7.5)
            canv.setFillColor(colors.grey)
            text = _shape(f"{doc.company.name} · {doc.company.tax_id} · {doc.number}")
            if _right_to_left():
                canv.drawRightString(A4[0] - MARGIN - PAD, 10 * mm, text)
            else:
                canv.drawString(MARGIN + PAD, 10 * mm, text)
            canv.restoreState()

        template.build(_story(doc), onFirstPage=footer, onLaterPages=footer, canvasmaker=_NumberedCanvas)
    return buffer.getvalue()


class _NumberedCanvas(canvas.Canvas):
    """Two-pass page numbering (the well-known reportlab recipe): keep every page's state until
    ``save``, when the page count is known, then draw "Page N of M" on each (bottom right; bottom left on a
    right-to-left page)."""

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
            text = _shape(_("Page %(page)s of %(pages)s") % {"page": self._pageNumber, "pages": len(self._pages)})
            if _right_to_left():
                self.drawString(MARGIN + PAD, 10 * mm, text)
            else:
                self.drawRightString(A4[0] - MARGIN - PAD, 10 * mm, text)
            super().showPage()
        super().save()


@cache
def _register_fonts() -> None:
    """Load DejaVu Sans regular and bold once per process (parsing the TTFs is the slow part)."""
    pdfmetrics.registerFont(TTFont(FONT, str(FONTS / "DejaVuSans.ttf")))
    pdfmetrics.registerFont(TTFont(FONT_BOLD, str(FONTS / "DejaVuSans-Bold.ttf")))
    pdfmetrics.registerFontFamily(FONT, normal=FONT, bold=FONT_BOLD, italic=FONT, boldItalic=FONT_BOLD)


def _right_to_left() -> bool:
    """Whether the active language is written right to left (its page is mirrored)."""
    return i18n.locale().character_order == "right-to-left"


def _shape(text: str) -> str:
    """Arabic (and Hebrew) → joined glyph forms in visual, left-to-right drawing order, read as right-to-left
    text on a right-to-left page (a line starting "140x70 مكتب" keeps the size on its right), else in the
    direction of its first letter; other text unchanged. Only right for single-line text: a wrapped RTL
    paragraph would break in the wrong place (:class:`_RightToLeftText` breaks lines first)."""
    if not _RTL.search(text):
        return text
    return get_display(arabic_reshaper.reshape(text), base_dir="R" if _right_to_left() else None)


class _RightToLeftText(Flowable):
    """Text on a right-to-left page, in place of a Paragraph (which breaks lines of visual-order text in the
    wrong places): broken into lines in logical order to fit the width it is given, each line then shaped
    and set from the right edge; a style aligned right is mirrored to the left edge. ``style.leftIndent``
    indents from the right; ``bullet`` is set at the right edge of the first line. Newlines break lines."""

    def __init__(self, text: str, style: ParagraphStyle, bullet: str = ""):
        super().__init__()
        self.text, self.style, self.bullet = text, style, bullet
        self.lines: list[str] = []  # shaped, top to bottom
        self._wrapped_at: float | None = None

    def wrap(self, availWidth: float, availHeight: float) -> tuple[float, float]:
        if availWidth != self._wrapped_at:  # a table asks more than once
            font, size = self.style.fontName, self.style.fontSize
            room, space = availWidth - self.style.leftIndent, pdfmetrics.stringWidth(" ", font, size)
            lines: list[list[str]] = []
            for part in self.text.split("\n"):
                used = room  # nothing fits on the previous part's line
                for word in part.split():
                    # letters join within a word only, so a line is as wide as its shaped words and spaces
                    width = pdfmetrics.stringWidth(arabic_reshaper.reshape(word), font, size)
                    if used + space + width <= room:
                        lines[-1].append(word)
                        used += space + width
                    else:
                        lines.append([word])
                        used = width
            self.lines = [_shape(" ".join(words)) for words in lines]
            self._wrapped_at, self.width, self.height = availWidth, availWidth, len(lines) * self.style.leading
        return self.width, self.height

    def draw(self) -> None:
        style = self.style
        self.canv.setFont(style.fontName, style.fontSize)
        right = self.width - style.leftIndent
        for n, line in enumerate(self.lines):
            y = self.height - n * style.leading - style.fontSize
            if style.alignment == TA_RIGHT:
                self.canv.drawString(0, y, line)
            else:
                self.canv.drawRightString(right, y, line)
        if self.bullet and self.lines:
            self.canv.drawRightString(self.width, self.height - style.fontSize, self.bullet)


def _para(text: str, style: ParagraphStyle) -> Flowable:
    """Plain text (never markup) as a Paragraph, or :class:`_RightToLeftText` on a right-to-left page;
    newlines become line breaks."""
    if _right_to_left():
        return _RightToLeftText(text, style)
    return Paragraph("<br/>".join(escape(_shape(part)) for part in text.split("\n")), style)


def _bullet(text: str) -> Flowable:
    """One bullet point of the terms."""
    if _right_to_left():
        return _RightToLeftText(text, _BULLET, bullet="•")
    return Paragraph(escape(_shape(text)), _BULLET, bulletText="•")


def _percent(fraction: Decimal) -> str:
    """``Decimal("0.05")`` → ``"5%"``, ``Decimal("0.125")`` → ``"12.5%"``."""
    return f"{(fraction * 100).normalize():f}%"


_S = ParagraphStyle("quote", fontName=FONT, fontSize=9, leading=12)
_SMALL = ParagraphStyle("small", parent=_S, fontSize=8, leading=10)
_SMALL_RIGHT = ParagraphStyle("small-right", parent=_SMALL, alignment=TA_RIGHT)
_TITLE = ParagraphStyle("title", parent=_S, fontName=FONT_BOLD, fontSize=16, leading=20)
_H = ParagraphStyle("heading", parent=_S, fontName=FONT_BOLD, fontSize=10, leading=13, spaceBefore=8, spaceAfter=3)
_RIGHT = ParagraphStyle("right", parent=_S, alignment=TA_RIGHT)
_TITLE_RIGHT = ParagraphStyle("title-right", parent=_TITLE, alignment=TA_RIGHT)
_BULLET = ParagraphStyle("bullet", parent=_SMALL, leftIndent=10, bulletIndent=0, bulletFontName=FONT)


def _story(doc: QuoteDocument) -> list:
    """The page's flowables in the active language; on a right-to-left page every row is listed right to left."""
    rtl = _right_to_left()
    mirror = (lambda row: row[::-1]) if rtl else (lambda row: row)
    money = lambda minor: _shape(i18n.format_money(minor, doc.currency))  # noqa: E731
    minus = lambda minor: _shape(f"-{i18n.format_money(minor, doc.currency)}") if minor else money(0)  # noqa: E731
    width = A4[0] - 2 * (MARGIN + PAD)
    company, customer = doc.company, doc.customer

    seller = [
        _para(company.name, _TITLE),
        _para(company.address, _SMALL),
        _para(company.tax_id, _SMALL),
        _para(f"{company.phone} · {company.email} · {company.website}", _SMALL),
        *(_para(line, _SMALL) for line in company.requisites),
    ]
    meta = [
        _para(_title(doc.kind), _TITLE_RIGHT),
        _para(doc.number, _RIGHT),
        _para(_("Issued %(date)s") % {"date": i18n.format_date(doc.issued_on)}, _SMALL_RIGHT),
    ]
    if doc.kind == "quotation":
        meta.append(_para(_("Valid until %(date)s") % {"date": i18n.format_date(doc.valid_until)}, _SMALL_RIGHT))
    if doc.reference:
        meta.append(_para(doc.reference, _SMALL_RIGHT))
    header = Table([mirror([seller, meta])], colWidths=mirror([width * 0.62, width * 0.38]))
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

    buyer_label = {"quotation": _("Prepared for"), "invoice": _("Bill to"), "contract": _("Customer")}[doc.kind]
    buyer = [_para(buyer_label, _H)]
    buyer += [_para(value, _S) for value in (customer.name, customer.company, customer.email, customer.phone) if value]

    # Cell padding 4 pt a side: Unit price fits AED 999,999.99, Discount -AED 999,999.99, Net AED 9,999,999.99.
    fixed = [8 * mm, 22 * mm, None, 11 * mm, 26 * mm, 27 * mm, 29 * mm]
    fixed[2] = width - sum(w for w in fixed if w)
    labels = ["#", _("SKU"), _("Item"), _("Qty"), _("Unit price"), _("Discount"), _("Net")]
    rows = [mirror([_shape(label) for label in labels])]
    for line in doc.lines:
        discount = f"{_percent(line.discount_pct)}\n{minus(line.discount_minor)}" if line.discount_minor else ""
        rows.append(
            mirror(
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
        )
    items = Table(rows, colWidths=mirror(fixed), repeatRows=1)
    items.setStyle(
        TableStyle(
            [
                ("FONT", (0, 0), (-1, 0), FONT_BOLD, 8),
                ("FONT", (0, 1), (-1, -1), FONT, 8),
                ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#EDE7DD")),
                ("LINEBELOW", (0, 0), (-1, 0), 0.75, colors.HexColor("#8A6D3B")),
                ("LINEBELOW", (0, 1), (-1, -1), 0.25, colors.lightgrey),
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                # Qty and the amounts set from the right, #, SKU and Item from the left; mirrored, the other way
                ("ALIGN", (4, 0) if rtl else (3, 0), (-1, -1), "RIGHT"),
                ("LEFTPADDING", (0, 0), (-1, -1), 4),
                ("RIGHTPADDING", (0, 0), (-1, -1), 4),
            ]
        )
    )

    totals_rows = [
        [_("Subtotal"), money(doc.subtotal_minor)],
        [_("Discounts"), minus(doc.discount_minor)],
        [_("Net (excl. VAT)"), money(doc.net_minor)],
        [_("VAT %(rate)s") % {"rate": _percent(doc.vat_rate)}, money(doc.vat_minor)],
        [_("Total"), money(doc.total_minor)],
    ]
    if doc.paid_minor:
        paid_on = i18n.format_date(doc.paid_on) if doc.paid_on else ""
        totals_rows += [
            [_("Paid %(date)s") % {"date": paid_on}, money(doc.paid_minor)],
            [_("Balance due"), money(doc.total_minor - doc.paid_minor)],
        ]
    total_row = len(totals_rows) - (3 if doc.paid_minor else 1)
    totals = Table(
        [mirror([_shape(label), amount]) for label, amount in totals_rows],
        colWidths=mirror([40 * mm, 45 * mm]),
        hAlign="LEFT" if rtl else "RIGHT",
    )
    totals.setStyle(
        TableStyle(
            [
                ("FONT", (0, 0), (-1, -1), FONT, 9),
                ("FONT", (0, total_row), (-1, total_row), FONT_BOLD, 10),
                ("FONT", (0, -1), (-1, -1), FONT_BOLD, 10),
                ("ALIGN", (1, 0), (1, -1), "RIGHT"),  # the amounts; mirrored, the labels
                ("LINEABOVE", (0, total_row), (-1, total_row), 0.75, colors.black),
            ]
        )
    )

    words = [_para(_("Total in words: %(amount)s") % {"amount": doc.total_in_words}, _S)] if doc.total_in_words else []
    terms: list[Flowable] = []
    if doc.kind == "quotation":
        terms = [_para(_("Terms"), _H), *(_bullet(term) for term in doc.terms)]
        validity = _(
            "This quotation is valid until %(date)s. Prices are in %(currency)s; VAT %(rate)s is shown separately."
        )
        values = {"date": i18n.format_date(doc.valid_until), "currency": doc.currency, "rate": _percent(doc.vat_rate)}
        terms.append(_para(validity % values, _SMALL))
    body: list[Flowable] = [_para(text, _H if part == "heading" else _S) for part, text in doc.body]
    if body:
        body += [Spacer(0, 4 * mm), _para(_("Specification"), _H)]

    return [
        header,
        Spacer(0, 4 * mm),
        *buyer,
        Spacer(0, 5 * mm),
        *body,
        items,
        Spacer(0, 4 * mm),
        KeepTogether([totals, Spacer(0, 2 * mm), *words, Spacer(0, 4 * mm), *terms]),
    ]
