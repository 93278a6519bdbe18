"""The web chat widget in Debian's headless Chromium (selenium + chromedriver) against the real stack."""

import re

import httpx
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import Select, WebDriverWait
from sqlalchemy import select

from bot.core import db
from bot.core.models import Feedback
from tests.browser import chromium

pytestmark = pytest.mark.e2e


@pytest.fixture
def browser():
    with chromium(412) as driver:
        yield driver


def bot_texts(driver):
    return [e.text for e in driver.find_elements(By.CSS_SELECTOR, ".msg.bot")]


def test_chat_on_the_widget_shows_product_buttons_and_survives_a_reload(stack, browser):
    wait = WebDriverWait(browser, 60)
    browser.get(stack.console_url + "/")
    wait.until(lambda d: any("Closer" in t for t in bot_texts(d)))  # the widget greets on first visit

    box = browser.find_element(By.ID, "text")
    box.send_keys("show me ergonomic chairs under 1500")
    browser.find_element(By.ID, "send").click()
    wait.until(lambda d: any("AED" in t for t in bot_texts(d)))
    buttons = wait.until(EC.presence_of_all_elements_located((By.CSS_SELECTOR, ".buttons button:not([disabled])")))
    titles = [b.text for b in buttons]
    assert any("(OC-" in title for title in titles), titles

    product_button = next(b for b in buttons if "(OC-" in b.text)
    sku = product_button.text.split("(")[-1].rstrip(")")
    product_button.click()
    wait.until(lambda d: any(f"({sku})" in t and "Price:" in t for t in bot_texts(d)))
    assert browser.find_element(By.ID, "typing").get_attribute("hidden") is not None

    before = bot_texts(browser)
    browser.refresh()
    wait.until(lambda d: len(bot_texts(d)) >= len(before))
    assert bot_texts(browser) == before  # history kept across a reload, no new greeting


def test_a_knowledge_answer_can_be_rated_with_a_comment_and_the_rating_survives_a_reload(stack, browser):
    wait = WebDriverWait(browser, 60)
    browser.get(stack.console_url + "/")
    wait.until(lambda d: any("Closer" in t for t in bot_texts(d)))
    browser.find_element(By.ID, "text").send_keys("how long does delivery to Abu Dhabi take?")
    browser.find_element(By.ID, "send").click()
    control = wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, "li.feedback")))
    answer_id = control.get_attribute("data-answer-id")
    assert any("Source: Delivery" in t for t in bot_texts(browser))

    control.find_element(By.CSS_SELECTOR, "button.feedback-down").click()
    wait.until(
        lambda d: d.find_element(By.CSS_SELECTOR, "button.feedback-down").get_attribute("aria-pressed") == "true"
    )
    form = browser.find_element(By.CSS_SELECTOR, "form.feedback-comment")
    form.find_element(By.TAG_NAME, "input").send_keys("I wanted Al Ain")
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait.until(EC.visibility_of_element_located((By.CSS_SELECTOR, "span.feedback-thanks")))

    async def stored():
        async with db.session_scope(stack.database_url) as session:
            return await session.scalar(select(Feedback).where(Feedback.answer_id == answer_id))

    feedback = stack.run(stored())
    assert (feedback.rating, feedback.comment) == (-1, "I wanted Al Ain")

    browser.refresh()
    restored = wait.until(
        EC.presence_of_element_located((By.CSS_SELECTOR, f'li.feedback[data-answer-id="{answer_id}"]'))
    )
    assert restored.find_element(By.CSS_SELECTOR, "button.feedback-down").get_attribute("aria-pressed") == "true"


def test_picking_arabic_turns_the_widget_right_to_left_and_the_bot_writes_arabic(stack, browser):
    wait = WebDriverWait(browser, 60)
    browser.get(stack.console_url + "/")  # Chromium asks for English
    wait.until(lambda d: any("Closer" in t for t in bot_texts(d)))
    picker = Select(browser.find_element(By.ID, "language"))
    assert [(o.get_attribute("value"), o.text) for o in picker.options] == [
        ("en", "English"),
        ("ar", "العربية"),
        ("ru", "Русский"),
    ]
    assert browser.find_element(By.TAG_NAME, "html").get_attribute("dir") == "ltr"

    before = len(bot_texts(browser))
    picker.select_by_visible_text("العربية")
    html = browser.find_element(By.TAG_NAME, "html")
    assert (html.get_attribute("lang"), html.get_attribute("dir")) == ("ar", "rtl")
    wait.until(lambda d: len(bot_texts(d)) > before)
    answer = bot_texts(browser)[-1]
    assert re.search("[\u0621-\u064a]", answer), answer  # utter_language_set's Arabic variation

    sender = browser.execute_script("return JSON.parse(localStorage.getItem('closer.chat.v1')).sender")
    tracker = httpx.get(
        f"{stack.rasa_url}/conversations/web-{sender}/tracker", headers=stack.rasa_headers(), timeout=30
    ).json()
    [picked] = [e for e in tracker["events"] if e["event"] == "user" and e["text"].startswith("/set_language")]
    assert (picked["text"], picked["parse_data"]["intent"]["name"]) == (
        '/set_language{"language":"ar"}',
        "set_language",
    )
    assert tracker["slots"]["language"] == "ar"
