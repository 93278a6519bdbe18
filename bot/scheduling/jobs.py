"""The scheduled jobs, each a coroutine function ``run(settings, now) -> summary`` of the subsystem that owns
the work, with its trigger. ``now`` is the moment the job acts as of (UTC; the current time when scheduled,
any time from ``python -m bot jobs run ID --now`` and from tests); the summary is one line for ``job_runs``;
raising marks the run failed.

Misfire grace (how late a missed run may still start, e.g. after a restart) is set per job: the minutely
jobs skip a missed run (the next one does the same work), the nightly and daily ones (re-index, digests) still run
hours late, since nobody would run them by hand otherwise. Every job coalesces missed runs into one.
"""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from bot.answering import reindexing
from bot.core.business import get_company
from bot.core.settings import Settings
from bot.follow_ups import sweep
from bot.handoff import watchdog
from bot.review import digest, scoring

MINUTE_S = 60
HOUR_S = 3600
SCORING_EVERY_S = 5 * MINUTE_S  # finished conversations are idle for score_idle_s anyway


@dataclass(frozen=True)
class Job:
    """A scheduled job: ``id`` (stable: the job store's key), ``title`` for people, ``run`` the work,
    ``trigger`` when (from the settings), ``misfire_grace_s`` seconds, ``alert_on_failure``: a failed run is
    sent to the managers' chat."""

    id: str
    title: str
    run: Callable[[Settings, datetime], Awaitable[str]]
    trigger: Callable[[Settings], BaseTrigger]
    misfire_grace_s: int
    alert_on_failure: bool = False


def daily_at(field: str, **cron: str) -> Callable[[Settings], BaseTrigger]:
    """A trigger at the settings' ``field`` time of day (``HH:MM``) in the business time zone (company.yml)."""

    def trigger(settings: Settings) -> BaseTrigger:
        hour, minute = getattr(settings, field).split(":")
        zone = ZoneInfo(get_company().timezone)
        return CronTrigger(hour=int(hour), minute=int(minute), timezone=zone, **cron)

    return trigger


JOBS: tuple[Job, ...] = (
    Job(
        "follow_ups",
        "Customer follow-ups",
        sweep.run,
        lambda settings: IntervalTrigger(seconds=settings.follow_ups_interval_s),
        MINUTE_S,
    ),
    Job(
        "escalation_watchdog",
        "Escalation watchdog",
        watchdog.run,
        lambda settings: IntervalTrigger(seconds=settings.follow_ups_interval_s),
        MINUTE_S,
    ),
    Job(
        "scoring",
        "Conversation quality scoring",
        scoring.run,
        lambda settings: IntervalTrigger(seconds=SCORING_EVERY_S),
        SCORING_EVERY_S,
    ),
    Job("reindex", "Nightly re-index", reindexing.nightly, daily_at("reindex_at"), 6 * HOUR_S, alert_on_failure=True),
    Job("digest_daily", "Daily digest", digest.daily, daily_at("digest_at"), 6 * HOUR_S, alert_on_failure=True),
    Job(
        "digest_weekly",
        "Weekly digest",
        digest.weekly,
        lambda settings: daily_at("digest_at", day_of_week=settings.digest_weekday)(settings),
        12 * HOUR_S,
        alert_on_failure=True,
    ),
)


def job(job_id: str) -> Job:
    """The registered job ``job_id``. Raises KeyError naming the known ids."""
    for spec in JOBS:
        if spec.id == job_id:
            return spec
    raise KeyError(f"no scheduled job {job_id!r}; jobs: {', '.join(spec.id for spec in JOBS)}")
