"""Closer's core: settings, the business database (engine, models), shared secrets, the business read from knowledge/, money, Rasa's tracker store (read-only) and the audit log."""
