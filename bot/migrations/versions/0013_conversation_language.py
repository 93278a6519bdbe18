"""conversation language

``conversations.language``: the customer's language (ISO 639-1) as the conversation index reads it from the
``language`` slot (``bot.review.conversations``), indexed for the console's language filter. The rows indexed
before get the business's ``default_language`` (knowledge/company.yml): their events predate the slot.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-10 09:00:00
"""

import sqlalchemy as sa
from alembic import op

from bot.core.business import get_company

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("conversations", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("language", sa.String(length=16), nullable=False, server_default=get_company().default_language)
        )
        batch_op.create_index(batch_op.f("ix_conversations_language"), ["language"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("conversations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_conversations_language"))
        batch_op.drop_column("language")
