"""pending erasures

``pending_erasures``: a customer's "forget me" whose business-DB side is done but whose tracker events
still wait to be rewritten (:mod:`bot.privacy.erasure`): Rasa is still in the turn that asked for it, and would
store its in-memory tracker again if the rows were rewritten under it. ``conversation_id`` is Rasa's
sender id (it may hold a phone number) and is kept only until the request is completed, when the row is
deleted; ``anonymous_id`` the ``erased-<hex>`` id the events move to; ``not_before`` when to complete it.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03 16:45:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "pending_erasures",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("conversation_id", sa.String(length=255), nullable=False),
        sa.Column("anonymous_id", sa.String(length=64), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("not_before", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("conversation_id"),
    )


def downgrade() -> None:
    op.drop_table("pending_erasures")
