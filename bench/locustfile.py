"""Locust's simulated customers for bench/load.py (run by it, not alone). Each user has one conversation after
another, a few seconds of reading and typing between messages:

- :class:`WebChatCustomer` (weight 4): the web chat through the console's ``/api/chat`` (a reply comes back with the
  answer, so the request's time is the turn's); greeting → search → cart → a quote, answering the lead form;
- :class:`MessengerCustomer` (weight 1): Telegram or WhatsApp, alternately, through their webhooks behind HAProxy
  (the answer is the acknowledgement; the turn runs after it); greeting → search → cart → delivery → thanks.

Every message a user sends is recorded with whether it was acknowledged (HTTP 200), into the JSON file
``LOAD_RECORD`` when the run stops: bench/load.py checks it against Rasa's tracker store.
Environment: ``LOAD_WEBHOOKS`` (base URL of the channels' webhooks), ``LOAD_RECORD``, ``LOAD_PHONE_NUMBER_ID``
(the fake Graph API's), and the webhook secrets of bench.webhooks.
"""

import itertools
import json
import os
import random

from locust import HttpUser, between, events, task

from bench.webhooks import telegram_request, whatsapp_request

RECORD: dict[str, list[tuple[str, bool]]] = {}  # conversation id → (message, acknowledged) in order
CONVERSATIONS = itertools.count()
NAMES = ["Sara Khan", "Omar Haddad", "Lina Farouk", "Yusuf Rahman", "Maya Nasser", "Karim Aziz", "Noor Saleh"]
ANSWERS = {
    "email": "buyer{n}@example.com",
    "phone": "050 123 {phone}",
    "company": "Load Trading LLC",
    "how many": "12",
    "budget": "30000",
    "when": "this month",
}
MESSENGER_SCRIPT = [
    "hi",
    "do you have ergonomic chairs?",
    "add 2 OC-1006 to my cart",
    "how long does delivery take?",
    "thanks",
]


@events.quitting.add_listener
def _write_record(**_kwargs) -> None:
    with open(os.environ["LOAD_RECORD"], "w") as file:
        json.dump(RECORD, file)


class WebChatCustomer(HttpUser):
    weight = 4
    wait_time = between(2, 6)

    def say(self, sender: str, message: str) -> str:
        with self.client.post(
            "/api/chat", json={"sender": sender, "message": message}, name="web chat turn", catch_response=True
        ) as response:
            ok = response.status_code == 200
            RECORD.setdefault(f"web-{sender}", []).append((message, ok))
            if not ok:
                response.failure(f"HTTP {response.status_code}")
                return ""
            return "\n".join(m.get("text") or "" for m in response.json()["messages"])

    @task
    def buy(self) -> None:
        n = next(CONVERSATIONS)
        sender = f"load-{n}-{random.getrandbits(32):08x}"
        for message in ("hi", "show me office chairs", "add 3 OC-1006 to my cart"):
            self.say(sender, message)
            self.wait()
        reply = self.say(sender, "send me a quote")
        answers = {key: value.format(n=n, phone=1000 + n % 9000) for key, value in ANSWERS.items()}
        answers["name"] = NAMES[n % len(NAMES)]
        for _ in range(8):
            if not reply or "Here is your quote" in reply:
                break
            answer = next((value for key, value in answers.items() if key in reply.lower()), None)
            if answer is None:
                break
            self.wait()
            reply = self.say(sender, answer)


class MessengerCustomer(HttpUser):
    weight = 1
    wait_time = between(2, 6)

    @task
    def chat(self) -> None:
        n = next(CONVERSATIONS)
        base = os.environ["LOAD_WEBHOOKS"]
        telegram = n % 2 == 0
        for number, text in enumerate(MESSENGER_SCRIPT):
            if telegram:
                url, headers, body = telegram_request(n, number, f"{base}/telegram/webhook", text=text)
                conversation = f"telegram-{810_000_000 + n}"
            else:
                phone_number_id = os.environ["LOAD_PHONE_NUMBER_ID"]
                url, headers, body = whatsapp_request(n, number, f"{base}/whatsapp/webhook", phone_number_id, text)
                conversation = f"whatsapp-9715{n:08d}"
            name = "telegram webhook" if telegram else "whatsapp webhook"
            with self.client.post(url, data=body, headers=headers, name=name, catch_response=True) as response:
                ok = response.status_code == 200
                RECORD.setdefault(conversation, []).append((text, ok))
                if not ok:
                    response.failure(f"HTTP {response.status_code}")
            self.wait()
