"""sales documents

``sales_documents``: the invoices and contracts issued from a paid quote (bot.commerce.invoicing), numbered per
kind and year, each behind an unguessable link.

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-06 05:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sales_documents",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("number", sa.String(32), nullable=False, unique=True),
        sa.Column("quote_id", sa.Integer(), sa.ForeignKey("quotes.id", ondelete="CASCADE"), nullable=False),
        sa.Column("payment_id", sa.Integer(), sa.ForeignKey("payments.id", ondelete="SET NULL"), nullable=True),
        sa.Column("paid_minor", sa.Integer(), nullable=False),
        sa.Column("paid_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("token", sa.String(64), nullable=False, unique=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_sales_documents_quote_id", "sales_documents", ["quote_id"])
    op.create_index("ix_sales_documents_payment_id", "sales_documents", ["payment_id"])


def downgrade() -> None:
    op.drop_index("ix_sales_documents_payment_id", "sales_documents")
    op.drop_index("ix_sales_documents_quote_id", "sales_documents")
    op.drop_table("sales_documents")
