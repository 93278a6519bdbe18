"""connectors/web.py: Rasa's REST and socket.io channels with their turns on the turn thread. A turn
here blocks its thread the way Rasa's NLU and policies do; the server must still answer meanwhile."""

import asyncio
import threading

import httpx
import socketio

from connectors.ratelimit import SLOW_DOWN_REPLY, RateLimiter
from connectors.web import RestInput, SocketIOInput
from tests.channels.test_telegram import eventually, serve

BLOCK_S = 5.0


class BlockingRasa:
    """Stands in for Rasa's agent: each turn blocks its thread until released (or BLOCK_S
    seconds pass, which counts as a failure), then answers through the turn's output channel."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.threads: list[str] = []
        self.released: list[bool] = []

    async def handle_message(self, message) -> None:
        self.threads.append(threading.current_thread().name)
        self.released.append(self.release.wait(BLOCK_S))
        await message.output_channel.send_text_message(message.sender_id, f"You said: {message.text}")


async def test_a_rest_turn_runs_on_the_turn_thread_while_the_server_answers() -> None:
    rasa = BlockingRasa()
    async with serve(RestInput(), rasa) as base_url, httpx.AsyncClient(timeout=30) as client:
        turn = asyncio.create_task(
            client.post(f"{base_url}/webhooks/rest/webhook", json={"sender": "web-1", "message": "hi"})
        )
        await eventually(lambda: rasa.threads, "the turn to start")
        health = await client.get(f"{base_url}/webhooks/rest/")  # while the turn blocks its thread
        rasa.release.set()
        response = await turn
    assert health.json() == {"status": "ok"}
    assert rasa.threads == ["closer-rasa-turns"] and rasa.released == [True]
    assert response.json() == [{"recipient_id": "web-1", "text": "You said: hi"}]


async def test_a_socketio_turn_runs_on_the_turn_thread_and_its_answer_reaches_the_client() -> None:
    rasa = BlockingRasa()
    channel = SocketIOInput(user_message_evt="user_uttered", bot_message_evt="bot_uttered", session_persistence=True)
    client = socketio.AsyncClient()
    received: list[dict] = []
    client.on("bot_uttered", received.append)
    async with serve(channel, rasa) as base_url:
        await client.connect(base_url, socketio_path="/socket.io", transports=["polling"])
        try:
            await client.emit("session_request", {"session_id": "web-2"})
            await client.emit("user_uttered", {"message": "hello", "session_id": "web-2"})
            await eventually(lambda: rasa.threads, "the turn to start")
            async with httpx.AsyncClient(timeout=30) as http:
                health = await http.get(f"{base_url}/webhooks/socketio/")  # while the turn blocks its thread
            rasa.release.set()
            await eventually(lambda: received, "the bot's answer")
        finally:
            await client.disconnect()
    assert health.json() == {"status": "ok"}
    assert rasa.threads == ["closer-rasa-turns"] and rasa.released == [True]
    assert received == [{"text": "You said: hello"}]


async def test_the_rest_channel_answers_429_over_a_senders_rate_limit() -> None:
    now = [1000.0]
    rasa = BlockingRasa()
    rasa.release.set()
    async with (
        serve(RestInput(RateLimiter(2, 60, lambda: now[0])), rasa) as base_url,
        httpx.AsyncClient(timeout=30) as client,
    ):

        async def say(sender: str, text: str) -> httpx.Response:
            return await client.post(f"{base_url}/webhooks/rest/webhook", json={"sender": sender, "message": text})

        allowed = [await say("web-1", f"message {n}") for n in range(2)]
        refused = await say("web-1", "one too many")
        other = await say("web-2", "hello")
        now[0] += 60
        later = await say("web-1", "back again")
    assert [r.status_code for r in allowed] == [200, 200]
    assert refused.status_code == 429 and refused.headers["Retry-After"] == "30"
    assert refused.json() == [{"recipient_id": "web-1", "text": SLOW_DOWN_REPLY}]
    assert other.status_code == 200 and later.status_code == 200
    assert later.json() == [{"recipient_id": "web-1", "text": "You said: back again"}]
    assert len(rasa.threads) == 4  # the refused message never reached Rasa


async def test_the_socketio_channel_skips_turns_over_a_senders_rate_limit_and_says_so_once() -> None:
    rasa = BlockingRasa()
    rasa.release.set()
    channel = SocketIOInput(
        user_message_evt="user_uttered",
        bot_message_evt="bot_uttered",
        session_persistence=True,
        limiter=RateLimiter(1, 60, lambda: 1000.0),
    )
    client = socketio.AsyncClient()
    received: list[dict] = []
    client.on("bot_uttered", received.append)
    async with serve(channel, rasa) as base_url:
        await client.connect(base_url, socketio_path="/socket.io", transports=["polling"])
        try:
            await client.emit("session_request", {"session_id": "web-3"})
            await client.emit("user_uttered", {"message": "hello", "session_id": "web-3"})
            await eventually(lambda: received, "the answer")
            for text in ("one too many", "and another"):
                await client.emit("user_uttered", {"message": text, "session_id": "web-3"})
            await eventually(lambda: len(received) == 2, "the notice")
            await asyncio.sleep(0.2)  # nothing else arrives
        finally:
            await client.disconnect()
    assert received == [{"text": "You said: hello"}, {"text": SLOW_DOWN_REPLY}]
    assert len(rasa.threads) == 1


def test_the_web_channels_read_their_rate_limit_from_credentials() -> None:
    rest = RestInput.from_credentials({"rate_limit_messages": 5, "rate_limit_window_s": 10})
    socket_io = SocketIOInput.from_credentials({"session_persistence": True, "rate_limit_messages": 3})
    assert (rest.limiter.messages, rest.limiter.window_s) == (5, 10.0)
    assert (socket_io.limiter.messages, socket_io.limiter.window_s, socket_io.session_persistence) == (3, 60.0, True)
    assert RestInput.from_credentials(None).limiter.messages == 20
