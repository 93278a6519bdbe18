"""Analytics (bot/review/analytics.py) over a real migrated SQLite business DB filled with hand-made conversations,
deals, knowledge answers and feedback; every expected number is counted by hand below. Also the vendored
Chart.js and bot/web/static/console-charts.js, drawing a chart in headless Chromium from the console's /static."""

import asyncio
import csv
import hashlib
import io
import itertools
import re
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import jinja2
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from selenium.webdriver.support.ui import WebDriverWait

from bot.core import db
from bot.core.business import SALES_STAGES, get_company
from bot.core.models import (
    Contact,
    Conversation,
    ConversationMessage,
    ConversationScore,
    Deal,
    Feedback,
    KnowledgeAnswer,
    LlmCall,
)
from bot.review import analytics
from bot.review.analytics import (
    CostDay,
    DayVolume,
    FeedbackDay,
    FunnelStep,
    IntentCount,
    InvalidPeriod,
    ModelCost,
    Rate,
)
from bot.web.app import STATIC
from tests.browser import chromium

DUBAI = ZoneInfo("Asia/Dubai")
FIRST, LAST = date(2026, 3, 1), date(2026, 3, 7)  # local days; the period is 2026-02-28 20:00 … 2026-03-07 20:00 UTC
DAYS = [FIRST + timedelta(days=n) for n in range(7)]
VENDOR = STATIC / "vendor"
_message_ids = itertools.count(1)  # tracker event ids


def utc(month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=UTC)


def conversation(
    cid: str,
    channel: str,
    rank: int,
    messages: list[tuple[datetime, str, str | None]],
    *,
    contact_id: int | None = None,
    escalated: bool = False,
    quote: bool = False,
    language: str = "en",
) -> list:
    """An indexed conversation and its messages ``(time, speaker, intent)``."""
    times = [m[0] for m in messages]
    rows: list = [
        Conversation(
            conversation_id=cid,
            channel=channel,
            contact_id=contact_id,
            started_at=min(times),
            last_message_at=max(times),
            turns=sum(m[1] == "customer" for m in messages),
            furthest_stage=None if rank == 0 else SALES_STAGES[rank - 1],
            stage_rank=rank,
            escalated=escalated,
            quote_created=quote,
            paused=False,
            fallback_count=sum(m[2] == "nlu_fallback" for m in messages),
            language=language,
            last_event_id=0,
        )
    ]
    for moment, speaker, intent in messages:
        rows.append(
            ConversationMessage(
                id=next(_message_ids),
                conversation_id=cid,
                timestamp=moment,
                speaker=speaker,
                text="…",
                intent=intent,
                confidence=None if intent is None else 0.9,
            )
        )
    return rows


def answer(
    aid: str,
    cid: str,
    created: datetime,
    mode: str,
    model: str | None = None,
    tokens: tuple[int, int] = (0, 0),
    cost: float | None = None,
    rating: int | None = None,
) -> list:
    row = KnowledgeAnswer(
        id=aid,
        conversation_id=cid,
        question="?",
        answer="!",
        mode=mode,
        sources=[],
        similarity=0.5,
        llm_model=model,
        prompt_tokens=tokens[0] if model else None,
        completion_tokens=tokens[1] if model else None,
        cost_usd=cost,
        created_at=created,
    )
    if rating is None:
        return [row]
    return [row, Feedback(answer_id=aid, conversation_id=cid, rating=rating, created_at=created)]


@pytest.fixture
async def filled(db_url: str) -> str:
    """Eight conversations (web-f wholly outside 1–7 March Dubai time) in English, Arabic, Russian and French (not
    served), four contacts, deals, eight knowledge answers."""
    assert get_company().timezone == "Asia/Dubai"  # the default business; the day boundaries below assume it
    async with db.session_scope(db_url) as session:
        a, b, c, d = (Contact(channel="web", sender_id=name) for name in "abcd")
        session.add_all([a, b, c, d])
        await session.flush()
        session.add_all(
            [
                Deal(contact_id=a.id, stage="won", currency="AED", source_channel="web"),
                Deal(contact_id=a.id, stage="lost", currency="AED", source_channel="web"),
                Deal(contact_id=b.id, stage="proposal", currency="AED", source_channel="web"),
                Deal(contact_id=c.id, stage="won", currency="AED", source_channel="whatsapp"),
                Deal(contact_id=d.id, stage="won", currency="AED", source_channel="web"),
            ]
        )
        rows = [
            *conversation(
                "web-a",
                "web",
                6,
                [
                    (utc(3, 2, 10), "customer", "greet"),
                    (utc(3, 2, 10, 1), "bot", None),
                    (utc(3, 2, 10, 5), "customer", "ask_price"),
                ],
                contact_id=a.id,
                quote=True,
                language="ar",
            ),
            *conversation(
                "web-b",
                "web",
                3,
                [(utc(3, 3, 9), "customer", "ask_price"), (utc(3, 5, 9), "customer", "nlu_fallback")],
                contact_id=b.id,
            ),
            # 22:30 UTC on 1 March is 02:30 on 2 March in Dubai
            *conversation(
                "telegram-c",
                "telegram",
                8,
                [(utc(3, 1, 22, 30), "customer", "request_human")],
                escalated=True,
                language="ru",
            ),
            # its first message is 23:00 on 28 February in Dubai, before the period
            *conversation(
                "telegram-d",
                "telegram",
                0,
                [(utc(2, 28, 19), "customer", "greet"), (utc(3, 4, 12), "customer", "nlu_fallback")],
            ),
            # 23:59 on 7 March in Dubai, the period's last minute
            *conversation(
                "whatsapp-e",
                "whatsapp",
                7,
                [(utc(3, 7, 19, 59), "customer", "affirm")],
                contact_id=c.id,
                quote=True,
                language="ar",
            ),
            # only a bot message within the period; the customer's is at 00:00 on 8 March in Dubai, its end
            *conversation(
                "web-f",
                "web",
                6,
                [(utc(3, 3, 8), "bot", None), (utc(3, 7, 20), "customer", "greet")],
                contact_id=d.id,
                escalated=True,
                quote=True,
                language="ar",
            ),
            # French: a language the business no longer serves
            *conversation(
                "whatsapp-g",
                "whatsapp",
                1,
                [(utc(3, 6, 8), "customer", None), (utc(3, 6, 8, 1), "customer", "greet")],
                language="fr",
            ),
            *conversation("web-h", "web", 2, [(utc(3, 2, 19), "customer", "ask_delivery")], language="ru"),
            *answer("k1", "web-a", utc(3, 2, 10, 2), "llm", "gpt-4o-mini", (1000, 100), 0.25, rating=1),
            *answer("k2", "telegram-c", utc(3, 2, 21), "extractive", "gpt-4o-mini", (800, 50), 0.125, rating=-1),
            *answer("k3", "web-b", utc(3, 3, 9, 1), "extractive", rating=1),
            *answer("k4", "web-b", utc(3, 5, 9, 1), "llm", "claude-haiku", (500, 40), 0.5),
            *answer("k5", "web-b", utc(3, 5, 10), "llm", "claude-haiku", (300, 20), None, rating=-1),
            *answer("k6", "whatsapp-g", utc(3, 6, 8, 2), "clarify", rating=1),
            *answer("k7", "web-a", utc(3, 7, 20, 30), "llm", "gpt-4o-mini", (100, 10), 2.0, rating=1),
            *answer("k8", "telegram-d", utc(2, 28, 19, 30), "extractive", rating=-1),
        ]
        session.add_all(rows)
    return db_url


@pytest.fixture
async def session(filled: str):
    async with db.session_scope(filled) as session:
        yield session
    await db.get_engine(filled).dispose()


@pytest.fixture
def march() -> dict:
    return dict(zip(("since", "until"), analytics.period(FIRST, LAST), strict=True))


def test_a_period_is_whole_local_days_and_defaults_to_the_last_30():
    assert analytics.period(FIRST, LAST) == (utc(2, 28, 20), utc(3, 7, 20))
    since, until = analytics.period()
    today = datetime.now(DUBAI).date()
    assert since == datetime.combine(today - timedelta(days=29), datetime.min.time(), DUBAI)
    assert until - since == timedelta(days=30)
    with pytest.raises(InvalidPeriod):
        analytics.period(LAST, FIRST)


async def test_bad_periods_are_rejected(session):
    with pytest.raises(InvalidPeriod, match="timezone-aware"):
        await analytics.funnel(session, datetime(2026, 3, 1), utc(3, 7, 20))  # noqa: DTZ001 (naive on purpose)
    with pytest.raises(InvalidPeriod, match="not before"):
        await analytics.escalation_rate(session, utc(3, 7, 20), utc(3, 7, 20))
    with pytest.raises(ValueError, match="limit"):
        await analytics.top_intents(session, utc(3, 1, 0), utc(3, 7, 20), limit=0)


async def test_funnel_counts_a_conversation_for_every_stage_up_to_its_furthest(session, march):
    # in the period: web-a quoting(6), web-b needs_analysis(3), telegram-c handoff(8), telegram-d none(0),
    # whatsapp-e closing(7), whatsapp-g greeting(1), web-h qualifying(2): 7 conversations
    assert await analytics.funnel(session, **march) == [
        FunnelStep("greeting", 5, 5 / 7),  # a, b, e, g, h
        FunnelStep("qualifying", 4, 4 / 7),  # a, b, e, h
        FunnelStep("needs_analysis", 3, 3 / 7),  # a, b, e
        FunnelStep("solution", 2, 2 / 7),
        FunnelStep("objection_handling", 2, 2 / 7),
        FunnelStep("quoting", 2, 2 / 7),  # a, e
        FunnelStep("closing", 1, 1 / 7),  # e
        FunnelStep("handoff", 1, 1 / 7),  # c
    ]
    telegram = await analytics.funnel(session, **march, channel="telegram")  # telegram-c handoff, telegram-d none
    assert (telegram[0], telegram[-1]) == (FunnelStep("greeting", 0, 0.0), FunnelStep("handoff", 1, 0.5))


async def test_conversion_escalation_and_fallback_rates(session, march):
    # quotes: web-a, whatsapp-e (web-f is outside); won contacts: a (web-a), c (whatsapp-e); d's web-f is outside
    assert await analytics.conversion(session, **march) == analytics.Conversion(Rate(2, 7, 2 / 7), Rate(2, 7, 2 / 7))
    assert await analytics.conversion(session, **march, channel="web") == analytics.Conversion(
        Rate(1, 3, 1 / 3), Rate(1, 3, 1 / 3)
    )
    assert await analytics.escalation_rate(session, **march) == Rate(1, 7, 1 / 7)  # telegram-c
    # 10 customer messages in the period, 2 of them nlu_fallback (web-b, telegram-d)
    assert await analytics.fallback_rate(session, **march) == Rate(2, 10, 0.2)
    assert await analytics.fallback_rate(session, **march, channel="telegram") == Rate(1, 2, 0.5)


def steps(reached: list[int], total: int) -> list[FunnelStep]:
    """The funnel of ``total`` conversations, ``reached`` per stage greeting … closing, then handoff."""
    return [
        FunnelStep(stage, count, count / total if total else None)
        for stage, count in zip((*analytics.FUNNEL_STAGES, "handoff"), reached, strict=True)
    ]


async def test_conversations_funnel_and_conversion_per_language(session, march):
    assert get_company().languages == ("en", "ar", "ru")  # knowledge/company.yml
    # en: web-b needs_analysis(3), telegram-d none; ar: web-a quoting(6), whatsapp-e closing(7), both quoted and won
    # (web-f is outside); ru: telegram-c handoff(8), web-h qualifying(2); fr: whatsapp-g greeting(1). b's deal is a
    # proposal, not won.
    assert await analytics.by_language(session, **march) == [
        analytics.LanguageFigures("en", 2, steps([1, 1, 1, 0, 0, 0, 0, 0], 2), Rate(0, 2, 0.0), Rate(0, 2, 0.0)),
        analytics.LanguageFigures("ar", 2, steps([2, 2, 2, 2, 2, 2, 1, 0], 2), Rate(2, 2, 1.0), Rate(2, 2, 1.0)),
        analytics.LanguageFigures("ru", 2, steps([1, 1, 0, 0, 0, 0, 0, 1], 2), Rate(0, 2, 0.0), Rate(0, 2, 0.0)),
        analytics.LanguageFigures("fr", 1, steps([1, 0, 0, 0, 0, 0, 0, 0], 1), Rate(0, 1, 0.0), Rate(0, 1, 0.0)),
    ]
    web = await analytics.by_language(session, **march, channel="web")  # web-b, web-a, web-h; no French
    assert [(f.language, f.conversations, f.to_quote, f.to_won) for f in web] == [
        ("en", 1, Rate(0, 1, 0.0), Rate(0, 1, 0.0)),
        ("ar", 1, Rate(1, 1, 1.0), Rate(1, 1, 1.0)),
        ("ru", 1, Rate(0, 1, 0.0), Rate(0, 1, 0.0)),
    ]
    assert await analytics.by_language(session, **march, channel="sms") == [
        analytics.LanguageFigures(language, 0, steps([0] * 8, 0), Rate(0, 0, None), Rate(0, 0, None))
        for language in ("en", "ar", "ru")
    ]


async def test_rates_without_anything_to_measure_are_none(session, march):
    assert await analytics.escalation_rate(session, **march, channel="sms") == Rate(0, 0, None)
    assert await analytics.fallback_rate(session, **march, channel="sms") == Rate(0, 0, None)
    assert await analytics.conversion(session, **march, channel="sms") == analytics.Conversion(
        Rate(0, 0, None), Rate(0, 0, None)
    )
    assert {(s.conversations, s.share) for s in await analytics.funnel(session, **march, channel="sms")} == {(0, None)}
    assert await analytics.top_intents(session, **march, channel="sms") == []
    empty = await analytics.answer_feedback(session, **march, channel="sms")
    assert (empty.answers, empty.up, empty.down, empty.up_rate) == (0, 0, 0, None)
    assert empty.days[0] == FeedbackDay(FIRST, 0, 0, 0, None)


async def test_top_intents_by_customer_messages(session, march):
    # ask_price 2, greet 2 (telegram-d's is outside), nlu_fallback 2, affirm 1, ask_delivery 1, request_human 1,
    # and one message without an intent: 10
    assert await analytics.top_intents(session, **march, limit=4) == [
        IntentCount("ask_price", 2, 0.2),
        IntentCount("greet", 2, 0.2),
        IntentCount("nlu_fallback", 2, 0.2),
        IntentCount("affirm", 1, 0.1),
    ]
    assert await analytics.top_intents(session, **march, channel="whatsapp") == [
        IntentCount("affirm", 1, 1 / 3),
        IntentCount("greet", 1, 1 / 3),
    ]


async def test_daily_volume_has_every_day_and_channel_in_dubai_days(session, march):
    counted = {
        (date(2026, 3, 2), "web"): 2,  # web-a (two messages, one conversation) and web-h
        (date(2026, 3, 3), "web"): 1,
        (date(2026, 3, 5), "web"): 1,  # web-b on two days
        (date(2026, 3, 2), "telegram"): 1,  # telegram-c: 22:30 UTC on 1 March
        (date(2026, 3, 4), "telegram"): 1,
        (date(2026, 3, 6), "whatsapp"): 1,
        (date(2026, 3, 7), "whatsapp"): 1,
    }
    expected = [
        DayVolume(day, channel, counted.get((day, channel), 0))
        for day in DAYS
        for channel in ("telegram", "web", "whatsapp")
    ]
    assert await analytics.daily_volume(session, **march) == expected
    assert await analytics.daily_volume(session, **march, channel="telegram") == [
        row for row in expected if row.channel == "telegram"
    ]
    assert await analytics.daily_volume(session, **march, channel="sms") == [DayVolume(day, "sms", 0) for day in DAYS]


async def test_quality_scores_average_by_day_of_the_latest_message_and_by_channel(session, march):
    assert await analytics.quality_scores(session, **march) == analytics.QualityScores(
        0, None, [analytics.ScoreDay(day, 0, None) for day in DAYS], []
    )
    # web-f is outside the period (its customer's message is on 8 March in Dubai); telegram-d is not scored
    scored = {"web-a": 20, "web-b": 27, "telegram-c": 12, "whatsapp-e": 30, "web-f": 5}
    session.add_all(
        ConversationScore(conversation_id=cid, total=total, last_event_id=0) for cid, total in scored.items()
    )
    await session.flush()
    scores = await analytics.quality_scores(session, **march)
    assert (scores.scored, scores.average) == (4, (20 + 27 + 12 + 30) / 4)
    days = {row.day: (row.conversations, row.average) for row in scores.days if row.conversations}
    # web-a's latest message on 2 March, web-b's on 5 March, telegram-c's at 02:30 on 2 March in Dubai
    assert days == {date(2026, 3, 2): (2, 16.0), date(2026, 3, 5): (1, 27.0), date(2026, 3, 7): (1, 30.0)}
    assert [row.day for row in scores.days] == DAYS
    assert scores.channels == [
        analytics.ScoreChannel("telegram", 1, 12.0),
        analytics.ScoreChannel("web", 2, 23.5),
        analytics.ScoreChannel("whatsapp", 1, 30.0),
    ]
    web = await analytics.quality_scores(session, **march, channel="web")
    assert (web.scored, web.average, web.channels) == (2, 23.5, [analytics.ScoreChannel("web", 2, 23.5)])


async def test_feedback_on_knowledge_answers_overall_and_per_day(session, march):
    # in the period: k1 up (2 Mar), k2 down (21:00 UTC on 2 Mar = 3 Mar), k3 up (3 Mar), k4 unrated and k5 down
    # (5 Mar), k6 up (6 Mar); k7 and k8 fall outside
    summary = await analytics.answer_feedback(session, **march)
    assert (summary.answers, summary.up, summary.down, summary.up_rate) == (6, 3, 2, 0.6)
    by_day = {
        date(2026, 3, 2): (1, 1, 0, 1.0),
        date(2026, 3, 3): (2, 1, 1, 0.5),
        date(2026, 3, 5): (2, 0, 1, 0.0),
        date(2026, 3, 6): (1, 1, 0, 1.0),
    }
    assert summary.days == [FeedbackDay(day, *by_day.get(day, (0, 0, 0, None))) for day in DAYS]
    web = await analytics.answer_feedback(session, **march, channel="web")  # k1, k3, k4, k5
    assert (web.answers, web.up, web.down, web.up_rate) == (4, 2, 1, 2 / 3)


async def test_llm_cost_in_total_per_day_and_per_model(session, march):
    # calls: k1 0.25 and k2 0.125 (gpt-4o-mini; k2's answer was rejected), k4 0.5 and k5 unpriced (claude-haiku)
    cost = await analytics.llm_cost(session, **march)
    assert (cost.llm_calls, cost.cost_usd) == (4, 0.875)
    assert cost.answers_by_mode == {"llm": 3, "extractive": 2, "clarify": 1}
    by_day = {date(2026, 3, 2): (1, 0.25), date(2026, 3, 3): (1, 0.125), date(2026, 3, 5): (2, 0.5)}
    assert cost.days == [CostDay(day, *by_day.get(day, (0, 0.0))) for day in DAYS]
    assert cost.models == [ModelCost("claude-haiku", 2, 800, 60, 0.5), ModelCost("gpt-4o-mini", 2, 1800, 150, 0.375)]
    telegram = await analytics.llm_cost(session, **march, channel="telegram")
    assert (telegram.llm_calls, telegram.cost_usd, telegram.answers_by_mode) == (1, 0.125, {"llm": 0, "extractive": 1})


async def test_llm_cost_counts_the_understanding_calls_too(session, march):
    def call(cid: str, model: str, tokens: tuple[int, int], cost: float | None, at: datetime) -> LlmCall:
        prompt, completion = tokens
        return LlmCall(
            conversation_id=cid,
            purpose="understanding",
            llm_model=model,
            latency_s=1.5,
            prompt_tokens=prompt,
            completion_tokens=completion,
            cost_usd=cost,
            created_at=at,
        )

    session.add_all(
        [
            call("telegram-c", "gpt-4o-mini", (100, 10), 0.0625, utc(3, 4, 8)),
            call("web-a", "qwen-local", (50, 5), None, utc(3, 4, 9)),
            call("web-a", "gpt-4o-mini", (100, 10), 1.0, utc(3, 20, 8)),  # after the period
        ]
    )
    await session.flush()
    try:
        cost = await analytics.llm_cost(session, **march)
        assert (cost.llm_calls, cost.cost_usd) == (6, 0.9375)
        assert cost.answers_by_mode == {"llm": 3, "extractive": 2, "clarify": 1}  # answers only
        assert CostDay(date(2026, 3, 4), 2, 0.0625) in cost.days
        assert cost.models == [
            ModelCost("claude-haiku", 2, 800, 60, 0.5),
            ModelCost("gpt-4o-mini", 3, 1900, 160, 0.4375),
            ModelCost("qwen-local", 1, 50, 5, 0.0),
        ]
        telegram = await analytics.llm_cost(session, **march, channel="telegram")
        assert (telegram.llm_calls, telegram.cost_usd) == (2, 0.1875)
    finally:
        await session.rollback()


async def test_the_default_period_is_the_last_30_days(db_url):
    now = datetime.now(UTC)
    async with db.session_scope(db_url) as session:
        session.add_all(
            [
                *conversation("web-recent", "web", 1, [(now - timedelta(hours=1), "customer", "greet")]),
                *conversation("web-old", "web", 1, [(now - timedelta(days=40), "customer", "greet")], escalated=True),
            ]
        )
    async with db.session_scope(db_url) as session:
        assert await analytics.escalation_rate(session) == Rate(0, 1, 0.0)
    await db.get_engine(db_url).dispose()


async def test_csv_export_parses_back(session, march):
    text = analytics.to_csv(await analytics.daily_volume(session, **march), ["day", "channel", "conversations"])
    assert text.startswith("day,channel,conversations\r\n")
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    assert len(rows) == 21
    assert rows[3] == {"day": "2026-03-02", "channel": "telegram", "conversations": "1"}
    assert sum(int(r["conversations"]) for r in rows) == 8

    intents = list(
        csv.reader(
            io.StringIO(
                analytics.to_csv(
                    await analytics.top_intents(session, **march, limit=1), ["intent", "messages", "share"]
                ),
                newline="",
            )
        )
    )
    assert intents == [["intent", "messages", "share"], ["ask_price", "2", "0.2"]]

    awkward = {"name": 'Sofa, "grey"\nline two', "when": datetime(2026, 3, 2, 2, 30, tzinfo=DUBAI), "rate": None}
    back = list(csv.reader(io.StringIO(analytics.to_csv([awkward], ["name", "when", "rate"]), newline="")))
    assert back == [["name", "when", "rate"], ['Sofa, "grey"\nline two', "2026-03-02T02:30:00+04:00", ""]]
    with pytest.raises(ValueError, match="no column"):
        analytics.to_csv([awkward], ["name", "missing"])


def test_chart_js_is_vendored_with_its_licence_at_the_version_the_readme_names():
    readme = (VENDOR / "README.md").read_text(encoding="utf-8")
    version = re.search(r"^- Version: (\d+\.\d+\.\d+)$", readme, re.MULTILINE).group(1)
    bundle = (VENDOR / "chart.js" / "chart.umd.min.js").read_bytes()
    assert bundle.startswith(f"/*!\n * Chart.js v{version}\n".encode())
    assert hashlib.sha256(bundle).hexdigest() in readme
    assert "The MIT License" in (VENDOR / "chart.js" / "LICENSE.md").read_text(encoding="utf-8")


PAGE = jinja2.Environment(autoescape=True).from_string("""<!doctype html>
<html><head><meta charset="utf-8">
<script defer src="/static/vendor/chart.js/chart.umd.min.js"></script>
<script defer src="/static/console-charts.js"></script></head>
<body><div style="width: 600px; height: 300px"><canvas id="volume" data-chart='{{ config|tojson }}'></canvas></div>
<canvas id="broken" data-chart='{"type": "bar", "data": '></canvas></body></html>""")


def _drawn(url: str) -> tuple[dict, str]:
    with chromium() as driver:
        driver.get(url)
        WebDriverWait(driver, 30).until(
            lambda d: d.execute_script(
                "return window.Chart && Chart.getChart(document.getElementById('volume')) !== undefined"
            )
        )
        chart = driver.execute_script("""const chart = Chart.getChart(document.getElementById('volume'));
            return {type: chart.config.type, labels: chart.data.labels, label: chart.data.datasets[0].label,
                    data: chart.data.datasets[0].data, bars: chart.getDatasetMeta(0).data.length};""")
        return chart, driver.execute_script("return document.getElementById('broken').dataset.chartError || ''")


async def test_console_charts_draws_a_canvas_from_its_data_with_the_vendored_chart_js(session, march):
    volume = await analytics.daily_volume(session, **march, channel="web")
    dataset = {"label": "Customers' <web> chats", "data": [row.conversations for row in volume]}
    config = {"type": "bar", "data": {"labels": [row.day.isoformat() for row in volume], "datasets": [dataset]}}

    async def page(request: web.Request) -> web.Response:
        return web.Response(text=PAGE.render(config=config), content_type="text/html")

    app = web.Application()  # the page, and bot/web/static under /static as the console serves it
    app.router.add_get("/charts", page)
    app.router.add_static("/static", STATIC)
    async with TestServer(app, host="127.0.0.1") as server:
        chart, error = await asyncio.to_thread(_drawn, str(server.make_url("/charts")))
    assert chart == {
        "type": "bar",
        "labels": [d.isoformat() for d in DAYS],
        "label": "Customers' <web> chats",
        "data": [0, 2, 1, 0, 1, 0, 0],
        "bars": 7,
    }
    assert "JSON" in error
