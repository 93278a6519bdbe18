""" "Delete my data" through the whole stack: the web chat → Rasa (the trained model's request_erasure intent
and rules) → action_erase_customer_data, which erases the contact at once; the console's background loop
then rewrites the conversation's tracker events once Rasa's turn is over. Afterwards no byte of the
tracker store, the business DB or their write-ahead logs holds the customer's e-mail or phone number."""

import time

import pytest
from sqlalchemy import create_engine, select, text

from bot.contracts.database import synchronous
from bot.core import db
from bot.core.models import AuditEntry, Contact
from bot.privacy import erasure
from bot.privacy.encryption import get_keyring
from tests.e2e.test_conversation import Chat

pytestmark = pytest.mark.e2e

EMAIL, PHONE = "layla.zahrani@oasis-trading.ae", "+971502223344"
ANSWERS = [
    ("email", EMAIL),
    ("phone", "050 222 3344"),
    ("company", "Oasis Trading"),
    ("how many", "8"),
    ("budget", "9000"),
    ("when", "next month"),
    ("name", "Layla Zahrani"),
]


def tracker_rows(stack, query: str) -> list[tuple]:
    """``query``'s rows in the stack's tracker store."""
    engine = create_engine(synchronous(stack.tracker_database_url))
    with engine.connect() as connection:
        rows = [tuple(row) for row in connection.execute(text(query))]
    engine.dispose()
    return rows


def senders(stack) -> set[str]:
    return {sender for (sender,) in tracker_rows(stack, "SELECT DISTINCT sender_id FROM events")}


def test_a_customer_has_their_data_deleted_after_confirming(stack):
    chat = Chat(stack)
    chat.text("hi")
    question = chat.text("I want to leave my contacts")
    for _ in range(10):
        if "Your details are saved" in question:
            break
        question = chat.text(next(answer for key, answer in ANSWERS if key in question.lower()))
    assert PHONE in question

    asked = chat.say("please delete my personal data")
    assert "Shall I delete it?" in asked[0]["text"]
    assert [b["payload"] for b in asked[0]["buttons"]] == ["/affirm", "/deny"]
    assert "your personal data is deleted" in chat.text("/affirm")

    async def contact():
        async with db.session_scope(stack.database_url) as session:
            found = await session.scalar(select(Contact).where(Contact.email_index == get_keyring().email_index(EMAIL)))
            entry = await session.scalar(select(AuditEntry).where(AuditEntry.action == erasure.ACTION))
            return found, entry

    remaining, entry = stack.run(contact())
    assert remaining is None and entry.detail["via"] == "customer"

    conversation = f"web-{chat.sender}"
    deadline = time.monotonic() + erasure.PENDING_DELAY_S + erasure.QUIET_S + 40
    while conversation in senders(stack) and time.monotonic() < deadline:
        time.sleep(1)
    time.sleep(3)  # Rasa would have stored its tracker again by now, had it been in the turn
    assert conversation not in senders(stack)
    assert any(sender.startswith(erasure.ANONYMOUS_PREFIX) for sender in senders(stack))
    events = tracker_rows(stack, "SELECT data FROM events")
    assert not [data for (data,) in events if EMAIL in data or PHONE in data]
    for name in ("tracker.db", "tracker.db-wal", "closer.db", "closer.db-wal"):  # SQLite: the files' every byte
        path = stack.logs / name
        content = path.read_bytes() if path.exists() else b""
        assert EMAIL.encode() not in content and PHONE.encode() not in content, name

    assert "Closer" in chat.text("hi")  # the same sender starts afresh
