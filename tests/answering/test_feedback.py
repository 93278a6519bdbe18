"""👍/👎 on knowledge answers through the console's POST /api/feedback, stored in a real SQLite DB."""

import uuid

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select

from bot.core import db
from bot.core.models import Feedback, KnowledgeAnswer
from bot.core.settings import Settings
from bot.web.app import create_app

SENDER = "widget-sender-1"


@pytest.fixture
async def answer_id(db_url: str) -> str:
    """Id of a knowledge answer in conversation ``web-`` + SENDER."""
    answer = KnowledgeAnswer(
        id=uuid.uuid4().hex,
        conversation_id=f"web-{SENDER}",
        question="Do you deliver to Sharjah?",
        answer="Yes, within 3 working days.",
        mode="extractive",
        sources=["policies/delivery.md#areas"],
        similarity=0.8,
    )
    async with db.session_scope(db_url) as session:
        session.add(answer)
    return answer.id


@pytest.fixture
async def client(db_url: str):
    async with TestClient(TestServer(create_app(Settings(database_url=db_url)))) as client:
        yield client


async def stored(db_url: str) -> list[Feedback]:
    async with db.session_scope(db_url) as session:
        return list((await session.scalars(select(Feedback))).all())


async def rate(client: TestClient, **body) -> tuple[int, dict]:
    response = await client.post("/api/feedback", json={"sender": SENDER, **body})
    return response.status, await response.json()


async def test_rating_again_replaces_the_rating_and_keeps_the_comment(client, answer_id, db_url):
    assert await rate(client, answer_id=answer_id, rating="up") == (200, {"status": "saved"})
    [first] = await stored(db_url)
    assert (first.rating, first.comment, first.conversation_id) == (1, None, f"web-{SENDER}")

    assert await rate(client, answer_id=answer_id, rating="up", comment="  Clear and quick.  ") == (
        200,
        {"status": "saved"},
    )
    assert await rate(client, answer_id=answer_id, rating="down") == (200, {"status": "saved"})
    [row] = await stored(db_url)
    assert (row.id, row.answer_id, row.rating, row.comment) == (first.id, answer_id, -1, "Clear and quick.")


async def test_a_new_comment_replaces_the_earlier_one(client, answer_id, db_url):
    await rate(client, answer_id=answer_id, rating="down", comment="Wrong city.")
    assert await rate(client, answer_id=answer_id, rating="down", comment="x" * 500) == (200, {"status": "saved"})
    [row] = await stored(db_url)
    assert (row.rating, row.comment) == (-1, "x" * 500)


async def test_an_answer_of_another_conversation_or_no_answer_is_404(client, answer_id, db_url):
    other = await client.post(
        "/api/feedback", json={"sender": "someone-else", "answer_id": answer_id, "rating": "down"}
    )
    assert other.status == 404 and "error" in await other.json()
    status, body = await rate(client, answer_id=uuid.uuid4().hex, rating="up")
    assert status == 404 and "error" in body
    assert await stored(db_url) == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"rating": "meh"}, "rating"),
        ({"rating": 1}, "rating"),
        ({"rating": ["up"]}, "rating"),
        ({"rating": "up", "answer_id": "not-hex-" * 4}, "answer_id"),
        ({"rating": "up", "answer_id": "3F2A" * 8}, "answer_id"),
        ({"rating": "up", "sender": "x"}, "sender"),
        ({"rating": "up", "comment": 5}, "comment"),
    ],
)
async def test_an_invalid_field_is_400(client, answer_id, db_url, body, field):
    status, reply = await rate(client, **{"answer_id": answer_id, **body})
    assert status == 400 and field in reply["error"]
    assert await stored(db_url) == []


@pytest.mark.parametrize(("data", "message"), [("{not json", "JSON"), ('["up"]', "object")])
async def test_a_malformed_body_is_400(client, answer_id, db_url, data, message):
    response = await client.post("/api/feedback", data=data, headers={"Content-Type": "application/json"})
    assert response.status == 400 and message in (await response.json())["error"]
    assert await stored(db_url) == []


async def test_a_comment_over_500_characters_is_413(client, answer_id, db_url):
    status, body = await rate(client, answer_id=answer_id, rating="up", comment="x" * 501)
    assert status == 413 and "500" in body["error"]
    assert await stored(db_url) == []


async def test_saved_feedback_is_logged_with_the_conversation(client, answer_id, caplog):
    caplog.set_level("INFO", logger="bot.web.chat")
    await rate(client, answer_id=answer_id, rating="down", comment="Too vague")
    assert f"web-{SENDER}" in caplog.text and "Too vague" not in caplog.text
