"""Signing in to the manager console in Debian's headless Chromium (selenium + chromedriver), against a
real console process (``python -m bot console``) on a fresh, migrated DB with an admin made by the CLI."""

import os
import subprocess
import sys

import pytest
from cryptography.fernet import Fernet
from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

from bot.core.settings import ROOT
from tests.browser import chromium
from tests.e2e.conftest import free_port, wait_for

pytestmark = pytest.mark.e2e

PASSWORD = "correct horse battery staple"


@pytest.fixture
def console(tmp_path) -> str:
    """URL of a console process with one admin, ann@example.com (password PASSWORD)."""
    port = free_port()
    env = {
        **os.environ,
        "CLOSER_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'closer.db'}",
        "CLOSER_CONSOLE_HOST": "127.0.0.1",
        "CLOSER_CONSOLE_PORT": str(port),
        "CLOSER_CONSOLE_SECRET_KEY": Fernet.generate_key().decode(),
    }
    subprocess.run([sys.executable, "-m", "bot", "db", "upgrade"], cwd=ROOT, env=env, check=True, capture_output=True)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "bot",
            "user",
            "add",
            "--email",
            "ann@example.com",
            "--name",
            "Ann Admin",
            "--role",
            "admin",
            "--password-stdin",
        ],
        cwd=ROOT,
        env=env,
        input=PASSWORD + "\n",
        text=True,
        check=True,
        capture_output=True,
    )
    log = tmp_path / "console.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "bot", "console"], cwd=ROOT, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT
    )
    try:
        wait_for(f"http://127.0.0.1:{port}/healthz", process, log)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=20)


@pytest.fixture
def browser():
    with chromium() as driver:
        yield driver


def waiting(browser) -> WebDriverWait:
    """Waits that look again when the page is replaced while they look (Chromium then reports a stale
    element, or a node that "does not belong to the document")."""
    return WebDriverWait(browser, 30, ignored_exceptions=[StaleElementReferenceException, WebDriverException])


def sign_in(browser, email: str, password: str) -> None:
    browser.find_element(By.NAME, "email").clear()
    browser.find_element(By.NAME, "email").send_keys(email)
    browser.find_element(By.NAME, "password").send_keys(password)
    browser.find_element(By.CSS_SELECTOR, "form.form button[type=submit]").click()


def texts(browser, selector: str) -> list[str]:
    return [element.text for element in browser.find_elements(By.CSS_SELECTOR, selector)]


def test_an_admin_signs_in_creates_a_manager_and_logs_out(console, browser):
    wait = waiting(browser)
    browser.get(console + "/console/users")
    wait.until(lambda d: "/console/login" in d.current_url)
    sign_in(browser, "ann@example.com", PASSWORD)
    wait.until(lambda d: d.current_url == console + "/console/users")
    assert browser.find_element(By.TAG_NAME, "h1").text == "Users"
    assert "Ann Admin admin" in browser.find_element(By.CSS_SELECTOR, ".account").text
    assert "Users" in texts(browser, ".nav a")
    assert any(row.startswith("ann@example.com Ann Admin admin active") for row in texts(browser, "tbody tr"))

    form = browser.find_element(By.CSS_SELECTOR, "form[action='/console/users']")
    form.find_element(By.NAME, "email").send_keys("max@example.com")
    form.find_element(By.NAME, "name").send_keys("Max Manager")
    Select(form.find_element(By.NAME, "role")).select_by_value("manager")
    form.find_element(By.NAME, "password").send_keys("a manager's passphrase")
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait.until(lambda d: "Created max@example.com (manager)." in texts(d, ".flash"))
    assert any(row.startswith("max@example.com Max Manager manager active never") for row in texts(browser, "tbody tr"))

    browser.find_element(By.XPATH, "//button[text()='Log out']").click()
    wait.until(lambda d: "You have logged out." in texts(d, ".flash"))
    browser.get(console + "/console/users")
    wait.until(lambda d: "/console/login" in d.current_url)

    sign_in(browser, "max@example.com", "a manager's passphrase")
    wait.until(lambda d: d.find_element(By.TAG_NAME, "h1").text == "Not allowed")  # managers may not manage users
    assert "Max Manager manager" in browser.find_element(By.CSS_SELECTOR, ".account").text
    assert "Users" not in texts(browser, ".nav a")


def test_a_wrong_password_shows_the_error(console, browser):
    wait = waiting(browser)
    browser.get(console + "/console/login")
    sign_in(browser, "ann@example.com", "not the password")
    wait.until(lambda d: "Unknown email or wrong password." in texts(d, ".flash-error"))
    assert browser.find_element(By.NAME, "email").get_attribute("value") == "ann@example.com"
    assert browser.find_element(By.NAME, "password").get_attribute("value") == ""
