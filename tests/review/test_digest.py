"""The managers' digests (bot.review.digest): their figures against rows of a real business DB, and their delivery to a
local server speaking the Telegram Bot API and to a real local SMTP server (aiosmtpd), the weekly one with its chart
parsed back from the e-mail."""

import email
import itertools
from datetime import UTC, date, datetime
from email.message import EmailMessage
from email.policy import default

import pytest
from aiosmtpd.controller import Controller

from bot.core import db
from bot.core.models import Contact, ConversationScore, Deal, Escalation, Quote
from bot.core.settings import Settings
from bot.review import digest
from bot.scheduling.jobs import job
from tests.e2e.conftest import free_port
from tests.fakes.telegram_server import FakeTelegram
from tests.review.test_analytics import conversation

CHAT_ID = "-1001234567890"
NOW = datetime(2026, 3, 5, 4, 0, tzinfo=UTC)  # 08:00 on Thursday 5 March in Dubai: the digest of 4 March
_numbers = itertools.count(1)


def utc(day: int, hour: int) -> datetime:
    return datetime(2026, 3, day, hour, tzinfo=UTC)


def quote(total_minor: int, sent: datetime | None, accepted: datetime | None = None, currency: str = "AED") -> Quote:
    n = next(_numbers)
    return Quote(
        number=f"Q-2026-{n:04d}", conversation_id=f"web-q{n}", status="accepted" if accepted else "sent",
        currency=currency, subtotal_minor=total_minor, discount_minor=0, net_minor=total_minor, vat_rate="0",
        vat_minor=0, total_minor=total_minor, language="en", valid_until=utc(28, 0), token=f"token-{n}",
        sent_at=sent, accepted_at=accepted,
    )  # fmt: skip


@pytest.fixture
async def sales(db_url: str) -> str:
    """Two days of sales: 4 March (the daily digest's day, Dubai time) and 3 March (its previous period)."""
    async with db.session_scope(db_url) as session:
        contact = Contact(channel="web", sender_id="web-x")
        session.add(contact)
        await session.flush()
        session.add_all(
            [
                *(Deal(contact_id=contact.id, currency="AED", source_channel="web", created_at=utc(4, h)) for h in (6, 9)),  # noqa: E501
                Deal(contact_id=contact.id, currency="AED", source_channel="web", created_at=utc(3, 10)),
                Deal(contact_id=contact.id, currency="AED", source_channel="web", created_at=utc(1, 10)),
                quote(150_000, utc(4, 7)),
                quote(50_050, utc(4, 12)),
                quote(300_000, utc(2, 9), accepted=utc(4, 13)),
                quote(99_900, utc(3, 15)),
                quote(2_000_000, utc(3, 21)),  # 01:00 on 4 March in Dubai
                quote(120_000, utc(4, 20)),  # 00:00 on 5 March in Dubai: today, not in the digest
                *(Escalation(conversation_id=f"web-e{n}", reason="human", summary="…", status=s)
                  for n, s in enumerate(("pending", "pending", "in_progress", "resolved"))),
                *conversation("web-x", "web", 6, [(utc(4, 8), "customer", "ask_price")], quote=True),
                *conversation("telegram-y", "telegram", 2, [(utc(4, 9), "customer", "greet")]),
                *conversation("web-z", "web", 1, [(utc(2, 9), "customer", "greet")]),
                *conversation("web-w", "web", 3, [(utc(3, 9), "customer", "ask_products")]),
                ConversationScore(conversation_id="web-x", total=25, last_event_id=0),
                ConversationScore(conversation_id="telegram-y", total=12, last_event_id=0),
                ConversationScore(conversation_id="web-z", total=3, last_event_id=0),  # 2 March: not in the digest
            ]
        )  # fmt: skip
    return db_url


async def test_the_daily_digest_holds_the_days_figures_against_the_day_before(sales):
    async with db.session_scope(sales) as session:
        report = await digest.gather(session, "daily", date(2026, 3, 4), date(2026, 3, 4), "https://closer.example")
    now, before = report.current, report.previous
    assert (now.leads, before.leads) == (2, 1)
    assert (now.quotes_sent, now.sent_totals) == (3, {"AED": 150_000 + 50_050 + 2_000_000})
    assert (now.quotes_accepted, now.accepted_totals) == (1, {"AED": 300_000})
    assert (before.quotes_sent, before.sent_totals, before.quotes_accepted) == (1, {"AED": 99_900}, 0)
    assert (report.open, report.waiting) == (3, 2)
    assert [(s.conversation_id, s.total) for s in report.worst] == [("telegram-y", 12), ("web-x", 25)]
    assert report.worst[0].link == "https://closer.example/console/conversations/telegram-y"
    assert (now.to_quote.count, now.to_quote.total, before.to_quote.total) == (1, 2, 1)
    assert report.per_day == []

    text = digest.text(report)
    assert text.splitlines()[0] == "Desert Oak — daily sales digest, 2026-03-04"
    assert "New leads: 2 (previous 1)" in text
    assert "Quotes sent: 3 (previous 1), worth AED 22,000.50" in text
    assert "Quotes accepted: 1 (previous 0), worth AED 3,000.00" in text
    assert "Escalations open: 3 (2 waiting for a manager)" in text
    assert "  greeting: 2 (100.0%) — previous 1 (100.0%)" in text
    assert "Conversion to quote: 50.0% (1 of 2), previous 0.0%" in text
    assert "  12/30 telegram telegram-y: https://closer.example/console/conversations/telegram-y" in text


async def test_a_digest_of_a_period_without_scores_says_so(db_url):
    async with db.session_scope(db_url) as session:
        report = await digest.gather(session, "daily", date(2026, 3, 4), date(2026, 3, 4), "")
    assert report.worst == [] and report.current.leads == 0
    assert "none of the period's conversations is scored yet" in digest.text(report)


class Mailbox:
    """An aiosmtpd handler keeping every message received."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []

    async def handle_DATA(self, server, session, envelope) -> str:
        self.messages.append(email.message_from_bytes(envelope.content, policy=default))
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp():
    mailbox = Mailbox()
    controller = Controller(mailbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield controller, mailbox
    controller.stop()


@pytest.fixture
async def telegram() -> FakeTelegram:
    server = await FakeTelegram().start()
    yield server
    await server.close()


def settings_for(url: str, telegram: FakeTelegram | None, smtp: Controller | None) -> Settings:
    values: dict = {"database_url": url, "public_url": "https://closer.example"}
    if telegram:
        values |= {
            "telegram_bot_token": telegram.token,
            "telegram_manager_chat_id": CHAT_ID,
            "telegram_api_base": telegram.api_base,
            "telegram_timeout": 5.0,
        }
    if smtp:
        values |= {
            "smtp_host": smtp.hostname,
            "smtp_port": smtp.port,
            "smtp_starttls": False,
            "smtp_timeout": 5.0,
            "digest_email_to": ["sales@desertoak.ae", "lina@desertoak.ae"],
            "smtp_from": "closer@desertoak.ae",
        }
    return Settings(**values)


async def test_the_daily_digest_reaches_the_managers_chat_and_their_mailboxes(sales, telegram, smtp):
    controller, mailbox = smtp
    summary = await digest.daily(settings_for(sales, telegram, controller), NOW)
    assert summary == "daily digest 2026-03-04…2026-03-04: Telegram, e-mail to 2 recipient(s)"
    [sent] = telegram.messages
    assert sent["chat"]["id"] == int(CHAT_ID) and "New leads: 2 (previous 1)" in sent["text"]
    assert telegram.calls("sendPhoto") == []
    [message] = mailbox.messages
    assert message["Subject"] == "Desert Oak — daily sales digest, 2026-03-04"
    assert message["To"] == "sales@desertoak.ae, lina@desertoak.ae" and message["From"] == "closer@desertoak.ae"
    assert message.get_content().strip().splitlines() == sent["text"].splitlines()


async def test_the_weekly_digest_carries_a_chart_by_e_mail_and_to_the_chat(sales, telegram, smtp):
    controller, mailbox = smtp
    monday = datetime(2026, 3, 9, 4, 0, tzinfo=UTC)  # the week 2–8 March
    summary = await digest.weekly(settings_for(sales, telegram, controller), monday)
    assert summary.startswith("weekly digest 2026-03-02…2026-03-08: Telegram, e-mail")
    [message] = mailbox.messages
    assert "weekly sales digest, 2026-03-02 – 2026-03-08" in message["Subject"]
    [attachment] = list(message.iter_attachments())
    png = attachment.get_content()
    assert attachment.get_filename() == "chart.png" and png.startswith(b"\x89PNG\r\n\x1a\n")
    width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
    assert (width, height) == (700, 320)
    [photo] = telegram.calls("sendPhoto")
    assert photo["photo"].data == png and photo["caption"] == message["Subject"]
    report = await _weekly(sales)
    assert [(d.isoformat(), n, q) for d, n, q in report.per_day] == [
        ("2026-03-02", 1, 1), ("2026-03-03", 1, 1), ("2026-03-04", 2, 3), ("2026-03-05", 0, 1),
        ("2026-03-06", 0, 0), ("2026-03-07", 0, 0), ("2026-03-08", 0, 0),
    ]  # fmt: skip


async def _weekly(url: str) -> digest.Digest:
    async with db.session_scope(url) as session:
        return await digest.gather(session, "weekly", date(2026, 3, 2), date(2026, 3, 8), "")


async def test_without_telegram_or_smtp_the_digest_says_where_it_did_not_go(sales):
    summary = await digest.daily(settings_for(sales, None, None), NOW)
    assert summary.endswith(": Telegram not configured, e-mail not configured")


async def test_a_refusing_smtp_server_fails_the_run_after_telegram_got_it(sales, telegram):
    settings = settings_for(sales, telegram, None).model_copy(
        update={
            "smtp_host": "127.0.0.1",
            "smtp_port": free_port(),
            "digest_email_to": ["sales@desertoak.ae"],
            "smtp_starttls": False,
            "smtp_timeout": 2.0,
        }
    )
    with pytest.raises(digest.DigestError, match=r"^e-mail: SMTPConnect"):
        await digest.daily(settings, NOW)
    assert len(telegram.messages) == 1


def test_the_digests_are_scheduled_jobs_at_digest_at_in_the_business_time_zone():
    settings = Settings(digest_at="07:30", digest_weekday="fri")
    daily, weekly = job("digest_daily"), job("digest_weekly")
    assert str(daily.trigger(settings)) == "cron[hour='7', minute='30']"
    assert str(weekly.trigger(settings)) == "cron[day_of_week='fri', hour='7', minute='30']"
    assert str(weekly.trigger(settings).timezone) == "Asia/Dubai"
    assert daily.alert_on_failure and weekly.alert_on_failure
