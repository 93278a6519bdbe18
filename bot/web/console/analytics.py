"""The console's analytics page (``/console/analytics``) and its CSV exports, drawn from :mod:`bot.review.analytics`.

Query parameters, for the page and every export alike: ``since`` and ``until``, the first and the last
calendar day of the period (``YYYY-MM-DD``, both included, in the business's time zone; default
:func:`bot.review.analytics.period`: the last 30 days), and ``channel`` (one of the indexed conversations'
channels; empty for all). A malformed or empty period or an unknown channel gets 400 with the reason.

``/console/analytics/<view>.csv`` sends one view as ``text/csv`` (an attachment), written by
:func:`bot.review.analytics.to_csv`; the views and their columns are :data:`VIEWS`.
"""

import logging
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import partial
from typing import Any

from aiohttp import web

from bot.core import audit
from bot.core.db import session_scope
from bot.review import analytics
from bot.review.conversations import known_channels
from bot.web.appkeys import settings_key
from bot.web.console import USER, render, requires

log = logging.getLogger(__name__)

routes = web.RouteTableDef()

TOP_INTENTS = 10
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")  # in a file name
UP, DOWN = "rgb(26, 127, 55)", "rgb(207, 34, 46)"


@dataclass(frozen=True)
class Filters:
    """The page's filters: the days ``first`` … ``last`` as the period ``[since, until)``, and ``channel``."""

    first: date
    last: date
    since: datetime
    until: datetime
    channel: str | None

    def query(self) -> dict[str, str]:
        """The filters as query parameters of the page and its exports."""
        return {"since": self.first.isoformat(), "until": self.last.isoformat(), "channel": self.channel or ""}


@dataclass(frozen=True)
class View:
    """A CSV export: the analytics function (session, since, until, channel) → result, the rows of the result
    and the columns written."""

    load: Callable[..., Awaitable[Any]]
    rows: Callable[[Any], Sequence[Any]]
    columns: tuple[str, ...]


def _language_row(figures: analytics.LanguageFigures) -> dict[str, Any]:
    """One language's figures as a row of the ``languages`` export: the conversations, per funnel step the
    conversations that reached it (named after its stage), and the conversions' counts and rates."""
    return {
        "language": figures.language,
        "conversations": figures.conversations,
        **{step.stage: step.conversations for step in figures.funnel},
        "quoted": figures.to_quote.count,
        "to_quote": figures.to_quote.rate,
        "won": figures.to_won.count,
        "to_won": figures.to_won.rate,
    }


VIEWS = {
    "funnel": View(analytics.funnel, list, ("stage", "conversations", "share")),
    "volume": View(analytics.daily_volume, list, ("day", "channel", "conversations")),
    "intents": View(partial(analytics.top_intents, limit=TOP_INTENTS), list, ("intent", "messages", "share")),
    "feedback": View(analytics.answer_feedback, lambda r: r.days, ("day", "answers", "up", "down", "up_rate")),
    "cost": View(analytics.llm_cost, lambda r: r.days, ("day", "llm_calls", "cost_usd")),
    "models": View(
        analytics.llm_cost, lambda r: r.models, ("model", "llm_calls", "prompt_tokens", "completion_tokens", "cost_usd")
    ),
    "modes": View(
        analytics.llm_cost,
        lambda r: [{"mode": mode, "answers": n} for mode, n in r.answers_by_mode.items()],
        ("mode", "answers"),
    ),
    "rates": View(analytics.rates, list, ("metric", "count", "total", "rate")),
    "scores": View(analytics.quality_scores, lambda r: r.days, ("day", "conversations", "average")),
    "scores-channels": View(analytics.quality_scores, lambda r: r.channels, ("channel", "conversations", "average")),
    "languages": View(
        analytics.by_language,
        lambda r: [_language_row(figures) for figures in r],
        (
            "language",
            "conversations",
            *analytics.FUNNEL_STAGES,
            analytics.HANDOFF,
            "quoted",
            "to_quote",
            "won",
            "to_won",
        ),
    ),
}


def _day(request: web.Request, name: str) -> date | None:
    raw = request.query.get(name, "").strip()
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise analytics.InvalidPeriod(f"{name} must be a day written YYYY-MM-DD, not {raw!r}") from None


def _filters(request: web.Request, known: list[str]) -> Filters:
    """The request's filters, ``channel`` one of ``known``; raises InvalidPeriod or ValueError (unknown channel)."""
    since, until = analytics.period(_day(request, "since"), _day(request, "until"))
    channel = request.query.get("channel", "").strip() or None
    if channel is not None and channel not in known:
        raise ValueError(
            f"no conversation is indexed on channel {channel!r}; the channels are: {', '.join(known) or 'none yet'}"
        )
    return Filters(since.date(), (until - timedelta(days=1)).date(), since, until, channel)


async def _refused(request: web.Request, error: ValueError) -> web.Response:
    log.warning("console %s %s refused for %s: %s", request.method, request.path_qs, request[USER].email, error)
    return await render(request, "manager/base.html", status=400, title="Bad request", message=f"Not shown: {error}.")


def _bar(labels: list[str], datasets: list[dict[str, Any]], **options: Any) -> dict[str, Any]:
    """A Chart.js bar chart configuration (bot/web/static/console-charts.js draws it)."""
    return {
        "type": "bar",
        "data": {"labels": labels, "datasets": datasets},
        "options": {"maintainAspectRatio": False, **options},
    }


def _percent(rate: float | None) -> float | None:
    return None if rate is None else round(rate * 100, 1)


def charts(
    funnel: list[analytics.FunnelStep],
    volume: list[analytics.DayVolume],
    intents: list[analytics.IntentCount],
    feedback: analytics.FeedbackSummary,
    cost: analytics.LLMCost,
) -> dict[str, dict[str, Any]]:
    """The page's Chart.js configurations by name: ``funnel`` (bar per stage), ``volume`` (conversations
    per day, stacked by channel), ``intents`` (horizontal bars), ``feedback`` (👍 and 👎 shares of the
    rated answers per day, in percent; no point on days without a rating) and ``cost`` (USD per day)."""
    days = [step.day.isoformat() for step in feedback.days]
    by_channel: dict[str, list[int]] = {}
    for row in volume:
        by_channel.setdefault(row.channel, []).append(row.conversations)
    volume_days = list(dict.fromkeys(row.day.isoformat() for row in volume))
    stacked = {"x": {"stacked": True}, "y": {"stacked": True, "beginAtZero": True, "ticks": {"precision": 0}}}
    return {
        "funnel": _bar(
            [step.stage for step in funnel],
            [{"label": "Conversations", "data": [step.conversations for step in funnel]}],
            scales={"y": {"beginAtZero": True, "ticks": {"precision": 0}}},
        ),
        "volume": _bar(
            volume_days, [{"label": name, "data": data} for name, data in by_channel.items()], scales=stacked
        ),
        "intents": _bar(
            [row.intent for row in intents],
            [{"label": "Customer messages", "data": [row.messages for row in intents]}],
            indexAxis="y",
            scales={"x": {"beginAtZero": True, "ticks": {"precision": 0}}},
        ),
        "feedback": {
            "type": "line",
            "data": {
                "labels": days,
                "datasets": [
                    {
                        "label": "Rated 👍 (%)",
                        "data": [_percent(d.up_rate) for d in feedback.days],
                        "borderColor": UP,
                        "backgroundColor": UP,
                    },
                    {
                        "label": "Rated 👎 (%)",
                        "data": [None if d.up_rate is None else _percent(1 - d.up_rate) for d in feedback.days],
                        "borderColor": DOWN,
                        "backgroundColor": DOWN,
                    },
                ],
            },
            "options": {"maintainAspectRatio": False, "scales": {"y": {"min": 0, "max": 100}}},
        },
        "cost": _bar(
            [day.day.isoformat() for day in cost.days],
            [{"label": "LLM cost (USD)", "data": [day.cost_usd for day in cost.days]}],
            scales={"y": {"beginAtZero": True}},
        ),
    }


@routes.get("/analytics")
@requires("manager")
async def analytics_page(request: web.Request) -> web.Response:
    """Charts and numbers of the period for one channel or all, each with its CSV export link."""
    async with session_scope(request.app[settings_key].database_url) as db:
        known = await known_channels(db)
        try:
            filters = _filters(request, known)
        except ValueError as exc:  # InvalidPeriod too
            return await _refused(request, exc)
        period = (db, filters.since, filters.until, filters.channel)
        funnel = await analytics.funnel(*period)
        volume = await analytics.daily_volume(*period)
        intents = await analytics.top_intents(*period, limit=TOP_INTENTS)
        feedback = await analytics.answer_feedback(*period)
        cost = await analytics.llm_cost(*period)
        measured = {row["metric"]: row for row in await analytics.rates(*period)}
        languages = await analytics.by_language(*period)
        scores = await analytics.quality_scores(*period)
    return await render(
        request,
        "manager/analytics.html",
        title="Analytics",
        filters=filters,
        channels=known,
        query=filters.query(),
        charts=charts(funnel, volume, intents, feedback, cost),
        rates=measured,
        feedback=feedback,
        cost=cost,
        languages=languages,
        scores=scores,
    )


@routes.get(r"/analytics/{view:[a-z-]+}.csv")
@requires("manager")
async def export(request: web.Request) -> web.Response:
    """One of :data:`VIEWS` as CSV (``text/csv``, UTF-8, an attachment named after the view, period and
    channel; audit entry ``analytics.export_csv``); 404 for an unknown view, 400 for bad filters."""
    name = request.match_info["view"]
    view = VIEWS.get(name)
    if view is None:
        raise web.HTTPNotFound(text=f"No analytics view {name!r}; the views are: {', '.join(VIEWS)}.")
    async with session_scope(request.app[settings_key].database_url) as db:
        try:
            filters = _filters(request, await known_channels(db))
        except ValueError as exc:
            return await _refused(request, exc)
        result = await view.load(db, filters.since, filters.until, filters.channel)
        audit.record(
            db,
            request[USER],
            "analytics.export_csv",
            "analytics_view",
            name,
            since=filters.first.isoformat(),
            until=filters.last.isoformat(),
            channel=filters.channel,
        )
    filename = "-".join(
        [
            "closer",
            name,
            filters.first.isoformat(),
            filters.last.isoformat(),
            *([_UNSAFE.sub("_", filters.channel)] if filters.channel else []),
        ]
    )
    return web.Response(
        text=analytics.to_csv(view.rows(result), view.columns),
        content_type="text/csv",
        charset="utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}.csv"'},
    )
