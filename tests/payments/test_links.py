"""The payment link in the conversation (bot.payments.links, what action_request_prepayment does): the link to the
prepayment of the conversation's latest quote on the local YooKassa, asked twice one payment; no quote yet, and a shop
that is not set up (the managers get a note on the deal), each said to the customer."""

import pytest

from bot.core import caches
from bot.core.db import session_scope
from bot.core.models import Deal, Quote
from bot.core.turn import Turn
from bot.payments import links
from tests.payments.conftest import LEAD, PREPAYMENT_MINOR, quoted

TURN = Turn(LEAD.sender_id, "telegram")


@pytest.fixture
def shop(monkeypatch, yookassa, url):
    monkeypatch.setenv("CLOSER_KNOWLEDGE_DIR", "examples/ai-studio/knowledge")  # its pricing.yml has a prepayment
    for name, value in {
        "CLOSER_YOOKASSA_SHOP_ID": yookassa.shop_id,
        "CLOSER_YOOKASSA_SECRET_KEY": yookassa.secret_key,
        "CLOSER_YOOKASSA_BASE_URL": yookassa.base_url,
    }.items():
        monkeypatch.setenv(name, value)
    caches.reset()
    yield yookassa
    caches.reset()


async def test_the_link_pays_the_latest_quotes_prepayment_and_asking_again_gives_the_same(shop, url):
    await quoted(url)
    first = await links.send_prepayment_link(TURN)
    text = first.messages[0]["text"]  # in the pack's language, Russian
    assert text.replace("\u00a0", " ").startswith("Ссылка для оплаты предоплаты 43 920,00 ₽ по предложению Q-")
    assert ("sales_stage", "closing") in first.slots
    again = await links.send_prepayment_link(TURN)
    assert again.messages[0]["text"] == text
    assert [p["amount"]["value"] for p in shop.payments.values()] == [f"{PREPAYMENT_MINOR / 100:.2f}"]


async def test_without_a_quote_the_customer_is_asked_to_get_one_first(shop, url):
    outcome = await links.send_prepayment_link(TURN)
    assert outcome.messages[0]["text"].startswith("Сначала подготовлю коммерческое предложение")
    assert shop.payments == {}


async def test_without_a_shop_a_manager_sends_the_details_and_the_deal_says_so(url, monkeypatch):
    monkeypatch.setenv("CLOSER_YOOKASSA_SHOP_ID", "")
    caches.reset()
    quote_id = await quoted(url)
    outcome = await links.send_prepayment_link(TURN)
    assert outcome.messages[0]["text"] == "A manager will send you the payment details shortly."
    async with session_scope(url) as session:
        deal = await session.get(Deal, (await session.get(Quote, quote_id)).deal_id)
        assert deal.notes[-1].body.startswith("The customer asked to pay online; payments are not set up")
