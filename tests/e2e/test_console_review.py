"""Issue 6's review loop in Debian's headless Chromium against the real stack (Rasa with the trained model,
the action server, the console): a customer chats on the web; a manager finds the conversation, sees what
NLU made of each message, corrects a misread intent, exports it from the NLU inbox into a copy of the
project, and `rasa data validate --fail-on-warnings` accepts the result."""

import os
import secrets
import shutil
import subprocess
import sys
import urllib.parse
from pathlib import Path

import httpx
import pytest
import yaml
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select

from bot.core.settings import ROOT
from tests.e2e import test_console_login
from tests.e2e.test_console_login import sign_in, texts, waiting

pytestmark = pytest.mark.e2e

RASA = ROOT / ".venv-rasa" / "bin" / "rasa"
MANAGER, PASSWORD = "reviewer@example.com", "a reviewer's passphrase"
# Payment questions none of data/nlu's examples phrase this way; the test uses the first one the trained model
# misreads (Rasa's /model/parse), so a better model changes which phrasing is corrected, not the test. Each starts
# with "is" and says "half" twice (the test selects the second one as a would-be entity).
MISREAD_POOL = (
    "is it possible to pay half now and half later",
    "is half now half later doable",
    "is it fine to send half before and half after the chairs come",
    "is half and half how you guys work",
    "is a half and half split fine with you",
    "is half up front and the other half on delivery ok",
)
RIGHT_INTENT = "ask_payment"

browser = test_console_login.browser  # headless Chromium, as there


@pytest.fixture
def project(stack) -> Path:
    """The console's project root in the stack (CLOSER_PROJECT_ROOT): a copy of domain, config and data."""
    root = stack.logs / "project"
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir()
    for name in ("domain.yml", "config.yml"):
        shutil.copy(ROOT / name, root / name)
    shutil.copytree(ROOT / "data", root / "data")
    return root


def chat(stack, sender: str, text: str) -> None:
    response = httpx.post(f"{stack.console_url}/api/chat", json={"sender": sender, "message": text}, timeout=60)
    assert response.status_code == 200, response.text


def add_manager(stack) -> None:
    env = {**os.environ, "CLOSER_DATABASE_URL": stack.database_url}
    subprocess.run(
        [
            sys.executable,
            "-m",
            "bot",
            "user",
            "add",
            "--email",
            MANAGER,
            "--name",
            "Rita Reviewer",
            "--role",
            "manager",
            "--password-stdin",
        ],
        cwd=ROOT,
        env=env,
        input=PASSWORD + "\n",
        text=True,
        check=True,
        capture_output=True,
    )


def select_text(browser, element, start: int, end: int) -> None:
    """Select characters start…end of ``element``'s text as a manager's mouse would, and let go."""
    browser.execute_script(
        "const [el, start, end] = arguments; const node = el.firstChild; const range = document.createRange();"
        "range.setStart(node, start); range.setEnd(node, end); const selection = window.getSelection();"
        "selection.removeAllRanges(); selection.addRange(range);"
        "el.dispatchEvent(new MouseEvent('mouseup', {bubbles: true}));",
        element,
        start,
        end,
    )


def misread(stack) -> str:
    """The first phrasing of MISREAD_POOL the stack's model does not read as RIGHT_INTENT with confidence ≥ 0.7."""
    for text in MISREAD_POOL:
        intent = httpx.post(
            f"{stack.rasa_url}/model/parse", json={"text": text}, headers=stack.rasa_headers(), timeout=60
        ).json()["intent"]
        if intent["name"] != RIGHT_INTENT or intent["confidence"] < 0.7:
            return text
    pytest.fail(f"the model reads every phrasing of MISREAD_POOL well: add harder ones ({MISREAD_POOL})")


def test_a_manager_corrects_a_misread_message_and_exports_it_as_valid_training_data(stack, browser, project):
    phrasing = misread(stack)
    sender = "review" + secrets.token_hex(6)
    conversation_id = f"web-{sender}"
    for text in ("hi", "I need 12 ergonomic chairs", phrasing):
        chat(stack, sender, text)
    tracker = httpx.get(
        f"{stack.rasa_url}/conversations/{conversation_id}/tracker", timeout=30, headers=stack.rasa_headers()
    ).json()
    nlu = next(e for e in reversed(tracker["events"]) if e["event"] == "user")["parse_data"]["intent"]
    assert nlu["name"] != RIGHT_INTENT or nlu["confidence"] < 0.7, f"the model now reads {phrasing!r} well: {nlu}"
    add_manager(stack)

    wait = waiting(browser)
    browser.get(stack.console_url + "/console/conversations")
    wait.until(lambda d: "/console/login" in d.current_url)
    sign_in(browser, MANAGER, PASSWORD)
    wait.until(lambda d: d.find_element(By.TAG_NAME, "h1").text == "Conversations")

    search = browser.find_element(By.CSS_SELECTOR, "form.filters")
    Select(search.find_element(By.NAME, "channel")).select_by_value("web")
    search.find_element(By.NAME, "q").send_keys(phrasing)
    search.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait.until(lambda d: "q=" + urllib.parse.quote_plus(phrasing) in d.current_url)
    rows = browser.find_elements(By.CSS_SELECTOR, "tr[data-conversation]")
    assert [row.get_attribute("data-conversation") for row in rows] == [conversation_id]
    assert Select(browser.find_element(By.NAME, "channel")).first_selected_option.text == "web"
    rows[0].find_element(By.LINK_TEXT, conversation_id).click()

    wait.until(lambda d: d.find_element(By.TAG_NAME, "h1").text == f"Conversation {conversation_id}")
    entry = next(
        e
        for e in browser.find_elements(By.CSS_SELECTOR, ".entry-customer")
        if e.find_element(By.CSS_SELECTOR, ".said").text == phrasing
    )
    assert f"Intent {nlu['name']} {nlu['confidence']:.2f}" in entry.find_element(By.CSS_SELECTOR, ".nlu").text
    entry.find_element(By.CSS_SELECTOR, "details.ranking summary").click()
    ranking = texts(browser, f"#{entry.get_attribute('id')} details.ranking li")
    assert ranking[0] == f"{nlu['name']} {nlu['confidence']:.2f}" and len(ranking) > 1
    assert any(t.startswith("Intent ") for t in texts(browser, ".entry-customer .nlu"))

    entry.find_element(By.CSS_SELECTOR, "details.correct summary").click()
    form = entry.find_element(By.CSS_SELECTOR, "form.correction")
    second_half = phrasing.index("half", phrasing.index("half") + 1)
    select_text(browser, entry.find_element(By.CSS_SELECTOR, ".said"), second_half, second_half + len("half"))
    span = form.find_element(By.NAME, "span")  # the script filled the first empty entity row
    assert span.get_attribute("value") == "half"
    assert form.find_element(By.NAME, "start").get_attribute("value") == str(second_half)
    span.send_keys(Keys.BACKSPACE * 4)  # no entity after all: typing clears the remembered place too
    assert form.find_element(By.NAME, "start").get_attribute("value") == ""
    Select(form.find_element(By.NAME, "intent")).select_by_value(RIGHT_INTENT)
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    saved = f"Correction saved: “{phrasing}” → {RIGHT_INTENT}, pending in the NLU inbox."
    wait.until(lambda d: saved in texts(d, ".flash"))

    browser.find_element(By.LINK_TEXT, "NLU inbox").click()
    wait.until(lambda d: d.find_element(By.TAG_NAME, "h1").text == "NLU inbox")
    [pending] = browser.find_elements(By.CSS_SELECTOR, "tr[data-annotation]")
    assert pending.text.startswith(f"{phrasing} {nlu['name']} {nlu['confidence']:.2f} {RIGHT_INTENT} — {MANAGER}")
    assert "make train" in browser.find_element(By.CSS_SELECTOR, ".export").text
    browser.find_element(By.XPATH, "//button[text()='Export to the training data']").click()
    target = project / "data" / "nlu" / "annotations.yml"
    wait.until(
        lambda d: (
            f"Exported to {target}: 1 written, 0 already in the training data (duplicates), 0 left "
            "pending (conflicts)." in texts(d, ".flash")
        )
    )
    browser.find_element(By.PARTIAL_LINK_TEXT, "Exported (").click()
    wait.until(lambda d: [t.split(" ")[0] for t in texts(d, "tr[data-annotation]")] == ["is"])

    items = yaml.safe_load(target.read_text(encoding="utf-8"))["nlu"]
    assert items == [{"intent": RIGHT_INTENT, "examples": f"- {phrasing}\n"}]
    validate = [
        str(RASA),
        "data",
        "validate",
        "--data",
        "data",
        "--domain",
        "domain.yml",
        "--config",
        "config.yml",
        "--fail-on-warnings",
    ]
    result = subprocess.run(validate, cwd=project, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
