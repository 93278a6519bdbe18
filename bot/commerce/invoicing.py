"""What the customer gets once a quote is paid: an invoice (счёт на оплату) and, where the business writes one, a
contract — both PDFs from the quote's stored snapshot, numbered per kind and year with company.yml's
``invoice_prefix`` / ``contract_prefix`` (:mod:`bot.commerce.numbering`), each behind an unguessable link
(``/documents/<token>.pdf``, :func:`url`).

The contract's text is the business's template ``knowledge/documents/contract.<language>.txt.j2`` (Jinja2; the
quote's language, else the business's default language; no template: no contract, the invoice alone). It is
rendered once, when the contract is issued, and kept with it (``SalesDocument.body``): a later edit of the template
never changes a contract already sent. Its format: paragraphs separated by a blank line; a line starting ``## `` is a
heading. The template gets :func:`contract_context` (amounts formatted in the quote's language, and in words when
the business writes them: ``amounts_in_words``). Money is integer minor units of the quote's currency (ISO 4217).
"""

import logging
import secrets
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jinja2
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from bot.commerce import numbering, quotes
from bot.commerce.quote_pdf import QuoteDocument
from bot.core.business import Company, get_company
from bot.core.models import Payment, Quote, SalesDocument
from bot.core.rasa import RasaClient, RasaError
from bot.core.settings import get_settings
from bot.follow_ups import outreach
from bot.texts import messages
from bot.texts.i18n import _, amount_in_words, format_date, format_money, use

log = logging.getLogger(__name__)

INVOICE, CONTRACT = "invoice", "contract"
CONTRACT_TEMPLATE = "documents/contract.{language}.txt.j2"  # in the business's knowledge/


class DocumentTemplateError(ValueError):
    """The business's contract template does not render (a syntax error, or a variable it does not get): the
    message names the template and the error."""


def contract_template(knowledge_dir: Path, language: str, default_language: str) -> Path | None:
    """The contract template for ``language`` (else ``default_language``) in ``knowledge_dir``, None if neither."""
    for code in (language, default_language):
        path = knowledge_dir / CONTRACT_TEMPLATE.format(language=code)
        if path.is_file():
            return path
    return None


def contract_context(quote: Quote, company: Company, number: str, paid_minor: int, issued: datetime) -> dict[str, Any]:
    """What a contract template gets, in the active language: ``number``, ``date``; ``seller`` (name, address,
    phone, email, website, requisites: list of lines), ``customer`` (name, company, email, phone: "" when unknown);
    ``quote`` (number, date); ``total``, ``net``, ``vat``, ``prepayment``, ``balance`` (formatted money) and
    ``total_in_words``, ``prepayment_in_words`` ("" unless the business writes amounts in words); ``lines`` (name,
    quantity, net: formatted)."""
    currency, contact = quote.currency, quote.contact

    def words(minor: int) -> str:
        return (amount_in_words(minor, currency) or "") if company.amounts_in_words else ""

    return {
        "number": number,
        "date": format_date(issued.date()),
        "seller": {
            "name": company.name,
            "address": company.address,
            "phone": company.phone,
            "email": company.email,
            "website": company.website,
            "requisites": list(company.requisites),
        },
        "customer": {
            "name": (contact.name if contact else "") or "",
            "company": (contact.company if contact else "") or "",
            "email": (contact.email if contact else "") or "",
            "phone": (contact.phone if contact else "") or "",
        },
        "quote": {"number": quote.number, "date": format_date(quote.created_at.date())},
        "total": format_money(quote.total_minor, currency),
        "net": format_money(quote.net_minor, currency),
        "vat": format_money(quote.vat_minor, currency),
        "prepayment": format_money(paid_minor, currency),
        "balance": format_money(quote.total_minor - paid_minor, currency),
        "total_in_words": words(quote.total_minor),
        "prepayment_in_words": words(paid_minor),
        "lines": [
            {"name": line.name, "quantity": line.quantity, "net": format_money(line.net_minor, currency)}
            for line in quote.lines
        ],
    }


def render_contract_text(template: Path, context: dict[str, Any]) -> str:
    """The contract's text from ``template`` with ``context``. Raises DocumentTemplateError (naming the template)
    for a syntax error or a variable the template uses but does not get."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(template.parent),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )
    try:
        return env.get_template(template.name).render(**context).strip()
    except jinja2.TemplateError as error:
        raise DocumentTemplateError(f"{template}: {error}") from error


def blocks(text: str) -> list[tuple[str, str]]:
    """A contract's text as the PDF's blocks: ("heading", text) for a paragraph starting ``## ``, else ("text",
    the paragraph, its lines kept)."""
    out = []
    for paragraph in text.split("\n\n"):
        paragraph = paragraph.strip()
        if paragraph.startswith("## "):
            out.append(("heading", paragraph[3:].strip()))
        elif paragraph:
            out.append(("text", paragraph))
    return out


async def issue_paid(
    session: AsyncSession,
    quote: Quote,
    company: Company,
    *,
    paid_minor: int,
    paid_at: datetime,
    payment_id: int | None = None,
    knowledge_dir: Path | None = None,
) -> list[SalesDocument]:
    """Issue the documents of a paid ``quote`` (``paid_minor`` received at ``paid_at``, by ``payment_id``): the
    invoice, and the contract when the business has a template (:func:`contract_template`), in the quote's
    language. Issuing again for the same ``payment_id`` returns the documents already issued (a payment
    notification delivered twice issues nothing twice). Raises DocumentTemplateError (nothing issued) when the
    contract template does not render."""
    if payment_id is not None:
        issued = (
            await session.scalars(
                select(SalesDocument).where(SalesDocument.payment_id == payment_id).order_by(SalesDocument.id)
            )
        ).all()
        if issued:
            return list(issued)
    knowledge_dir = knowledge_dir or get_settings().knowledge_dir
    await session.refresh(quote, ["contact", "lines"])  # read by the documents, perhaps not loaded yet
    now = datetime.now(UTC)
    documents = [
        SalesDocument(kind=INVOICE, quote=quote, payment_id=payment_id, paid_minor=paid_minor, paid_at=paid_at, body="")
    ]
    with use(quote.language) as language:
        template = contract_template(knowledge_dir, language, company.default_language)
        if template is not None:
            contract = SalesDocument(
                kind=CONTRACT, quote=quote, payment_id=payment_id, paid_minor=paid_minor, paid_at=paid_at
            )
            documents.append(contract)
    prefixes = {INVOICE: company.invoice_prefix, CONTRACT: company.contract_prefix}
    async with session.begin_nested():  # all documents or none (a contract template that does not render)
        for document in documents:
            for attempt in range(5):  # two documents numbered at once may pick the same number: take the next
                document.number = await numbering.next_number(
                    session, SalesDocument.number, prefixes[document.kind], now.year
                )
                document.token, document.created_at = secrets.token_urlsafe(32), now
                if document.kind == CONTRACT:
                    with use(quote.language):
                        context = contract_context(quote, company, document.number, paid_minor, now)
                        document.body = render_contract_text(template, context)  # type: ignore[arg-type]
                try:
                    async with session.begin_nested():
                        session.add(document)
                except IntegrityError:
                    if attempt == 4:
                        raise
                    continue
                break
    await session.flush()
    log.info("quote %s paid: issued %s", quote.number, ", ".join(d.number for d in documents))
    return documents


def document(doc: SalesDocument, company: Company) -> QuoteDocument:
    """What the PDF of ``doc`` shows: the quote's document (:func:`bot.commerce.quotes.document`, in the quote's
    language) as an invoice (with the amount paid and the balance due) or a contract (with its stored text)."""
    quote = doc.quote
    base = quotes.document(quote, company)
    with use(quote.language):
        reference = _("Quotation %(number)s") % {"number": quote.number}
    return replace(
        base,
        kind=doc.kind,
        number=doc.number,
        issued_on=doc.created_at.date(),
        reference=reference,
        paid_minor=doc.paid_minor if doc.kind == INVOICE else 0,
        paid_on=doc.paid_at.date() if doc.paid_at else None,
        body=blocks(doc.body) if doc.kind == CONTRACT else (),
        terms=(),
    )


async def by_token(session: AsyncSession, token: str) -> SalesDocument | None:
    """The document behind ``token``, None when there is none."""
    return await session.scalar(select(SalesDocument).where(SalesDocument.token == token))


def url(doc: SalesDocument, public_url: str | None = None) -> str:
    """The customer's link to the document's PDF, served by the console: ``<public_url>/documents/<token>.pdf``."""
    return f"{public_url or get_settings().public_url}/documents/{doc.token}.pdf"


async def send_paid_documents(rasa: RasaClient, session: AsyncSession, payment: Payment) -> list[SalesDocument]:
    """What follows a payment (``after_payment`` of :mod:`bot.payments.service`): the documents of the paid quote issued
    (:func:`issue_paid`: the payment's ``amount_minor`` received at its ``paid_at``) and sent to the customer of the
    payment's conversation on their channel, in the quote's language, as links
    (:func:`bot.follow_ups.outreach.write_first`). The documents stay issued when the message cannot be sent (logged:
    WhatsApp's window closed, Rasa unreachable): a manager sees them on the deal. Raises LookupError for a payment of
    an unknown quote, DocumentTemplateError as :func:`issue_paid`."""
    quote = await session.get(Quote, payment.quote_id)
    if quote is None:
        raise LookupError(f"payment {payment.id}: quote {payment.quote_id} does not exist")
    paid_at = payment.paid_at or datetime.now(UTC)
    documents = await issue_paid(
        session, quote, get_company(), paid_minor=payment.amount_minor, paid_at=paid_at, payment_id=payment.id
    )
    with use(quote.language) as language:
        titles = {INVOICE: _("Invoice"), CONTRACT: _("Contract")}
        text = messages.render(
            "documents_sent",
            paid_minor=payment.amount_minor,
            currency=quote.currency,
            quote_number=quote.number,
            documents=[{"title": titles[d.kind], "number": d.number, "url": url(d)} for d in documents],
        )
    try:
        metadata = {"payment": payment.id}
        await outreach.write_first(
            rasa, session, payment.conversation_id, text, metadata, now=datetime.now(UTC), language=language
        )
    except (outreach.WindowClosed, RasaError) as error:
        log.warning("documents of payment %s not sent to %s: %s", payment.id, payment.conversation_id, error)
    return documents
