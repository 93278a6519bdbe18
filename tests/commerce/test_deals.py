"""The deal pipeline (bot.commerce.deals) on a real migrated SQLite DB: automatic moves only go forward, a
manager's move goes anywhere, and every transition is one note and one CRM sync in the outbox."""

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from bot.commerce import deals
from bot.core import caches
from bot.core.db import get_engine, session_scope
from bot.core.models import Contact, CRMOutbox, Deal, Quote
from bot.crm.hubspot import HUBSPOT_STAGES


@pytest.fixture
async def url(db_url: str, monkeypatch: pytest.MonkeyPatch):
    """``db_url`` with HubSpot as the external CRM, so that every sync leaves rows in the outbox."""
    monkeypatch.setenv("CLOSER_CRM_PROVIDER", "hubspot")
    monkeypatch.setenv("CLOSER_HUBSPOT_TOKEN", "test-token")
    caches.reset()
    yield db_url
    await get_engine(db_url).dispose()


async def new_deal(session, sender_id: str = "web-1") -> Deal:
    contact = Contact(channel="web", sender_id=sender_id, name="Aisha Al Mansouri", deals=[])
    session.add(contact)
    deal = deals.start(contact, "AED", "web", ["web-lead"])
    await session.flush()
    return deal


async def outbox_since(session, after_id: int) -> list[tuple[str, dict]]:
    rows = await session.scalars(select(CRMOutbox).where(CRMOutbox.id > after_id).order_by(CRMOutbox.id))
    return [(row.operation, row.payload) for row in rows]


async def last_outbox_id(session) -> int:
    return max((row.id for row in await session.scalars(select(CRMOutbox))), default=0)


def test_automatic_moves_only_go_forward_and_never_leave_won_or_lost():
    for move in (deals.LEAD_SAVED, deals.QUOTE_ISSUED, deals.BARGAINING, deals.QUOTE_ACCEPTED):
        assert move.from_stages and all(
            deals.STAGES.index(stage) < deals.STAGES.index(move.to) for stage in move.from_stages
        ), move
        assert not set(move.from_stages) & set(deals.CLOSED), move
    assert set(HUBSPOT_STAGES) == set(deals.STAGES)


async def test_each_transition_is_one_note_and_one_crm_sync_and_never_goes_back(url):
    async with session_scope(url) as session:
        deal = await new_deal(session)
        assert deal.stage == "new"
        steps = [  # (move, note, whether it moves, stage after)
            (deals.QUOTE_ISSUED, "Quote Q-2026-0001 (sent)", True, "proposal"),
            (deals.LEAD_SAVED, None, False, "proposal"),  # qualified is behind proposal: stays
            (deals.BARGAINING, None, True, "negotiation"),
            (deals.QUOTE_ISSUED, "Quote Q-2026-0002 (draft)", False, "negotiation"),
            (deals.QUOTE_ACCEPTED, "Quote Q-2026-0002 accepted", True, "won"),
            (deals.BARGAINING, None, False, "won"),
            (deals.QUOTE_ACCEPTED, "Quote Q-2026-0002 accepted again", False, "won"),
        ]
        for move, note, moves, stage in steps:
            before, notes = await last_outbox_id(session), len(deal.notes)
            assert await deals.advance(session, deal, move, note) is moves
            assert deal.stage == stage
            assert [n.body for n in deal.notes[notes:]] == ([note] if note else [])
            queued = await outbox_since(session, before)
            assert [operation for operation, _ in queued] == (
                ["upsert_contact", "upsert_deal"] + (["add_note"] if note else [])
            )
            assert queued[1][1]["stage"] == stage and queued[1][1]["local_id"] == deal.id
            if note:
                assert queued[2][1]["body"] == note


async def test_a_manager_moves_a_deal_anywhere_and_the_note_says_who(url):
    async with session_scope(url) as session:
        deal = await new_deal(session)
        await deals.advance(session, deal, deals.QUOTE_ACCEPTED, "Accepted")
        before = await last_outbox_id(session)

        assert await deals.move_by_manager(session, deal, "qualified", "max@example.com") == "won"
        assert deal.stage == "qualified"
        assert deal.notes[-1].body == "Stage moved from won to qualified by max@example.com in the console."
        queued = await outbox_since(session, before)
        assert [operation for operation, _ in queued] == ["upsert_contact", "upsert_deal", "add_note"]
        assert queued[1][1]["stage"] == "qualified" and queued[2][1]["body"] == deal.notes[-1].body

        before, notes = await last_outbox_id(session), len(deal.notes)
        assert await deals.move_by_manager(session, deal, "qualified", "max@example.com") == "qualified"
        assert len(deal.notes) == notes and await outbox_since(session, before) == []
        with pytest.raises(ValueError, match="not a pipeline stage"):
            await deals.move_by_manager(session, deal, "archived", "max@example.com")
        assert deal.stage == "qualified"


async def test_open_deal_by_contact_or_by_conversation_skips_won_and_lost(url):
    now = datetime.now(UTC)
    async with session_scope(url) as session:
        mine = await new_deal(session, "web-1")
        other = await new_deal(session, "telegram-7")
        won = deals.start(mine.contact, "AED", "web", [])
        await deals.advance(session, won, deals.QUOTE_ACCEPTED)
        session.add(
            Quote(
                number="Q-2026-0001",
                conversation_id="web-2",
                deal_id=other.id,
                currency="AED",
                language="en",
                subtotal_minor=100,
                discount_minor=0,
                net_minor=100,
                vat_rate="0.05",
                vat_minor=5,
                total_minor=105,
                valid_until=now + timedelta(days=30),
                token="t" * 43,
            )
        )
        await session.flush()

        assert await deals.open_deal(session, contact_id=mine.contact_id) is mine
        assert await deals.open_deal(session, conversation_id="web-1") is mine  # the contact saved in it
        assert await deals.open_deal(session, conversation_id="web-2") is other  # the deal of one of its quotes
        assert await deals.open_deal(session, conversation_id="web-3") is None
        assert await deals.open_deal(session) is None
        await deals.move_by_manager(session, mine, "lost", "max@example.com")
        assert await deals.open_deal(session, contact_id=mine.contact_id) is None
