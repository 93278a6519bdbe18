"""The console process's services, as keys of its aiohttp application: :func:`bot.web.app.create_app` builds
each once at start-up; handlers of the web chat (:mod:`bot.web.chat`) and the manager console
(:mod:`bot.web.console`) read them from ``request.app``, e.g. ``request.app[settings_key].database_url``."""

import jinja2
from aiohttp import web

from bot.core.rasa import RasaClient
from bot.core.settings import Settings
from bot.scheduling.runner import JobRunner

settings_key = web.AppKey("settings", Settings)
templates_key = web.AppKey("templates", jinja2.Environment)  # bot/web/templates, autoescaped
rasa_key = web.AppKey("rasa", RasaClient)  # open while the application runs
job_runner_key = web.AppKey("job_runner", JobRunner)  # the scheduled jobs (when CLOSER_SCHEDULER_ENABLED)
