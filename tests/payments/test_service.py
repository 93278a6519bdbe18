"""Prepayment links and their notifications (bot.payments.service) on the real business DB and a local YooKassa: the
amount from pricing.yml's share, one payment per quote however often it is asked for (and after a lost answer or a
crash, under the stored key), refusals, and notifications trusted only as far as the API confirms them: a new
success moves the deal to won through the CRM outbox and awaits after_payment once; a forged or repeated one does
nothing; a mismatched amount is refused; a cancellation only cancels."""

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from bot.commerce.pricing import PricingError, PricingRules
from bot.core import caches
from bot.core.db import session_scope
from bot.core.models import CRMOutbox, Deal, Payment, Quote
from bot.core.settings import ROOT
from bot.payments import service
from bot.payments.service import Kind, PrepaymentRefused, handle_notification, request_prepayment
from bot.payments.yookassa import PaymentError, YooKassa
from tests.payments.conftest import PREPAYMENT_MINOR, RETURN_URL, THIRTY, quoted

YOOKASSA_IP = "185.71.76.17"
PACK = ROOT / "examples" / "ai-studio" / "knowledge"


@pytest.fixture
def amocrm(monkeypatch):
    """Deals are mirrored to an external CRM (amoCRM), so every change of a deal is queued in the CRM outbox."""
    monkeypatch.setenv("CLOSER_CRM_PROVIDER", "amocrm")
    caches.reset()
    yield
    caches.reset()


async def ask(url: str, quote_id: int, client: YooKassa, **options) -> Payment:
    async with session_scope(url) as session:
        quote = await session.get(Quote, quote_id)
        options.setdefault("prepayment_pct", THIRTY)
        return await request_prepayment(session, quote, client, return_url=RETURN_URL, **options)


async def rows(url: str) -> list[Payment]:
    async with session_scope(url) as session:
        return list(await session.scalars(select(Payment).order_by(Payment.id)))


async def notify(url: str, client: YooKassa, body, ip: str | None = YOOKASSA_IP, after_payment=None):
    async with session_scope(url) as session:
        return await handle_notification(session, body, ip, client, after_payment=after_payment)


class Documents:
    """An after_payment callback that records what it was called with (the lead's sends the contract and invoice)."""

    def __init__(self, fail_times: int = 0):
        self.calls: list[tuple[int, str]] = []
        self.fail_times = fail_times

    async def __call__(self, session, payment: Payment) -> None:
        self.calls.append((payment.id, payment.status))
        if self.fail_times:
            self.fail_times -= 1
            raise RuntimeError("the PDF could not be sent")


async def test_a_prepayment_link_is_a_share_of_the_quote_total_made_once(url, client, yookassa):
    quote_id = await quoted(url)
    payment = await ask(url, quote_id, client)
    assert (payment.status, payment.amount_minor, payment.currency) == ("pending", PREPAYMENT_MINOR, "RUB")
    [made] = yookassa.payments.values()
    assert (
        payment.provider_payment_id == made["id"]
        and payment.confirmation_url == made["confirmation"]["confirmation_url"]
    )
    assert made["amount"] == {"value": "43920.00", "currency": "RUB"}
    assert made["metadata"]["closer_payment_id"] == str(payment.id)
    assert made["description"] == f"Prepayment for quote {made['metadata']['quote']}"
    assert yookassa.requests[0].idempotence_key == payment.idempotence_key

    again = await ask(url, quote_id, client)  # asked twice: the same link, no second payment
    assert (again.id, again.confirmation_url) == (payment.id, payment.confirmation_url)
    assert len(yookassa.payments) == 1 and len(await rows(url)) == 1
    assert [r.method for r in yookassa.requests] == ["POST", "GET"]  # the second ask only read it back


async def test_the_key_is_kept_before_yookassa_is_asked_so_a_later_ask_gets_the_same_payment(url, client, yookassa):
    quote_id = await quoted(url)
    yookassa.fail_next(500, times=3, processed=True)  # made each time under the same key; every answer lost
    with pytest.raises(PaymentError, match="500"):
        await ask(url, quote_id, client)
    [kept] = await rows(url)  # committed before the call: survives the failed ask (as it would a crash)
    assert (kept.status, kept.provider_payment_id) == ("pending", None)
    assert {r.idempotence_key for r in yookassa.requests} == {kept.idempotence_key}
    assert len(yookassa.payments) == 1

    payment = await ask(url, quote_id, client)
    assert payment.id == kept.id and payment.provider_payment_id == next(iter(yookassa.payments))
    assert len(yookassa.payments) == 1


async def test_a_refused_payment_is_canceled_and_the_next_ask_starts_afresh(url, client, yookassa):
    quote_id = await quoted(url)
    wrong = YooKassa(yookassa.shop_id, "test_revoked", yookassa.base_url, timeout_s=5.0, retry_delay_s=0.0)
    with pytest.raises(PaymentError, match="401"):
        await ask(url, quote_id, wrong)
    [refused] = await rows(url)
    assert refused.status == "canceled" and "invalid_credentials" in refused.error
    payment = await ask(url, quote_id, client)
    assert payment.id != refused.id and payment.idempotence_key != refused.idempotence_key
    assert payment.status == "pending" and len(yookassa.payments) == 1


async def test_an_expired_link_is_replaced(url, client, yookassa):
    quote_id = await quoted(url)
    first = await ask(url, quote_id, client)
    yookassa.cancel(first.provider_payment_id)  # the customer did not pay in time
    second = await ask(url, quote_id, client)
    assert second.id != first.id and len(yookassa.payments) == 2
    old, new = await rows(url)
    assert (old.status, old.error) == ("canceled", "canceled at YooKassa: expired_on_confirmation")
    assert new.status == "pending"


async def test_no_link_for_a_draft_an_expired_quote_or_a_business_without_prepayment(url, client, yookassa):
    with pytest.raises(PrepaymentRefused) as refused:
        await ask(url, await quoted(url, status="draft"), client)
    assert refused.value.reason == "draft"
    quote_id = await quoted(url)
    with pytest.raises(PrepaymentRefused) as refused:
        await ask(url, quote_id, client, now=datetime.now(UTC) + timedelta(days=15))
    assert refused.value.reason == "expired"
    with pytest.raises(PrepaymentRefused) as refused:
        await ask(url, quote_id, client, prepayment_pct=Decimal(0))
    assert refused.value.reason == "not_configured"
    with pytest.raises(PrepaymentRefused) as refused:
        await ask(url, quote_id, client, prepayment_pct=None)  # the default business's pricing.yml has none
    assert refused.value.reason == "not_configured"
    assert not yookassa.requests and not await rows(url)


async def test_a_quote_has_at_most_one_live_payment(url, client, yookassa):
    quote_id = await quoted(url)
    payment = await ask(url, quote_id, client)
    with pytest.raises(IntegrityError):
        async with session_scope(url) as session:
            session.add(
                Payment(
                    provider="yookassa",
                    quote_id=quote_id,
                    conversation_id=payment.conversation_id,
                    amount_minor=1,
                    currency="RUB",
                    status="pending",
                    idempotence_key="another-key",
                )
            )


def test_the_prepayment_share_comes_from_pricing_yml(tmp_path):
    assert PricingRules.load(PACK / "pricing.yml").prepayment_pct == Decimal("0.30")
    assert PricingRules.load(ROOT / "knowledge" / "pricing.yml").prepayment_pct is None
    text = (PACK / "pricing.yml").read_text(encoding="utf-8")
    (tmp_path / "pricing.yml").write_text(text.replace('prepayment: "0.30"', 'prepayment: "30"'), encoding="utf-8")
    with pytest.raises(PricingError, match="prepayment: '30' is not a fraction"):
        PricingRules.load(tmp_path / "pricing.yml")
    assert service.prepayment_amount(14_640_000, THIRTY) == 4_392_000
    assert service.prepayment_amount(5, Decimal("0.5")) == 3  # half a kopeck rounds up


async def test_a_confirmed_success_wins_the_deal_through_the_crm_outbox_once(url, client, yookassa, amocrm):
    quote_id = await quoted(url)
    payment = await ask(url, quote_id, client)
    documents = Documents()
    yookassa.succeed(payment.provider_payment_id)
    body = yookassa.notification(payment.provider_payment_id)

    outcome = await notify(url, client, body, after_payment=documents)
    assert (outcome.kind, outcome.payment_id) == (Kind.PROCESSED, payment.id)
    assert documents.calls == [(payment.id, "succeeded")]
    async with session_scope(url) as session:
        paid = await session.get(Payment, payment.id)
        quote = await session.get(Quote, quote_id)
        deal = await session.get(Deal, quote.deal_id)
        outbox = list(await session.scalars(select(CRMOutbox).order_by(CRMOutbox.id)))
    assert paid.status == "succeeded" and paid.paid_at is not None and paid.fulfilled_at is not None
    assert quote.status == "accepted" and deal.stage == "won"
    upsert, note = outbox[-2:]
    assert (upsert.operation, upsert.payload["local_id"], upsert.payload["stage"]) == ("upsert_deal", deal.id, "won")
    assert note.operation == "add_note" and "Prepayment of RUB 43,920.00" in note.payload["body"]

    for _ in range(2):  # YooKassa delivers it again: nothing happens twice
        again = await notify(url, client, body, after_payment=documents)
        assert again.kind == Kind.DUPLICATE
    assert len(documents.calls) == 1
    async with session_scope(url) as session:
        assert len(list(await session.scalars(select(CRMOutbox)))) == len(outbox)


async def test_a_forged_success_changes_nothing(url, client, yookassa, amocrm):
    quote_id = await quoted(url)
    payment = await ask(url, quote_id, client)
    documents = Documents()
    forged = yookassa.notification(payment.provider_payment_id, "payment.succeeded")  # the API says pending
    forged["object"].update(status="succeeded", paid=True)
    outcome = await notify(url, client, forged, after_payment=documents)
    assert outcome.kind == Kind.NOT_CONFIRMED and "the API says pending" in outcome.detail
    [row] = await rows(url)
    assert row.status == "pending" and row.paid_at is None and not documents.calls
    async with session_scope(url) as session:
        quote = await session.get(Quote, quote_id)
        assert (await session.get(Deal, quote.deal_id)).stage == "proposal"


async def test_an_amount_yookassa_did_not_take_is_refused_and_logged(url, client, yookassa, caplog):
    payment = await ask(url, await quoted(url), client)
    yookassa.succeed(payment.provider_payment_id)["amount"] = {"value": "1.00", "currency": "RUB"}
    documents = Documents()
    with caplog.at_level(logging.ERROR, logger="bot.payments.service"):
        outcome = await notify(url, client, yookassa.notification(payment.provider_payment_id), after_payment=documents)
    assert outcome.kind == Kind.MISMATCH and "RUB 1.00, not RUB 43,920.00" in outcome.detail
    assert "refused" in caplog.text
    [row] = await rows(url)
    assert row.status == "pending" and not documents.calls


async def test_a_cancellation_only_cancels(url, client, yookassa):
    quote_id = await quoted(url)
    payment = await ask(url, quote_id, client)
    yookassa.cancel(payment.provider_payment_id, reason="insufficient_funds")
    documents = Documents()
    outcome = await notify(url, client, yookassa.notification(payment.provider_payment_id), after_payment=documents)
    assert outcome.kind == Kind.PROCESSED
    [row] = await rows(url)
    assert (row.status, row.error, row.paid_at) == ("canceled", "canceled at YooKassa: insufficient_funds", None)
    assert not documents.calls
    async with session_scope(url) as session:
        quote = await session.get(Quote, quote_id)
        assert quote.status == "sent" and (await session.get(Deal, quote.deal_id)).stage == "proposal"


async def test_after_payment_that_fails_is_retried_on_the_next_delivery(url, client, yookassa):
    payment = await ask(url, await quoted(url), client)
    yookassa.succeed(payment.provider_payment_id)
    body = yookassa.notification(payment.provider_payment_id)
    documents = Documents(fail_times=1)
    failed = await notify(url, client, body, after_payment=documents)
    assert failed.kind == Kind.AFTER_PAYMENT_FAILED
    [row] = await rows(url)
    assert row.status == "succeeded" and row.fulfilled_at is None  # the payment is kept; the documents are owed
    assert (await notify(url, client, body, after_payment=documents)).kind == Kind.PROCESSED
    assert (await notify(url, client, body, after_payment=documents)).kind == Kind.DUPLICATE
    assert len(documents.calls) == 2


async def test_a_payment_whose_creation_answer_was_lost_is_found_by_its_metadata(url, client, yookassa):
    quote_id = await quoted(url)
    yookassa.fail_next(500, times=3, processed=True)
    with pytest.raises(PaymentError):
        await ask(url, quote_id, client)
    [made] = yookassa.payments
    yookassa.succeed(made)  # the customer paid through a link Closer never stored (e.g. it crashed)
    outcome = await notify(url, client, yookassa.notification(made))
    assert outcome.kind == Kind.PROCESSED
    [row] = await rows(url)
    assert (row.provider_payment_id, row.status) == (made, "succeeded")


async def test_notifications_outside_the_rules(url, client, yookassa):
    payment = await ask(url, await quoted(url), client)
    body = yookassa.notification(payment.provider_payment_id, "payment.succeeded")  # the API says pending
    assert (await notify(url, client, body, ip="203.0.113.9")).kind == Kind.IP_NOT_ALLOWED
    assert (await notify(url, client, body, ip=None)).kind == Kind.IP_NOT_ALLOWED
    assert (await notify(url, client, body, ip="2a02:5180:0:1509::12")).kind == Kind.NOT_CONFIRMED  # YooKassa's IPv6
    assert (await notify(url, client, body, ip="::ffff:77.75.156.35")).kind == Kind.NOT_CONFIRMED
    for broken, field in [
        (None, "JSON object"),
        ({**body, "type": "event"}, "type"),
        ({**body, "event": "succeeded"}, "event"),
        ({**body, "object": {"id": "../../v3/refunds"}}, "object.id"),
        ({"type": "notification", "event": "payment.succeeded"}, "object"),
    ]:
        outcome = await notify(url, client, broken)
        assert outcome.kind == Kind.MALFORMED and field in outcome.detail
    unknown = {**body, "object": {"id": "2419a771-000f-5000-9000-1edaf29243f2"}}
    assert (await notify(url, client, unknown)).kind == Kind.UNKNOWN_PAYMENT
    refund = {
        "type": "notification",
        "event": "refund.succeeded",
        "object": {"id": "216749f7-0016-50be-b000-078d43a63ae4"},
    }
    assert (await notify(url, client, refund)).kind == Kind.IGNORED
    yookassa.fail_next(502, times=3)
    assert (await notify(url, client, body)).kind == Kind.READ_BACK_FAILED
    [row] = await rows(url)
    assert row.status == "pending"


async def test_two_deliveries_at_once_record_the_success_once(url, client, yookassa, amocrm):
    payment = await ask(url, await quoted(url), client)
    yookassa.succeed(payment.provider_payment_id)
    body = yookassa.notification(payment.provider_payment_id)
    documents = Documents()
    outcomes = await asyncio.gather(*(notify(url, client, body, after_payment=documents) for _ in range(2)))
    assert sorted(o.kind for o in outcomes) == [Kind.DUPLICATE, Kind.PROCESSED]
    assert documents.calls == [(payment.id, "succeeded")]
    async with session_scope(url) as session:
        notes = [r for r in await session.scalars(select(CRMOutbox)) if r.operation == "add_note"]
    assert sum("Prepayment" in note.payload["body"] for note in notes) == 1
