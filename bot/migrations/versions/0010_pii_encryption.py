"""PII encryption at rest

Customer data becomes ``enc:v1:<kid>:…`` values under the active PII key (``bot.privacy.encryption``): contacts'
name, company, email and phone; the free texts that carry customer data (deal notes, escalation summaries
and resolution notes, conversation review notes, feedback comments); the CRM outbox's JSON payloads
(contact records). Those columns become TEXT (ciphertext is longer than the plaintext; ``crm_outbox.payload``
was JSON). ``contacts`` gets the blind indexes ``email_index`` and ``phone_index`` (indexed, replacing the
indexes on the plaintext) and ``search_tokens``. Existing rows are encrypted and indexed, BATCH rows at a
time; values already encrypted are left alone, so a rerun after an interruption finishes the job. The
downgrade decrypts every value back to plaintext (it needs the keys too) and restores the columns.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-22 10:00:00
"""

import sqlalchemy as sa
from alembic import op

from bot.privacy.encryption import PREFIX, get_keyring

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

BATCH = 500
# table → (primary key, {encrypted column: its type before this revision}); the AAD is "table.column".
ENCRYPTED = {
    "contacts": (
        "id",
        {
            "name": sa.String(length=255),
            "company": sa.String(length=255),
            "email": sa.String(length=320),
            "phone": sa.String(length=32),
        },
    ),
    "deal_notes": ("id", {"body": sa.Text()}),
    "escalations": ("id", {"summary": sa.Text(), "resolution_note": sa.Text()}),
    "conversation_reviews": ("conversation_id", {"note": sa.Text()}),
    "feedback": ("id", {"comment": sa.Text()}),
    "crm_outbox": ("id", {"payload": sa.JSON()}),
}
INDEXES = ("email_index", "phone_index", "search_tokens")


def _rows(table: str, key: str, columns: list[str]):
    """Every row's (key, *columns), in key order, BATCH at a time (keyset pagination)."""
    bind = op.get_bind()
    select = f"SELECT {key}, {', '.join(columns)} FROM {table}"
    last = None
    while True:
        rows = bind.execute(
            sa.text(f"{select} {'' if last is None else f'WHERE {key} > :last'} ORDER BY {key} LIMIT {BATCH}"),
            {} if last is None else {"last": last},
        ).all()
        yield from rows
        if len(rows) < BATCH:
            return
        last = rows[-1][0]


def _rewrite(table: str, encrypt: bool) -> None:
    """Encrypt (or decrypt) every value of ``table``'s encrypted columns that is not yet so, and for
    ``contacts`` (encrypting) set the blind indexes from the plain values."""
    key, columns = ENCRYPTED[table]
    keyring = get_keyring()
    names = list(columns)
    indexed = encrypt and table == "contacts"
    targets = names + (list(INDEXES) if indexed else [])
    update = sa.text(f"UPDATE {table} SET {', '.join(f'{n} = :{n}' for n in targets)} WHERE {key} = :key")
    for row_key, *values in _rows(table, key, names):
        stored = dict(zip(names, values, strict=True))
        plain = {
            n: keyring.decrypt(v, f"{table}.{n}") if v is not None and v.startswith(PREFIX) else v
            for n, v in stored.items()
        }
        if encrypt:
            row = {
                n: v if v is None or v.startswith(PREFIX) else keyring.encrypt(v, f"{table}.{n}")
                for n, v in stored.items()
            }
        else:
            row = plain
        if indexed:
            row.update(
                email_index=keyring.email_index(plain["email"]),
                phone_index=keyring.phone_index(plain["phone"]),
                search_tokens=keyring.search_tokens(plain["name"], plain["company"], plain["email"], plain["phone"]),
            )
        op.get_bind().execute(update, {**row, "key": row_key})


def upgrade() -> None:
    with op.batch_alter_table("contacts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_contacts_email"))
        batch_op.drop_index(batch_op.f("ix_contacts_phone"))
        batch_op.add_column(sa.Column("email_index", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("phone_index", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("search_tokens", sa.Text(), nullable=True))
    for table, (_, columns) in ENCRYPTED.items():
        with op.batch_alter_table(table, schema=None) as batch_op:
            for name, old in columns.items():
                if not isinstance(old, sa.Text):
                    batch_op.alter_column(name, type_=sa.Text(), existing_type=old, postgresql_using=f"{name}::text")
    for table in ENCRYPTED:
        _rewrite(table, encrypt=True)
    with op.batch_alter_table("contacts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_contacts_email_index"), ["email_index"], unique=False)
        batch_op.create_index(batch_op.f("ix_contacts_phone_index"), ["phone_index"], unique=False)


def downgrade() -> None:
    for table in ENCRYPTED:
        _rewrite(table, encrypt=False)
    for table, (_, columns) in ENCRYPTED.items():
        with op.batch_alter_table(table, schema=None) as batch_op:
            for name, old in columns.items():
                if not isinstance(old, sa.Text):
                    batch_op.alter_column(
                        name,
                        type_=old,
                        existing_type=sa.Text(),
                        postgresql_using=f"{name}::{'json' if isinstance(old, sa.JSON) else 'varchar'}",
                    )
    with op.batch_alter_table("contacts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_contacts_phone_index"))
        batch_op.drop_index(batch_op.f("ix_contacts_email_index"))
        batch_op.drop_column("search_tokens")
        batch_op.drop_column("phone_index")
        batch_op.drop_column("email_index")
        batch_op.create_index(batch_op.f("ix_contacts_email"), ["email"], unique=False)
        batch_op.create_index(batch_op.f("ix_contacts_phone"), ["phone"], unique=False)
