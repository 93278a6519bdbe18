"""The tables the messaging channels keep their state in, in the business DB: written by ``connectors/``
inside the Rasa server (``connectors.store.ChannelStore``), read and erased by ``bot/`` (the ORM classes
``ChannelDelivery``, ``ChannelCustomer``, ``ChannelMessage`` and ``TelegramCallback`` of
``bot.core.models`` are mapped onto these very tables). Alembic's migrations create them (0004);
tests/contracts/ checks that the two agree.

:data:`metadata` is the MetaData of every business table: ``bot.core.models.Base`` declares its own on it.
Times are timezone-aware UTC (SQLite gives them back naive; they were stored in UTC).
"""

from datetime import datetime, timezone

import sqlalchemy as sa

metadata = sa.MetaData()


def utcnow() -> datetime:
    """Now, timezone-aware UTC: the default of the tables' time columns."""
    return datetime.now(timezone.utc)


# One inbound webhook delivery of a messaging channel, kept for deduplication (at least 24 h) and so that
# a delivery acknowledged but not yet processed survives a restart. ``delivery_id``: Telegram's
# ``update_id`` (an edit is an update of its own), WhatsApp's message id (``wamid…``), Avito's message id;
# ``sender_id``: the conversation id (``telegram-<chat id>``, ``whatsapp-<wa_id>``, ``avito-<chat_id>``, see
# bot.contracts.conversation_ids);
# ``error``: why processing failed, or that the rate limit skipped it; ``claimed_by``: the Rasa server replica
# (``CLOSER_REPLICA_ID``) that accepted or took over the delivery, at ``claimed_at`` (connectors.store).
deliveries = sa.Table(
    "channel_deliveries",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("channel", sa.String(16), nullable=False),
    sa.Column("delivery_id", sa.String(160), nullable=False),
    sa.Column("sender_id", sa.String(80), nullable=False),
    sa.Column("payload", sa.JSON, nullable=False),
    sa.Column("received_at", sa.DateTime(timezone=True), nullable=False, default=utcnow, index=True),
    sa.Column("processed_at", sa.DateTime(timezone=True)),
    sa.Column("error", sa.Text),
    sa.Column("claimed_by", sa.String(64)),
    sa.Column("claimed_at", sa.DateTime(timezone=True)),
    sa.UniqueConstraint("channel", "delivery_id"),
    # a customer's unprocessed deliveries, oldest first: each replica processes them in that order (ChannelStore.claim)
    sa.Index("ix_channel_deliveries_sender", "channel", "sender_id", "processed_at", "id"),
)

# A customer as a messaging channel knows them (``user_id``: the native id, e.g. the chat id, wa_id or Avito chat_id):
# display name and the time of their last inbound message (WhatsApp's 24-hour window opens there).
customers = sa.Table(
    "channel_customers",
    metadata,
    sa.Column("channel", sa.String(16), primary_key=True),
    sa.Column("user_id", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(255)),
    sa.Column("last_inbound_at", sa.DateTime(timezone=True), nullable=False, default=utcnow),
)

# A message the bot (or a manager) sent on a channel and what became of it. ``kind``: text, buttons, list,
# image, document, template, custom. ``status``: sent → delivered → read, or failed, each stage with its
# own time (WhatsApp's status webhooks may arrive out of order; a later stage is never replaced by an
# earlier one); ``held``: a WhatsApp message kept back outside the 24-hour window (``body`` holds Rasa's
# message dict), sent when the customer next writes.
messages = sa.Table(
    "channel_messages",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("channel", sa.String(16), nullable=False),
    sa.Column("message_id", sa.String(160), nullable=False),
    sa.Column("recipient_id", sa.String(64), nullable=False, index=True),
    sa.Column("kind", sa.String(16)),
    sa.Column("template", sa.String(128)),
    sa.Column("status", sa.String(16), nullable=False, default="sent"),
    sa.Column("sent_at", sa.DateTime(timezone=True)),
    sa.Column("delivered_at", sa.DateTime(timezone=True)),
    sa.Column("read_at", sa.DateTime(timezone=True)),
    sa.Column("failed_at", sa.DateTime(timezone=True)),
    sa.Column("error", sa.Text),
    sa.Column("body", sa.JSON),
    sa.UniqueConstraint("channel", "message_id"),
)

# A button payload too long for the platform (Telegram's 64-byte ``callback_data``, WhatsApp's button and
# row ids): the button carries ``#<key>`` (key: the first 32 hex digits of the payload's SHA-256) and the
# press is looked up here.
telegram_callbacks = sa.Table(
    "telegram_callbacks",
    metadata,
    sa.Column("key", sa.String(32), primary_key=True),
    sa.Column("payload", sa.Text, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, default=utcnow),
)

TABLES = (deliveries, customers, messages, telegram_callbacks)
