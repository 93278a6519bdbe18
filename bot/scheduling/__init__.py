"""Scheduled jobs: APScheduler 3 (``AsyncIOScheduler``) with its SQLAlchemy job store in the business DB.

The jobs (:data:`bot.scheduling.jobs.JOBS`: customer follow-ups, the escalation watchdog, conversation
scoring, the nightly re-index, the managers' digests) run in the **console process**
(``python -m bot console``): it is the one process every installation already runs next to Rasa and the
action server (``make run`` starts nothing more), it holds the clients the jobs need (Rasa's HTTP API, the
managers' Telegram chat), and it has no latency-critical work the jobs could slow down (the action server
answers customers' turns). With several console replicas, the one holding the lease
(:mod:`bot.scheduling.lease`) runs them and the others stand by (:class:`bot.scheduling.runner.JobRunner`).

Every run is recorded in ``job_runs`` and logged with its start, end, duration and outcome; the console's
``/console/schedule`` page shows the jobs, their next run and the last runs; ``python -m bot jobs`` lists them
and ``python -m bot jobs run ID [--now ISO]`` runs one at once (with the clock moved to ``--now``).
"""
