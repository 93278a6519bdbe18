"""Document numbers of the form ``<prefix>-<year>-<NNNN>``, counted per prefix and year: quotes (``Q-2026-0001``,
``КП-2026-0001``), invoices and contracts (:mod:`bot.commerce.invoicing`). The prefixes come from company.yml."""

from sqlalchemy import Integer, cast, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

NUMBERING_LOCK = 0x0C1053_0001  # PostgreSQL advisory lock key of document numbering (any constant of Closer's own)


async def next_number(session: AsyncSession, column: InstrumentedAttribute[str], prefix: str, year: int) -> str:
    """``<prefix>-<year>-<n>`` for a new row of ``column``'s table: n one above the highest of that prefix and year in
    ``column`` (numerically: 10000 follows 9999), at least 4 digits. On PostgreSQL the transaction first takes
    :data:`NUMBERING_LOCK` (released at its end), so that processes numbering at once number one after the other
    instead of colliding (SQLite writers queue anyway); ``column`` is unique, so a collision that still happens
    raises IntegrityError at flush and the caller takes the next number."""
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(select(func.pg_advisory_xact_lock(NUMBERING_LOCK)))
    start = f"{prefix}-{year}-"
    sequence = cast(func.substr(column, len(start) + 1), Integer)
    last = await session.scalar(select(func.max(sequence)).where(column.like(f"{start}%")))
    return f"{start}{(last or 0) + 1:04d}"
