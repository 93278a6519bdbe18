"""quote language

``quotes.language``: the customer's language (ISO 639-1) when the quote was issued, the language its PDF is
rendered in (``bot.commerce.quotes``). The quotes issued before get the business's ``default_language``
(knowledge/company.yml): they were issued in it.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-10 10:00:00
"""

import sqlalchemy as sa
from alembic import op

from bot.core.business import get_company

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("quotes", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("language", sa.String(length=16), nullable=False, server_default=get_company().default_language)
        )


def downgrade() -> None:
    with op.batch_alter_table("quotes", schema=None) as batch_op:
        batch_op.drop_column("language")
