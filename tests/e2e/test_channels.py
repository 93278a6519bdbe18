"""A customer on Telegram and one on WhatsApp, each from greeting to the quote PDF delivered as a
document, through the real Rasa server (both connectors loaded from credentials.channels.yml), the
real action server and console; local servers speak the Bot API and the Graph API. Forged and
replayed webhooks change nothing. An Avito customer (webhook v3 behind the URL's secret, replies through a local
server speaking Avito's Messenger API) is greeted and answered once per message id."""

import hashlib
import hmac
import io
import itertools
import json
import re
import time

import httpx
import pytest
from pypdf import PdfReader
from sqlalchemy import func, select

from bot.core import db
from bot.core.models import ChannelDelivery, ChannelMessage, Contact, Deal, Quote
from bot.core.rasa import RasaClient
from bot.core.settings import get_settings
from bot.handoff import takeover
from bot.web import accounts

pytestmark = pytest.mark.e2e

TELEGRAM_LEAD = [
    ("email", "omar@falconoffice.ae"),
    ("company", "Falcon Office LLC"),
    ("how many", "12"),
    ("budget", "20000"),
    ("when", "next month"),
    ("name", "Omar Haddad"),
    ("phone", "+971504445566"),
]
WHATSAPP_LEAD = [
    ("email", "layla@oasisdesign.ae"),
    ("company", "Oasis Design"),
    ("how many", "12"),
    ("budget", "25000"),
    ("when", "this month"),
    ("name", "Layla Aziz"),
    ("phone", "+971552345678"),
]
_ids = itertools.count(int(time.time()))


def query(stack, make):
    async def run():
        async with db.session_scope(stack.database_url) as session:
            return await make(session)

    return stack.run(run())


def processed(stack, channel: str, delivery_id: str, seconds: float = 60) -> None:
    """Wait until the connector has processed the delivery (its row has processed_at)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        row = query(
            stack,
            lambda s: s.scalar(
                select(ChannelDelivery).where(
                    ChannelDelivery.channel == channel, ChannelDelivery.delivery_id == delivery_id
                )
            ),
        )
        if row is not None and row.processed_at is not None:
            assert row.error is None, row.error
            return
        time.sleep(0.2)
    pytest.fail(f"{channel} delivery {delivery_id} not processed after {seconds}s")


class TelegramCustomer:
    """A private chat posting Bot API updates to Rasa's webhook, reading replies off the fake Bot API."""

    def __init__(self, stack, chat_id: int, secret: str | None = None):
        self.stack, self.chat_id = stack, chat_id
        self.secret = stack.telegram_secret if secret is None else secret
        self.url = f"{stack.rasa_url}/webhooks/telegram/webhook"
        self.user = {"id": chat_id, "is_bot": False, "first_name": "Omar", "language_code": "en"}

    def sent(self) -> list[dict]:
        return [m for m in self.stack.telegram.messages if m["chat"]["id"] == self.chat_id]

    def post(self, update: dict) -> httpx.Response:
        return httpx.post(self.url, json=update, headers={"X-Telegram-Bot-Api-Secret-Token": self.secret}, timeout=10)

    def update(self, **content) -> dict:
        update_id = next(_ids)
        message = {
            "message_id": update_id % 100000,
            "from": self.user,
            "date": int(time.time()),
            "chat": {"id": self.chat_id, "first_name": "Omar", "type": "private"},
            **content,
        }
        return {"update_id": update_id, "message": message}

    def say(self, **content) -> str:
        """Send a message; the text of the replies to it."""
        before = len(self.sent())
        update = self.update(**content)
        assert self.post(update).status_code == 200
        processed(self.stack, "telegram", str(update["update_id"]))
        return "\n".join(m.get("text") or m.get("caption") or "" for m in self.sent()[before:])


class WhatsAppCustomer:
    """A WhatsApp user whose messages reach Rasa's webhook signed like Meta's; replies read off the fake Graph API."""

    def __init__(self, stack, wa_id: str):
        self.stack, self.wa_id = stack, wa_id
        self.url = f"{stack.rasa_url}/webhooks/whatsapp/webhook"

    def post(self, payload: dict, secret: str | None = None) -> httpx.Response:
        body = json.dumps(payload).encode()
        key = (self.stack.whatsapp_app_secret if secret is None else secret).encode()
        signature = "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()
        return httpx.post(
            self.url,
            content=body,
            timeout=10,
            headers={"Content-Type": "application/json", "X-Hub-Signature-256": signature},
        )

    def payload(self, message: dict) -> dict:
        graph = self.stack.graph
        return {
            "object": "whatsapp_business_account",
            "entry": [
                {
                    "id": "102290129340398",
                    "changes": [
                        {
                            "value": {
                                "messaging_product": "whatsapp",
                                "metadata": {
                                    "display_phone_number": "15550783881",
                                    "phone_number_id": graph.phone_number_id,
                                },
                                "contacts": [{"profile": {"name": "Layla Aziz"}, "wa_id": self.wa_id}],
                                "messages": [message],
                            },
                            "field": "messages",
                        }
                    ],
                }
            ],
        }

    def say(self, text: str) -> str:
        before = len(self.stack.graph.sent(to=self.wa_id))
        wamid = f"wamid.HBgM{next(_ids)}"
        self.stack.graph.customer_wrote(self.wa_id)  # the 24-hour window opens on Meta's side too
        message = {
            "from": self.wa_id,
            "id": wamid,
            "timestamp": str(int(time.time())),
            "type": "text",
            "text": {"body": text},
        }
        assert self.post(self.payload(message)).status_code == 200
        processed(self.stack, "whatsapp", wamid)
        sent = self.stack.graph.sent(to=self.wa_id)[before:]
        return "\n".join(
            (m.get("text") or {}).get("body") or (m.get("interactive") or {}).get("body", {}).get("text", "")
            for m in sent
        )


class AvitoCustomer:
    """A customer writing about an ad (``item_id``) in an Avito chat: each message goes into the fake Messenger
    API's chat (where the channel reads it back to confirm it), then its webhook v3 notification is posted to Rasa's
    webhook behind the secret URL segment; replies are read off the fake. The conversation is ``avito-<chat_id>``."""

    def __init__(self, stack, chat_id: str, item_id: int | None = 4213861287, author_id: int = 201853461):
        self.stack, self.chat_id, self.item_id, self.author_id = stack, chat_id, item_id, author_id
        self.sender_id = f"avito-{chat_id}"
        self.url = f"{stack.rasa_url}/webhooks/avito/webhook/{stack.avito_webhook_secret}"

    def sent(self) -> list[str]:
        """The texts the bot has sent to this chat, in order."""
        return self.stack.avito.texts(self.chat_id)

    def write(self, text: str) -> dict:
        """The customer's message added to the chat on Avito's side; the webhook v3 body Avito posts for it."""
        chat_type = "u2i" if self.item_id is not None else "u2u"
        return self.stack.avito.customer_wrote(
            self.chat_id, text, author_id=self.author_id, item_id=self.item_id, chat_type=chat_type
        )

    def post(self, body: dict) -> httpx.Response:
        return httpx.post(self.url, json=body, timeout=10)

    def say(self, text: str) -> str:
        """Send a message; the text of the replies to it (one per line)."""
        before = len(self.sent())
        body = self.write(text)
        assert self.post(body).status_code == 200
        processed(self.stack, "avito", body["payload"]["value"]["id"])
        return "\n".join(self.sent()[before:])


def fill_lead_form(say, question: str, lead: list[tuple[str, str]]) -> str:
    for _ in range(12):
        if "Here is your quote" in question:
            return question
        question = say(next(answer for key, answer in lead if key in question.lower()))
    pytest.fail(f"no quote after the lead form; last reply: {question}")


def assert_quote_pdf(pdf: bytes, quote: Quote) -> None:
    text = "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)
    assert quote.number in text and "OC-1006" in text


def test_telegram_customer_from_greeting_to_the_quote_pdf(stack):
    assert stack.telegram.webhook and stack.telegram.webhook["secret_token"] == stack.telegram_secret
    customer = TelegramCustomer(stack, 730_000_000 + next(_ids) % 1000)
    sender = f"telegram-{customer.chat_id}"

    greeting = customer.say(text="/start promo-autumn")
    assert greeting, "no greeting"
    reply = customer.say(text="add 12 OC-1006 to my cart")
    assert "OC-1006) × 12" in reply, reply
    question = customer.say(text="send me a quote")
    quote_text = fill_lead_form(lambda text: customer.say(text=text), question, TELEGRAM_LEAD)

    [quote] = query(stack, lambda s: s.scalars(select(Quote).where(Quote.conversation_id == sender)))
    assert quote.number in quote_text
    [upload] = [
        call["document"]
        for call in stack.telegram.calls("sendDocument")
        if str(call["chat_id"]) == str(customer.chat_id)
    ]
    assert upload.filename == f"{quote.number}.pdf" and upload.data.startswith(b"%PDF")
    assert_quote_pdf(upload.data, quote)

    contact = query(stack, lambda s: s.scalar(select(Contact).where(Contact.sender_id == sender)))
    deal = query(stack, lambda s: s.get(Deal, quote.deal_id))
    assert contact.channel == "telegram" and "telegram-lead" in deal.tags and deal.stage == "proposal"
    tracker = httpx.get(
        f"{stack.rasa_url}/conversations/{sender}/tracker", timeout=10, headers=stack.rasa_headers()
    ).json()
    first = next(e for e in tracker["events"] if e["event"] == "user")
    assert first["input_channel"] == "telegram" and first["metadata"]["channel"] == "telegram"
    assert first["metadata"]["telegram"]["start_payload"] == "promo-autumn"
    statuses = query(
        stack,
        lambda s: s.scalars(select(ChannelMessage.kind).where(ChannelMessage.recipient_id == str(customer.chat_id))),
    )
    assert "document" in set(statuses)


def test_forged_and_replayed_telegram_webhooks_change_nothing(stack):
    customer = TelegramCustomer(stack, 740_000_000 + next(_ids) % 1000)
    forged = TelegramCustomer(stack, customer.chat_id, secret="not-the-secret")
    update = customer.update(text="hi")
    assert forged.post(update).status_code == 403

    def count():
        return query(
            stack,
            lambda s: s.scalar(
                select(func.count())
                .select_from(ChannelDelivery)
                .where(ChannelDelivery.sender_id == f"telegram-{customer.chat_id}")
            ),
        )

    assert count() == 0 and customer.sent() == []

    for _ in range(20):  # Telegram redelivering the same update
        assert customer.post(update).status_code == 200
    processed(stack, "telegram", str(update["update_id"]))
    replies = len(customer.sent())
    assert replies >= 1 and count() == 1
    customer.say(text="thanks")  # a later turn is processed after the replays: none of them is pending
    assert count() == 2


def test_whatsapp_customer_from_greeting_to_the_quote_pdf(stack):
    customer = WhatsAppCustomer(stack, f"97150{next(_ids) % 10_000_000:07d}")
    sender = f"whatsapp-{customer.wa_id}"

    assert customer.say("hi")
    reply = customer.say("add 12 OC-1006 to my cart")
    assert "OC-1006) × 12" in reply, reply
    question = customer.say("send me a quote")
    quote_text = fill_lead_form(customer.say, question, WHATSAPP_LEAD)

    [quote] = query(stack, lambda s: s.scalars(select(Quote).where(Quote.conversation_id == sender)))
    assert quote.number in quote_text
    [document] = [m["document"] for m in stack.graph.sent(to=customer.wa_id) if m.get("type") == "document"]
    media = stack.graph.media[document["id"]]
    assert document["filename"] == f"{quote.number}.pdf" and media.mime_type == "application/pdf"
    assert_quote_pdf(media.data, quote)
    contact = query(stack, lambda s: s.scalar(select(Contact).where(Contact.sender_id == sender)))
    deal = query(stack, lambda s: s.get(Deal, quote.deal_id))
    assert contact.channel == "whatsapp" and deal.tags == ["whatsapp-lead"]


def test_the_rasa_servers_log_lines_are_json_without_conversation_ids(stack):
    """The stack's Rasa server runs as the launchers run it (``python -m rasa run --logging-config-file logging.yml``)
    with CLOSER_LOG_FORMAT=json: its log records are JSON lines (coloredlogs and Sanic's text
    handlers muted, connectors/logs.py), and a WhatsApp customer's number (their conversation id) is in none."""
    customer = WhatsAppCustomer(stack, f"97156{next(_ids) % 10_000_000:07d}")
    assert customer.say("hi")
    lines = (stack.logs / "rasa.log").read_text().splitlines()
    records = [json.loads(line) for line in lines if line.startswith("{")]
    assert all(record.keys() >= {"time", "level", "logger", "message", "conversation"} for record in records)
    assert {"root", "rasa.core.processor"} <= {record["logger"] for record in records}  # "Starting Rasa server", …
    text_records = [
        line
        for line in lines
        if re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\S* +(DEBUG|INFO|WARNING|ERROR|CRITICAL) ", line)  # coloredlogs
        or re.match(r"\[\d{4}-[^]]+\] \[\d+\] \[[A-Z]+\]", line)  # Sanic's own handlers
    ]
    assert text_records == []
    assert customer.wa_id not in "\n".join(lines)


def test_forged_whatsapp_webhooks_change_nothing(stack):
    customer = WhatsAppCustomer(stack, f"97155{next(_ids) % 10_000_000:07d}")
    message = {
        "from": customer.wa_id,
        "id": f"wamid.HBgM{next(_ids)}",
        "timestamp": str(int(time.time())),
        "type": "text",
        "text": {"body": "hi"},
    }
    assert customer.post(customer.payload(message), secret="forged").status_code == 401
    count = query(
        stack,
        lambda s: s.scalar(
            select(func.count()).select_from(ChannelDelivery).where(ChannelDelivery.delivery_id == message["id"])
        ),
    )
    assert count == 0 and stack.graph.sent(to=customer.wa_id) == []
    verify = httpx.get(
        customer.url,
        params={"hub.mode": "subscribe", "hub.verify_token": "e2e-verify", "hub.challenge": "1158201444"},
        timeout=10,
    )
    assert verify.status_code == 200 and verify.text == "1158201444"


def test_avito_customer_is_greeted_and_answered_once_per_message_id(stack):
    customer = AvitoCustomer(stack, f"u2i-e2e{next(_ids)}~Sw")
    greeting = customer.say("hi")
    assert "Are you furnishing an office?" in greeting and "• Office chairs" in greeting, greeting

    before = len(customer.sent())
    thanks = customer.write("thanks")
    for _ in range(2):  # Avito delivering the same notification twice
        assert customer.post(thanks).status_code == 200
    processed(stack, "avito", thanks["payload"]["value"]["id"])
    tracker = httpx.get(
        f"{stack.rasa_url}/conversations/{customer.sender_id}/tracker", timeout=10, headers=stack.rasa_headers()
    ).json()
    said = [e for e in tracker["events"] if e["event"] == "user"]
    assert [e["text"] for e in said] == ["hi", "thanks"], said
    assert said[-1]["input_channel"] == "avito" and said[-1]["metadata"]["avito"]["item_id"] == customer.item_id
    replies = customer.sent()[before:]
    assert len(replies) == 1, replies
    deliveries = query(
        stack,
        lambda s: s.scalar(
            select(func.count()).select_from(ChannelDelivery).where(ChannelDelivery.sender_id == customer.sender_id)
        ),
    )
    assert deliveries == 2


@pytest.mark.parametrize("channel", ["telegram", "whatsapp"])
def test_a_manager_takes_over_and_replies_on_the_customers_own_channel(as_the_console, channel):
    stack = as_the_console
    if channel == "telegram":
        customer = TelegramCustomer(stack, 750_000_000 + next(_ids) % 1000)
        say, conversation_id = (lambda text: customer.say(text=text)), f"telegram-{customer.chat_id}"

        def received():
            return [m.get("text") for m in customer.sent()]

    else:
        customer = WhatsAppCustomer(stack, f"97156{next(_ids) % 10_000_000:07d}")
        say, conversation_id = customer.say, f"whatsapp-{customer.wa_id}"

        def received():
            return [(m.get("text") or {}).get("body") for m in stack.graph.sent(to=customer.wa_id)]

    assert say("hi")
    email, reply = f"mona-{channel}-{next(_ids)}@falconoffice.ae", f"Hello, this is Mona from sales ({channel})."

    async def as_manager(work):  # each step commits, as each console request does
        async with db.session_scope(stack.database_url) as session:
            user = await accounts.by_email(session, email) or await accounts.create_user(
                session, email, "Mona", "manager", "a-long-enough-password"
            )
        async with RasaClient(stack.rasa_url, get_settings()) as rasa, db.session_scope(stack.database_url) as session:
            return await work(session, await session.merge(user), rasa)

    async def take_over(session, user, rasa):
        return (await takeover.take_over(session, conversation_id, user, rasa)).id

    escalation_id = query_as(stack, as_manager, take_over)
    query_as(stack, as_manager, lambda session, user, rasa: takeover.reply(session, conversation_id, reply, user, rasa))
    assert reply in received(), received()
    assert say("ok, when can you deliver?") == "", "the bot stays silent while a manager has the conversation"
    query_as(
        stack,
        as_manager,
        lambda session, user, rasa: takeover.hand_back(session, escalation_id, "Delivery agreed by phone.", user, rasa),
    )
    assert say("hi again"), "the bot answers again once handed back"


def query_as(stack, as_manager, work):
    return stack.run(as_manager(work))
