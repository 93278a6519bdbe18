"""bookings

``bookings``: calls customers booked with a sales manager (bot.booking.bookings), each an event in the manager's
calendar (Google Calendar or CalDAV) and an e-mailed iCalendar invitation; the customer's e-mail and name encrypted
at rest. A partial unique index keeps one live (not cancelled) booking per calendar and start time.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-06 05:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None

LIVE = "status != 'cancelled'"


def upgrade() -> None:
    op.create_table(
        "bookings",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("conversation_id", sa.String(255), nullable=False),
        sa.Column("deal_id", sa.Integer(), sa.ForeignKey("deals.id", ondelete="SET NULL"), nullable=True),
        sa.Column("provider", sa.String(16), nullable=False),
        sa.Column("event_id", sa.String(1024), nullable=True),
        sa.Column("uid", sa.String(64), nullable=False, unique=True),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("customer_timezone", sa.String(64), nullable=False),
        sa.Column("customer_email", sa.Text(), nullable=False),
        sa.Column("customer_name", sa.Text(), nullable=True),
        sa.Column("language", sa.String(8), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column("invite_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_bookings_conversation_id", "bookings", ["conversation_id"])
    op.create_index("ix_bookings_deal_id", "bookings", ["deal_id"])
    op.create_index("ix_bookings_status", "bookings", ["status"])
    op.create_index(
        "uq_bookings_live_slot",
        "bookings",
        ["provider", "starts_at"],
        unique=True,
        sqlite_where=sa.text(LIVE),
        postgresql_where=sa.text(LIVE),
    )


def downgrade() -> None:
    op.drop_index("uq_bookings_live_slot", table_name="bookings")
    op.drop_index("ix_bookings_status", table_name="bookings")
    op.drop_index("ix_bookings_deal_id", table_name="bookings")
    op.drop_index("ix_bookings_conversation_id", table_name="bookings")
    op.drop_table("bookings")
