"""A service configured in the conversation (bot.commerce.configuring) with the example pack's formula: the form's
slots follow the package, only values the formula knows are kept, and the priced text shows every step in the
customer's language. Without a formula (the default business) the form asks nothing."""

import pytest

from bot.commerce import configuring
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
