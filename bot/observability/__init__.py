"""Operating Closer: whether a process is ready to serve (:mod:`bot.observability.readiness`) and what it has
done, as Prometheus metrics (:mod:`bot.observability.metrics`)."""
