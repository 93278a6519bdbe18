"""Quotations: a priced snapshot of the cart, numbered ``Q-<year>-<NNNN>`` (a sequence per calendar
year), valid for ``quote_validity_days`` (knowledge/company.yml), reachable as a PDF through an
unguessable token. Status: draft → sent → accepted, or expired once ``valid_until`` has passed. A quote is in
the language active when it is issued (the customer's: :mod:`bot.texts.i18n`), its PDF too, whenever rendered.

Every figure comes from :mod:`bot.commerce.pricing` applied to catalog prices; nothing here computes money.
"""

import secrets
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from bot.commerce import deals, numbering
from bot.commerce.pricing import PricedCart
from bot.commerce.quote_pdf import CompanyBlock, CustomerBlock, QuoteDocLine, QuoteDocument
from bot.core.business import Company
from bot.core.models import Contact, Deal, Quote, QuoteLine
from bot.core.money import format_money
from bot.core.settings import get_settings
from bot.texts.i18n import _, amount_in_words, current, format_date, use


class QuoteError(ValueError):
    """A quote that cannot be issued or accepted; the message is fit to show the customer, in the active language
    (:mod:`bot.texts.i18n`)."""


class QuoteExpired(QuoteError):
    """The quote's validity has passed (``valid_until``, UTC)."""


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


async def issue(
    session: AsyncSession,
    conversation_id: str,
    priced: PricedCart,
    validity_days: int,
    contact: Contact | None = None,
    deal: Deal | None = None,
    segment: str = "new",
    status: str = "sent",
    now: datetime | None = None,
    prefix: str = "Q",
) -> Quote:
    """Store ``priced`` (the conversation's cart, priced for ``segment`` with its extra discount) as a quote
    with ``status`` (``sent`` when it goes to the customer now, ``draft`` when a manager must approve
    first), in the active language (:func:`bot.texts.i18n.current`), its lines named as ``priced`` names them
    (:func:`bot.commerce.cart.items`: in the active language). The deal, if any, moves to ``proposal`` with
    the quote's net amount (excl. VAT). Numbered ``<prefix>-<year>-<NNNN>``. Raises QuoteError for an empty cart."""
    now = now or datetime.now(UTC)
    if not priced.lines:
        raise QuoteError(_("Your cart is empty, so there is nothing to quote yet."))
    for attempt in range(5):  # two quotes issued at once may pick the same number: take the next
        quote = Quote(
            number=await numbering.next_number(session, Quote.number, prefix, now.year),
            conversation_id=conversation_id,
            status=status,
            contact_id=contact.id if contact else None,
            deal_id=deal.id if deal else None,
            segment=segment,
            currency=priced.currency,
            subtotal_minor=priced.subtotal_minor,
            discount_minor=priced.discount_minor,
            net_minor=priced.net_minor,
            vat_rate=str(priced.vat_rate),
            vat_minor=priced.vat_minor,
            total_minor=priced.total_minor,
            extra_discount_pct=str(priced.extra_discount_pct),
            language=current(),
            valid_until=now + timedelta(days=validity_days),
            token=secrets.token_urlsafe(32),
            created_at=now,
            sent_at=now if status == "sent" else None,
            lines=[
                QuoteLine(
                    position=n,
                    sku=line.sku,
                    name=line.name,
                    quantity=line.quantity,
                    unit_price_minor=line.unit_price_minor,
                    subtotal_minor=line.subtotal_minor,
                    discount_pct=str(line.discount_pct),
                    discount_minor=line.discount_minor,
                    net_minor=line.net_minor,
                )
                for n, line in enumerate(priced.lines, start=1)
            ],
        )
        try:
            async with session.begin_nested():
                session.add(quote)
        except IntegrityError:
            if attempt == 4:
                raise
            continue
        break
    if deal is not None:
        deal.amount_minor, deal.currency = priced.net_minor, priced.currency
        note = (
            f"Quote {quote.number} ({status}): {len(priced.lines)} line items, "
            f"{format_money(priced.net_minor, priced.currency)} before VAT, "
            f"{format_money(priced.total_minor, priced.currency)} in total."
        )
        await deals.advance(session, deal, deals.QUOTE_ISSUED, note)
    await session.flush()
    return quote


async def negotiating(session: AsyncSession, deal: Deal | None) -> None:
    """A customer with a quote bargains (a discount request, a price objection): ``proposal`` →
    ``negotiation``; other stages are left as they are."""
    if deal is not None and deals.BARGAINING.applies(deal):
        await deals.advance(session, deal, deals.BARGAINING)


def url(quote: Quote, public_url: str | None = None) -> str:
    """The customer's link to the quote PDF, served by the console: ``<public_url>/quotes/<token>.pdf``
    (``public_url`` default: the settings')."""
    return f"{public_url or get_settings().public_url}/quotes/{quote.token}.pdf"


async def by_token(session: AsyncSession, token: str, now: datetime | None = None) -> Quote | None:
    """The quote behind a PDF link, or None. A quote past its validity that was not accepted is
    marked ``expired`` on the way."""
    quote = await session.scalar(select(Quote).where(Quote.token == token))
    if quote is not None:
        expire_if_due(quote, now)
    return quote


def expire_if_due(quote: Quote, now: datetime | None = None) -> bool:
    """Mark ``quote`` expired when its validity has passed and it was not accepted; True if it is expired."""
    if quote.status in ("draft", "sent") and _aware(quote.valid_until) < (now or datetime.now(UTC)):
        quote.status = "expired"
    return quote.status == "expired"


async def latest(session: AsyncSession, conversation_id: str) -> Quote | None:
    """The conversation's most recent quote (any status), or None."""
    return await session.scalar(
        select(Quote)
        .where(Quote.conversation_id == conversation_id)
        .order_by(Quote.created_at.desc(), Quote.id.desc())
        .limit(1)
    )


async def accept(session: AsyncSession, conversation_id: str, now: datetime | None = None) -> Quote:
    """Accept the conversation's latest sent quote: status ``accepted`` and its open deal ``won``.
    Raises QuoteExpired for an expired quote and QuoteError when there is no sent quote."""
    now = now or datetime.now(UTC)
    quote = await latest(session, conversation_id)
    if quote is None or quote.status == "draft":
        raise QuoteError(
            _("I don't have a quote of yours to accept yet. Say \"send me a quote\" and I'll prepare one.")
        )
    if expire_if_due(quote, now):
        expired_on = format_date(_aware(quote.valid_until).date())
        raise QuoteExpired(_("Quote %(number)s expired on %(date)s.") % {"number": quote.number, "date": expired_on})
    if quote.status == "sent":
        quote.status, quote.accepted_at = "accepted", now
        if quote.deal_id is not None:
            deal = await session.get(Deal, quote.deal_id)
            await deals.advance(
                session, deal, deals.QUOTE_ACCEPTED, f"Quote {quote.number} accepted by the customer in the chat."
            )
    await session.flush()
    return quote


def document(quote: Quote, company: Company) -> QuoteDocument:
    """What the PDF shows for ``quote``, in ``quote.language`` (None: the default language): the stored
    snapshot, never re-priced, with the ``company.quote_terms`` of that language (else the default
    language's) filled in, and the total in words when the business writes it (``amounts_in_words``)."""
    contact = quote.contact
    valid_until = _aware(quote.valid_until)
    vat = Decimal(quote.vat_rate)
    with use(quote.language) as language:
        templates = company.quote_terms.get(language, company.quote_terms.get(company.default_language, ()))
        terms = [
            t.format(
                currency=quote.currency,
                vat=f"{(vat * 100).normalize():f}%",
                valid_until=format_date(valid_until.date()),
            )
            for t in templates
        ]
        customer = (
            CustomerBlock(contact.name or "", contact.company or "", contact.email or "", contact.phone or "")
            if contact
            else CustomerBlock(_("Customer"))
        )
        words = amount_in_words(quote.total_minor, quote.currency) if company.amounts_in_words else None
    return QuoteDocument(
        number=quote.number,
        issued_on=_aware(quote.created_at).date(),
        valid_until=valid_until.date(),
        currency=quote.currency,
        company=CompanyBlock(
            company.name,
            company.trn,
            company.address,
            company.phone,
            company.email,
            company.website,
            company.trn_label,
            company.requisites,
        ),
        customer=customer,
        lines=[
            QuoteDocLine(
                line.position,
                line.sku,
                line.name,
                line.quantity,
                line.unit_price_minor,
                Decimal(line.discount_pct),
                line.discount_minor,
                line.net_minor,
            )
            for line in quote.lines
        ],
        subtotal_minor=quote.subtotal_minor,
        discount_minor=quote.discount_minor,
        net_minor=quote.net_minor,
        vat_rate=vat,
        vat_minor=quote.vat_minor,
        total_minor=quote.total_minor,
        terms=terms,
        language=quote.language,
        total_in_words=words or "",
    )
