"""payments

``payments``: the prepayments asked of customers for their quotes through a payment provider (YooKassa,
bot.payments), each with the idempotence key it was created under and the provider's payment id; at most one per
quote pending or succeeded (a partial unique index).

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-07 10:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None

LIVE = sa.text("status IN ('pending', 'waiting_for_capture', 'succeeded')")


def upgrade() -> None:
    op.create_table(
        "payments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("provider", sa.String(length=32), nullable=False),
        sa.Column("provider_payment_id", sa.String(length=64), nullable=True),
        sa.Column("quote_id", sa.Integer(), nullable=False),
        sa.Column("deal_id", sa.Integer(), nullable=True),
        sa.Column("conversation_id", sa.String(length=255), nullable=False),
        sa.Column("amount_minor", sa.Integer(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("confirmation_url", sa.Text(), nullable=True),
        sa.Column("idempotence_key", sa.String(length=64), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("paid_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("fulfilled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["quote_id"], ["quotes.id"]),
        sa.ForeignKeyConstraint(["deal_id"], ["deals.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("provider_payment_id"),
        sa.UniqueConstraint("idempotence_key"),
    )
    op.create_index("ix_payments_quote_id", "payments", ["quote_id"])
    op.create_index("ix_payments_deal_id", "payments", ["deal_id"])
    op.create_index("ix_payments_conversation_id", "payments", ["conversation_id"])
    # At most one payment per quote pending or paid: asking twice (or two action servers at once) makes one link.
    op.create_index(
        "uq_payments_live_quote", "payments", ["quote_id"], unique=True, sqlite_where=LIVE, postgresql_where=LIVE
    )


def downgrade() -> None:
    op.drop_index("uq_payments_live_quote", table_name="payments")
    op.drop_index("ix_payments_conversation_id", table_name="payments")
    op.drop_index("ix_payments_deal_id", table_name="payments")
    op.drop_index("ix_payments_quote_id", table_name="payments")
    op.drop_table("payments")
