"""Fixtures of the payment tests: a local YooKassa (tests/fakes/yookassa_server.py), a client of it, and a quote in
roubles of a saved lead on the test's business DB."""

from decimal import Decimal

import pytest

from bot.commerce import leads, quotes
from bot.commerce.pricing import PricedCart, PricedLine
from bot.core.db import get_engine, session_scope
from bot.payments.yookassa import YooKassa
from tests.fakes.yookassa_server import FakeYooKassa

RETURN_URL = "https://shop.example/chat"
# One service at 120,000.00 ₽ + VAT 22% = 146,400.00 ₽; its 30% prepayment is 43,920.00 ₽.
TOTAL_MINOR, PREPAYMENT_MINOR = 14_640_000, 4_392_000
THIRTY = Decimal("0.30")
LEAD = leads.Lead(
    name="Мария Соколова",
    company="ООО «Север»",
    email="maria@sever.example",
    phone="+79031234567",
    quantity=None,
    budget_minor=None,
    currency="RUB",
    timeline=None,
    channel="telegram",
    sender_id="telegram-501",
)


@pytest.fixture
async def yookassa():
    server = await FakeYooKassa().start()
    yield server
    await server.close()


@pytest.fixture
def client(yookassa: FakeYooKassa) -> YooKassa:
    """A client of the local YooKassa that retries at once (no waiting in tests)."""
    return YooKassa(yookassa.shop_id, yookassa.secret_key, yookassa.base_url, timeout_s=5.0, retry_delay_s=0.0)


@pytest.fixture
async def url(db_url: str):
    """The test's business DB (``db_url``), its engine disposed of afterwards."""
    yield db_url
    await get_engine(db_url).dispose()


def priced(net_minor: int = 12_000_000) -> PricedCart:
    vat = net_minor * 22 // 100
    line = PricedLine("SVC-1", "Внедрение", "services", 1, net_minor, net_minor, Decimal(0), 0, net_minor)
    return PricedCart((line,), "RUB", net_minor, 0, net_minor, Decimal("0.22"), vat, net_minor + vat, Decimal(0))


async def quoted(url: str, status: str = "sent", net_minor: int = 12_000_000) -> int:
    """The id of a quote (``status``) of a saved lead's deal, which it moved to ``proposal``."""
    async with session_scope(url) as session:
        contact, deal, _ = await leads.save_lead(session, LEAD)
        quote = await quotes.issue(
            session, LEAD.sender_id, priced(net_minor), 14, contact=contact, deal=deal, status=status
        )
        return quote.id
