"""Follow-ups and the escalation watchdog through the real stack: a customer who got a quote on Telegram is
reminded on Telegram with the PDF link (the job run with the clock moved a day on), "stop" ends the follow-ups,
a WhatsApp customer whose 24-hour window has closed gets the cadence's approved template and nothing else, and
an escalation nobody took re-notifies the managers' chat and tells the customer what happens next.

The jobs run in this process, as the console's scheduler runs them, against the stack's Rasa server (its HTTP
API, signed) and business DB; the stack's own console runs no jobs on the real clock (tests/conftest.py). The
stack is shared: a job also acts on other tests' conversations, so each test checks its own customer's."""

import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from bot.core.business import get_company
from bot.core.models import Conversation, Escalation, FollowUp, FollowUpOptOut, Quote
from bot.core.settings import Settings
from bot.scheduling import runner
from tests.e2e.test_channels import (
    TELEGRAM_LEAD,
    WHATSAPP_LEAD,
    TelegramCustomer,
    WhatsAppCustomer,
    _ids,
    fill_lead_form,
    query,
)

pytestmark = pytest.mark.e2e


def settings_of(stack) -> Settings:
    return Settings(
        database_url=stack.database_url,
        rasa_url=stack.rasa_url,
        rasa_jwt_secret=stack.rasa_jwt_secret,
        public_url=stack.console_url,
        telegram_bot_token=stack.telegram.token,
        telegram_manager_chat_id="-1001234567890",
        telegram_api_base=stack.telegram.api_base,
    )


def run_job(stack, job_id: str, now: datetime) -> str:
    run = stack.run(runner.run_job(job_id, now, settings_of(stack)))
    assert run.outcome == "ok", run.detail
    return run.detail


def open_hours(moment: datetime) -> datetime:
    """``moment``, or the business's next opening (plus a minute) when it falls outside business hours."""
    company = get_company()
    return moment if company.is_open(moment) else company.next_opening(moment).astimezone(UTC) + timedelta(minutes=1)


def indexed(stack, conversation_id: str, seconds: float = 30) -> Conversation:
    """The conversation's row in the index, once the console's refresher has folded its latest events."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        row = query(stack, lambda s: s.get(Conversation, conversation_id))
        if row is not None and row.active_loop is None and row.turns:
            return row
        time.sleep(0.3)
    pytest.fail(f"{conversation_id} not indexed within {seconds} s")


def follow_ups(stack, conversation_id: str) -> list[FollowUp]:
    async def rows(session):
        statement = select(FollowUp).where(FollowUp.conversation_id == conversation_id)
        return list(await session.scalars(statement.order_by(FollowUp.cadence, FollowUp.step)))

    return query(stack, rows)


def test_a_quote_reminder_on_telegram_and_stop_ends_the_follow_ups(stack):
    customer = TelegramCustomer(stack, 750_000_000 + next(_ids) % 1000)
    sender = f"telegram-{customer.chat_id}"
    customer.say(text="add 12 OC-1006 to my cart")
    fill_lead_form(lambda text: customer.say(text=text), customer.say(text="send me a quote"), TELEGRAM_LEAD)
    [quote] = query(stack, lambda s: s.scalars(select(Quote).where(Quote.conversation_id == sender)))
    indexed(stack, sender)
    sent_at = quote.sent_at.replace(tzinfo=UTC)

    before = len(customer.sent())
    run_job(stack, "follow_ups", sent_at + timedelta(hours=1))
    assert [row.status for row in follow_ups(stack, sender)] == ["scheduled"] * 3  # two reminders, one before expiry
    assert len(customer.sent()) == before  # nothing due an hour after the quote
    run_job(stack, "follow_ups", open_hours(sent_at + timedelta(hours=25)))
    [reminder] = customer.sent()[before:]
    assert f"Just checking in about your quote {quote.number}" in reminder["text"]
    assert f"{stack.console_url}/quotes/{quote.token}.pdf" in reminder["text"]
    assert 'Reply "stop"' in reminder["text"]
    first, second, expiring = follow_ups(stack, sender)
    assert (first.status, second.status, expiring.status) == ("sent", "scheduled", "scheduled")

    confirmation = customer.say(text="stop")
    assert "won't write to you first again" in confirmation, confirmation
    assert query(stack, lambda s: s.get(FollowUpOptOut, sender)) is not None
    assert [row.status for row in follow_ups(stack, sender)] == ["sent", "cancelled", "cancelled"]
    before = len(customer.sent())
    run_job(stack, "follow_ups", open_hours(sent_at + timedelta(hours=80)))
    assert len(customer.sent()) == before  # nothing after "stop"


def test_outside_the_whatsapp_window_only_the_cadences_template_goes(stack):
    stack.graph.templates["quote_reminder"] = {"en"}
    customer = WhatsAppCustomer(stack, f"97152{next(_ids) % 10_000_000:07d}")
    sender = f"whatsapp-{customer.wa_id}"
    customer.say("add 12 OC-1006 to my cart")
    fill_lead_form(customer.say, customer.say("send me a quote"), WHATSAPP_LEAD)
    [quote] = query(stack, lambda s: s.scalars(select(Quote).where(Quote.conversation_id == sender)))
    indexed(stack, sender)
    before = len(stack.graph.sent(to=customer.wa_id))

    sent_at = quote.sent_at.replace(tzinfo=UTC)
    run_job(stack, "follow_ups", sent_at + timedelta(minutes=1))  # planned while the quote is fresh
    run_job(stack, "follow_ups", open_hours(sent_at + timedelta(hours=25)))
    [template] = stack.graph.sent(to=customer.wa_id)[before:]
    assert template["type"] == "template" and template["template"] == {
        "name": "quote_reminder",
        "language": {"code": "en"},
    }
    assert follow_ups(stack, sender)[0].detail == "as WhatsApp template quote_reminder"


def test_an_escalation_nobody_took_is_chased_once(stack):
    customer = TelegramCustomer(stack, 760_000_000 + next(_ids) % 1000)
    sender = f"telegram-{customer.chat_id}"
    assert "sales manager" in customer.say(text="I want to talk to a real person")
    [escalation] = query(stack, lambda s: s.scalars(select(Escalation).where(Escalation.conversation_id == sender)))
    created = escalation.created_at.replace(tzinfo=UTC)
    managers_before = len([m for m in stack.telegram.messages if str(m["chat"]["id"]) == "-1001234567890"])
    before = len(customer.sent())

    def chased() -> datetime | None:
        return query(stack, lambda s: s.get(Escalation, escalation.id)).watchdog_at

    run_job(stack, "escalation_watchdog", created + timedelta(minutes=1))
    assert chased() is None and customer.sent()[before:] == []
    chased_at = open_hours(created + timedelta(hours=2)) + timedelta(minutes=20)  # 20 business minutes at least
    if not get_company().is_open(chased_at):  # the 20 minutes crossed the closing time: 20 after the next opening
        chased_at = open_hours(chased_at) + timedelta(minutes=20)
    run_job(stack, "escalation_watchdog", chased_at)
    assert chased() is not None
    [told] = customer.sent()[before:]
    assert "Thanks for waiting" in told["text"] and get_company().phone in told["text"], told
    managers = [m for m in stack.telegram.messages if str(m["chat"]["id"]) == "-1001234567890"][managers_before:]
    assert any(f"escalation #{escalation.id}" in m["text"] for m in managers)
    run_job(stack, "escalation_watchdog", chased_at + timedelta(hours=1))
    assert len(customer.sent()[before:]) == 1  # chased once
