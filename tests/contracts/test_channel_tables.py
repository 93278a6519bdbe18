"""The channel tables of bot.contracts.channel_tables (what the Rasa server's channels and the ORM use)
against the schema the Alembic migrations produce on a real database (SQLite, or PostgreSQL under
``CLOSER_TEST_DB=postgresql``): columns, their types as the database declares them (SQLite keeps no time zone),
nullability, primary keys, indexes and unique constraints. A column, index or constraint added, removed or
changed on either side fails here."""

import pytest
import sqlalchemy as sa

from bot.contracts import channel_tables
from bot.contracts.database import synchronous
from bot.core.models import Base


def differences(table: sa.Table, inspector: sa.engine.Inspector) -> list[str]:
    """What differs between ``table`` and the table of that name in the database ``inspector`` reads."""
    dialect = inspector.bind.dialect
    name = table.name
    if not inspector.has_table(name):
        return [f"{name}: not in the migrated schema"]
    problems = []
    found = {column["name"]: column for column in inspector.get_columns(name)}
    for column in table.columns:
        migrated = found.pop(column.name, None)
        if migrated is None:
            problems.append(f"{name}.{column.name}: in the contract only")
            continue
        declared, actual = column.type.compile(dialect=dialect), migrated["type"].compile(dialect=dialect)
        if declared != actual:
            problems.append(f"{name}.{column.name}: {declared} in the contract, {actual} migrated")
        if column.nullable != migrated["nullable"]:
            problems.append(
                f"{name}.{column.name}: nullable {column.nullable} in the contract, {migrated['nullable']} migrated"
            )
    problems += [f"{name}.{column}: migrated only" for column in found]
    primary_key = [column.name for column in table.primary_key.columns]
    if primary_key != inspector.get_pk_constraint(name)["constrained_columns"]:
        problems.append(
            f"{name}: primary key {primary_key} in the contract, "
            f"{inspector.get_pk_constraint(name)['constrained_columns']} migrated"
        )
    indexes = dict(
        sorted((index.name, ([column.name for column in index.columns], bool(index.unique))) for index in table.indexes)
    )
    migrated_indexes = dict(
        sorted(
            (index["name"], (index["column_names"], bool(index["unique"])))
            for index in inspector.get_indexes(name)
            if "duplicates_constraint" not in index  # PostgreSQL's index of a unique constraint
        )
    )
    if indexes != migrated_indexes:
        problems.append(f"{name}: indexes {indexes} in the contract, {migrated_indexes} migrated")
    unique = sorted(
        [column.name for column in constraint.columns]
        for constraint in table.constraints
        if isinstance(constraint, sa.UniqueConstraint)
    )
    migrated_unique = sorted(constraint["column_names"] for constraint in inspector.get_unique_constraints(name))
    if unique != migrated_unique:
        problems.append(f"{name}: unique constraints {unique} in the contract, {migrated_unique} migrated")
    return problems


@pytest.fixture
def migrated(db_url: str):
    """A synchronous engine on the business DB the migrations created (``db_url`` runs them)."""
    engine = sa.create_engine(synchronous(db_url))
    yield engine
    engine.dispose()


@pytest.mark.parametrize("table", channel_tables.TABLES, ids=lambda table: table.name)
def test_the_contract_table_is_what_the_migrations_create(migrated: sa.engine.Engine, table: sa.Table) -> None:
    assert differences(table, sa.inspect(migrated)) == []


def test_the_orm_maps_the_contract_tables_and_alembic_sees_them() -> None:
    assert Base.metadata is channel_tables.metadata  # Alembic's autogenerate target (bot/migrations/env.py)
    assert all(Base.metadata.tables[table.name] is table for table in channel_tables.TABLES)


def test_a_drift_on_either_side_is_found(migrated: sa.engine.Engine) -> None:
    contract = channel_tables.messages.to_metadata(sa.MetaData())
    contract.c.kind.nullable = False
    contract.append_column(sa.Column("priority", sa.Integer))
    sa.Index("ix_channel_messages_status", contract.c.status)
    assert differences(contract, sa.inspect(migrated)) == [
        "channel_messages.kind: nullable False in the contract, True migrated",
        "channel_messages.priority: in the contract only",
        "channel_messages: indexes {'ix_channel_messages_recipient_id': (['recipient_id'], False), "
        "'ix_channel_messages_status': (['status'], False)} in the contract, "
        "{'ix_channel_messages_recipient_id': (['recipient_id'], False)} migrated",
    ]

    with migrated.begin() as connection:  # a migration that changes the table without the contract
        connection.execute(sa.text("ALTER TABLE channel_customers ADD COLUMN locale VARCHAR(8)"))
        connection.execute(sa.text("CREATE UNIQUE INDEX ix_channel_customers_name ON channel_customers (name)"))
    assert differences(channel_tables.customers, sa.inspect(migrated)) == [
        "channel_customers.locale: migrated only",
        "channel_customers: indexes {} in the contract, {'ix_channel_customers_name': (['name'], True)} migrated",
    ]
