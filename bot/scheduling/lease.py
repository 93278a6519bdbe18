"""Which process runs the scheduled jobs: a lease row in the business DB (``scheduler_leases``).

A process holds the lease named ``name`` until its ``expires_at`` and renews it before then; another
process takes it only once it has expired. Taking and renewing is one conditional ``UPDATE`` (or the first
``INSERT``), atomic on SQLite and PostgreSQL alike, so two console replicas never both hold it::

    lease = Lease(settings.database_url, ttl_s=30)
    if await lease.acquire():   # True while this process holds it; call again within ttl_s to keep it
        ...
    await lease.release()
"""

import os
import secrets
import socket
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, update
from sqlalchemy.exc import IntegrityError

from bot.core.db import session_scope
from bot.core.models import SchedulerLease


def process_name() -> str:
    """This process as job runs and leases name it: ``host:pid``."""
    return f"{socket.gethostname()}:{os.getpid()}"


class Lease:
    """The lease ``name`` in the business DB at ``database_url``, held for ``ttl_s`` seconds per
    :meth:`acquire`. ``holder``: ``host:pid:random`` (unique even for two leases in one process)."""

    def __init__(self, database_url: str, name: str = "scheduler", ttl_s: float = 30.0):
        self.database_url = database_url
        self.name = name
        self.ttl_s = ttl_s
        self.holder = f"{process_name()}:{secrets.token_hex(4)}"

    async def acquire(self, now: datetime | None = None) -> bool:
        """Take the lease if it is free or expired, or renew it if this holder has it, until ``now`` +
        ``ttl_s``; True when this holder has it afterwards. Raises SQLAlchemy's errors when the DB cannot be
        reached (the caller then treats the lease as lost)."""
        now = now or datetime.now(UTC)
        expires = now + timedelta(seconds=self.ttl_s)
        async with session_scope(self.database_url) as session:
            taken = await session.execute(
                update(SchedulerLease)
                .where(
                    SchedulerLease.name == self.name,
                    (SchedulerLease.holder == self.holder) | (SchedulerLease.expires_at < now),
                )
                .values(holder=self.holder, expires_at=expires)
            )
            if taken.rowcount == 1:  # type: ignore[attr-defined]
                await session.commit()
                return True
            session.add(SchedulerLease(name=self.name, holder=self.holder, expires_at=expires))
            try:
                await session.commit()
            except IntegrityError:  # someone else holds it
                await session.rollback()
                return False
            return True

    async def release(self) -> None:
        """Give the lease up now (if this holder has it), so another process need not wait for it to expire."""
        async with session_scope(self.database_url) as session:
            await session.execute(
                delete(SchedulerLease).where(SchedulerLease.name == self.name, SchedulerLease.holder == self.holder)
            )
            await session.commit()
