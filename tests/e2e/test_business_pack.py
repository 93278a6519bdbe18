"""The second business (examples/ai-studio), switched in by CLOSER_BUSINESS alone, through the real Rasa server (its
own trained model) and action server, in Russian, the whole sale in the web chat: a chatbot configured by buttons and
priced by the formula (the total worked out by hand), the lead qualified by the lead form, the proposal PDF, a call
booked in the manager's CalDAV calendar (Radicale) with the invitation e-mailed (aiosmtpd), the prepayment link
(YooKassa's fake), a simulated ``payment.succeeded``, the contract and invoice PDFs with amounts in words, the deal
won in amoCRM's fake; a question answered from its knowledge with the source named. Over Telegram and Avito, a
proposal and its prepayment link; in Chromium, the website's price calculator prices a configuration and continues
in the chat, where the bot prices the same."""

import asyncio
import io
import json
import os
import re
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from decimal import Decimal

import httpx
import pytest
import yaml
from aiosmtpd.controller import Controller
from babel.numbers import format_currency
from pypdf import PdfReader
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait
from sqlalchemy import select

from bot.contracts.business import model_path
from bot.core.db import session_scope
from bot.core.models import Contact, Deal, DealNote
from bot.core.settings import ROOT
from bot.crm import outbox
from bot.crm.amocrm import AmoCRM
from tests.browser import chromium
from tests.e2e.conftest import served_in_a_thread, stack_with
from tests.e2e.test_channels import AvitoCustomer, TelegramCustomer
from tests.fakes.amocrm_server import FakeAmoCRM
from tests.fakes.yookassa_server import FakeYooKassa
from tests.radicale import make_calendar
from tests.review.test_digest import Mailbox
from tests.servers import free_port

PACK = {"CLOSER_BUSINESS": "examples/ai-studio"}
COMPANY = yaml.safe_load((ROOT / "examples" / "ai-studio" / "knowledge" / "company.yml").read_text(encoding="utf-8"))
AMOCRM_STATUSES = {"new": 61_001, "qualified": 61_002, "proposal": 61_003, "negotiation": 61_004}


@dataclass
class Outside:
    """The outside services of the pack's sale, as local servers: the manager's calendar (Radicale, a real CalDAV
    server), the mail server the invitations go to (aiosmtpd), YooKassa's and amoCRM's fakes."""

    calendar_url: str
    mailbox: Mailbox
    yookassa: FakeYooKassa
    amocrm: FakeAmoCRM


@pytest.fixture(scope="module")
def outside(radicale):
    mailbox = Mailbox()
    smtp = Controller(mailbox, hostname="127.0.0.1", port=free_port())
    smtp.start()
    with served_in_a_thread(FakeYooKassa()) as yookassa, served_in_a_thread(FakeAmoCRM()) as amocrm:
        calendar_url = asyncio.run(make_calendar(radicale))
        yield (
            Outside(calendar_url, mailbox, yookassa, amocrm),
            {
                "CLOSER_CALENDAR_PROVIDER": "caldav",
                "CLOSER_CALDAV_CALENDAR_URL": calendar_url,
                "CLOSER_CALDAV_USERNAME": radicale.username,
                "CLOSER_CALDAV_PASSWORD": radicale.password,
                "CLOSER_SMTP_HOST": "127.0.0.1",
                "CLOSER_SMTP_PORT": str(smtp.port),
                "CLOSER_SMTP_STARTTLS": "false",
                "CLOSER_YOOKASSA_SHOP_ID": yookassa.shop_id,
                "CLOSER_YOOKASSA_SECRET_KEY": yookassa.secret_key,
                "CLOSER_YOOKASSA_BASE_URL": yookassa.base_url,
                # the notifications come through a proxy on 127.0.0.1 that names YooKassa's address
                "CLOSER_YOOKASSA_TRUSTED_PROXIES": '["127.0.0.1"]',
                "CLOSER_CRM_PROVIDER": "amocrm",
                "CLOSER_AMOCRM_BASE_URL": amocrm.base_url,
                "CLOSER_AMOCRM_CLIENT_ID": amocrm.client_id,
                "CLOSER_AMOCRM_CLIENT_SECRET": amocrm.client_secret,
                "CLOSER_AMOCRM_REDIRECT_URI": amocrm.redirect_uri,
                "CLOSER_AMOCRM_PIPELINE_ID": "7001",
                "CLOSER_AMOCRM_STATUS_IDS": json.dumps(AMOCRM_STATUSES),
            },
        )
    smtp.stop()


@pytest.fixture(scope="module")
def pack_stack(tmp_path_factory, postgres_server, outside):
    """The whole stack running the pack: its knowledge indexed by ``python -m bot index`` into a Chroma of its own,
    the outside services of :class:`Outside` configured."""
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
    _, services = outside
    yield from stack_with(tmp_path_factory, chroma, extra_env={**PACK, **services}, postgres_server=postgres_server)


def roubles(amount: int) -> str:
    """``amount`` roubles as the Russian locale writes them (spaces normalised)."""
    return plain(format_currency(Decimal(amount), "RUB", locale="ru_RU"))


def plain(text: str) -> str:
    return text.replace("\u00a0", " ").replace("\u202f", " ")


class WebCustomer:
    def __init__(self, stack, timezone: str | None = None):
        self.url, self.sender, self.timezone = f"{stack.console_url}/api/chat", uuid.uuid4().hex, timezone

    def say(self, message: str) -> list[dict]:
        body = {"sender": self.sender, "message": message, **({"timezone": self.timezone} if self.timezone else {})}
        response = httpx.post(self.url, json=body, timeout=60)
        assert response.status_code == 200, response.text
        return [m for m in response.json()["messages"] if m.get("text")]

    def tap(self, messages: list[dict], title: str) -> list[dict]:
        [payload] = [b["payload"] for m in messages for b in m.get("buttons") or [] if b["title"] == title]
        return self.say(payload)

    def updates(self) -> list[dict]:
        """What was written to the customer outside their turns (the widget polls for it)."""
        response = httpx.get(f"{self.url}/updates", params={"sender": self.sender, "after": "0"}, timeout=60)
        assert response.status_code == 200, response.text
        return response.json()["messages"]


def pdf_text(url: str) -> tuple[httpx.Response, str]:
    """The PDF at ``url`` and its text, whitespace normalised."""
    pdf = httpx.get(url, timeout=30)
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf", pdf.text
    text = " ".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf.content)).pages)
    return pdf, " ".join(plain(text).split())


def test_the_whole_sale_in_russian_from_a_price_to_a_won_deal(pack_stack, outside):
    services, _ = outside
    customer = WebCustomer(pack_stack, timezone="Asia/Yekaterinburg")
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

    # The proposal asked for: the lead form qualifies the customer first (buttons and typed answers).
    [question] = customer.tap([offer], "Да, пришлите КП")
    assert "Как вас зовут" in question["text"]
    [question] = customer.say("Ирина Волкова")
    [question] = customer.say("ООО «Ромашка»")
    [question] = customer.tap([question], "11–50")
    [question] = customer.say("Сайт, Telegram и Авито")
    [question] = customer.tap([question], "300–3 000")
    [question] = customer.tap([question], "В течение месяца")
    [question] = customer.say("500 000 ₽")
    [question] = customer.say("irina@example.ru")
    saved, sent, next_steps = customer.say("+7 916 123-45-67")
    assert saved["text"].startswith("Спасибо, Ирина Волкова!") and "+79161234567" in saved["text"]

    [link] = re.findall(r"http\S+\.pdf", sent["text"])
    pdf, page = pdf_text(link)
    assert "filename*=UTF-8''%D0%9A%D0%9F-" in pdf.headers["content-disposition"]  # КП-…: RFC 6266's UTF-8 name
    assert "КОММЕРЧЕСКОЕ ПРЕДЛОЖЕНИЕ" in page and re.search(r"КП-\d{4}-\d{4}", page)
    assert all(line in page for line in COMPANY["requisites"])  # the seller's requisites
    assert roubles(630_740) in page and "Шестьсот тридцать тысяч семьсот сорок рублей 00 копеек" in page
    assert "Ирина Волкова" in page and "ООО «Ромашка»" in page  # prepared for the lead

    # A call booked in the customer's time zone: the manager's CalDAV calendar, the invitation e-mailed.
    [slots] = customer.tap([next_steps], "Записаться на звонок")
    assert "Екатеринбург" in slots["text"] and slots["buttons"]
    [booked] = customer.tap([slots], slots["buttons"][0]["title"])
    assert booked["text"].startswith("Звонок назначен на ") and "irina@example.ru" in booked["text"]
    [invitation] = services.mailbox.messages
    assert "irina@example.ru" in invitation["To"]
    assert any(part.get_content_type() == "text/calendar" for part in invitation.walk())

    # The prepayment: 30% of 630,740 = 189,222 roubles, through YooKassa's page.
    [pay] = customer.tap([next_steps], "Оплатить предоплату")
    assert f"{roubles(189_222)}" in plain(pay["text"])
    [payment_id] = re.findall(r"http\S+orderId=(\S+)", pay["text"])
    services.yookassa.succeed(payment_id)
    forged = httpx.post(
        f"{pack_stack.console_url}/webhooks/yookassa", json=services.yookassa.notification(payment_id), timeout=30
    )
    assert forged.status_code == 403  # not from YooKassa's addresses
    for _ in range(2):  # YooKassa delivers at least once: the repeat changes nothing
        notify_paid(pack_stack, services, payment_id, succeed=False)

    # The contract and the invoice reach the customer in the chat, with the amounts in figures and words.
    [documents] = [m for m in customer.updates() if "Оплата" in (m.get("text") or "")]
    assert plain(documents["text"]).startswith(f"Оплата {roubles(189_222)} получена, спасибо!")
    invoice_link, contract_link = re.findall(r"http\S+/documents/\S+\.pdf", documents["text"])
    _, invoice = pdf_text(invoice_link)
    assert "СЧЁТ НА ОПЛАТУ" in invoice and re.search(r"СЧ-\d{4}-\d{4}", invoice)
    assert f"К оплате {roubles(441_518)}" in invoice  # 630,740 − 189,222
    assert "Шестьсот тридцать тысяч семьсот сорок рублей 00 копеек" in invoice
    unknown = httpx.get(f"{pack_stack.console_url}/documents/{uuid.uuid4().hex}.pdf", timeout=30)
    assert unknown.status_code == 404
    _, contract = pdf_text(contract_link)
    assert "ДОГОВОР" in contract and re.search(r"Договор № Д-\d{4}-\d{4}", contract)
    assert "Сто восемьдесят девять тысяч двести двадцать два рубля 00 копеек" in contract
    assert "ООО «Ромашка» в лице Ирина Волкова" in contract

    # The deal is won in amoCRM, with the qualification on it.
    pack_stack.run(deliver_to_amocrm(services.amocrm, pack_stack.database_url))
    [lead] = services.amocrm.leads.values()
    assert lead["status_id"] == 142  # amoCRM's "won"
    assert "site-lead" in [tag["name"] for tag in lead["_embedded"]["tags"]]
    notes = [n["params"]["text"] for n in services.amocrm.notes]
    qualified = "company_size: 11–50 сотрудников; channels: Сайт, Telegram и Авито; request_volume: 300–3 000"
    assert any(qualified in note for note in notes), notes

    [answer] = customer.say("Можно оплатить картой?")
    assert "ЮKassa" in answer["text"] and "Источник: Оплата" in answer["text"]


async def deliver_to_amocrm(fake: FakeAmoCRM, database_url: str) -> None:
    """What `python -m bot crm-worker` does, until the outbox is empty: the integration authorised once."""
    crm = AmoCRM(
        fake.base_url, fake.client_id, fake.client_secret, fake.redirect_uri, database_url, 7001, AMOCRM_STATUSES
    )
    await crm.authorize(fake.code)
    for _ in range(10):
        report = await outbox.deliver_due(crm, database_url)
        if not report.delivered:
            return


LEAD_ANSWERS = (  # typed, as on channels without buttons: name, company, size, channels, volume, deadline, budget…
    "Пётр Соколов",
    "ООО «Вектор»",
    "около 30 человек",
    "Авито и Telegram",
    "около 500 обращений в месяц",
    "к февралю",
    "400 000 ₽",
    "petr@vector.example",
    "+7 903 555-12-34",
)


def audit_proposal_and_payment_link(say) -> tuple[str, str]:
    """An audit priced in one turn, its proposal asked for with the lead form answered by typing, then the
    prepayment link; ``say(text) -> reply text``. Returns (the proposal's reply, the payment link's reply)."""
    reply = plain(say("Сколько стоит аудит?"))
    # A package without factors: its base, 90,000 roubles; VAT 19,800; total 109,800.
    assert "Аудит процессов и план внедрения ИИ" in reply and f"Итого: {roubles(109_800)}" in reply
    reply = say("пришлите КП")
    for answer in LEAD_ANSWERS:
        assert "?" in reply, reply  # a question of the lead form
        reply = say(answer)
    assert "Спасибо, Пётр Соколов!" in reply and re.search(r"КП-\d{4}-\d{4}", reply)
    payment = plain(say("хочу оплатить предоплату"))
    assert f"{roubles(32_940)}" in payment and "orderId=" in payment  # 30% of 109,800
    return reply, payment


def notify_paid(stack, services: "Outside", payment_id: str, succeed: bool = True) -> None:
    """YooKassa's side of a payment: the payment succeeds and its notification reaches the console (through a proxy
    naming one of YooKassa's addresses)."""
    if succeed:
        services.yookassa.succeed(payment_id)
    answer = httpx.post(
        f"{stack.console_url}/webhooks/yookassa",
        json=services.yookassa.notification(payment_id),
        headers={"X-Forwarded-For": "185.71.76.10"},
        timeout=60,
    )
    assert answer.status_code == 200, answer.text


def documents_arrive(sent, timeout_s: float = 30.0) -> str:
    """The message carrying the documents among ``sent()`` (the texts the channel delivered), once it arrives."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = [text for text in sent() if "/documents/" in text]
        if found:
            return found[-1]
        time.sleep(0.2)
    raise AssertionError(f"no documents sent: {sent()[-3:]}")


def test_a_telegram_customer_gets_a_proposal_pays_and_gets_the_documents(pack_stack, outside):
    services, _ = outside
    customer = TelegramCustomer(pack_stack, chat_id=770_001)
    customer.user["language_code"] = "ru"
    assert COMPANY["brand"] in customer.say(text="Добрый день")
    _, payment = audit_proposal_and_payment_link(lambda text: customer.say(text=text))
    notify_paid(pack_stack, services, re.findall(r"orderId=(\S+)", payment)[0])
    documents = documents_arrive(lambda: [m.get("text") or "" for m in customer.sent()])
    assert plain(documents).startswith(f"Оплата {roubles(32_940)} получена")


def test_an_avito_customer_gets_a_proposal_pays_and_the_ad_is_on_the_deal(pack_stack, outside):
    services, _ = outside
    customer = AvitoCustomer(pack_stack, chat_id="u2i-pack~Avito1", item_id=4_213_861_287)
    assert COMPANY["brand"] in customer.say("Здравствуйте")
    proposal, payment = audit_proposal_and_payment_link(customer.say)
    assert "• Записаться на звонок" in proposal  # Avito has no buttons: they come as lines to type back
    notify_paid(pack_stack, services, re.findall(r"orderId=(\S+)", payment)[0])
    documents = documents_arrive(customer.sent)
    assert plain(documents).startswith(f"Оплата {roubles(32_940)} получена")
    notes = pack_stack.run(deal_notes(pack_stack.database_url, customer.sender_id))
    assert "Written about avito ad 4213861287" in notes
    assert "company_size: около 30 человек" in notes and "channels: Авито и Telegram" in notes


async def deal_notes(database_url: str, conversation_id: str) -> str:
    """Every note of the deals of the contact saved in ``conversation_id``, joined."""
    async with session_scope(database_url) as session:
        notes = await session.scalars(
            select(DealNote.body)
            .join(Deal, DealNote.deal_id == Deal.id)
            .join(Contact, Deal.contact_id == Contact.id)
            .where(Contact.sender_id == conversation_id)
        )
        return "\n".join(notes)


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
