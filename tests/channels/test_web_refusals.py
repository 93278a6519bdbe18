"""connectors/web.py refuses what a web chat client must not send (tests/e2e/test_injection.py found both on
the real stack): a message for another channel's conversation — through REST, ``whatsapp-<a customer's phone
number>`` read that customer's cart and quote — and a message over MAX_MESSAGE_CHARS (100,000 characters
held the turn thread, so every web chat, for 40 s)."""

import asyncio

import httpx
import socketio

from connectors.web import MAX_MESSAGE_CHARS, TOO_LONG_REPLY, RestInput, SocketIOInput
from tests.channels.test_telegram import eventually, serve
from tests.channels.test_web import BlockingRasa


async def test_the_rest_channel_refuses_other_channels_conversations_and_over_long_messages() -> None:
    rasa = BlockingRasa()
    rasa.release.set()
    async with serve(RestInput(), rasa) as base_url, httpx.AsyncClient(timeout=30) as client:

        async def say(sender: str, text: str) -> httpx.Response:
            return await client.post(f"{base_url}/webhooks/rest/webhook", json={"sender": sender, "message": text})

        foreign = [await say(sender, "what's in my cart?") for sender in ("whatsapp-971509876543", "telegram-4242")]
        too_long = await say("web-1", "desk " * 20_000)
        longest = await say("web-1", "d" * MAX_MESSAGE_CHARS)
    assert [(r.status_code, r.json()) for r in foreign] == [(403, []), (403, [])]
    assert too_long.status_code == 413 and too_long.json() == [{"recipient_id": "web-1", "text": TOO_LONG_REPLY}]
    assert longest.status_code == 200
    assert len(rasa.threads) == 1  # only the message of MAX_MESSAGE_CHARS reached Rasa


async def test_the_socketio_channel_gives_no_turn_to_other_channels_conversations_or_over_long_messages() -> None:
    rasa = BlockingRasa()
    rasa.release.set()
    channel = SocketIOInput(user_message_evt="user_uttered", bot_message_evt="bot_uttered", session_persistence=True)
    received: dict[str, list[dict]] = {"whatsapp-971509876543": [], "web-4": []}
    clients = {session: socketio.AsyncClient() for session in received}
    for session, client in clients.items():
        client.on("bot_uttered", received[session].append)
    async with serve(channel, rasa) as base_url:
        try:
            for session, client in clients.items():
                await client.connect(base_url, socketio_path="/socket.io", transports=["polling"])
                await client.emit("session_request", {"session_id": session})
            await clients["whatsapp-971509876543"].emit(
                "user_uttered", {"message": "what's in my cart?", "session_id": "whatsapp-971509876543"}
            )
            await clients["web-4"].emit("user_uttered", {"message": "desk " * 20_000, "session_id": "web-4"})
            await eventually(lambda: received["web-4"], "the too-long notice")
            await asyncio.sleep(0.3)  # nothing else arrives
        finally:
            for client in clients.values():
                await client.disconnect()
    assert received == {"whatsapp-971509876543": [], "web-4": [{"text": TOO_LONG_REPLY}]}
    assert rasa.threads == []
