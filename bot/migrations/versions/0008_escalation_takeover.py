"""escalation takeover

Escalations get a manager's lifecycle: ``pending`` → ``in_progress`` (``assignee``, ``taken_at``) →
``resolved`` (``resolved_at``, formerly ``handed_back_at``; ``resolution_note``, ``resolved_by``).
Existing rows map ``open`` → ``pending`` and ``handed_back`` → ``resolved``; the downgrade maps them back
(``in_progress`` → ``open``) and drops the assignee and resolution columns.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-21 05:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("escalations", schema=None) as batch_op:
        batch_op.alter_column(
            "handed_back_at",
            new_column_name="resolved_at",
            existing_type=sa.DateTime(timezone=True),
            existing_nullable=True,
        )
        batch_op.add_column(sa.Column("assignee", sa.String(length=320), nullable=True))
        batch_op.add_column(sa.Column("taken_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("resolution_note", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("resolved_by", sa.String(length=320), nullable=True))
        batch_op.create_index(batch_op.f("ix_escalations_status"), ["status"], unique=False)
    op.execute("UPDATE escalations SET status = 'pending' WHERE status = 'open'")
    op.execute("UPDATE escalations SET status = 'resolved' WHERE status = 'handed_back'")


def downgrade() -> None:
    op.execute("UPDATE escalations SET status = 'open' WHERE status IN ('pending', 'in_progress')")
    op.execute("UPDATE escalations SET status = 'handed_back' WHERE status = 'resolved'")
    with op.batch_alter_table("escalations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_escalations_status"))
        batch_op.drop_column("resolved_by")
        batch_op.drop_column("resolution_note")
        batch_op.drop_column("taken_at")
        batch_op.drop_column("assignee")
        batch_op.alter_column(
            "resolved_at",
            new_column_name="handed_back_at",
            existing_type=sa.DateTime(timezone=True),
            existing_nullable=True,
        )
