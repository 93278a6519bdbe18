"""The scheduler: the lease that lets one process run the jobs, the record of every run, the nightly re-index
and its alert, and — with real console processes — jobs surviving a restart and only one of two consoles
running them. No test waits on the clock for a job: times are given, or stored schedules moved."""

import os
import shutil
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler

from bot.contracts.database import synchronous
from bot.core.settings import ROOT, Settings
from bot.scheduling import runner
from bot.scheduling.jobs import JOBS
from bot.scheduling.lease import Lease
from tests.e2e.conftest import free_port, served_in_a_thread, wait_for
from tests.fakes.telegram_server import FakeTelegram

NOW = datetime(2026, 12, 7, 6, 0, tzinfo=UTC)  # a Monday, 10:00 in Dubai


async def test_one_holder_at_a_time_and_the_lease_passes_on_once_it_expired(db_url) -> None:
    first, second = Lease(db_url, ttl_s=30), Lease(db_url, ttl_s=30)
    assert await first.acquire(NOW)
    assert not await second.acquire(NOW + timedelta(seconds=1))
    assert await first.acquire(NOW + timedelta(seconds=20))  # renewed until +50 s
    assert not await second.acquire(NOW + timedelta(seconds=45))
    assert await second.acquire(NOW + timedelta(seconds=51))  # the first stopped renewing
    assert not await first.acquire(NOW + timedelta(seconds=52))
    await second.release()
    assert await first.acquire(NOW + timedelta(seconds=53))  # released: no need to wait


async def test_a_run_is_recorded_with_its_outcome_and_summary(db_url) -> None:
    run = await runner.run_job("escalation_watchdog", NOW, Settings(database_url=db_url))
    assert (run.job_id, run.outcome, run.detail) == ("escalation_watchdog", "ok", "no escalation overdue")
    assert run.finished_at is not None and run.duration_s is not None and run.duration_s >= 0
    [stored] = await runner.last_runs(db_url)
    assert (stored.id, stored.outcome, stored.runner) == (run.id, "ok", run.runner)
    with pytest.raises(KeyError, match="follow_ups"):
        await runner.run_job("no_such_job", NOW, Settings(database_url=db_url))


async def test_a_failed_reindex_is_recorded_and_alerts_the_managers_chat(db_url, tmp_path) -> None:
    empty = tmp_path / "knowledge"
    empty.mkdir()
    (empty / "catalog.csv").write_text("product,cost\nchair,12\n")  # not Closer's columns: the import stops
    with served_in_a_thread(FakeTelegram()) as telegram:
        settings = Settings(
            database_url=db_url,
            knowledge_dir=empty,
            index_log_dir=tmp_path / "logs",
            telegram_bot_token=telegram.token,
            telegram_manager_chat_id="-100200300",
            telegram_api_base=telegram.api_base,
        )
        run = await runner.run_job("reindex", NOW, settings)
    assert run.outcome == "failed" and "load-knowledge exited with 2" in run.detail, run.detail
    [alert] = telegram.calls("sendMessage")
    assert alert["chat_id"] == "-100200300"
    assert (
        alert["text"].startswith("Scheduled job failed: Nightly re-index (reindex)")
        and "exited with 2" in alert["text"]
    )
    assert not (tmp_path / "logs" / "catalog-source.sha256").exists()  # not marked imported


async def test_the_nightly_reindex_imports_a_changed_catalog_once_and_writes_the_index_log(
    db_url, chroma_dir, tmp_path
) -> None:
    chroma = tmp_path / "chroma"
    shutil.copytree(chroma_dir, chroma)  # the session's index of knowledge/ and the catalog: nothing to embed
    settings = Settings(database_url=db_url, chroma_path=chroma, index_log_dir=tmp_path / "logs")
    first = await runner.run_job("reindex", NOW, settings)
    assert first.outcome == "ok", first.detail
    assert first.detail.startswith("catalog imported; knowledge (") and "products (" in first.detail
    assert "0 added, 0 updated, 0 deleted" in first.detail
    logs = sorted(p.name for p in (tmp_path / "logs").glob("*.json"))
    assert any(name.endswith("-knowledge.json") for name in logs) and any(
        name.endswith("-products.json") for name in logs
    )
    second = await runner.run_job("reindex", NOW + timedelta(days=1), settings)
    assert second.outcome == "ok" and "catalog imported" not in second.detail, second.detail


# --- real console processes ----------------------------------------------------------------------------


def _console(tmp_path: Path, database: str, name: str, **env: str) -> tuple[subprocess.Popen, str, Path]:
    port = free_port()
    log = tmp_path / f"{name}.log"
    environment = {
        **os.environ,
        "CLOSER_DATABASE_URL": database,
        "CLOSER_TRACKER_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'tracker.db'}",
        "CLOSER_CONSOLE_HOST": "127.0.0.1",
        "CLOSER_CONSOLE_PORT": str(port),
        "CLOSER_RASA_URL": "http://127.0.0.1:9",  # nothing listens: no follow-up is due anyway
        "CLOSER_SCHEDULER_ENABLED": "true",
        **env,
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "bot", "console"],
        cwd=ROOT,
        env=environment,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )
    _started.append(process)
    wait_for(f"http://127.0.0.1:{port}/healthz", process, log, seconds=60)
    return process, f":{process.pid}", log


_started: list[subprocess.Popen] = []


@pytest.fixture(autouse=True)
def _no_console_left_running():
    """Consoles a test started and did not stop (it failed before) are killed after it."""
    yield
    while _started:
        process = _started.pop()
        if process.poll() is None:
            process.kill()
            process.wait(30)


def _until(condition, seconds: float, what: str, *logs: Path):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.2)
    pytest.fail(f"{what} not within {seconds} s:\n" + "\n".join(log.read_text()[-3000:] for log in logs))


def _rows(database: str, query: str, **params) -> list[tuple]:
    """``query``'s rows in the business DB at ``database`` (a URL), through a connection of its own."""
    engine = sa.create_engine(synchronous(database))
    try:
        with engine.connect() as connection:
            return [tuple(row) for row in connection.execute(sa.text(query), params)]
    finally:
        engine.dispose()


def _runs(database: str, job_id: str) -> list[tuple[str, str]]:
    return _rows(database, "SELECT runner, outcome FROM job_runs WHERE job_id = :job ORDER BY id", job=job_id)


def _finished_runs(database: str, job_id: str) -> list[tuple[str, str]]:
    """The runs recorded with an outcome: a run's row is written ``running`` when it starts."""
    return [(runner, outcome) for runner, outcome in _runs(database, job_id) if outcome != "running"]


def _stored_jobs(database: str) -> dict[str, float]:
    try:
        return dict(_rows(database, "SELECT id, next_run_time FROM apscheduler_jobs"))
    except sa.exc.DBAPIError:  # no such table yet
        return {}


def _stop(process: subprocess.Popen, how: int = signal.SIGTERM) -> None:
    process.send_signal(how)
    process.wait(30)


@pytest.mark.e2e
def test_a_run_due_while_no_console_ran_fires_when_one_starts_again(db_url, tmp_path) -> None:
    env = {"CLOSER_FOLLOW_UPS_INTERVAL_S": "3600", "CLOSER_SCHEDULER_LEASE_S": "3"}
    first, _, first_log = _console(tmp_path, db_url, "first", **env)
    stored = _until(lambda: _stored_jobs(db_url), 30, "the jobs stored", first_log)
    assert set(stored) == {job.id for job in JOBS} >= {"follow_ups", "escalation_watchdog", "reindex", "scoring"}
    _stop(first)
    assert not _runs(db_url, "follow_ups")  # its first run is an hour away
    # The console was down when follow_ups fell due: move its stored next run into the past.
    store = SQLAlchemyJobStore(url=synchronous(db_url))
    store.start(BackgroundScheduler(), "default")  # the job store alone: nothing runs here
    job = store.lookup_job("follow_ups")
    job.next_run_time = datetime.now(UTC) - timedelta(seconds=20)
    store.update_job(job)
    store.shutdown()

    second, second_pid, second_log = _console(tmp_path, db_url, "second", **env)
    try:
        runs = _until(lambda: _finished_runs(db_url, "follow_ups"), 30, "the missed run", second_log)
        assert runs == _runs(db_url, "follow_ups")  # no other run, finished or not
        assert runs == [(runs[0][0], "ok")] and runs[0][0].endswith(second_pid)
        next_run = _stored_jobs(db_url)["follow_ups"]
        assert next_run > time.time() + 3000  # rescheduled an hour on; the missed run fired once
    finally:
        _stop(second)


@pytest.mark.e2e
def test_of_two_consoles_one_runs_the_jobs_and_the_other_takes_over_when_it_dies(db_url, tmp_path) -> None:
    env = {"CLOSER_FOLLOW_UPS_INTERVAL_S": "1", "CLOSER_SCHEDULER_LEASE_S": "3"}
    first, first_pid, first_log = _console(tmp_path, db_url, "first", **env)
    second, second_pid, second_log = _console(tmp_path, db_url, "second", **env)
    try:
        runs = _until(lambda: len(_runs(db_url, "follow_ups")) >= 5 and _runs(db_url, "follow_ups"), 60,
                      "five runs", first_log, second_log)  # fmt: skip
        runners = {who for who, _ in runs}
        assert len(runners) == 1, runners
        [leader] = runners
        [(holder,)] = _rows(db_url, "SELECT holder FROM scheduler_leases")
        assert holder.startswith(leader)
        leading, other_pid = (first, second_pid) if leader.endswith(first_pid) else (second, first_pid)
        _stop(leading, signal.SIGKILL)  # no goodbye: the lease must expire
        before = len(runs)
        taken = _until(
            lambda: [who for who, _ in _runs(db_url, "follow_ups")[before:] if who.endswith(other_pid)],
            30, "the other console taking over", first_log, second_log,
        )  # fmt: skip
        assert taken
        # The killed console may have died mid-run: that run is marked interrupted by the one that took over.
        # (the console that took over may be in the middle of its own run: "running" is allowed for it alone)
        outcomes = [outcome for who, outcome in _runs(db_url, "follow_ups") if not who.endswith(other_pid)]
        assert set(outcomes) <= {"ok", "interrupted"} and outcomes.count("interrupted") <= 1, outcomes
    finally:
        for process in (first, second):
            if process.poll() is None:
                _stop(process)
