"""A new business is data only: a small second business in a temporary knowledge/ (roubles, Russian) is
loaded, reads budgets written in roubles and prices a cart in roubles, with no code change and no AED."""

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from bot.commerce import cart as carts
from bot.commerce import catalog, quotes
from bot.commerce.pricing import load_pricing
from bot.commerce.search import get_product, query_from, search_products
from bot.core import caches, db
from bot.core.business import get_company, get_vocabulary
from bot.core.models import Quote
from bot.core.money import format_money
from bot.texts import replies

KNOWLEDGE = {
    "company.yml": """
name: "ООО «Дубрава»"
brand: "Дубрава"
languages: [ru]
currency: RUB
currency_words: [рубль, рубля, рублей, руб]
vat_rate: "0.20"
trn: "7701234567"
trn_label: ИНН
phone: "+7 495 555 01 42"
email: "sales@dubrava.example"
warehouses: [Москва]
business_hours: {timezone: Europe/Moscow, days: Mon-Fri, open: "09:00", close: "18:00"}
quote_validity_days: 14
quote_terms:
  - "Цены указаны в {currency} с учётом скидок; НДС {vat}."
  - "Предложение действует до {valid_until} включительно."
""",
    "pricing.yml": """
currency: RUB
vat_rate: "0.20"
quote_validity_days: 14
segments: {new: "0"}
volume_tiers: [{min_quantity: 5, discount: "0.05"}]
max_bot_discount: "0.10"
approval_order_amount: 1000000
cross_sell: {}
""",
    "vocabulary.yml": """
categories:
  chair: {label: Кресла, terms: [кресло, кресла, кресел]}
  desk: {label: Столы, terms: [стол, столы, столов]}
""",
    "catalog.csv": """sku,name,category,price,currency,colour,material,width_cm,depth_cm,height_cm,features,description
KR-1,"Кресло «Нева», чёрное",chair,12990.00,RUB,black,mesh,64,60,98-110,ergonomic,Сетчатое офисное кресло.
KR-2,Кресло «Ладога»,chair,24500.00,RUB,grey,fabric,66,62,100-112,ergonomic,Кресло руководителя.
ST-1,Стол «Волга» 140,desk,18900.50,RUB,white,wood,140,70,75,,Письменный стол.
""",
    "stock.csv": "sku,warehouse,quantity\nKR-1,Москва,40\nKR-2,Москва,3\nST-1,Москва,12\n",
}


@pytest.fixture
def second_business(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The second business's knowledge/ (CLOSER_KNOWLEDGE_DIR) over a fresh business DB."""
    knowledge = tmp_path / "knowledge"
    knowledge.mkdir()
    for name, text in KNOWLEDGE.items():
        (knowledge / name).write_text(text, encoding="utf-8")
    monkeypatch.setenv("CLOSER_KNOWLEDGE_DIR", str(knowledge))
    caches.reset()
    yield knowledge
    caches.reset()


async def test_a_business_in_another_currency_and_language_needs_no_code(second_business, db_url):
    company, rules = get_company(), load_pricing()
    assert (company.currency, company.languages, rules.currency) == ("RUB", ("ru",), "RUB")
    assert company.money_words == ("rub", "₽", "рубль", "рубля", "рублей", "руб")  # code, CLDR symbol, company.yml
    async with db.session_scope(db_url) as session:
        assert not (await catalog.import_catalog(session, second_business / "catalog.csv")).rejected
        assert not (await catalog.import_stock(session, second_business / "stock.csv")).rejected

    async with db.session_scope(db_url) as session:
        vocabulary = await get_vocabulary(session)
        # NLU tagged both numbers as quantities; the one written next to roubles is the budget.
        query = query_from(
            vocabulary, "нужно 12 кресел до 20000 рублей", {"quantity": ["12", "20000"]}, company.currency
        )
        assert (query.categories, query.max_price_minor, query.quantity) == (("chair",), 2_000_000, 12)
        assert query_from(vocabulary, "стол до 19000 ₽", {}, company.currency).max_price_minor == 1_900_000
        assert query_from(vocabulary, "кресло за 25000 руб", {}, company.currency).max_price_minor == 2_500_000
        assert query_from(vocabulary, "кресло до 100 AED", {}, company.currency).max_price_minor is None
        assert vocabulary.free_words("удобное кресло до 20000 рублей") == ["удобное"]
        found = await search_products(session, query)
        assert [p.sku for p in found.products] == ["KR-1"]

        await carts.add(session, "web-second", found.products[0], 12)
        await carts.add(session, "web-second", await get_product(session, "ST-1"), 1)
        priced = rules.price(carts.items(await carts.get_cart(session, "web-second")))

    # KR-1: 12 × 12,990.00 = 155,880.00, volume tier 5+ 5% = 7,794.00 → 148,086.00; ST-1: 18,900.50.
    # Net 166,986.50; VAT 20% = 33,397.30; total 200,383.80.
    assert [(line.sku, line.discount_minor, line.net_minor) for line in priced.lines] == [
        ("KR-1", 779_400, 14_808_600),
        ("ST-1", 0, 1_890_050),
    ]
    assert (priced.currency, priced.net_minor, priced.vat_minor, priced.total_minor) == (
        "RUB",
        16_698_650,
        3_339_730,
        20_038_380,
    )
    assert format_money(priced.total_minor, priced.currency) == "RUB 200,383.80"
    # Its one language is Russian: Closer's own texts are in Russian too (the msgids are English).
    assert replies.volume_pricing_note(rules) == "При заказе от 5 единиц действуют также оптовые цены."

    quote = Quote(
        number="Q-2026-0001",
        currency=priced.currency,
        language="ru",
        vat_rate=str(priced.vat_rate),
        lines=[],
        subtotal_minor=priced.subtotal_minor,
        discount_minor=priced.discount_minor,
        net_minor=priced.net_minor,
        vat_minor=priced.vat_minor,
        total_minor=priced.total_minor,
        created_at=datetime(2026, 12, 1, tzinfo=UTC),
        valid_until=datetime(2026, 12, 15, tzinfo=UTC),
    )
    document = quotes.document(quote, company)
    assert document.terms == [
        "Цены указаны в RUB с учётом скидок; НДС 20%.",
        "Предложение действует до 15 декабря 2026\u202fг. включительно.",  # the date as Russian writes it
    ]
    assert (document.company.name, document.company.tax_id, document.vat_rate) == (
        "ООО «Дубрава»",
        "ИНН 7701234567",
        Decimal("0.20"),
    )
    assert "AED" not in repr(document) + repr(priced)
