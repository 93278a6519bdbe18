"""Benchmark (run by hand: `make bench-follow-ups`): scheduling 10,000 follow-ups and firing 1,000 that fall due in
the same minute against the real Rasa server and action server, while live customers chat on the web channel.

Seeds the business DB with 3,334 sent quotes (3 follow-ups each: 10,002 scheduled days ahead) and 1,000
conversations left in the lead form two hours ago (their nudge due now), all indexed as the console would have
them; times ``bot.follow_ups.sweep.plan`` over them, then runs ``send_due`` at the same moment, as the job does
each minute, until nothing is due (counting the runs), while ``bench.turn_latency.load`` measures the turn latency
of 20 concurrent live customers; the same load alone, before, is the baseline. Prints the table with the ratio
of the latencies during the firing to the baseline (the target: within 1.2×) and the growth of the business DB
and of Rasa's tracker store. Takes about 5 minutes on 2 cores with a trained model in models/.
"""

import asyncio
import secrets
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import func, insert, select

from bench.stack import closer_stack
from bench.turn_latency import CLOSER_TURN, load, percentile
from bot.core import db
from bot.core.models import Conversation, FollowUp, Quote
from bot.core.rasa import RasaClient
from bot.core.settings import Settings
from bot.follow_ups import sweep
from bot.follow_ups.cadences import get_follow_up_config

QUOTES, LEFT_FORMS = 3334, 1000
NOW = datetime(2026, 12, 7, 6, 0, tzinfo=UTC)  # a Monday, 10:00 in Dubai: business hours
CONCURRENT, TURNS_EACH = 20, 15


async def seed(url: str) -> None:
    """The quotes and conversations follow-ups are planned from, bulk-inserted."""
    quotes = [
        {
            "number": f"Q-2026-{n:05d}", "conversation_id": f"web-bench-quote-{n:05d}", "status": "sent",
            "segment": "new", "currency": "AED", "subtotal_minor": 100_000, "discount_minor": 0, "net_minor": 100_000,
            "vat_rate": "0.05", "vat_minor": 5_000, "total_minor": 105_000, "extra_discount_pct": "0",
            "language": "en", "valid_until": NOW + timedelta(days=29), "token": secrets.token_urlsafe(24),
            "created_at": NOW - timedelta(hours=1), "sent_at": NOW - timedelta(hours=1),
        }
        for n in range(QUOTES)
    ]  # fmt: skip
    left = NOW - timedelta(hours=2, minutes=1)
    conversations = [
        {
            "conversation_id": f"web-bench-form-{n:05d}", "channel": "web", "started_at": left, "last_message_at": left,
            "turns": 4, "stage_rank": 5, "escalated": False, "quote_created": False, "paused": False,
            "fallback_count": 0, "language": "en", "active_loop": "lead_form", "last_event_id": 0,
        }
        for n in range(LEFT_FORMS)
    ]  # fmt: skip
    async with db.session_scope(url) as session:
        await session.execute(insert(Quote), quotes)
        await session.execute(insert(Conversation), conversations)


async def plan(url: str) -> tuple[int, float]:
    started = time.perf_counter()
    async with db.session_scope(url) as session:
        planned = await sweep.plan(session, get_follow_up_config(), NOW)
    return planned, time.perf_counter() - started


async def fire(settings: Settings) -> tuple[int, int, float]:
    """``send_due`` at NOW until nothing is due: (messages sent, runs, seconds)."""
    sent = runs = 0
    started = time.perf_counter()
    async with RasaClient(settings.rasa_url, settings) as rasa:
        while True:
            counts = await sweep.send_due(settings, rasa, NOW)
            runs += 1
            sent += counts["sent"]
            if not sum(counts.values()):
                return sent, runs - 1, time.perf_counter() - started


async def during(settings: Settings, url: str) -> tuple[tuple[int, int, float], list[float]]:
    firing = asyncio.create_task(fire(settings))
    latencies: list[float] = []
    while not firing.done():
        latencies += (await load(url, CLOSER_TURN, CONCURRENT, TURNS_EACH))[0]
    return firing.result(), latencies


def size_mb(*paths: Path) -> float:
    return sum(p.stat().st_size for path in paths for p in path.parent.glob(path.name + "*")) / 2**20


def main() -> int:
    with closer_stack("closer-bench-follow-ups-") as stack:
        database, tracker, url, rasa_url = stack.database, stack.tracker, stack.database_url, stack.rasa_url
        asyncio.run(load(rasa_url, CLOSER_TURN, 2, 5))  # warm-up
        empty_db, empty_tracker = size_mb(database), size_mb(tracker)
        asyncio.run(seed(url))
        seeded_db = size_mb(database)
        planned, plan_s = asyncio.run(plan(url))
        planned_db = size_mb(database)
        print("measuring the baseline…", flush=True)
        baseline = asyncio.run(load(rasa_url, CLOSER_TURN, CONCURRENT, TURNS_EACH))[0]
        baseline += asyncio.run(load(rasa_url, CLOSER_TURN, CONCURRENT, TURNS_EACH))[0]
        print("firing…", flush=True)
        (sent, runs, drain_s), busy = asyncio.run(during(stack.settings, rasa_url))
        after = asyncio.run(load(rasa_url, CLOSER_TURN, CONCURRENT, TURNS_EACH))[0]

        async def due() -> int:
            async with db.session_scope(url) as session:
                return await session.scalar(select(func.count(FollowUp.id)).where(FollowUp.status == "scheduled"))

        still_scheduled = asyncio.run(due())
    rows = [
        ("follow-ups planned", f"{planned:,}", f"in {plan_s:.2f} s ({planned / plan_s:,.0f}/s)"),
        ("due now, sent", f"{sent:,}", f"in {drain_s:.1f} s over {runs} run(s) of send_due ({sent / drain_s:.0f}/s)"),
        ("left scheduled (days ahead)", f"{still_scheduled:,}", ""),
        ("business DB MiB", f"{planned_db:.1f}",
         f"empty {empty_db:.1f}, seeded {seeded_db:.1f}, +{planned_db - seeded_db:.1f} for the follow-ups"),
        ("tracker store MiB", f"{size_mb(tracker):.1f}",
         f"before {empty_tracker:.1f} (the follow-ups' bot events and the live load's turns)"),
    ]  # fmt: skip
    width = max(len(r[0]) for r in rows)
    for name, value, note in rows:
        print(f"{name:<{width}}  {value:>10}  {note}")
    print()
    print(f"{'turn latency, 20 live customers':<34}{'baseline':>10}{'firing':>10}{'ratio':>8}{'after':>10}")
    for q in (50, 95):
        base, firing = percentile(baseline, q) * 1000, percentile(busy, q) * 1000
        print(f"{f'p{q} ms':<34}{base:>10.0f}{firing:>10.0f}{firing / base:>7.2f}×{percentile(after, q) * 1000:>10.0f}")
    print(f"(turns measured: baseline {len(baseline)}, while firing {len(busy)}, after {len(after)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
