"""The second business (examples/ai-studio), switched in by CLOSER_BUSINESS alone, through the real Rasa server (its
own trained model) and action server, in Russian: a greeting, a chatbot configured by buttons and priced by the
formula (the total worked out by hand), a question answered from its knowledge with the source named; over Telegram,
an audit (a package without factors) priced in one turn; in Chromium, the website's price calculator prices a
configuration and continues in the chat, where the bot prices the same."""

import io
import os
import re
import subprocess
import sys
import uuid
from decimal import Decimal

import httpx
import pytest
import yaml
from babel.numbers import format_currency
from pypdf import PdfReader
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

from bot.contracts.business import model_path
from bot.core.settings import ROOT
from tests.browser import chromium
from tests.e2e.conftest import stack_with
from tests.e2e.test_channels import TelegramCustomer

PACK = {"CLOSER_BUSINESS": "examples/ai-studio"}
COMPANY = yaml.safe_load((ROOT / "examples" / "ai-studio" / "knowledge" / "company.yml").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def pack_stack(tmp_path_factory, postgres_server):
    """The whole stack running the pack: its knowledge indexed by ``python -m bot index`` into a Chroma of its own."""
    assert model_path(PACK).exists(), "run `CLOSER_BUSINESS=examples/ai-studio make train` (the test command does)"
    chroma = tmp_path_factory.mktemp("pack-chroma")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLOSER_")}
    index_env = {
        **env,
        **PACK,
        "CLOSER_CHROMA_PATH": str(chroma),
        "CLOSER_INDEX_LOG_DIR": str(chroma / "logs"),
        "CLOSER_DATABASE_URL": f"sqlite+aiosqlite:///{chroma / 'index.db'}",
    }
    for command in ("load-knowledge", "index"):
        subprocess.run([sys.executable, "-m", "bot", command], cwd=ROOT, env=index_env, check=True, capture_output=True)
    yield from stack_with(tmp_path_factory, chroma, extra_env=PACK, postgres_server=postgres_server)


def roubles(amount: int) -> str:
    """``amount`` roubles as the Russian locale writes them (spaces normalised)."""
    return plain(format_currency(Decimal(amount), "RUB", locale="ru_RU"))


def plain(text: str) -> str:
    return text.replace("\u00a0", " ").replace("\u202f", " ")


class WebCustomer:
    def __init__(self, stack):
        self.url, self.sender = f"{stack.console_url}/api/chat", uuid.uuid4().hex

    def say(self, message: str) -> list[dict]:
        response = httpx.post(self.url, json={"sender": self.sender, "message": message}, timeout=60)
        assert response.status_code == 200, response.text
        return [m for m in response.json()["messages"] if m.get("text")]

    def tap(self, messages: list[dict], title: str) -> list[dict]:
        [payload] = [b["payload"] for m in messages for b in m.get("buttons") or [] if b["title"] == title]
        return self.say(payload)


def test_a_customer_configures_a_chatbot_in_russian_and_gets_the_formulas_price(pack_stack):
    customer = WebCustomer(pack_stack)
    [greeting] = customer.say("Здравствуйте")
    assert COMPANY["brand"] in greeting["text"] and COMPANY["assistant_name"] in greeting["text"]
    [question] = customer.say("Сколько стоит чат-бот?")
    assert question["text"].startswith("С какими системами")
    [question] = customer.tap([question], "С 1–2 системами")
    assert question["text"].startswith("Какой объём")
    [question] = customer.tap([question], "До 10 000")
    [question] = customer.tap([question], "Два")
    [priced, offer] = customer.tap([question], "Расширенный (ежедневно, ответ за 2 часа)")
    text = plain(priced["text"])
    # 240,000 × 1.2 × 1.3 × 1.15 × 1.2 = 516,672 → 517,000 roubles; VAT 22% 113,740; total 630,740.
    assert text.startswith("Чат-бот для продаж и поддержки с вашими параметрами:")
    assert "× 2,1528" in text and f"Пакет: {roubles(517_000)}" in text
    assert f"НДС 22%: {roubles(113_740)}" in text and f"Итого: {roubles(630_740)}" in text

    [sent] = customer.tap([offer], "Да, пришлите КП")
    [link] = re.findall(r"http\S+\.pdf", sent["text"])
    pdf = httpx.get(link, timeout=30)
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    assert "filename*=UTF-8''%D0%9A%D0%9F-" in pdf.headers["content-disposition"]  # КП-…: RFC 6266's UTF-8 name
    page = " ".join(plain(" ".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf.content)).pages)).split())
    assert "КОММЕРЧЕСКОЕ ПРЕДЛОЖЕНИЕ" in page and re.search(r"КП-\d{4}-\d{4}", page)
    assert all(line in page for line in COMPANY["requisites"])  # the seller's requisites
    assert roubles(630_740) in page and "Шестьсот тридцать тысяч семьсот сорок рублей 00 копеек" in page
    assert "Чат-бот для продаж и поддержки" in page

    [answer] = customer.say("Можно оплатить картой?")
    assert "ЮKassa" in answer["text"] and "Источник: Оплата" in answer["text"]


def test_a_telegram_customer_gets_an_audit_priced_in_one_turn(pack_stack):
    customer = TelegramCustomer(pack_stack, chat_id=770_001)
    customer.user["language_code"] = "ru"
    assert COMPANY["brand"] in customer.say(text="Добрый день")
    reply = plain(customer.say(text="Сколько стоит аудит?"))
    # A package without factors: its base, 90,000 roubles; VAT 19,800; total 109,800.
    assert "Аудит процессов и план внедрения ИИ" in reply
    assert f"Итого: {roubles(109_800)}" in reply


def test_the_websites_calculator_prices_as_the_bot_does_and_continues_in_the_chat(pack_stack):
    # 240,000 × 1.2 × 1.3 × 1.15 × 1.2 → 517,000; + voice 120,000: net 637,000; VAT 140,140; total 777,140.
    total = f"Итого: {roubles(777_140)}"
    with chromium() as driver:
        driver.get(pack_stack.console_url + "/")
        driver.add_cookie({"name": "closer_language", "value": "ru"})  # as the widget's picker keeps a choice
        driver.execute_script("localStorage.clear()")
        driver.get(pack_stack.console_url + "/")
        wait = WebDriverWait(driver, 60)
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, ".msg.bot"))  # the greeting
        driver.find_element(By.CSS_SELECTOR, "#calculator summary").click()
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#calculator select[name=sla]"))
        assert Select(driver.find_element(By.NAME, "package")).first_selected_option.text.startswith("Чат-бот")
        levels = {"integrations": "few", "data_volume": "large", "languages": "two", "sla": "extended"}
        for name, value in levels.items():
            Select(driver.find_element(By.NAME, name)).select_by_value(value)
        driver.find_element(By.CSS_SELECTOR, "#calculator input[value=voice]").click()
        wait.until(lambda d: total in plain(d.find_element(By.CSS_SELECTOR, "#calculator output").text))
        driver.find_element(By.ID, "calculator-continue").click()
        wait.until(lambda d: any(total in plain(m.text) for m in d.find_elements(By.CSS_SELECTOR, ".msg.bot")))
        said = [m.text for m in driver.find_elements(By.CSS_SELECTOR, ".msg.user")]
    assert said[-1] == "Чат-бот для продаж и поддержки"
