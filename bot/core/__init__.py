"""Closer's core: settings, the business database (engine, models), shared secrets, the business read from
knowledge/, money, Rasa's tracker store (read-only), the audit log, and the turn and outcome every action use case
takes and returns (turn)."""
