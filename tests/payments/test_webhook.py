"""POST /webhooks/yookassa (bot.web.payments) over HTTP: mounted in the console's application when YooKassa is
configured; the sender's address taken from X-Forwarded-For only behind a trusted proxy; each outcome answered with
its status (200 processed or repeated, 400 malformed, 403 not YooKassa, 404 unknown, 409 not confirmed, 422
mismatch, 500 after_payment failed, 502 read-back failed)."""

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from cryptography.fernet import Fernet

from bot.core.db import session_scope
from bot.core.models import Payment, Quote
from bot.core.settings import Settings
from bot.payments.service import request_prepayment
from bot.web import payments
from bot.web.app import create_app
from bot.web.appkeys import settings_key
from tests.payments.conftest import RETURN_URL, THIRTY, quoted
from tests.payments.test_service import Documents, rows

PATH = "/webhooks/yookassa"
FROM_YOOKASSA = {"X-Forwarded-For": "77.75.153.78"}


async def link(url: str, client) -> Payment:
    async with session_scope(url) as session:
        quote = await session.get(Quote, await quoted(url))
        return await request_prepayment(session, quote, client, return_url=RETURN_URL, prepayment_pct=THIRTY)


def settings(url: str, fake, **overrides) -> Settings:
    values = {
        "database_url": url,
        "console_secret_key": Fernet.generate_key().decode(),
        "yookassa_shop_id": fake.shop_id,
        "yookassa_secret_key": fake.secret_key,
        "yookassa_base_url": fake.base_url,
        "yookassa_trusted_proxies": ["127.0.0.1"],  # the test client stands in for the reverse proxy
        **overrides,
    }
    return Settings(**values)


@pytest.fixture
async def http(url, client, yookassa):
    """A client of an application serving only the notification route, with a recording after_payment."""
    app = web.Application()
    app[settings_key] = settings(url, yookassa)
    documents = Documents()
    payments.setup(app, after_payment=documents, client=client)
    async with TestClient(TestServer(app)) as http:
        http.documents = documents
        yield http


async def post(http: TestClient, body, headers=FROM_YOOKASSA) -> tuple[int, dict]:
    kwargs = {"json": body} if not isinstance(body, str) else {"data": body}
    async with http.post(PATH, headers=headers, **kwargs) as response:
        return response.status, await response.json()


async def test_the_console_serves_notifications_when_yookassa_is_configured(url, client, yookassa):
    payment = await link(url, client)
    yookassa.succeed(payment.provider_payment_id)
    body = yookassa.notification(payment.provider_payment_id)
    async with TestClient(TestServer(create_app(settings(url, yookassa)))) as http:
        assert await post(http, body, headers={}) == (
            403,
            {"outcome": "ip_not_allowed", "detail": "127.0.0.1 is not one of YooKassa's addresses"},
        )
        status, answer = await post(http, body)
        assert (status, answer["outcome"]) == (200, "processed")
    [row] = await rows(url)
    assert row.status == "succeeded"
    async with TestClient(TestServer(create_app(settings(url, yookassa, yookassa_shop_id=None)))) as http:
        assert (await http.post(PATH, json=body)).status == 404  # not configured: not served


async def test_each_outcome_has_its_status(http, url, client, yookassa):
    payment = await link(url, client)
    forged = yookassa.notification(payment.provider_payment_id, "payment.succeeded")
    assert (await post(http, forged))[0] == 409  # YooKassa's API says pending
    status, answer = await post(http, "{not json")
    assert (status, answer) == (400, {"outcome": "malformed", "detail": "the body must be a JSON object"})
    assert await post(http, {**forged, "object": {}}) == (
        400,
        {"outcome": "malformed", "detail": "object.id: must be a YooKassa id"},
    )
    spoofed = {"X-Forwarded-For": "185.71.76.1, 203.0.113.9"}  # the client wrote the first, the proxy the second
    assert (await post(http, forged, headers=spoofed))[0] == 403
    unknown = {**forged, "object": {"id": "2419a771-000f-5000-9000-1edaf29243f2"}}
    assert (await post(http, unknown))[0] == 404
    yookassa.fail_next(500, times=3)
    assert (await post(http, forged))[0] == 502
    assert not http.documents.calls

    yookassa.succeed(payment.provider_payment_id)
    http.documents.fail_times = 1
    assert (await post(http, forged))[0] == 500  # paid and kept; the documents are owed: YooKassa will repeat it
    assert (await post(http, forged)) == (200, {"outcome": "processed", "detail": f"payment {payment.id} succeeded"})
    assert (await post(http, forged))[1]["outcome"] == "duplicate"
    assert len(http.documents.calls) == 2


async def test_a_mismatched_amount_is_422(http, url, client, yookassa):
    payment = await link(url, client)
    yookassa.succeed(payment.provider_payment_id)["amount"]["value"] = "43919.99"
    status, answer = await post(http, yookassa.notification(payment.provider_payment_id))
    assert (status, answer["outcome"]) == (422, "mismatch")
    [row] = await rows(url)
    assert row.status == "pending" and not http.documents.calls
