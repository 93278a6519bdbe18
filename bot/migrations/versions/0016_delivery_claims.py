"""delivery claims

``channel_deliveries.claimed_by`` and ``claimed_at``: which Rasa server replica is processing a delivery
(connectors.store.ChannelStore.claim), so that with several replicas one delivery is processed once, and the
deliveries of a replica that stopped are taken over by the others after ``STALE_CLAIM_S``.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-05 19:35:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("channel_deliveries") as batch:
        batch.add_column(sa.Column("claimed_by", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("channel_deliveries") as batch:
        batch.drop_column("claimed_at")
        batch.drop_column("claimed_by")
