"""Planning and the rules of sending, on a real SQLite business DB with the catalog loaded, a cart and a quote
made by the real actions, and the conversation index rows the console would have written. Time is given to
every call; sending to a Rasa server that is not there exercises the retries. (Messages reaching customers
through the real Rasa server: tests/e2e/test_follow_ups.py.)"""

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from actions.cart import ActionAddToCart
from actions.follow_ups import ActionStopFollowUps
from actions.quotes import ActionSendQuote
from bot.core import db
from bot.core.models import Conversation, ConversationMessage, Escalation, FollowUp, Quote
from bot.core.rasa import RasaClient
from bot.core.settings import Settings
from bot.follow_ups import sweep
from bot.follow_ups.cadences import get_follow_up_config
from tests.actions.test_actions import ent, run, tracker

SENDER = "web-test1234"  # tests.actions.test_actions.tracker's conversation


def _coming_sunday_8() -> datetime:
    """08:00 UTC (12:00 in Dubai, closed) of the first Sunday at least two days from now: a quote sent now has
    had 24 hours of silence by then, whatever day the tests run."""
    start = datetime.now(UTC) + timedelta(days=2)
    return (start + timedelta(days=(6 - start.weekday()) % 7)).replace(hour=8, minute=0, second=0, microsecond=0)


SUNDAY_8 = _coming_sunday_8()
MONDAY_10 = SUNDAY_8 + timedelta(hours=22)  # 10:00 in Dubai, open
NOWHERE = "http://127.0.0.1:9"  # no Rasa server listens here


async def cart_and_quote(db_url: str, *, quote: bool = True) -> Quote | None:
    await run(ActionAddToCart(), tracker("12 OC-1006", "add_to_cart", [ent("sku", "OC-1006"), ent("quantity", "12")]))
    if quote:
        await run(ActionSendQuote(), tracker("", "request_quote", slots={"sales_stage": "quoting"}))
    async with db.session_scope(db_url) as session:
        return await session.scalar(select(Quote))


async def index(db_url: str, *, last_customer: datetime, active_loop: str | None = None, paused=False) -> None:
    """The conversation as the console's index would have it, its last customer message at ``last_customer``."""
    async with db.session_scope(db_url) as session:
        session.add(
            Conversation(
                conversation_id=SENDER, channel="web", started_at=last_customer, last_message_at=last_customer,
                turns=3, stage_rank=0, escalated=False, quote_created=False, paused=paused, fallback_count=0,
                language="en", active_loop=active_loop, last_event_id=10,
            )
        )  # fmt: skip
        session.add(
            ConversationMessage(id=10, conversation_id=SENDER, timestamp=last_customer, speaker="customer", text="ok")
        )


async def rows(db_url: str) -> list[FollowUp]:
    async with db.session_scope(db_url) as session:
        return list(await session.scalars(select(FollowUp).order_by(FollowUp.cadence, FollowUp.step)))


async def plan(db_url: str, now: datetime) -> int:
    async with db.session_scope(db_url) as session:
        return await sweep.plan(session, get_follow_up_config(), now)


async def send(db_url: str, now: datetime):
    async with RasaClient(NOWHERE, Settings(database_url=db_url, rasa_timeout=2)) as rasa:
        return await sweep.send_due(Settings(database_url=db_url), rasa, now)


async def test_a_sent_quote_gets_two_reminders_and_one_before_it_expires_planned_once(loaded_db) -> None:
    quote = await cart_and_quote(loaded_db)
    sent = quote.sent_at.replace(tzinfo=UTC)
    assert await plan(loaded_db, sent + timedelta(minutes=5)) == 3
    assert await plan(loaded_db, sent + timedelta(minutes=6)) == 0
    reminders = [r for r in await rows(loaded_db) if r.cadence == "quote_sent"]
    assert [(r.step, r.subject, r.status) for r in reminders] == [
        (n, f"quote:{quote.number}", "scheduled") for n in (1, 2, 3)
    ]
    dues = [r.due_at.replace(tzinfo=UTC) for r in reminders]
    valid_until = quote.valid_until.replace(tzinfo=UTC)
    assert dues == [sent + timedelta(hours=24), sent + timedelta(hours=72), valid_until - timedelta(hours=24)]


async def test_what_stops_defers_or_skips_a_due_reminder(loaded_db) -> None:
    quote = await cart_and_quote(loaded_db)
    sent = quote.sent_at.replace(tzinfo=UTC)
    await index(loaded_db, last_customer=sent)
    await plan(loaded_db, sent)
    first, *later = await rows(loaded_db)
    assert first.cadence == "quote_sent"
    async with db.session_scope(loaded_db) as session:  # only the first reminder is followed here
        for row in later:
            await session.delete(await session.get(FollowUp, row.id))

    # The customer wrote 23 hours after the quote: the reminder waits for 24 hours of silence after that.
    async with db.session_scope(loaded_db) as session:
        late = sent + timedelta(hours=23)
        session.add(ConversationMessage(id=11, conversation_id=SENDER, timestamp=late, speaker="customer", text="hm"))
    due = sent + timedelta(hours=24, minutes=1)
    assert (await send(loaded_db, due))["deferred"] >= 1
    first = (await rows(loaded_db))[0]
    assert (first.status, first.due_at.replace(tzinfo=UTC), first.detail) == (
        "scheduled", late + timedelta(hours=24), "the customer wrote since"
    )  # fmt: skip

    # Due on a Sunday (closed): moved to Monday's opening.
    sunday = SUNDAY_8
    async with db.session_scope(loaded_db) as session:
        row = await session.get(FollowUp, first.id)
        row.due_at = sunday - timedelta(minutes=1)
        (await session.scalars(select(ConversationMessage).where(ConversationMessage.id == 11))).one().timestamp = sent
    await send(loaded_db, sunday)
    first = (await rows(loaded_db))[0]
    assert (first.due_at.replace(tzinfo=UTC), first.detail) == (
        MONDAY_10 - timedelta(hours=1),
        "outside business hours",
    )

    # A pending escalation: a manager has the conversation; the reminder waits.
    async with db.session_scope(loaded_db) as session:
        escalation = Escalation(conversation_id=SENDER, reason="requested", summary="-", status="pending")
        session.add(escalation)
    await send(loaded_db, MONDAY_10)
    assert (await rows(loaded_db))[0].detail == "a manager has the conversation"
    async with db.session_scope(loaded_db) as session:
        (await session.get(Escalation, escalation.id)).status = "resolved"

    # Due, open, silent, nobody on it: sent — but Rasa is not there, so it is retried, then failed.
    for attempt in (1, 2, 3):
        counts = await send(loaded_db, MONDAY_10 + timedelta(minutes=attempt))
        assert counts["retry" if attempt < 3 else "failed"] == 1, counts
    first = (await rows(loaded_db))[0]
    assert (first.status, first.attempts) == ("failed", 3) and "did not answer" in first.detail


async def test_an_accepted_quote_cancels_its_reminders_and_stop_cancels_everything(loaded_db) -> None:
    quote = await cart_and_quote(loaded_db)
    sent = quote.sent_at.replace(tzinfo=UTC)
    await index(loaded_db, last_customer=sent)
    await plan(loaded_db, sent)
    async with db.session_scope(loaded_db) as session:
        (await session.get(Quote, quote.id)).status = "accepted"
    counts = await send(loaded_db, MONDAY_10 + timedelta(days=400))  # everything due
    assert counts["cancelled"] == 3
    assert {r.detail for r in await rows(loaded_db)} == {"the quote is accepted"}

    async with db.session_scope(loaded_db) as session:
        session.add(FollowUp(conversation_id=SENDER, cadence="cart_abandoned", subject="cart:x", step=1,
                             due_at=MONDAY_10, status="scheduled", attempts=0))  # fmt: skip
    messages, _ = await run(ActionStopFollowUps(), tracker("stop", "stop_follow_ups"))
    assert [m["response"] for m in messages] == ["utter_follow_ups_stopped"]
    assert [r.status for r in await rows(loaded_db) if r.cadence == "cart_abandoned"] == ["cancelled"]


async def test_an_abandoned_cart_is_nudged_once_and_a_quote_cancels_the_nudge(loaded_db) -> None:
    await cart_and_quote(loaded_db, quote=False)
    async with db.session_scope(loaded_db) as session:
        changed = (await session.scalar(select(Quote.id))) or None
    assert changed is None
    start = datetime.now(UTC)
    await index(loaded_db, last_customer=start)
    assert await plan(loaded_db, start + timedelta(hours=1)) == 0  # not abandoned yet
    assert await plan(loaded_db, start + timedelta(hours=5)) == 1
    [nudge] = await rows(loaded_db)
    assert nudge.cadence == "cart_abandoned" and nudge.subject.startswith("cart:")
    assert await plan(loaded_db, start + timedelta(hours=6)) == 0
    await run(ActionSendQuote(), tracker("", "request_quote", slots={"sales_stage": "quoting"}))
    await send(loaded_db, start + timedelta(hours=6))
    [nudge] = await rows(loaded_db)
    assert (nudge.status, nudge.detail) == ("cancelled", "a quote was made for the cart")


async def test_a_lead_form_left_half_way_is_nudged_and_the_nudge_cancelled_once_the_form_ends(db_url) -> None:
    left = MONDAY_10 - timedelta(hours=3)
    await index(db_url, last_customer=left, active_loop="lead_form")
    assert await plan(db_url, MONDAY_10) == 1
    [nudge] = await rows(db_url)
    assert (nudge.cadence, nudge.due_at.replace(tzinfo=UTC)) == ("lead_form_abandoned", left + timedelta(hours=2))
    async with db.session_scope(db_url) as session:
        (await session.get(Conversation, SENDER)).active_loop = None
    assert (await send(db_url, MONDAY_10))["cancelled"] == 1
    assert (await rows(db_url))[0].detail == "the lead form ended"


async def test_a_step_long_overdue_when_planned_is_skipped_not_sent_late(db_url) -> None:
    left = MONDAY_10 - timedelta(days=3)
    await index(db_url, last_customer=left, active_loop="lead_form")
    await plan(db_url, MONDAY_10)
    [nudge] = await rows(db_url)
    assert (nudge.status, nudge.detail) == ("skipped", "was due before it could be planned")
