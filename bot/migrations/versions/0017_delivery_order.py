"""delivery order

``ix_channel_deliveries_sender`` on ``channel_deliveries (channel, sender_id, processed_at, id)``: a replica claims a
customer's delivery only when none of their earlier deliveries is unprocessed (connectors.store.ChannelStore.claim),
so that with several Rasa server replicas a customer's messages still have their turns in the order received.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-05 22:10:00
"""

from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_channel_deliveries_sender", "channel_deliveries", ["channel", "sender_id", "processed_at", "id"]
    )


def downgrade() -> None:
    op.drop_index("ix_channel_deliveries_sender", table_name="channel_deliveries")
