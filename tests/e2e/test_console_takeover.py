"""A manager takes a web chat over from the console, on the real stack (console → Rasa server → action
server), in two Debian headless Chromium windows (selenium + chromedriver): the customer's widget and the
manager's console."""

import os
import subprocess
import sys
import uuid

import httpx
import pytest
from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait
from sqlalchemy import select

from bot.core import db
from bot.core.models import Escalation
from bot.core.settings import ROOT
from tests.browser import chromium

pytestmark = pytest.mark.e2e

PASSWORD = "a manager's passphrase"


@pytest.fixture
def customer():
    with chromium(412) as driver:
        yield driver


@pytest.fixture
def manager():
    with chromium(1280) as driver:
        yield driver


@pytest.fixture
def manager_email(stack) -> str:
    """A console manager made with the CLI in the stack's DB (password PASSWORD)."""
    email = f"max-{uuid.uuid4().hex[:8]}@example.com"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "bot",
            "user",
            "add",
            "--email",
            email,
            "--name",
            "Max Manager",
            "--role",
            "manager",
            "--password-stdin",
        ],
        cwd=ROOT,
        input=PASSWORD + "\n",
        text=True,
        check=True,
        capture_output=True,
        env={**os.environ, "CLOSER_DATABASE_URL": stack.database_url},
    )
    return email


def waiting(driver, seconds: float = 60) -> WebDriverWait:
    # an element read while the page navigates is stale, or (Chromium) "does not belong to the document"
    return WebDriverWait(driver, seconds, ignored_exceptions=[StaleElementReferenceException, WebDriverException])


def texts(driver, selector: str) -> list[str]:
    return [element.text for element in driver.find_elements(By.CSS_SELECTOR, selector)]


def widget_state(driver) -> dict:
    return driver.execute_script("return JSON.parse(localStorage.getItem('closer.chat.v1'))")


def write(driver, text: str) -> None:
    driver.find_element(By.ID, "text").send_keys(text)
    driver.find_element(By.ID, "send").click()


def events_after(stack, conversation_id: str, text: str) -> tuple[dict, list[dict]]:
    """Rasa's tracker and its events after the customer's last message ``text``."""
    tracker = httpx.get(
        f"{stack.rasa_url}/conversations/{conversation_id}/tracker", timeout=30, headers=stack.rasa_headers()
    ).json()
    events = tracker["events"]
    last = max(i for i, e in enumerate(events) if e["event"] == "user" and e.get("text") == text)
    return tracker, events[last + 1 :]


def escalation_of(stack, conversation_id: str) -> Escalation:
    async def load():
        async with db.session_scope(stack.database_url) as session:
            return await session.scalar(select(Escalation).where(Escalation.conversation_id == conversation_id))

    return stack.run(load())


def test_a_manager_takes_over_a_web_chat_replies_and_hands_back(stack, customer, manager, manager_email):
    customer.get(stack.console_url + "/")
    waiting(customer).until(lambda d: any("Closer" in t for t in texts(d, ".msg.bot")))
    write(customer, "I want to talk to a person")
    waiting(customer).until(lambda d: any("sales manager" in t.lower() for t in texts(d, ".msg.bot")))
    conversation_id = "web-" + widget_state(customer)["sender"]
    assert widget_state(customer)["paused"] is True

    manager.get(stack.console_url + "/console/escalations")
    waiting(manager).until(lambda d: "/console/login" in d.current_url)
    manager.find_element(By.NAME, "email").send_keys(manager_email)
    manager.find_element(By.NAME, "password").send_keys(PASSWORD)
    manager.find_element(By.CSS_SELECTOR, "form.form button[type=submit]").click()
    waiting(manager).until(lambda d: d.find_element(By.TAG_NAME, "h1").text == "Escalations")
    row = next(r for r in manager.find_elements(By.CSS_SELECTOR, "tbody tr") if conversation_id in r.text)
    assert "the customer asked for a person" in row.text
    row.find_element(By.TAG_NAME, "a").click()
    waiting(manager).until(lambda d: "I want to talk to a person" in d.find_element(By.ID, "transcript").text)

    manager.find_element(By.XPATH, "//button[text()='Take over']").click()
    waiting(manager).until(lambda d: any("You have the conversation now" in t for t in texts(d, ".flash")))
    reply = "Hello, this is Max from the sales team. How many chairs do you need?"
    manager.find_element(By.CSS_SELECTOR, "form#reply textarea[name=text]").send_keys(reply)
    manager.find_element(By.CSS_SELECTOR, "form#reply button[type=submit]").click()
    waiting(manager).until(lambda d: "Sent to the customer." in texts(d, ".flash"))
    escalation = escalation_of(stack, conversation_id)
    assert (escalation.status, escalation.assignee) == ("in_progress", manager_email)

    waiting(customer).until(lambda d: any(reply in t for t in texts(d, ".msg.manager")))  # the widget polled it
    [shown] = customer.find_elements(By.CSS_SELECTOR, ".msg.manager")
    assert shown.find_element(By.CSS_SELECTOR, ".from").text == "Sales manager"
    customer.refresh()
    waiting(customer).until(lambda d: [t for t in texts(d, ".msg.manager") if reply in t])
    assert len(customer.find_elements(By.CSS_SELECTOR, ".msg.manager")) == 1  # kept once across the reload

    question = "Forty chairs, delivered to Dubai Marina by Thursday"
    said = texts(customer, ".msg.bot")
    write(customer, question)
    waiting(customer).until(lambda d: not d.find_element(By.ID, "typing").is_displayed())  # the chat API answered
    assert texts(customer, ".msg.bot") == said  # the manager has just replied: no holding message, no widget text
    tracker, after = events_after(stack, conversation_id, question)
    assert tracker["paused"] is True and [e for e in after if e["event"] in ("bot", "action")] == []  # bot silent
    waiting(manager).until(lambda d: question in d.find_element(By.ID, "transcript").text)  # the page refreshed

    manager.find_element(By.CSS_SELECTOR, "form#handback textarea[name=note]").send_keys("Needs 40 chairs by Thursday.")
    manager.find_element(By.CSS_SELECTOR, "form#handback button[type=submit]").click()
    waiting(manager).until(lambda d: "Handed back: the bot answers again." in texts(d, ".flash"))
    escalation = escalation_of(stack, conversation_id)
    assert (escalation.status, escalation.resolved_by, escalation.resolution_note) == (
        "resolved",
        manager_email,
        "Needs 40 chairs by Thursday.",
    )
    waiting(customer).until(lambda d: widget_state(d)["paused"] is False)  # the widget's poll learnt it

    before = len(texts(customer, ".msg.bot"))
    write(customer, "show me ergonomic chairs")
    waiting(customer).until(lambda d: len(texts(d, ".msg.bot")) > before)
    answer = texts(customer, ".msg.bot")[before:]
    assert any("AED" in t for t in answer), answer
    tracker, after = events_after(stack, conversation_id, "show me ergonomic chairs")
    assert tracker["paused"] is False and any(e["event"] == "bot" for e in after)
