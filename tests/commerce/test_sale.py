"""Cart, quotes, discounts and escalation, run as the action server runs them, on a real SQLite
catalog, the real pricing rules, the real PDF and a local server speaking the Telegram Bot API."""

import asyncio
import io
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from pypdf import PdfReader
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy import select

from actions.cart import ActionAddToCart, ActionChangeQuantity, ActionRemoveFromCart, ActionShowCart
from actions.escalation import ActionEscalate
from actions.knowledge import ActionAnswerQuestion
from actions.quotes import ActionAcceptQuote, ActionHandleDiscount, ActionSendQuote
from bot.commerce import cart as carts
from bot.commerce import quotes
from bot.commerce.leads import Lead, save_lead
from bot.commerce.pricing import CartItem, load_pricing
from bot.commerce.quote_pdf import render_quote_pdf
from bot.core import caches, db
from bot.core.business import get_company
from bot.core.models import Deal, Escalation, Product, Quote
from bot.core.money import format_money
from bot.core.settings import get_settings
from bot.handoff.escalation import what_happens_next
from tests.actions.test_actions import DOMAIN, ent, tracker
from tests.fakes.telegram_server import FakeTelegram

CONVERSATION = "web-test1234"  # the sender id tests.actions.test_actions.tracker uses


async def run(action, t):
    dispatcher = CollectingDispatcher()
    events = await action.run(dispatcher, t, DOMAIN)
    return dispatcher.messages, events


def text_of(messages) -> str:
    return "\n".join(m.get("text") or m.get("response") or "" for m in messages)


def slots_of(events) -> dict:
    return {e["name"]: e["value"] for e in events if e.get("event") == "slot"}


async def price_of(url: str, sku: str) -> int:
    async with db.session_scope(url) as session:
        return (await session.get(Product, sku)).price_minor


@pytest.fixture
async def telegram(loaded_db, monkeypatch):
    server = await FakeTelegram().start()
    for key, value in {
        "BOT_TOKEN": server.token,
        "MANAGER_CHAT_ID": "-1001234567890",
        "API_BASE": server.api_base,
    }.items():
        monkeypatch.setenv(f"CLOSER_TELEGRAM_{key}", value)
    caches.reset()
    yield server
    await server.close()
    caches.reset()


async def test_cart_by_sku_name_and_it_with_line_totals_from_the_catalog(loaded_db):
    messages, _ = await run(
        ActionAddToCart(), tracker("add 2 OC-1006", "add_to_cart", [ent("sku", "OC-1006"), ent("quantity", "2")])
    )
    price = await price_of(loaded_db, "OC-1006")
    assert f"OC-1006) × 2: {format_money(2 * price, 'AED')}" in text_of(messages)
    assert messages[-1]["buttons"][0]["payload"] == '/ask_products{"category": "accessory"}'  # cross-sell, pricing.yml
    _, _ = await run(ActionAddToCart(), tracker("add it", "add_to_cart", slots={"shown_skus": ["DK-2001"]}))
    messages, _ = await run(
        ActionChangeQuantity(),
        tracker("make it 12 chairs", "change_quantity", [ent("quantity", "12"), ent("category", "office_chair")]),
    )
    text = text_of(messages)
    net = 12 * price - round(Decimal(12 * price) * Decimal("0.05"))  # the 10+ volume tier in pricing.yml
    assert f"OC-1006) × 12: {format_money(12 * price, 'AED')} − 5% = {format_money(net, 'AED')}" in text
    assert "DK-2001" in text
    messages, _ = await run(
        ActionRemoveFromCart(), tracker("remove the desk", "remove_from_cart", [ent("category", "desk")])
    )
    assert "DK-2001" not in text_of(messages) and "OC-1006" in text_of(messages)
    messages, _ = await run(ActionShowCart(), tracker("what's in my cart", "show_cart"))  # a later turn, same customer
    assert "OC-1006) × 12" in text_of(messages) and "Total: AED" in text_of(messages)


async def test_ambiguous_or_unknown_items_are_asked_about(loaded_db):
    messages, _ = await run(
        ActionAddToCart(), tracker("add one", "add_to_cart", slots={"shown_skus": ["OC-1006", "OC-1007"]})
    )
    assert messages[0]["response"] == "utter_which_to_add" and len(messages[0]["buttons"]) == 2
    messages, _ = await run(ActionAddToCart(), tracker("add ZZ-9999", "add_to_cart", [ent("sku", "ZZ-9999")]))
    assert messages[0]["response"] == "utter_unknown_product"
    messages, _ = await run(
        ActionAddToCart(),
        tracker("add 500000 OC-1006", "add_to_cart", [ent("sku", "OC-1006"), ent("quantity", "500000")]),
    )
    assert messages[0]["response"] == "utter_cart_error" and "100,000" in messages[0]["reason"]


async def test_cart_limits_are_settings(loaded_db, monkeypatch):
    monkeypatch.setenv("CLOSER_CART_MAX_LINES", "2")
    monkeypatch.setenv("CLOSER_CART_MAX_QUANTITY", "50")
    caches.reset()
    try:
        for sku in ("OC-1006", "DK-2001"):
            messages, _ = await run(ActionAddToCart(), tracker(f"add {sku}", "add_to_cart", [ent("sku", sku)]))
            assert messages[0].get("response") != "utter_cart_error"
        messages, _ = await run(ActionAddToCart(), tracker("add OC-1007", "add_to_cart", [ent("sku", "OC-1007")]))
        assert messages[0]["response"] == "utter_cart_error"
        assert messages[0]["reason"] == "a cart holds at most 2 different products"
        messages, _ = await run(
            ActionAddToCart(), tracker("add 50 OC-1006", "add_to_cart", [ent("sku", "OC-1006"), ent("quantity", "50")])
        )
        assert messages[0]["reason"] == "a quantity must be between 1 and 50"  # 1 already in the cart
    finally:
        caches.reset()


async def _lead(url: str) -> int:
    async with db.session_scope(url) as session:
        contact, _, _ = await save_lead(
            session,
            Lead(
                "Ольга Иванова",
                "شركة الخليج للتجارة",
                "olga@example.ae",
                "+971501234567",
                12,
                None,
                "AED",
                None,
                "web",
                CONVERSATION,
            ),
        )
        return contact.id


async def test_quote_pdf_matches_the_catalog_and_pricing_to_the_fils(loaded_db):
    await run(
        ActionAddToCart(), tracker("add 12 OC-1006", "add_to_cart", [ent("sku", "OC-1006"), ent("quantity", "12")])
    )
    await run(ActionAddToCart(), tracker("add 2 DK-2001", "add_to_cart", [ent("sku", "DK-2001"), ent("quantity", "2")]))
    contact_id = await _lead(loaded_db)
    messages, events = await run(
        ActionSendQuote(), tracker("", "request_quote", slots={"sales_stage": "quoting", "contact_id": contact_id})
    )
    assert slots_of(events)["sales_stage"] == "closing"
    async with db.session_scope(loaded_db) as session:
        quote = await session.scalar(select(Quote))
        deal = await session.get(Deal, quote.deal_id)
        products = {sku: await session.get(Product, sku) for sku in ("OC-1006", "DK-2001")}
        document = quotes.document(quote, get_company())
    assert quote.number == f"Q-{datetime.now(UTC).year}-0001" and quote.status == "sent"
    assert f"/quotes/{quote.token}.pdf" in text_of(messages) and format_money(quote.total_minor, "AED") in text_of(
        messages
    )
    documents = [m["custom"]["document"] for m in messages if "document" in (m.get("custom") or {})]
    assert documents == [
        {
            "url": f"{get_settings().public_url}/quotes/{quote.token}.pdf",
            "filename": f"{quote.number}.pdf",
            "caption": f"Quote {quote.number}",
        }
    ]
    assert deal.stage == "proposal" and deal.amount_minor == quote.net_minor

    priced = load_pricing().price(
        [
            CartItem(p.sku, p.name, p.category, p.price_minor, q)
            for p, q in ((products["OC-1006"], 12), (products["DK-2001"], 2))
        ]
    )
    assert (quote.subtotal_minor, quote.discount_minor, quote.vat_minor, quote.total_minor) == (
        priced.subtotal_minor,
        priced.discount_minor,
        priced.vat_minor,
        priced.total_minor,
    )
    pdf = PdfReader(io.BytesIO(render_quote_pdf(document)))
    text = "\n".join(page.extract_text() for page in pdf.pages)
    for line in quote.lines:
        assert line.sku in text and format_money(line.net_minor, "AED") in text
        assert line.unit_price_minor == products[line.sku].price_minor
    for amount in (quote.subtotal_minor, quote.discount_minor, quote.vat_minor, quote.total_minor):
        assert format_money(amount, "AED") in text
    assert "Ольга Иванова" in text

    messages, _ = await run(ActionAcceptQuote(), tracker("I accept the quote", "accept_quote"))
    assert messages[0]["response"] == "utter_quote_accepted"
    async with db.session_scope(loaded_db) as session:
        assert (await session.get(Deal, quote.deal_id)).stage == "won"


async def priced_cart(session):
    return load_pricing().price(carts.items(await carts.get_cart(session, CONVERSATION)))


async def test_an_expired_quote_cannot_be_accepted(loaded_db):
    await run(ActionAddToCart(), tracker("add OC-1006", "add_to_cart", [ent("sku", "OC-1006")]))
    async with db.session_scope(loaded_db) as session:
        old = await quotes.issue(
            session, CONVERSATION, await priced_cart(session), 30, now=datetime.now(UTC) - timedelta(days=31)
        )
        assert await quotes.by_token(session, old.token) is not None and old.status == "expired"
    messages, _ = await run(ActionAcceptQuote(), tracker("we accept the offer", "accept_quote"))
    assert messages[0]["response"] == "utter_quote_not_accepted" and "expired on" in messages[0]["reason"]


async def test_a_discount_within_the_cap_is_granted(loaded_db):
    await run(ActionAddToCart(), tracker("add OC-1006", "add_to_cart", [ent("sku", "OC-1006")]))
    messages, events = await run(
        ActionHandleDiscount(), tracker("can you do 10% off", "ask_discount", [ent("discount", "10")])
    )
    assert Decimal(slots_of(events)["granted_discount"]) == Decimal("0.10") and "10% off" in text_of(messages)


async def test_a_discount_above_the_cap_goes_to_a_manager_with_a_draft_quote(telegram):
    await run(ActionAddToCart(), tracker("add 2 OC-1006", "add_to_cart", [ent("sku", "OC-1006"), ent("quantity", "2")]))
    messages, events = await run(
        ActionHandleDiscount(), tracker("I want 30% discount", "ask_discount", [ent("discount", "30")])
    )
    assert messages[0]["response"] == "utter_discount_needs_approval" and "utter_escalated_" in text_of(messages)
    assert {"event": "pause", "timestamp": None} in events and slots_of(events)["sales_stage"] == "handoff"
    async with db.session_scope() as session:
        escalation = await session.scalar(select(Escalation))
        draft = await session.get(Quote, escalation.quote_id)
    assert escalation.reason == "discount" and draft.status == "draft" and escalation.notify_error is None
    [sent] = telegram.messages
    assert sent["chat"]["id"] == -1001234567890 and draft.number in sent["text"] and "OC-1006" in sent["text"]
    assert sent["reply_markup"]["inline_keyboard"][0][0]["url"].endswith(f"/quotes/{draft.token}.pdf")


async def test_a_request_for_a_person_escalates_even_when_telegram_is_down(telegram):
    await telegram.close()
    messages, events = await run(ActionEscalate(), tracker("I want to talk to a human", "request_human"))
    assert {"event": "pause", "timestamp": None} in events
    assert text_of(messages) in ("utter_escalated_open", "utter_escalated_closed")
    async with db.session_scope() as session:
        escalation = await session.scalar(select(Escalation))
    assert escalation.reason == "requested" and "NetworkError" in escalation.notify_error
    assert "I want to talk to a human" in escalation.summary


async def test_two_fallbacks_in_a_row_escalate(telegram):
    first = {"event": "user", "text": "blorp", "parse_data": {"intent": {"name": "nlu_fallback"}}}
    t = tracker("zzzt", "nlu_fallback", events=[first])
    t.events.reverse()
    _, events = await run(ActionAnswerQuestion(), t)
    assert {"event": "pause", "timestamp": None} in events
    assert telegram.messages and "did not understand" in telegram.messages[0]["text"]


async def test_quote_numbers_count_up_per_year_past_9999(loaded_db):
    await run(ActionAddToCart(), tracker("add OC-1006", "add_to_cart", [ent("sku", "OC-1006")]))
    async with db.session_scope(loaded_db) as session:
        first = await quotes.issue(session, CONVERSATION, await priced_cart(session), 30)
        first.number = f"Q-{datetime.now(UTC).year}-9999"
        await session.flush()
        after = await quotes.issue(session, CONVERSATION, await priced_cart(session), 30)
        last_year = await quotes.issue(
            session, CONVERSATION, await priced_cart(session), 30, now=datetime(2025, 12, 31, tzinfo=UTC)
        )
    assert after.number == f"Q-{datetime.now(UTC).year}-10000" and last_year.number == "Q-2025-0001"


async def test_quotes_issued_at_once_get_one_number_each(loaded_db):
    """Twelve transactions issue a quote at the same time (on PostgreSQL, with ``CLOSER_TEST_DB=postgresql``, each
    number is taken under an advisory lock; without it most of them collided five times and failed)."""
    await run(ActionAddToCart(), tracker("add OC-1006", "add_to_cart", [ent("sku", "OC-1006")]))
    async with db.session_scope(loaded_db) as session:
        priced = await priced_cart(session)

    async def issue_one() -> str:
        async with db.session_scope(loaded_db) as session:
            quote = await quotes.issue(session, CONVERSATION, priced, 30)
            await asyncio.sleep(0.05)  # the transaction stays open a while, as rendering and the CRM keep it
            return quote.number

    numbers = await asyncio.gather(*(issue_one() for _ in range(12)))
    year = datetime.now(UTC).year
    assert sorted(numbers) == [f"Q-{year}-{n:04d}" for n in range(1, 13)]


def test_the_customer_is_told_when_a_manager_replies_from_business_hours():
    company = get_company()  # Mon–Sat 09:00–18:00, Asia/Dubai
    saturday_morning = datetime(2026, 11, 21, 6, 0, tzinfo=UTC)  # 10:00 in Dubai
    saturday_evening = datetime(2026, 11, 21, 15, 0, tzinfo=UTC)  # 19:00 in Dubai
    assert what_happens_next(company, saturday_morning) == {
        "response": "utter_escalated_open",
        "brand": company.brand,
        "hours": company.hours,
        "phone": company.phone,
    }
    assert what_happens_next(company, saturday_evening) == {
        "response": "utter_escalated_closed",
        "brand": company.brand,
        "opening": "Monday 09:00",
        "timezone": "Asia/Dubai",
        "email": company.email,
    }
