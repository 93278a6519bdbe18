"""The YooKassa API v3 client against a local YooKassa (tests/fakes/yookassa_server.py): the request as the API
documents it (Basic auth, Idempotence-Key, amount as a decimal string), money converted exactly, a lost answer
retried under the same key (one payment made), retries bounded, refusals and timeouts as PaymentError naming the
status and YooKassa's code."""

import asyncio
import types
from decimal import Decimal

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from bot.core.money import MoneyError
from bot.payments.yookassa import PaymentError, YooKassa, to_minor_units, to_value
from tests.payments.conftest import RETURN_URL


async def create(client: YooKassa, key: str = "0b9c6f6e-5d1a-4c0e-9a57-3f4f1d2e7a10", **changes):
    request = {
        "amount_minor": 4_392_000,
        "currency": "RUB",
        "return_url": RETURN_URL,
        "description": "Предоплата по КП Q-2026-0007",
        "metadata": {"closer_payment_id": "7", "quote": "Q-2026-0007"},
        "idempotence_key": key,
        **changes,
    }
    return await client.create_payment(**request)


async def test_a_payment_is_created_as_the_api_documents_and_read_back(client, yookassa):
    made = await create(client)
    [request] = yookassa.requests
    assert (request.method, request.path, request.idempotence_key) == (
        "POST",
        "/v3/payments",
        "0b9c6f6e-5d1a-4c0e-9a57-3f4f1d2e7a10",
    )
    assert request.body == {
        "amount": {"value": "43920.00", "currency": "RUB"},
        "capture": True,
        "confirmation": {"type": "redirect", "return_url": RETURN_URL},
        "description": "Предоплата по КП Q-2026-0007",
        "metadata": {"closer_payment_id": "7", "quote": "Q-2026-0007"},
    }
    assert (made.status, made.amount_minor, made.currency, made.paid) == ("pending", 4_392_000, "RUB", False)
    assert made.confirmation_url and made.id in made.confirmation_url
    assert made.metadata == {"closer_payment_id": "7", "quote": "Q-2026-0007"}

    yookassa.succeed(made.id)
    read = await client.get_payment(made.id)
    assert (read.id, read.status, read.paid, read.amount_minor) == (made.id, "succeeded", True, 4_392_000)


async def test_a_lost_answer_is_retried_under_the_same_key_and_one_payment_is_made(client, yookassa):
    yookassa.fail_next(500, processed=True)  # YooKassa made the payment, its answer did not arrive
    made = await create(client)
    assert [r.idempotence_key for r in yookassa.requests] == ["0b9c6f6e-5d1a-4c0e-9a57-3f4f1d2e7a10"] * 2
    assert list(yookassa.payments) == [made.id]
    again = await create(client)  # a later ask with the stored key: the same payment
    assert again.id == made.id and len(yookassa.payments) == 1
    other = await create(client, key="5e0d4b8a-2c51-4f0e-8d8a-9d6b7c1f0a22")
    assert other.id != made.id and len(yookassa.payments) == 2


async def test_retries_are_bounded_and_the_error_names_the_status_and_code(client, yookassa):
    yookassa.fail_next(503, times=5)
    with pytest.raises(PaymentError) as caught:
        await create(client)
    assert caught.value.status == 503 and caught.value.code == "internal_server_error" and caught.value.retryable
    assert "YooKassa 503 on POST /v3/payments: internal_server_error" in str(caught.value)
    assert len(yookassa.requests) == 3 and not yookassa.payments


async def test_refusals_are_not_retried(client, yookassa):
    wrong = YooKassa(yookassa.shop_id, "test_wrong-secret", yookassa.base_url, timeout_s=5.0, retry_delay_s=0.0)
    with pytest.raises(PaymentError) as caught:
        await create(wrong)
    assert (caught.value.status, caught.value.code, caught.value.retryable) == (401, "invalid_credentials", False)
    assert len(yookassa.requests) == 1

    with pytest.raises(PaymentError, match=r"400 .*invalid_request.*\(parameter amount.currency\)"):
        await create(client, currency="USD")
    with pytest.raises(PaymentError) as caught:
        await client.get_payment("2419a771-000f-5000-9000-1edaf29243f2")
    assert (caught.value.status, caught.value.code) == (404, "not_found")
    with pytest.raises(PaymentError, match="Idempotence key duplicated"):  # the same key, another body
        await create(client, amount_minor=100)
        await create(client, amount_minor=200)


async def test_a_silent_server_times_out_after_the_settings_seconds():
    async def hang(request: web.Request) -> web.Response:
        await asyncio.sleep(30)
        return web.json_response({})

    app = web.Application()
    app.router.add_post("/v3/payments", hang)
    async with TestServer(app, host="127.0.0.1") as server:
        client = YooKassa("1", "k", str(server.make_url("")), timeout_s=0.2, attempts=2, retry_delay_s=0.0)
        with pytest.raises(PaymentError, match="no answer") as caught:
            await create(client)
    assert caught.value.status is None and caught.value.retryable


async def test_input_beyond_yookassas_limits_is_refused_before_any_request(client, yookassa):
    with pytest.raises(ValueError, match="description"):
        await create(client, description="x" * 129)
    with pytest.raises(ValueError, match="idempotence_key"):
        await create(client, key="k" * 65)
    with pytest.raises(ValueError, match="amount_minor"):
        await create(client, amount_minor=0)
    with pytest.raises(ValueError, match="payment id"):
        await client.get_payment("../refunds")
    assert not yookassa.requests


def test_money_is_converted_exactly():
    assert to_value(4_392_000, "RUB") == "43920.00"
    assert to_value(1, "RUB") == "0.01"
    assert to_value(500, "JPY") == "500"
    assert to_value(1, "KWD") == "0.001"
    assert to_value(9_999_999_999_999, "RUB") == "99999999999.99"
    assert to_minor_units("43920.00", "RUB") == 4_392_000
    assert to_minor_units("1234.5", "RUB") == 123_450
    assert to_minor_units("99999999999.99", "RUB") == 9_999_999_999_999
    for wrong in ("0.001", "abc", "NaN", "-1.00"):
        with pytest.raises(MoneyError):
            to_minor_units(wrong, "RUB")
    with pytest.raises(MoneyError):
        to_minor_units(1234.5, "RUB")  # a float is not YooKassa's decimal string
    assert Decimal(to_value(123_456_789, "RUB")) == Decimal("1234567.89")


def test_the_client_is_built_from_the_settings():
    settings = types.SimpleNamespace(
        yookassa_shop_id="506751",
        yookassa_secret_key=None,
        yookassa_base_url="https://api.yookassa.ru",
        yookassa_timeout=7.0,
    )
    with pytest.raises(ValueError, match="CLOSER_YOOKASSA_SECRET_KEY"):
        YooKassa.from_settings(settings)
    settings.yookassa_secret_key = "live_secret"
    client = YooKassa.from_settings(settings)
    assert (client.base_url, client.timeout_s) == ("https://api.yookassa.ru", 7.0)
