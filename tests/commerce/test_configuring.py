"""A service configured in the conversation (bot.commerce.configuring) with the example pack's formula: the form's
slots follow the package, only values the formula knows are kept, and the priced text shows every step in the
customer's language. Without a formula (the default business) the form asks nothing."""

import pytest

from bot.commerce import configuring
from bot.commerce.formula import load_formula
from bot.core import caches
from bot.core.settings import ROOT
from bot.core.turn import Turn
from bot.texts import i18n


@pytest.fixture
def pack(monkeypatch):
    monkeypatch.setenv("CLOSER_KNOWLEDGE_DIR", str(ROOT / "examples" / "ai-studio" / "knowledge"))
    caches.reset()
    yield
    caches.reset()


def test_the_form_asks_for_the_package_then_its_own_factors(pack):
    assert configuring.required_slots({}) == ["package"]
    assert configuring.required_slots({"package": "support"}) == ["package", "sla"]
    assert configuring.required_slots({"package": "audit"}) == ["package"]
    assert configuring.required_slots({"package": "chatbot"}) == [
        "package",
        "integrations",
        "data_volume",
        "languages",
        "sla",
    ]
    assert configuring.required_slots({"package": "website"}) == ["package"]


def test_only_values_the_formula_knows_are_kept(pack):
    assert configuring.clean("package", "chatbot") == "chatbot"
    assert configuring.clean("package", "website") is None
    assert configuring.clean("sla", "extended") == "extended"
    assert configuring.clean("sla", "platinum") is None
    assert configuring.clean("colour", "red") is None
    assert configuring.clean("sla", ["extended"]) is None


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        (
            "ru",
            [
                "Сопровождение и развитие (абонемент) с вашими параметрами:",
                "• Уровень поддержки (SLA): Круглосуточный: 24/7, ответ за 30 минут (× 1,5)",
                "Пакет: 68 000,00 ₽ (базовая цена 45 000,00 ₽ × 1,5, с округлением)",  # 67,500 rounds up
                "Сумма без НДС: 68 000,00 ₽",
                "НДС 22%: 14 960,00 ₽",
                "Итого: 82 960,00 ₽",
                "Цена указана за месяц.",
            ],
        ),
        (
            "en",
            [
                "Support and improvement retainer for your choices:",
                "• Support level (SLA): Round the clock: 24/7, reply within 30 minutes (× 1.5)",
                "Package: RUB 68,000.00 (base price RUB 45,000.00 × 1.5, rounded)",
            ],
        ),
    ],
)
def test_the_price_is_shown_step_by_step_in_the_customers_language(pack, language, expected):
    turn = Turn("web-c1", "web", slots={"package": "support", "sla": "round_the_clock", "language": language})
    with i18n.use(language):
        text = configuring.price_configuration(turn).messages[0]["text"]
    lines = [line.replace("\u00a0", " ").replace("\u202f", " ") for line in text.splitlines()]
    assert lines[: len(expected)] == expected


def test_without_a_formula_a_manager_prices_it():
    caches.reset()
    assert configuring.required_slots({"package": "chatbot"}) == []
    assert configuring.clean("package", "chatbot") is None
    [message] = configuring.price_configuration(Turn("web-c2", "web")).messages
    assert "manager" in message["text"]


def test_a_configuration_becomes_the_lines_of_a_proposal(pack):
    formula = load_formula()
    priced = formula.price("support", {"sla": "extended"}, [])
    with i18n.use("ru"):
        cart = configuring.as_cart(formula, priced, "ru")
    [line] = cart.lines
    assert (line.sku, line.name, line.quantity, line.net_minor) == (
        "support",
        "Сопровождение и развитие (абонемент), в месяц",
        1,
        5_400_000,
    )
    assert (cart.net_minor, cart.vat_minor, cart.total_minor) == (
        priced.net_minor,
        priced.vat_minor,
        priced.total_minor,
    )
    chatbot = formula.price("chatbot", {}, ["voice", "analytics"])
    lines = configuring.as_cart(formula, chatbot, "en").lines
    assert [(line.sku, line.name, line.net_minor) for line in lines] == [
        ("chatbot", "Sales and support chatbot", 18_000_000),
        ("analytics", "Conversation analytics dashboard", 6_000_000),
        ("voice", "Voice channel (telephony)", 12_000_000),
    ]
    assert sum(line.net_minor for line in lines) == chatbot.net_minor


@pytest.mark.parametrize(
    ("language", "minor", "currency", "words"),
    [
        ("ru", 63_074_000, "RUB", "Шестьсот тридцать тысяч семьсот сорок рублей 00 копеек"),
        ("ru", 150, "RUB", "Один рубль 50 копеек"),
        ("en", 63_074_050, "RUB", "Six hundred and thirty thousand, seven hundred and forty roubles 50 kopeks"),
        ("en", 129_000, "AED", None),  # num2words has no words for dirhams
        ("ar", 129_000, "AED", None),  # nor for any currency in Arabic (it would say riyals)
    ],
)
def test_amounts_in_words_where_num2words_has_them(language, minor, currency, words):
    with i18n.use(language):
        assert i18n.amount_in_words(minor, currency) == words
