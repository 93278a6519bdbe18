"""The scheduled jobs, for managers: ``GET /console/schedule`` shows each job (:mod:`bot.scheduling.jobs`) with
its trigger, next run and last run, which console process runs them, the latest runs (start, duration,
outcome, summary), the follow-ups by cadence and status and the next ones due. Times in UTC."""

from aiohttp import web

from bot.core.db import session_scope
from bot.follow_ups import sweep
from bot.follow_ups.cadences import CADENCES
from bot.scheduling import runner
from bot.web.appkeys import settings_key
from bot.web.console import render, requires

routes = web.RouteTableDef()

RUNS_SHOWN = 30
FOLLOW_UP_STATUSES = ("scheduled", "sent", "skipped", "cancelled", "failed")


@routes.get("/schedule")
@requires("manager")
async def schedule_page(request: web.Request) -> web.Response:
    settings = request.app[settings_key]
    schedule = await runner.schedule(settings)
    runs = await runner.last_runs(settings.database_url, RUNS_SHOWN)
    async with session_scope(settings.database_url) as session:
        counts, upcoming = await sweep.overview(session)
    return await render(
        request,
        "manager/schedule.html",
        title="Schedule",
        schedule=schedule,
        runs=runs,
        cadences=CADENCES,
        statuses=FOLLOW_UP_STATUSES,
        counts=counts,
        upcoming=upcoming,
    )
