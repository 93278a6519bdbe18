"""The web chat in the customer's language (bot.web.chat, templates/chat.html, static/chat.js): the page in the
language the customer picked or the browser prefers among company.yml's (en, ar, ru), a selector of them, the
widget's texts from the real gettext catalogs (bot/texts/locale, compiled), errors of /api/chat in the widget's
language; and, in headless
Chromium against a local server standing in for Rasa's REST channel, picking العربية turns the page right to
left and sends /set_language to Rasa."""

import asyncio
import json
from html.parser import HTMLParser

import pytest
from aiohttp.test_utils import TestClient, TestServer
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

from bot.core.business import get_company
from bot.texts import i18n
from bot.web.app import create_app
from tests.browser import chromium
from tests.web.test_console_auth import console_settings

SELECTOR = [("en", "English"), ("ar", "العربية"), ("ru", "Русский")]


def placeholder(language: str) -> str:
    """The message box's hint in ``language``: knowledge/company.yml's ``chat_placeholder``."""
    return get_company().chat_placeholders[language]


def translated(language: str, msgid: str) -> str:
    """``msgid`` in the compiled catalog of ``language``; fails the test while the catalog lacks it."""
    with i18n.use(language):
        text = i18n.gettext(msgid)
    assert text != msgid, f"bot/texts/locale/{language} has no translation of {msgid!r}"
    return text


class Page(HTMLParser):
    """A chat page read back: every start tag's attributes, the text of every element with a ``data-text`` (by
    that key) or an id, and the options (attributes, text) of the language selector."""

    VOID = frozenset({"input", "link", "meta"})

    def __init__(self, html: str):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.texts: dict[str, str] = {}
        self.options: list[tuple[dict, str]] = []
        self.stack: list[tuple[str, str | None]] = []  # the open elements (tag, key), innermost last
        self.feed(html)
        self.close()

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append((tag, attrs))
        if tag in self.VOID:
            return
        key = attrs.get("data-text") or attrs.get("id")
        self.stack.append((tag, key))
        if key:
            self.texts[key] = ""
        if tag == "option":
            self.options.append((attrs, ""))

    def handle_endtag(self, tag):
        while self.stack and self.stack.pop()[0] != tag:
            pass

    def handle_data(self, data):
        for _, key in self.stack:
            if key:
                self.texts[key] += data
        if self.stack and self.stack[-1][0] == "option":
            attrs, text = self.options[-1]
            self.options[-1] = (attrs, text + data.strip())

    def tag(self, name: str, **where) -> dict:
        [attrs] = [a for t, a in self.tags if t == name and all(a.get(k) == v for k, v in where.items())]
        return attrs


@pytest.fixture
async def client(db_url, rasa):
    async with TestClient(TestServer(create_app(console_settings(db_url, rasa_url=rasa.url)))) as client:
        yield client


async def page(client: TestClient, accept_language: str | None = None, cookie: str | None = None) -> Page:
    headers = {"Accept-Language": accept_language} if accept_language is not None else {}
    if cookie:
        headers["Cookie"] = f"closer_language={cookie}"
    response = await client.get("/", headers=headers)
    assert response.status == 200
    return Page(await response.text())


async def test_an_arabic_browser_gets_the_page_right_to_left_in_arabic_with_the_business_languages(client):
    read = await page(client, "ar-AE,ar;q=0.9,en;q=0.8")
    assert read.tag("html") == {"lang": "ar", "dir": "rtl"}
    assert [(attrs["value"], text) for attrs, text in read.options] == SELECTOR
    assert [attrs["value"] for attrs, _ in read.options if "selected" in attrs] == ["ar"]
    assert read.tag("input", id="text")["placeholder"] == placeholder("ar")
    assert read.tag("input", id="text")["dir"] == "auto"
    assert read.texts["send"] == translated("ar", "Send")
    assert read.texts["new_chat"] == translated("ar", "New chat")
    assert read.texts["title"] == translated("ar", "{brand} — chat with {assistant}").format(
        brand="Desert Oak", assistant="Closer"
    )
    assert read.tag("div", id="typing")["aria-label"] == translated("ar", "{assistant} is typing").format(
        assistant="Closer"
    )
    footer = translated("ar", 'Prefer a person? Call {phone} or type "talk to a manager".')
    assert read.texts["footer"] == footer.format(phone="\u2066+971 4 555 0142\u2069")  # isolated left to right


@pytest.mark.parametrize(
    ("accept_language", "language"),
    [
        ("ru-RU,ru;q=0.9,en-US;q=0.8,en;q=0.7", "ru"),
        ("en-US,en;q=0.9", "en"),
        ("fr-FR, fr;q=0.9", "en"),  # not served: the default language
        ("fr, ar;q=0.3, ru;q=0.5", "ru"),  # by weight, not by order
        ("ru;q=0, AR-ae", "ar"),  # q=0: not wanted; tags in any case
        ("*", "en"),
        (None, "en"),
    ],
)
async def test_the_page_is_in_the_browsers_most_preferred_language_the_business_serves(
    client, accept_language, language
):
    read = await page(client, accept_language)
    assert read.tag("html")["lang"] == language
    assert [attrs["value"] for attrs, _ in read.options if "selected" in attrs] == [language]


async def test_the_language_picked_in_the_widget_outranks_the_browsers(client):
    assert (await page(client, "ar", cookie="ru")).tag("html") == {"lang": "ru", "dir": "ltr"}
    assert (await page(client, "ar", cookie="fr")).tag("html") == {"lang": "ar", "dir": "rtl"}  # not served


async def test_the_page_carries_every_languages_name_direction_and_texts_for_the_widget(client):
    read = await page(client, "en")
    languages = json.loads(read.texts["languages"])
    assert {code: (each["name"], each["dir"]) for code, each in languages.items()} == {
        "en": ("English", "ltr"),
        "ar": ("العربية", "rtl"),
        "ru": ("Русский", "ltr"),
    }
    assert [languages[code]["texts"]["placeholder"] for code in ("en", "ar", "ru")] == [
        placeholder("en"),
        placeholder("ar"),
        placeholder("ru"),
    ]
    assert {code: each["texts"].keys() for code, each in languages.items()} == {
        code: languages["en"]["texts"].keys() for code in languages
    }
    assert read.texts["send"] == "Send" and read.tag("html") == {"lang": "en", "dir": "ltr"}


EMPTY = "It looks like your message was empty — what can I help you with?"


@pytest.mark.parametrize(("language", "in_language"), [("ar", "ar"), ("ru", "ru"), ("fr", "en"), (None, "en")])
async def test_the_chat_apis_own_replies_are_in_the_widgets_language(client, rasa, language, in_language):
    body = {"sender": "customer-one", "message": "   ", **({"language": language} if language else {})}
    response = await client.post("/api/chat", json=body)
    assert response.status == 400
    reply = EMPTY if in_language == "en" else translated(in_language, EMPTY)
    assert await response.json() == {"messages": [{"text": reply}]}
    assert rasa.said == []


# --- the widget in a browser ------------------------------------------------------------------------------


def _pick_arabic_in_chromium(url: str) -> dict:
    """Open the chat (Chromium asks for English), pick العربية, reload, start a new chat; what was seen."""
    with chromium(412) as driver:
        wait = WebDriverWait(driver, 30)
        driver.get(url + "/")
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, ".msg.bot"))  # the greeting's answer
        picker = Select(driver.find_element(By.ID, "language"))
        seen = {
            "options": [(o.get_attribute("value"), o.text) for o in picker.options],
            "before": driver.find_element(By.TAG_NAME, "html").get_attribute("dir"),
        }
        picker.select_by_visible_text("العربية")
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, ".msg.bot")) == 2)  # the answer to /set_language
        html = driver.find_element(By.TAG_NAME, "html")
        seen["after"] = (html.get_attribute("lang"), html.get_attribute("dir"))
        seen["placeholder"] = driver.find_element(By.ID, "text").get_attribute("placeholder")
        seen["bubbles"] = [(b.text, b.get_attribute("dir")) for b in driver.find_elements(By.CSS_SELECTOR, ".msg")]
        driver.refresh()
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, ".msg.bot"))
        seen["reloaded"] = (
            driver.find_element(By.TAG_NAME, "html").get_attribute("dir"),
            Select(driver.find_element(By.ID, "language")).first_selected_option.get_attribute("value"),
            driver.find_element(By.ID, "send").text,
        )
        driver.find_element(By.ID, "reset").click()
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, ".msg")) == 2)
        seen["new_chat"] = [b.text for b in driver.find_elements(By.CSS_SELECTOR, ".msg")]
        return seen


async def test_picking_arabic_turns_the_widget_right_to_left_and_tells_rasa(db_url, rasa):
    async with TestServer(create_app(console_settings(db_url, rasa_url=rasa.url)), host="127.0.0.1") as server:
        seen = await asyncio.to_thread(_pick_arabic_in_chromium, str(server.make_url("")).rstrip("/"))
    assert seen["options"] == SELECTOR
    assert seen["before"] == "ltr"
    assert seen["after"] == ("ar", "rtl")
    assert seen["placeholder"] == placeholder("ar")
    assert seen["bubbles"] == [
        ("hi", "auto"),
        ('You said: /greet{"language":"en"}', "auto"),
        ("العربية", "auto"),
        ('You said: /set_language{"language":"ar"}', "auto"),
    ]
    assert seen["reloaded"] == ("rtl", "ar", translated("ar", "Send"))
    assert seen["new_chat"] == [translated("ar", "hi"), 'You said: /greet{"language":"ar"}']
    assert [message for _, message in rasa.said] == [
        '/greet{"language":"en"}',
        '/set_language{"language":"ar"}',
        '/greet{"language":"ar"}',
    ]
    assert len({sender for sender, _ in rasa.said}) == 2  # "New chat" is a new conversation
