"""Key rotation of the encrypted customer data (``python -m bot rotate-key``; keys: :mod:`bot.privacy.encryption`).

:func:`rotate` re-encrypts, under the active key, every stored value of every :class:`~bot.privacy.encryption.Encrypted`
column of :mod:`bot.core.models` that is under another key, BATCH rows a transaction. Values already under the
active key are left alone (SQL picks the others by their ``enc:v1:<kid>:`` prefix), so a second run, or a run
after an interruption, does only what is left. :func:`reindex` recomputes the contacts' blind indexes and
search tokens under the current index key (after ``CLOSER_PII_INDEX_KEY`` changed).

Errors: :class:`bot.privacy.encryption.DecryptionError` for a value no key of the keyring decrypts (the batch it is
in is rolled back; earlier batches stay done).
"""

from sqlalchemy import column, select, table, update
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlalchemy.orm import noload

from bot.core.models import Base, Contact, index_contact
from bot.privacy.encryption import Encrypted, Keyring

BATCH = 500  # rows a transaction


def encrypted_columns() -> list[tuple[str, str, list[str]]]:
    """(table, column, primary key columns) of every encrypted column of the business DB, in table order."""
    return [
        (t.name, c.name, [k.name for k in t.primary_key.columns])
        for t in Base.metadata.sorted_tables
        for c in t.columns
        if isinstance(c.type, Encrypted)
    ]


async def rotate(engine: AsyncEngine, keyring: Keyring, batch: int = BATCH) -> dict[str, int]:
    """Re-encrypt every value not under ``keyring.active``. Returns ``"table.column"`` → values
    re-encrypted, for every encrypted column (0 when none was due)."""
    counts: dict[str, int] = {}
    for table_name, name, keys in encrypted_columns():
        field = f"{table_name}.{name}"
        # Untyped columns: the raw stored strings, not the model's decrypted values.
        raw = table(table_name, column(name), *(column(key) for key in keys))
        stale = raw.c[name].is_not(None) & ~raw.c[name].startswith(keyring.active_prefix(), autoescape=True)
        counts[field] = 0
        while True:
            async with engine.begin() as connection:
                rows = (await connection.execute(select(raw).where(stale).limit(batch))).all()
                for row in rows:
                    value = keyring.encrypt(keyring.decrypt(row[0], field), field)
                    await connection.execute(
                        update(raw)
                        .where(*(raw.c[key] == row[i + 1] for i, key in enumerate(keys)))
                        .values({name: value})
                    )
            counts[field] += len(rows)
            if len(rows) < batch:
                break
    return counts


async def reindex(engine: AsyncEngine, batch: int = BATCH) -> int:
    """Recompute every contact's ``email_index``, ``phone_index`` and ``search_tokens`` with the process's
    keyring (:func:`bot.core.models.index_contact`). Returns the number of contacts whose indexes changed."""
    maker = async_sessionmaker(engine, expire_on_commit=False)
    changed, last_id = 0, 0
    while True:
        async with maker() as session, session.begin():
            contacts = (
                await session.scalars(
                    select(Contact)
                    .options(noload(Contact.deals))
                    .where(Contact.id > last_id)
                    .order_by(Contact.id)
                    .limit(batch)
                )
            ).all()
            for contact in contacts:
                before = (contact.email_index, contact.phone_index, contact.search_tokens)
                index_contact(None, None, contact)
                if before != (contact.email_index, contact.phone_index, contact.search_tokens):
                    changed += 1
        if len(contacts) < batch:
            return changed
        last_id = contacts[-1].id
