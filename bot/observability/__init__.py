"""Operating Closer: whether a process is ready to serve (:mod:`bot.observability.readiness`)."""
