"""scheduler and follow-ups

``job_runs`` (each scheduled job's runs, for the console's schedule page), ``scheduler_leases`` (which console
process runs the jobs), ``follow_ups`` and ``follow_up_opt_outs`` (messages Closer writes first, and the
customers who asked it not to), ``conversation_scores`` (the quality scorecard of finished conversations),
``conversations.active_loop`` (the form a conversation is in) and ``escalations.watchdog_at`` (when the
watchdog chased a pending escalation). APScheduler's own job table (``apscheduler_jobs``) is created by its
SQLAlchemy job store and left out of autogenerate (bot/migrations/env.py).

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-05 00:48:48
"""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "follow_ups",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("conversation_id", sa.String(length=255), nullable=False),
        sa.Column("cadence", sa.String(length=32), nullable=False),
        sa.Column("subject", sa.String(length=128), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("conversation_id", "cadence", "subject", "step"),
    )
    with op.batch_alter_table("follow_ups", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_follow_ups_conversation_id"), ["conversation_id"], unique=False)
        batch_op.create_index("ix_follow_ups_due", ["status", "due_at"], unique=False)

    op.create_table(
        "job_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.String(length=64), nullable=False),
        sa.Column("runner", sa.String(length=128), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("duration_s", sa.Float(), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("job_runs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_job_runs_job_id"), ["job_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_job_runs_started_at"), ["started_at"], unique=False)

    op.create_table(
        "scheduler_leases",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("holder", sa.String(length=128), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_table(
        "follow_up_opt_outs",
        sa.Column("conversation_id", sa.String(length=255), nullable=False),
        sa.Column("contact_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["contact_id"], ["contacts.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("conversation_id"),
    )
    with op.batch_alter_table("follow_up_opt_outs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_follow_up_opt_outs_contact_id"), ["contact_id"], unique=False)

    op.create_table(
        "conversation_scores",
        sa.Column("conversation_id", sa.String(length=255), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("criteria", sa.JSON(), nullable=False),
        sa.Column("last_event_id", sa.Integer(), nullable=False),
        sa.Column("llm_model", sa.String(length=255), nullable=True),
        sa.Column("scored_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("conversation_id"),
    )
    with op.batch_alter_table("conversation_scores", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_conversation_scores_total"), ["total"], unique=False)
        batch_op.create_index(batch_op.f("ix_conversation_scores_scored_at"), ["scored_at"], unique=False)

    with op.batch_alter_table("escalations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("watchdog_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("conversations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("active_loop", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("conversations", schema=None) as batch_op:
        batch_op.drop_column("active_loop")
    with op.batch_alter_table("escalations", schema=None) as batch_op:
        batch_op.drop_column("watchdog_at")

    with op.batch_alter_table("follow_up_opt_outs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_follow_up_opt_outs_contact_id"))

    op.drop_table("follow_up_opt_outs")
    with op.batch_alter_table("conversation_scores", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_conversation_scores_scored_at"))
        batch_op.drop_index(batch_op.f("ix_conversation_scores_total"))

    op.drop_table("conversation_scores")
    op.drop_table("scheduler_leases")
    with op.batch_alter_table("job_runs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_job_runs_started_at"))
        batch_op.drop_index(batch_op.f("ix_job_runs_job_id"))

    op.drop_table("job_runs")
    with op.batch_alter_table("follow_ups", schema=None) as batch_op:
        batch_op.drop_index("ix_follow_ups_due")
        batch_op.drop_index(batch_op.f("ix_follow_ups_conversation_id"))

    op.drop_table("follow_ups")
