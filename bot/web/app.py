"""The console process's aiohttp application (``python -m bot console``): the web chat (:mod:`bot.web.chat`)
and the manager console (:mod:`bot.web.console`) in one app, above both.

:func:`create_app` builds the process's services once, as application keys (:mod:`bot.web.appkeys`): the
settings, the templates (``bot/web/templates``), the client of Rasa's HTTP API (:class:`bot.core.rasa.RasaClient`,
open while the app runs), the business database (its engine disposed when the app stops) and, unless
``scheduler_enabled`` is off, the scheduled jobs (:class:`bot.scheduling.runner.JobRunner`), and with
``metrics_port`` set the count of open escalations (:func:`bot.handoff.escalation.report_open`); then it
mounts the chat's routes, YooKassa's notifications (:mod:`bot.web.payments`, when configured), the console's
areas, ``/static`` (the widget's and the console's scripts and styles), ``GET /healthz`` (liveness) and ``GET /ready``
(readiness: :mod:`bot.observability.readiness`).
"""

import asyncio
import functools
from pathlib import Path

import jinja2
from aiohttp import web

from bot.commerce import invoicing
from bot.core.db import get_engine
from bot.core.rasa import RasaClient
from bot.core.settings import Settings
from bot.handoff import escalation
from bot.observability import metrics
from bot.observability.readiness import CONSOLE_CHECKS, readiness
from bot.scheduling.runner import JobRunner
from bot.web import calculator, chat, payments
from bot.web.appkeys import job_runner_key, rasa_key, settings_key, templates_key
from bot.web.console import areas

HERE = Path(__file__).resolve().parent
STATIC = HERE / "static"
TEMPLATES = HERE / "templates"
MAX_BODY_BYTES = 64 * 1024  # a longer request body gets 413 from aiohttp


async def healthz(request: web.Request) -> web.Response:
    """Liveness: ``{"status": "ok"}`` with 200 while the process serves requests."""
    return web.json_response({"status": "ok"})


async def ready(request: web.Request) -> web.Response:
    """Readiness: 200 when the database and the Rasa server (and a Chroma server, when configured) answer, else
    503; the body names each check's outcome (:func:`bot.observability.readiness.readiness`)."""
    status, body = await readiness(request.app[settings_key], CONSOLE_CHECKS)
    return web.json_response(body, status=status)


async def _rasa(app: web.Application):
    async with app[rasa_key]:
        yield


async def _scheduler(app: web.Application):
    runner = app[job_runner_key] = JobRunner(app[settings_key])
    runner.start()
    yield
    await runner.stop()


async def _escalation_gauge(app: web.Application):
    task = asyncio.get_running_loop().create_task(escalation.report_open(app[settings_key].database_url))
    yield
    task.cancel()


async def _database(app: web.Application):
    yield
    await get_engine(app[settings_key].database_url).dispose()


def create_app(settings: Settings) -> web.Application:
    """The console process's application for ``settings``. Raises ValueError for a ``rate_limit_*`` setting that
    is not positive or an invalid CLOSER_CONSOLE_SECRET_KEY, RuntimeError for a console route without a role,
    OSError when the console's key file cannot be made."""
    app = web.Application(client_max_size=MAX_BODY_BYTES)
    app[settings_key] = settings
    app[templates_key] = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True)
    app[rasa_key] = RasaClient(settings.rasa_url, settings)
    app.cleanup_ctx.extend([_rasa, _database])
    if settings.scheduler_enabled:
        app.cleanup_ctx.append(_scheduler)
    if settings.metrics_port is not None:
        app.cleanup_ctx.append(_escalation_gauge)
    chat.setup(app)
    calculator.setup(app)
    # POST /webhooks/yookassa when YooKassa is configured; a payment's invoice and contract are then sent
    payments.setup(app, after_payment=functools.partial(invoicing.send_paid_documents, app[rasa_key]))
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/ready", ready)
    app.router.add_static("/static", STATIC)
    areas.setup(app)
    return app


def run(settings: Settings) -> None:
    """Serve :func:`create_app` on ``settings.console_host``:``console_port`` until interrupted, and the process's
    Prometheus metrics on ``settings.metrics_port`` when set (:mod:`bot.observability.metrics`)."""
    metrics.serve(settings.metrics_port)
    web.run_app(create_app(settings), host=settings.console_host, port=settings.console_port)
