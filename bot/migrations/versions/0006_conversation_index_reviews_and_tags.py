"""conversation index, reviews and tags

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-21 05:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "conversations",
        sa.Column("conversation_id", sa.String(length=255), nullable=False),
        sa.Column("channel", sa.String(length=32), nullable=False),
        sa.Column("contact_id", sa.Integer(), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_message_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("turns", sa.Integer(), nullable=False),
        sa.Column("furthest_stage", sa.String(length=32), nullable=True),
        sa.Column("stage_rank", sa.Integer(), nullable=False),
        sa.Column("escalated", sa.Boolean(), nullable=False),
        sa.Column("quote_created", sa.Boolean(), nullable=False),
        sa.Column("paused", sa.Boolean(), nullable=False),
        sa.Column("min_confidence", sa.Float(), nullable=True),
        sa.Column("fallback_count", sa.Integer(), nullable=False),
        sa.Column("last_event_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["contact_id"], ["contacts.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("conversation_id"),
    )
    # Secondary indexes as measured by bench/console_list.py: conversation_messages.conversation_id makes most
    # filtered lists 2-3x faster (each page reads its conversations' latest messages); contact_id serves a
    # contact's conversations and ON DELETE SET NULL. Indexes on conversations.last_message_at and
    # conversation_tags.tag made no filter faster and are left out.
    op.create_index("ix_conversations_contact_id", "conversations", ["contact_id"])
    op.create_table(
        "conversation_messages",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("conversation_id", sa.String(length=255), nullable=False),
        sa.Column("timestamp", sa.DateTime(timezone=True), nullable=False),
        sa.Column("speaker", sa.String(length=16), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("intent", sa.String(length=255), nullable=True),
        sa.Column("confidence", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(["conversation_id"], ["conversations.conversation_id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_conversation_messages_conversation_id", "conversation_messages", ["conversation_id"])
    op.create_table(
        "conversation_reviews",
        sa.Column("conversation_id", sa.String(length=255), nullable=False),
        sa.Column("flagged", sa.Boolean(), nullable=False),
        sa.Column("reviewed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reviewed_by", sa.String(length=255), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["conversation_id"], ["conversations.conversation_id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("conversation_id"),
    )
    op.create_table(
        "conversation_tags",
        sa.Column("conversation_id", sa.String(length=255), nullable=False),
        sa.Column("tag", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(["conversation_id"], ["conversations.conversation_id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("conversation_id", "tag"),
    )
    watermarks = op.create_table(
        "index_watermarks",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("last_event_id", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    # The conversation index's row exists from the start, so refreshes can lock it (SELECT … FOR UPDATE).
    op.bulk_insert(watermarks, [{"name": "conversations", "last_event_id": 0}])


def downgrade() -> None:
    op.drop_table("index_watermarks")
    op.drop_table("conversation_tags")
    op.drop_table("conversation_reviews")
    op.drop_index("ix_conversation_messages_conversation_id", table_name="conversation_messages")
    op.drop_table("conversation_messages")
    op.drop_index("ix_conversations_contact_id", table_name="conversations")
    op.drop_table("conversations")
