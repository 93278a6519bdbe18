"""Arabic and Russian customers end to end through the real Rasa server and action server: greeting, products
with the catalog's prices (in the language's Babel format) and stock, a delivery question, an objection, the
cart, the lead form and a quote PDF parsed back in their language, an escalation; on the web chat and on
Telegram; and a customer who switches language in the middle."""

import io
import re

import httpx
import pytest
from pypdf import PdfReader
from sqlalchemy import select

from bot.core.models import Escalation, Product, Quote
from bot.texts import i18n
from tests.e2e.test_channels import TelegramCustomer, _ids
from tests.e2e.test_conversation import Chat
from tests.e2e.test_sale import query

pytestmark = pytest.mark.e2e

SKU = re.compile(r"\b([A-Z]{2}-\d{4})\b")
ARABIC = re.compile(r"[\u0600-\u06ff]")
CYRILLIC = re.compile(r"[\u0400-\u04ff]")
SCRIPT = {"ar": ARABIC, "ru": CYRILLIC}
# Arabic shaped for print (presentation forms), as the quote PDF's text layer holds it
ARABIC_PRINTED = re.compile(r"[\u0600-\u06ff\ufb50-\ufdff\ufe70-\ufeff]")

LEAD = {
    "ar": {
        "customer_name": "سارة المرزوقي",
        "company": "الخليج للتجارة",
        "email": "sara@gulftrading.ae",
        "phone": "050 123 4567",
        "quantity": "١٢",
        "budget": "20000 درهم",
        "timeline": "الشهر القادم",
    },
    "ru": {
        "customer_name": "Анна Смирнова",
        "company": "Вектор Трейдинг",
        "email": "anna@vector.example",
        "phone": "+971 50 765 4321",
        "quantity": "двенадцать",
        "budget": "20000 дирхам",
        "timeline": "в следующем месяце",
    },
}
SAYS = {
    "ar": {
        "greet": "مرحبا",
        "products": "ابي كراسي مكتب مريحة",
        "stock": "هل عندكم OC-1006 متوفر؟",
        "delivery": "كم تكلفة التوصيل الى دبي؟",
        "objection": "الاسعار غالية وايد",
        "cart": "ضيف 12 OC-1006 للسلة",
        "quote": "ارسل لي عرض سعر",
        "human": "ابي اكلم موظف مبيعات",
    },
    "ru": {
        "greet": "Здравствуйте",
        "products": "нужны офисные кресла на 10 человек",
        "stock": "OC-1006 есть в наличии?",
        "delivery": "сколько стоит доставка в Дубай?",
        "objection": "это слишком дорого",
        "cart": "добавьте 12 OC-1006 в корзину",
        "quote": "пришлите коммерческое предложение",
        "human": "соедините меня с менеджером",
    },
}


def in_language(text: str, language: str) -> bool:
    """Whether ``text`` is written in ``language``: most letters of its first line (product names and warehouses,
    which stay as the catalog writes them, come later or are a minority) in the language's script."""
    letters = [c for c in SKU.sub("", text.strip().split("\n")[0]) if c.isalpha()]
    return bool(letters) and sum(1 for c in letters if SCRIPT[language].match(c)) >= 0.5 * len(letters)


def catalog(stack, skus: set[str]) -> dict[str, Product]:
    rows = query(stack, lambda s: s.scalars(select(Product).where(Product.sku.in_(skus))))
    return {p.sku: p for p in rows}


def assert_catalog_prices(stack, reply: str, language: str) -> None:
    """Every SKU in ``reply`` is shown with its catalog price in ``language``'s money format."""
    skus = set(SKU.findall(reply))
    assert skus, reply
    with i18n.use(language):
        for sku, product in catalog(stack, skus).items():
            assert i18n.format_money(product.price_minor, product.currency) in reply, (sku, reply)


def fill_lead_form(chat: Chat, question: str, language: str) -> str:
    """Answer the lead form's questions (whichever it asks, read off the tracker) until the quote is sent."""
    for _ in range(10):
        requested = chat.tracker()["slots"].get("requested_slot")
        if not requested:
            return question
        assert in_language(question, language), question
        question = chat.text(LEAD[language][requested])
    pytest.fail(f"the lead form never ended: {question}")


@pytest.mark.parametrize("language", ["ar", "ru"])
def test_a_customer_buys_in_their_own_language_on_the_web(stack, language):
    say = SAYS[language]
    chat = Chat(stack)
    assert in_language(chat.text(say["greet"]), language)
    assert chat.tracker()["slots"]["language"] == language

    products = chat.text(say["products"])
    assert in_language(products, language) and "OC-" in products, products
    assert_catalog_prices(stack, products, language)

    stock = chat.text(say["stock"])
    product = catalog(stack, {"OC-1006"})["OC-1006"]
    assert in_language(stock, language) and "OC-1006" in stock, stock
    assert all(str(quantity) in stock for quantity in product.stock_by_warehouse().values()), stock

    delivery = chat.text(say["delivery"])
    assert in_language(delivery, language), delivery

    assert in_language(chat.text(say["objection"]), language)

    cart = chat.text(say["cart"])
    assert "OC-1006" in cart and in_language(cart, language), cart
    with i18n.use(language):
        assert i18n.format_money(12 * product.price_minor, product.currency) in cart or "12" in cart

    sent = fill_lead_form(chat, chat.text(say["quote"]), language)
    [quote] = query(stack, lambda s: s.scalars(select(Quote).where(Quote.conversation_id == f"web-{chat.sender}")))
    assert quote.number in sent and in_language(sent, language), sent
    link = re.search(r"https?://\S+/quotes/\S+\.pdf", sent).group(0)
    pdf = httpx.get(link, timeout=30)
    assert pdf.status_code == 200
    text = "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf.content)).pages)
    assert "OC-1006" in text and quote.number in text
    assert (ARABIC_PRINTED if language == "ar" else CYRILLIC).search(text), text

    escalated = chat.text(say["human"])
    assert in_language(escalated, language), escalated
    conversation = f"web-{chat.sender}"
    assert query(stack, lambda s: s.scalar(select(Escalation).where(Escalation.conversation_id == conversation)))


def test_a_customer_switches_language_in_the_middle(stack):
    chat = Chat(stack)
    assert in_language(chat.text("Здравствуйте, нужны офисные кресла"), "ru")
    switched = chat.text("English please")
    assert not CYRILLIC.search(switched) and chat.tracker()["slots"]["language"] == "en", switched
    reply = chat.text("show me desks")
    assert "DK-" in reply and not CYRILLIC.search(reply), reply
    assert in_language(chat.text("а шкафы есть?"), "ru")  # writing Russian again is a clear switch back
    chat.text("ok")  # says nothing about the language: the conversation stays in Russian
    assert chat.tracker()["slots"]["language"] == "ru"


def test_an_arabic_customer_on_telegram(stack):
    customer = TelegramCustomer(stack, 731_000_000 + next(_ids) % 1000)
    assert in_language(customer.say(text="السلام عليكم"), "ar")
    products = customer.say(text="ابي كراسي مكتب مريحة")
    assert in_language(products, "ar") and "OC-" in products, products
    assert_catalog_prices(stack, products, "ar")
