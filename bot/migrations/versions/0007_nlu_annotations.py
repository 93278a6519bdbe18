"""NLU annotations

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-21 05:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "nlu_annotations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("conversation_id", sa.String(length=255), nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("predicted_intent", sa.String(length=255), nullable=True),
        sa.Column("predicted_confidence", sa.Float(), nullable=True),
        sa.Column("corrected_intent", sa.String(length=255), nullable=False),
        sa.Column("corrected_entities", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_by", sa.String(length=320), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("exported_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_nlu_annotations_conversation_id", "nlu_annotations", ["conversation_id"])
    op.create_index("ix_nlu_annotations_status", "nlu_annotations", ["status"])
    # At most one pending correction per message (a second correction replaces the first).
    op.create_index(
        "uq_nlu_annotations_pending_event",
        "nlu_annotations",
        ["event_id"],
        unique=True,
        sqlite_where=sa.text("status = 'pending'"),
        postgresql_where=sa.text("status = 'pending'"),
    )


def downgrade() -> None:
    op.drop_index("uq_nlu_annotations_pending_event", table_name="nlu_annotations")
    op.drop_index("ix_nlu_annotations_status", table_name="nlu_annotations")
    op.drop_index("ix_nlu_annotations_conversation_id", table_name="nlu_annotations")
    op.drop_table("nlu_annotations")
