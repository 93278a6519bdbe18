"""The website's price calculator API (bot.web.calculator) with the example pack's formula: the form's data in the
customer's language, prices equal to the formula's (the same implementation as the bot's), the chat payload that
continues with the configuration, clear 400s for what the formula does not have, and 404 for a business without a
formula (the default one), whose page has no calculator either."""

import json

import pytest
from aiohttp.test_utils import TestClient, TestServer

from bot.commerce.formula import read_formula
from bot.core import caches
from bot.core.settings import ROOT
from bot.web.app import create_app
from tests.web.test_console_auth import console_settings

PACK = ROOT / "examples" / "ai-studio" / "knowledge"
FORMULA = read_formula(PACK / "pricing.yml")


@pytest.fixture
async def pack_client(db_url, rasa, monkeypatch):
    monkeypatch.setenv("CLOSER_KNOWLEDGE_DIR", str(PACK))
    caches.reset()
    async with TestClient(TestServer(create_app(console_settings(db_url, rasa_url=rasa.url)))) as client:
        yield client
    caches.reset()


async def test_the_form_gets_the_formula_in_the_customers_language(pack_client):
    response = await pack_client.get("/api/price-formula?language=en")
    assert response.status == 200
    body = await response.json()
    assert (body["language"], body["currency"]) == ("en", "RUB")
    [chatbot] = [p for p in body["packages"] if p["id"] == "chatbot"]
    assert chatbot == {
        "id": "chatbot",
        "name": "Sales and support chatbot",
        "billing": "one_off",
        "factors": ["integrations", "data_volume", "languages", "sla"],
        "options": ["analytics", "voice", "training", "fast_launch"],
    }
    assert body["factors"]["sla"]["levels"][1] == {
        "id": "extended",
        "name": "Extended: daily 08:00–22:00, reply within 2 hours",
        "coefficient": "1.2",
    }
    assert body["options"]["voice"] == {"name": "Voice channel (telephony)", "price": "RUB 120,000.00"}
    russian = await (await pack_client.get("/api/price-formula?language=ar")).json()  # not the business's: ru
    assert russian["language"] == "ru" and russian["texts"]["title"] == "Калькулятор стоимости"


async def test_a_configuration_is_priced_as_the_formula_prices_it_and_continues_in_the_chat(pack_client):
    levels = {"integrations": "few", "data_volume": "large", "languages": "two", "sla": "extended"}
    wanted = {"package": "chatbot", "levels": levels, "options": ["voice", "analytics"], "language": "ru"}
    response = await pack_client.post("/api/price-formula", json=wanted)
    assert response.status == 200
    body = await response.json()
    priced = FORMULA.price("chatbot", levels, ["voice", "analytics"])
    assert (body["net_minor"], body["vat_minor"], body["total_minor"]) == (69_700_000, 15_334_000, 85_034_000)
    assert body["total_minor"] == priced.total_minor and body["currency"] == "RUB"
    assert body["text"].startswith("Чат-бот для продаж и поддержки с вашими параметрами:")
    assert body["payload"].startswith("/ask_price")
    assert json.loads(body["payload"].removeprefix("/ask_price")) == {
        "package": "chatbot",
        **levels,
        "options": "analytics,voice",
    }


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ("not json", "the body must be a JSON object"),
        ({"package": 7}, "package must be a text"),
        ({"package": "chatbot", "levels": {"sla": 2}}, "levels and options must hold texts"),
        ({"package": "website"}, "package: no package 'website'"),
        ({"package": "audit", "options": ["voice"]}, "options: voice is not offered with audit"),
        ({"package": "chatbot", "levels": {"sla": "platinum"}}, "sla: no level 'platinum'"),
    ],
)
async def test_what_the_formula_does_not_have_gets_a_clear_400(pack_client, body, error):
    if isinstance(body, str):
        response = await pack_client.post("/api/price-formula", data=body)
    else:
        response = await pack_client.post("/api/price-formula", json=body)
    assert response.status == 400
    assert error in (await response.json())["error"]


async def test_a_business_without_a_formula_has_no_calculator(db_url, rasa):
    caches.reset()
    async with TestClient(TestServer(create_app(console_settings(db_url, rasa_url=rasa.url)))) as client:
        assert (await client.get("/api/price-formula")).status == 404
        assert (await client.post("/api/price-formula", json={"package": "chatbot"})).status == 404
        page = await (await client.get("/")).text()
    assert 'id="calculator"' not in page and "calculator.js" not in page
