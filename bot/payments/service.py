"""Prepayments of quotes through YooKassa: the payment link (:func:`request_prepayment`) and the notifications that
settle it (:func:`handle_notification`). Rows are :class:`~bot.core.models.Payment`; the API client is
:class:`bot.payments.yookassa.YooKassa`, built once by the caller and passed in.

**Amount.** ``prepayment`` of the business's ``pricing.yml`` (:attr:`PricingRules.prepayment_pct
<bot.commerce.pricing.PricingRules.prepayment_pct>`, a fraction) of the quote's total incl. VAT, rounded to a whole
minor unit halves up (:func:`~bot.commerce.pricing.round_half_up`): 30% of RUB 850,340.00 is RUB 255,102.00.

**One payment per quote.** At most one payment of a quote is pending or succeeded (a partial unique index): asking
again returns that one (a pending one is first read back, and replaced when YooKassa has canceled it, e.g. its link
expired). A new row's idempotence key (a UUID 4) is committed *before* YooKassa is asked, so a retry — the client's
own, a second ask, or one after a crash — asks for the same payment and YooKassa makes it once. A refusal
(YooKassa's 4xx other than 429) marks the row ``canceled`` with the error, so the next ask starts afresh.

**Notifications.** YooKassa signs nothing, so a notification is only a hint: its sender's address must be one of
YooKassa's (:data:`YOOKASSA_NETWORKS`, when ``check_ip``), then the payment is read back through the API and only the
API's answer counts: its status, and its amount, currency and metadata (our row's id) matching the row. A
notification claiming what the API does not say changes nothing. On a new ``succeeded``: the row is ``succeeded`` at
``paid_at``, the quote (if still ``sent``) ``accepted``, the deal moves to ``won`` (:func:`bot.commerce.deals.advance`,
so the CRM outbox gets it) and all that is committed; then the injected ``after_payment(session, payment)`` is
awaited once (claimed through ``fulfilled_at``; released again if it raises, so YooKassa's next delivery retries it).
On ``canceled``: the row is ``canceled`` with YooKassa's reason, nothing else. A repeat of a notification already
applied does nothing.
"""

import ipaddress
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from bot.commerce import deals, quotes
from bot.commerce.pricing import load_pricing, round_half_up
from bot.core.models import Deal, Payment, Quote
from bot.core.money import format_money
from bot.payments.yookassa import (
    FINAL,
    MAX_DESCRIPTION_CHARS,
    PAYMENT_ID,
    PROVIDER,
    PaymentError,
    ProviderPayment,
    YooKassa,
)

log = logging.getLogger(__name__)

LIVE = (
    "pending",
    "waiting_for_capture",
    "succeeded",
)  # at most one payment of a quote in these (uq_payments_live_quote)
METADATA_ID = "closer_payment_id"  # the metadata key carrying our row's id to YooKassa and back
# The addresses YooKassa sends notifications from, as its documentation lists them (yookassa.ru/developers/using-api/
# webhooks); its SDKs list four /64 networks inside 2a02:5180::/32.
YOOKASSA_NETWORKS = tuple(
    ipaddress.ip_network(network)
    for network in (
        "185.71.76.0/27",
        "185.71.77.0/27",
        "77.75.153.0/25",
        "77.75.156.11/32",
        "77.75.156.35/32",
        "77.75.154.128/25",
        "2a02:5180::/32",
    )
)
PREPAID = deals.Move(("new", "qualified", "proposal", "negotiation"), "won")  # the customer paid the prepayment

AfterPayment = Callable[[AsyncSession, Payment], Awaitable[None]]


class PrepaymentRefused(ValueError):
    """No payment link for this quote; ``reason`` (for the caller to pick what to tell the customer):
    ``not_configured`` (pricing.yml has no ``prepayment``), ``draft`` (the quote awaits a manager), ``expired``
    (its validity passed), ``nothing_to_pay`` (the prepayment rounds to zero). The message is English, for logs."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


class Kind(StrEnum):
    """What became of a notification (:class:`Outcome`); :mod:`bot.web.payments` answers each with an HTTP status."""

    PROCESSED = "processed"  # the API's new status applied (and what follows a payment done)
    DUPLICATE = "duplicate"  # the row already had the API's status: nothing to do
    IGNORED = "ignored"  # not about a payment (refund.*, …), or a final row the API contradicts
    NOT_CONFIRMED = "not_confirmed"  # the API does not say what the notification claims: nothing changed
    MALFORMED = "malformed"  # not a YooKassa notification
    IP_NOT_ALLOWED = "ip_not_allowed"  # not from one of YooKassa's addresses
    UNKNOWN_PAYMENT = "unknown_payment"  # no payment of ours has that id
    MISMATCH = "mismatch"  # the API's amount, currency or metadata differ from the row: refused
    READ_BACK_FAILED = "read_back_failed"  # the API could not be asked
    AFTER_PAYMENT_FAILED = "after_payment_failed"  # paid and recorded, but after_payment raised (retried next time)


@dataclass(frozen=True)
class Outcome:
    """A notification's outcome: its :class:`Kind`, one English sentence for logs and the HTTP answer, and the id
    of our payment row when one was found."""

    kind: Kind
    detail: str
    payment_id: int | None = None


def prepayment_amount(total_minor: int, pct: Decimal) -> int:
    """``pct`` (a fraction) of ``total_minor``, rounded to a whole minor unit halves up."""
    return round_half_up(Decimal(total_minor) * pct)


def is_yookassa_ip(address: str | None) -> bool:
    """Whether ``address`` (IPv4 or IPv6 text, an IPv4-mapped IPv6 address too) is in :data:`YOOKASSA_NETWORKS`;
    False for None or anything that is not an address."""
    try:
        ip = ipaddress.ip_address((address or "").strip())
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip in network for network in YOOKASSA_NETWORKS)


async def live_payment(session: AsyncSession, quote_id: int) -> Payment | None:
    """The quote's payment that is pending, waiting for capture or succeeded, if any (there is at most one)."""
    return await session.scalar(select(Payment).where(Payment.quote_id == quote_id, Payment.status.in_(LIVE)))


async def request_prepayment(
    session: AsyncSession,
    quote: Quote,
    client: YooKassa,
    *,
    return_url: str,
    description: str | None = None,
    prepayment_pct: Decimal | None = None,
    now: datetime | None = None,
) -> Payment:
    """The prepayment of ``quote``: its live payment if it has one (see the module docstring), else a new
    ``payments`` row and YooKassa payment whose page (``confirmation_url``) sends the customer back to
    ``return_url``. ``description`` is shown on YooKassa's page (cut to 128 characters; default
    ``"Prepayment for quote <number>"``: pass one in the customer's language); ``prepayment_pct`` defaults to
    pricing.yml's. The returned row's ``status`` says whether it is still to pay (``pending``) or paid
    (``succeeded``).

    Commits the session: once with a new row before YooKassa is asked (the idempotence key must outlive a crash),
    again when YooKassa refuses; the caller commits the rest.
    Raises PrepaymentRefused (see its reasons), PaymentError when YooKassa refuses or cannot be reached after the
    client's retries (the row stays ``pending`` for a retryable failure: asking again retries with its key)."""
    now = now or datetime.now(UTC)
    pct = prepayment_pct if prepayment_pct is not None else load_pricing().prepayment_pct
    if not pct:
        raise PrepaymentRefused("not_configured", "pricing.yml has no prepayment: no payment link")
    if quote.status == "draft":
        raise PrepaymentRefused("draft", f"quote {quote.number} is a draft awaiting a manager")
    quote_id, number = quote.id, quote.number
    text = description or f"Prepayment for quote {number}"
    if len(text) > MAX_DESCRIPTION_CHARS:
        text = text[: MAX_DESCRIPTION_CHARS - 1] + "…"

    payment = await live_payment(session, quote_id)
    if payment is not None and payment.provider_payment_id is not None:
        payment = await _unless_canceled(session, client, payment)
        if payment is not None:
            return payment
    if quotes.expire_if_due(quote, now):  # no new call to YooKassa for a quote past its validity
        raise PrepaymentRefused("expired", f"quote {number} has expired")
    if payment is None:
        amount = prepayment_amount(quote.total_minor, pct)
        if amount <= 0:
            raise PrepaymentRefused("nothing_to_pay", f"the prepayment of quote {number} rounds to zero")
        payment = Payment(
            provider=PROVIDER,
            quote_id=quote_id,
            deal_id=quote.deal_id,
            conversation_id=quote.conversation_id,
            amount_minor=amount,
            currency=quote.currency,
            status="pending",
            idempotence_key=str(uuid.uuid4()),
            created_at=now,
            updated_at=now,
        )
        try:
            async with session.begin_nested():
                session.add(payment)
        except IntegrityError:  # asked twice at once: the other ask's row is the quote's payment
            payment = await live_payment(session, quote_id)
            if payment is None:
                raise
            if payment.provider_payment_id is not None:
                return payment
    await session.commit()  # the row and its idempotence key are kept from here on, whatever happens next
    await session.refresh(payment)  # for a session that expires its objects on commit
    return await _create(session, client, payment, number, text, return_url)


async def _unless_canceled(session: AsyncSession, client: YooKassa, payment: Payment) -> Payment | None:
    """``payment``, unless YooKassa says it was canceled meanwhile (its link expired unpaid): then it is marked so
    and None is returned. A payment that is not pending, or a read that fails, is taken as it is."""
    if payment.status != "pending" or payment.provider_payment_id is None:
        return payment
    try:
        current = await client.get_payment(payment.provider_payment_id)
    except PaymentError as exc:
        log.warning("payment %s: could not read it back (%s); its link is sent again", payment.id, exc)
        return payment
    if current.status != "canceled":
        return payment
    payment.status, payment.error = "canceled", f"canceled at YooKassa: {current.cancellation_reason or 'no reason'}"
    await session.flush()
    log.info("payment %s was canceled at YooKassa (%s); a new one is made", payment.id, current.cancellation_reason)
    return None


async def _create(
    session: AsyncSession, client: YooKassa, payment: Payment, number: str, description: str, return_url: str
) -> Payment:
    """Ask YooKassa for ``payment`` under its idempotence key and keep its answer on the row."""
    try:
        made = await client.create_payment(
            amount_minor=payment.amount_minor,
            currency=payment.currency,
            return_url=return_url,
            description=description,
            metadata={METADATA_ID: str(payment.id), "quote": number},
            idempotence_key=payment.idempotence_key,
        )
    except PaymentError as exc:
        if not exc.retryable:  # refused: no payment was made under this key, and the key would be refused again
            payment.status, payment.error = "canceled", str(exc)[:2000]
            await session.commit()
        log.warning("payment %s of quote %s: %s", payment.id, number, exc)
        raise
    if (made.amount_minor, made.currency) != (payment.amount_minor, payment.currency):
        raise PaymentError(
            f"YooKassa made payment {made.id} of {format_money(made.amount_minor, made.currency)}, "
            f"not {format_money(payment.amount_minor, payment.currency)}",
            200,
        )
    payment.provider_payment_id, payment.confirmation_url, payment.status = made.id, made.confirmation_url, made.status
    await session.flush()
    log.info("payment %s of quote %s: YooKassa payment %s (%s)", payment.id, number, made.id, made.status)
    return payment


def _notification(body: Any) -> tuple[str, str] | str:
    """``(event, object id)`` of a notification body, or what is wrong with it."""
    if not isinstance(body, dict):
        return "the body must be a JSON object"
    if body.get("type") != "notification":
        return 'type: must be "notification"'
    event = body.get("event")
    if not isinstance(event, str) or event.count(".") != 1 or not all(event.split(".")):
        return "event: must be <object>.<status>, e.g. payment.succeeded"
    obj = body.get("object")
    if not isinstance(obj, dict):
        return "object: must be a JSON object"
    object_id = obj.get("id")
    if not isinstance(object_id, str) or not PAYMENT_ID.fullmatch(object_id):
        return "object.id: must be a YooKassa id"
    return event, object_id


async def handle_notification(
    session: AsyncSession,
    body: Any,
    remote_ip: str | None,
    client: YooKassa,
    *,
    after_payment: AfterPayment | None = None,
    check_ip: bool = True,
    now: datetime | None = None,
) -> Outcome:
    """Apply a YooKassa notification (``body``: the parsed JSON, ``{"type": "notification", "event":
    "payment.succeeded" | "payment.canceled" | "payment.waiting_for_capture" | …, "object": {"id", …}}``; None for
    a body that was not JSON) sent from ``remote_ip``, as the module docstring says. Checks, in order: the sender's
    address (when ``check_ip``), the body's shape, the payment read back through ``client`` and matched to our row
    (by its id, else by the metadata's row id for a row whose creation answer was lost). Commits the session when a
    payment succeeds (before ``after_payment``) and when ``after_payment`` fails. Returns the :class:`Outcome`;
    raises only on DB errors."""
    now = now or datetime.now(UTC)
    if check_ip and not is_yookassa_ip(remote_ip):
        log.warning("YooKassa notification from %s refused: not one of YooKassa's addresses", remote_ip)
        return Outcome(Kind.IP_NOT_ALLOWED, f"{remote_ip or 'an unknown address'} is not one of YooKassa's addresses")
    parsed = _notification(body)
    if isinstance(parsed, str):
        log.warning("YooKassa notification refused: %s", parsed)
        return Outcome(Kind.MALFORMED, parsed)
    event, object_id = parsed
    kind, claimed = event.split(".")
    if kind != "payment":
        return Outcome(Kind.IGNORED, f"{event}: only payment events are handled")

    payment = await session.scalar(
        select(Payment).where(Payment.provider == PROVIDER, Payment.provider_payment_id == object_id)
    )
    try:
        actual = await client.get_payment(object_id)
    except PaymentError as exc:
        if payment is None and exc.status == 404:
            return Outcome(Kind.UNKNOWN_PAYMENT, f"payment {object_id} is unknown, here and at YooKassa")
        log.warning("YooKassa notification %s for %s: reading it back failed: %s", event, object_id, exc)
        return Outcome(Kind.READ_BACK_FAILED, f"reading payment {object_id} back failed: {exc}")
    if payment is None:
        payment = await _lost_creation(session, actual)
        if payment is None:
            log.warning("YooKassa notification %s for payment %s, which is not ours", event, object_id)
            return Outcome(Kind.UNKNOWN_PAYMENT, f"payment {object_id} is not one of ours")

    problem = _mismatch(payment, actual)
    if problem:
        log.error("YooKassa payment %s refused for our payment %s: %s", object_id, payment.id, problem)
        return Outcome(Kind.MISMATCH, problem, payment.id)
    if actual.status == payment.status:
        if actual.status != claimed:
            log.warning(
                "YooKassa notification %s for payment %s, which YooKassa's API says is %s: nothing changed",
                event,
                object_id,
                actual.status,
            )
            return Outcome(Kind.NOT_CONFIRMED, f"the API says {actual.status}, not {claimed}", payment.id)
        if payment.status == "succeeded" and payment.fulfilled_at is None and after_payment is not None:
            return await _fulfil(session, payment, after_payment, now)
        return Outcome(Kind.DUPLICATE, f"payment {payment.id} is already {payment.status}", payment.id)
    if payment.status in FINAL:
        log.warning(
            "payment %s is %s here but %s at YooKassa; left as it is", payment.id, payment.status, actual.status
        )
        return Outcome(Kind.IGNORED, f"payment {payment.id} is already {payment.status}", payment.id)
    if actual.status == "succeeded":
        return await _succeeded(session, payment, actual, after_payment, now)
    payment.status, payment.updated_at = actual.status, now
    if actual.status == "canceled":
        payment.error = f"canceled at YooKassa: {actual.cancellation_reason or 'no reason'}"
    await session.flush()
    log.info("payment %s (YooKassa %s) is %s", payment.id, object_id, actual.status)
    return Outcome(Kind.PROCESSED, f"payment {payment.id} is {actual.status}", payment.id)


async def _lost_creation(session: AsyncSession, actual: ProviderPayment) -> Payment | None:
    """Our row of a YooKassa payment whose creation answer never reached the row (a crash, a rollback): the row the
    metadata names, if it has no YooKassa id yet; the id is kept on it."""
    row_id = actual.metadata.get(METADATA_ID, "")
    payment = await session.get(Payment, int(row_id)) if row_id.isdigit() else None
    if payment is None or payment.provider_payment_id is not None or payment.provider != PROVIDER:
        return None
    payment.provider_payment_id = actual.id
    payment.confirmation_url = payment.confirmation_url or actual.confirmation_url
    await session.flush()
    return payment


def _mismatch(payment: Payment, actual: ProviderPayment) -> str | None:
    """What in YooKassa's payment differs from our row, if anything."""
    if actual.metadata.get(METADATA_ID) != str(payment.id):
        return f"YooKassa's metadata names payment {actual.metadata.get(METADATA_ID)!r}, not {payment.id}"
    if (actual.amount_minor, actual.currency) != (payment.amount_minor, payment.currency):
        return (
            f"YooKassa's amount is {format_money(actual.amount_minor, actual.currency)}, "
            f"not {format_money(payment.amount_minor, payment.currency)}"
        )
    return None


async def _succeeded(
    session: AsyncSession, payment: Payment, actual: ProviderPayment, after_payment: AfterPayment | None, now: datetime
) -> Outcome:
    """Record a new success (once, even with two deliveries at once), commit it, then what follows a payment."""
    won = await session.execute(
        update(Payment)
        .where(Payment.id == payment.id, Payment.status.not_in(FINAL))
        .values(status="succeeded", paid_at=now, updated_at=now)
    )
    if won.rowcount != 1:  # type: ignore[attr-defined]
        return Outcome(Kind.DUPLICATE, f"payment {payment.id} was recorded by another delivery", payment.id)
    quote = await session.get(Quote, payment.quote_id)
    if quote is not None and quote.status == "sent":
        quote.status, quote.accepted_at = "accepted", now
    deal = await session.get(Deal, payment.deal_id) if payment.deal_id is not None else None
    if deal is not None:
        number = quote.number if quote is not None else f"#{payment.quote_id}"
        note = (
            f"Prepayment of {format_money(payment.amount_minor, payment.currency)} for quote {number} received "
            f"through YooKassa (payment {actual.id})."
        )
        await deals.advance(session, deal, PREPAID, note)
    await session.commit()
    log.info(
        "payment %s (YooKassa %s) succeeded: %s",
        payment.id,
        actual.id,
        format_money(actual.amount_minor, actual.currency),
    )
    if after_payment is None:
        return Outcome(Kind.PROCESSED, f"payment {payment.id} succeeded", payment.id)
    return await _fulfil(session, payment, after_payment, now)


async def _fulfil(session: AsyncSession, payment: Payment, after_payment: AfterPayment, now: datetime) -> Outcome:
    """Await ``after_payment`` for a succeeded payment once: claimed by setting ``fulfilled_at`` (committed), released
    (committed) when it raises, so that a later delivery of the notification tries again."""
    payment_id = payment.id
    claimed = await session.execute(
        update(Payment).where(Payment.id == payment_id, Payment.fulfilled_at.is_(None)).values(fulfilled_at=now)
    )
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        return Outcome(Kind.DUPLICATE, f"payment {payment_id} is already succeeded", payment_id)
    await session.commit()
    await session.refresh(payment)  # as committed (and for a session that expires its objects on commit)
    try:
        await after_payment(session, payment)
        await session.flush()
    except Exception as exc:
        log.exception("payment %s succeeded, but after_payment failed; retried on YooKassa's next delivery", payment_id)
        await session.rollback()
        await session.execute(update(Payment).where(Payment.id == payment_id).values(fulfilled_at=None))
        await session.commit()
        return Outcome(
            Kind.AFTER_PAYMENT_FAILED, f"payment {payment_id} succeeded; after_payment failed: {exc}", payment_id
        )
    return Outcome(Kind.PROCESSED, f"payment {payment_id} succeeded", payment_id)


def return_url(settings: Any) -> str:
    """Where YooKassa's payment page sends the customer back: CLOSER_YOOKASSA_RETURN_URL, else the web chat page
    (``<public_url>/``)."""
    return settings.yookassa_return_url or f"{settings.public_url.rstrip('/')}/"
