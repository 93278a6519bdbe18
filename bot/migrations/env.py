"""Alembic environment: runs migrations over the async engine of ``sqlalchemy.url``."""

import asyncio

from alembic import context
from sqlalchemy.ext.asyncio import create_async_engine

from bot.core.models import Base

config = context.config
target_metadata = Base.metadata
OWN_TABLES = frozenset({"apscheduler_jobs"})  # created and owned by a library (bot.scheduling's job store)


def include_name(name: str | None, kind: str, parent_names: dict) -> bool:
    """Autogenerate compares every table but those a library owns."""
    return not (kind == "table" and name in OWN_TABLES)


def run_migrations(connection) -> None:
    context.configure(
        connection=connection, target_metadata=target_metadata, render_as_batch=True, include_name=include_name
    )
    with context.begin_transaction():
        context.run_migrations()


async def run_async() -> None:
    engine = create_async_engine(config.get_main_option("sqlalchemy.url"))
    async with engine.connect() as connection:
        await connection.run_sync(run_migrations)
    await engine.dispose()


if context.is_offline_mode():
    context.configure(url=config.get_main_option("sqlalchemy.url"), target_metadata=target_metadata)
    with context.begin_transaction():
        context.run_migrations()
else:
    asyncio.run(run_async())
