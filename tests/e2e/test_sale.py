"""The sale closed end to end through console → Rasa server → action server over HTTP: two
products into the cart, a quote with a PDF link whose numbers match the catalog and the pricing
rules to the fils, a 30% discount request escalated to the managers' Telegram chat, the bot
paused, and handed back from the CLI."""

import io
import re
import subprocess
import sys
from decimal import Decimal

import httpx
import pytest
from pypdf import PdfReader
from sqlalchemy import select

from bot.commerce.pricing import CartItem, load_pricing
from bot.core import db
from bot.core.models import Deal, Escalation, Product, Quote
from bot.core.money import format_money
from bot.core.settings import ROOT
from tests.e2e.test_conversation import Chat

pytestmark = pytest.mark.e2e


def query(stack, make):
    async def run():
        async with db.session_scope(stack.database_url) as session:
            return await make(session)

    return stack.run(run())


def test_cart_quote_pdf_and_a_discount_escalation(stack):
    chat = Chat(stack)
    chat.text("hi")
    reply = chat.text("add 12 OC-1006 to my cart")
    assert "OC-1006) × 12" in reply, reply
    reply = chat.text("also add 2 DK-2001 please")
    assert "DK-2001) × 2" in reply and "Total: AED" in reply, reply

    question = chat.text("send me a quote")
    answers = [
        ("email", "sara@gulftrading.ae"),
        ("phone", "050 123 4567"),
        ("company", "Gulf Trading LLC"),
        ("how many", "14"),
        ("budget", "30000"),
        ("when", "this month"),
        ("name", "Sara Khan"),
    ]
    for _ in range(10):
        if "Here is your quote" in question:
            break
        question = chat.text(next(a for key, a in answers if key in question.lower()))
    assert "Here is your quote Q-" in question, question
    link = re.search(r"https?://\S+/quotes/\S+\.pdf", question).group(0)

    products = query(stack, lambda s: s.scalars(select(Product).where(Product.sku.in_(["OC-1006", "DK-2001"]))))
    products = {p.sku: p for p in products}
    priced = load_pricing().price(
        [
            CartItem(p.sku, p.name, p.category, p.price_minor, q)
            for p, q in ((products["OC-1006"], 12), (products["DK-2001"], 2))
        ]
    )
    pdf = httpx.get(link, timeout=30)
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    text = "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf.content)).pages)
    for line in priced.lines:
        assert line.sku in text and format_money(line.net_minor, "AED") in text
    for amount in (priced.subtotal_minor, priced.discount_minor, priced.vat_minor, priced.total_minor):
        assert format_money(amount, "AED") in text
    assert priced.discount_minor == round(Decimal(12 * products["OC-1006"].price_minor) * Decimal("0.05"))  # 10+ tier
    assert format_money(priced.total_minor, "AED") in question
    assert httpx.get(link.replace(".pdf", "x.pdf"), timeout=30).status_code == 404

    [quote] = query(stack, lambda s: s.scalars(select(Quote).where(Quote.conversation_id == f"web-{chat.sender}")))
    deal = query(stack, lambda s: s.get(Deal, quote.deal_id))
    assert quote.status == "sent" and deal.stage == "proposal" and deal.amount_minor == priced.net_minor

    reply = chat.text("can you give me 30% off?")
    assert "manager" in reply, reply
    [escalation] = query(
        stack, lambda s: s.scalars(select(Escalation).where(Escalation.conversation_id == f"web-{chat.sender}"))
    )
    assert escalation.reason == "discount" and escalation.notify_error is None
    assert query(stack, lambda s: s.get(Deal, quote.deal_id)).stage == "negotiation"
    notified = [m for m in stack.telegram.messages if f"web-{chat.sender}" in m.get("text", "")]
    assert notified and "Sara Khan" in notified[0]["text"] and "Q-" in notified[0]["text"]
    assert chat.tracker()["paused"] is True
    assert "sales manager has your conversation" in chat.text("hello?")  # the bot stays quiet while paused

    back = subprocess.run(
        [sys.executable, "-m", "bot", "handback", f"web-{chat.sender}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={
            **__import__("os").environ,
            "CLOSER_RASA_URL": stack.rasa_url,
            "CLOSER_DATABASE_URL": stack.database_url,
            "CLOSER_RASA_JWT_SECRET": stack.rasa_jwt_secret,
        },
    )
    assert back.returncode == 0, back.stderr
    assert chat.tracker()["paused"] is False
    assert "OC-1006" in chat.text("what's in my cart?")  # the bot answers again, the cart kept
