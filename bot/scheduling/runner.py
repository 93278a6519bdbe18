"""The scheduler of the console process: leadership by lease, APScheduler, and the record of every run.

:class:`JobRunner` tries to take the lease every ``scheduler_lease_s / 3`` seconds; while it holds it, an
``AsyncIOScheduler`` runs :data:`bot.scheduling.jobs.JOBS` from the job store (table ``apscheduler_jobs`` in the
business DB); when it loses the lease (another replica took it after this one could not renew it, or the DB
failed) it shuts the scheduler down at once. On taking the lease the stored jobs are kept as they are —
their next run times survive restarts, and a run missed while no process led fires on start within the
job's misfire grace time, once however many were missed (``coalesce``) — and only a job whose trigger the
settings changed is replaced. APScheduler 3's job store is synchronous: its queries (a few per run, on the
job table's primary key) run on the event loop.

:func:`run_job` is what APScheduler calls: it runs the job with the settings and the current time, records
the run in ``job_runs`` and logs it, and alerts the managers' chat when a job marked ``alert_on_failure``
fails. A failed run never stops the scheduler.
"""

import asyncio
import logging
import time
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy import select
from sqlalchemy import text as sql_text
from sqlalchemy.exc import OperationalError, ProgrammingError

from bot.contracts.database import synchronous
from bot.core.business import get_company
from bot.core.db import session_scope
from bot.core.models import JobRun, SchedulerLease
from bot.core.settings import Settings, get_settings
from bot.handoff.notify import NotifyError, notify_managers
from bot.observability.metrics import JOB_RUNS, JOB_SECONDS
from bot.scheduling.jobs import JOBS, Job, job
from bot.scheduling.lease import Lease, process_name

log = logging.getLogger(__name__)

JOB_TABLE = "apscheduler_jobs"
MAX_DETAIL_CHARS = 2000


async def run_job(job_id: str, now: datetime | None = None, settings: Settings | None = None) -> JobRun:
    """Run the registered job ``job_id`` once with ``settings`` (default: the process's) at ``now`` (default: the
    current time, UTC) and return its run as recorded in ``job_runs``: ``outcome`` ``ok`` with the job's summary
    in ``detail``, or ``failed`` with the error. Never raises for the job's own failure (it is logged, recorded,
    and sent to the managers' chat for a job with ``alert_on_failure``); raises KeyError for an unknown job id and
    SQLAlchemy's errors when the run cannot be recorded."""
    settings = settings or get_settings()
    spec = job(job_id)
    now = now or datetime.now(UTC)
    async with session_scope(settings.database_url) as session:
        run = JobRun(job_id=job_id, runner=process_name(), started_at=datetime.now(UTC), outcome="running")
        session.add(run)
    log.info("job %s started", job_id)
    started = time.perf_counter()
    try:
        summary = await spec.run(settings, now)
    except Exception as exc:
        outcome, detail = "failed", f"{type(exc).__name__}: {exc}"
        log.exception("job %s failed after %.1f s", job_id, time.perf_counter() - started)
    else:
        outcome, detail = "ok", summary
    duration = time.perf_counter() - started
    JOB_RUNS.labels(job_id, outcome).inc()
    JOB_SECONDS.labels(job_id).observe(duration)
    async with session_scope(settings.database_url) as session:
        run = await session.merge(run)
        run.finished_at, run.duration_s = datetime.now(UTC), duration
        run.outcome, run.detail = outcome, detail[:MAX_DETAIL_CHARS]
    log.info("job %s %s in %.2f s: %s", job_id, outcome, duration, detail)
    if outcome == "failed" and spec.alert_on_failure:
        await _alert(spec, detail, settings)
    return run


async def _alert(spec: Job, detail: str, settings: Settings) -> None:
    try:
        await notify_managers(f"Scheduled job failed: {spec.title} ({spec.id})\n{detail}", settings)
    except NotifyError as exc:
        log.error("the failure of job %s was not sent to the managers' chat: %s", spec.id, exc)


async def _run_scheduled(job_id: str) -> None:
    """APScheduler's entry point (referenced by name in the job store): :func:`run_job` at the current time."""
    await run_job(job_id)


async def interrupted(database_url: str) -> int:
    """Mark ``interrupted`` the runs other processes left ``running`` (a process that died mid-run, whose lease this
    one has just taken); how many. A run that was only slow still records its own outcome when it ends."""
    async with session_scope(database_url) as session:
        runs = await session.scalars(select(JobRun).where(JobRun.outcome == "running", JobRun.runner != process_name()))
        count = 0
        for run in runs:
            run.outcome, run.detail = "interrupted", "the process running it stopped before it ended"
            count += 1
    if count:
        log.warning("%d job run(s) left running by another process marked interrupted", count)
    return count


async def last_runs(database_url: str, limit: int = 50) -> list[JobRun]:
    """The latest ``limit`` job runs, newest first (``job_runs``)."""
    async with session_scope(database_url) as session:
        return list((await session.scalars(select(JobRun).order_by(JobRun.id.desc()).limit(limit))).all())


class JobRunner:
    """Runs :data:`JOBS` in this process while it holds the scheduler lease (see the module's docstring).
    ``start`` and ``stop`` must be called on the event loop the jobs should run on."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.lease = Lease(settings.database_url, "scheduler", settings.scheduler_lease_s)
        self.scheduler: AsyncIOScheduler | None = None
        self._task: asyncio.Task | None = None

    @property
    def leading(self) -> bool:
        """Whether this process runs the jobs now."""
        return self.scheduler is not None

    def start(self) -> None:
        """Start competing for the lease in the background."""
        self._task = asyncio.create_task(self._lead(), name="scheduler-lease")

    async def stop(self) -> None:
        """Stop the scheduler (letting no new run start) and give the lease up."""
        if self._task is not None:
            self._task.cancel()
            with suppress(asyncio.CancelledError):
                await self._task
        self._stop_scheduler()
        with suppress(Exception):  # the lease then simply expires
            await self.lease.release()

    async def _lead(self) -> None:
        while True:
            try:
                held = await self.lease.acquire()
            except Exception:
                log.exception("the scheduler lease could not be renewed; not running jobs")
                held = False
            if held and self.scheduler is None:
                await interrupted(self.settings.database_url)
                self._start_scheduler()
            elif not held and self.scheduler is not None:
                log.warning("the scheduler lease went to another process; this one stops running jobs")
                self._stop_scheduler()
            await asyncio.sleep(self.settings.scheduler_lease_s / 3)

    def _start_scheduler(self) -> None:
        scheduler = AsyncIOScheduler(
            jobstores={"default": SQLAlchemyJobStore(url=synchronous(self.settings.database_url), tablename=JOB_TABLE)},
            job_defaults={"coalesce": True, "max_instances": 1},
            timezone=ZoneInfo(get_company().timezone),
        )
        scheduler.start()
        self.scheduler = scheduler
        self._reconcile()
        log.info("this process (%s) runs the scheduled jobs", self.lease.holder)

    def _reconcile(self) -> None:
        """Make the job store hold exactly :data:`JOBS`, keeping each stored job whose trigger is unchanged."""
        assert self.scheduler is not None
        wanted = {spec.id: spec for spec in JOBS}
        for stored in self.scheduler.get_jobs():
            if stored.id not in wanted:
                stored.remove()
        for spec in JOBS:
            trigger = spec.trigger(self.settings)
            stored = self.scheduler.get_job(spec.id)
            if stored is not None and str(stored.trigger) == str(trigger):
                continue
            self.scheduler.add_job(
                _run_scheduled,
                trigger,
                args=[spec.id],
                id=spec.id,
                name=spec.title,
                replace_existing=True,
                misfire_grace_time=spec.misfire_grace_s,
            )

    def _stop_scheduler(self) -> None:
        if self.scheduler is not None:
            self.scheduler.shutdown(wait=False)
            self.scheduler = None


@dataclass(frozen=True)
class JobStatus:
    """A registered job as the console shows it: ``next_run`` (UTC; None while no process leads or the job is
    not stored yet) and its ``last`` run."""

    job: Job
    trigger: str
    next_run: datetime | None
    last: JobRun | None


@dataclass(frozen=True)
class Schedule:
    """The jobs and who runs them: ``leader`` (``host:pid:random``) holding the lease until ``lease_expires``."""

    jobs: list[JobStatus]
    leader: str | None
    lease_expires: datetime | None


async def schedule(settings: Settings) -> Schedule:
    """What the console's schedule page shows, read from the business DB (the job store, ``job_runs``,
    ``scheduler_leases``), so any console replica can show it."""
    async with session_scope(settings.database_url) as session:
        try:
            stored = {
                row.id: row.next_run_time
                for row in await session.execute(sql_text(f"SELECT id, next_run_time FROM {JOB_TABLE}"))
            }
        except (OperationalError, ProgrammingError):  # APScheduler creates its table when a process first leads
            await session.rollback()
            stored = {}
        lease = await session.get(SchedulerLease, "scheduler")
        statuses = []
        for spec in JOBS:
            last = await session.scalar(
                select(JobRun).where(JobRun.job_id == spec.id).order_by(JobRun.id.desc()).limit(1)
            )
            next_run = stored.get(spec.id)
            statuses.append(
                JobStatus(
                    spec,
                    str(spec.trigger(settings)),
                    datetime.fromtimestamp(next_run, UTC) if next_run is not None else None,
                    last,
                )
            )
    return Schedule(statuses, lease.holder if lease else None, lease.expires_at if lease else None)
