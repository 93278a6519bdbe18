"""A message Closer writes first, on the customer's own channel, through the Rasa server.

The message is appended to the conversation's tracker as a ``bot`` event through Rasa's HTTP API (signed like
every console call, :class:`bot.core.rasa.RasaClient`) with ``output_channel=latest``: Rasa hands it to the
output channel of the customer's last message (Telegram, WhatsApp), and the transcript shows it. Its
``metadata`` says why it was written (e.g. ``{"follow_up": "quote_sent"}``). The web chat's REST channel
only collects: the widget fetches such messages with the managers' replies (``/api/chat/updates``).

On WhatsApp, free text is allowed only within 24 hours of the customer's last message (Meta's
customer-service window, read from ``channel_customers.last_inbound_at``, which ``connectors/whatsapp.py``
writes). Outside it the message goes as the approved template given for the customer's language
(the bot event carries ``custom.whatsapp_template``, which the WhatsApp channel sends as a template), or not
at all (:class:`WindowClosed`).
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.contracts import conversation_ids
from bot.core.models import ChannelCustomer
from bot.core.rasa import RasaClient
from bot.follow_ups.cadences import WhatsAppTemplate

WHATSAPP = "whatsapp"
WHATSAPP_WINDOW = timedelta(hours=24)


class WindowClosed(Exception):
    """WhatsApp's 24-hour window is closed and no template was given for the customer's language."""


@dataclass(frozen=True)
class Sent:
    """How a message went out: ``as_template`` (the WhatsApp template's name) or None for text."""

    as_template: str | None = None


async def whatsapp_window_open(session: AsyncSession, conversation_id: str, now: datetime) -> bool:
    """Whether a WhatsApp conversation may get free text at ``now``: the customer wrote within 24 hours."""
    parsed = conversation_ids.parse(conversation_id)
    if parsed is None:
        return False
    last = await session.scalar(
        select(ChannelCustomer.last_inbound_at).where(
            ChannelCustomer.channel == parsed[0], ChannelCustomer.user_id == parsed[1]
        )
    )
    if last is None:
        return False
    if last.tzinfo is None:  # SQLite returns naive UTC
        last = last.replace(tzinfo=now.tzinfo)
    return now - last < WHATSAPP_WINDOW


async def write_first(
    rasa: RasaClient,
    session: AsyncSession,
    conversation_id: str,
    text: str,
    metadata: dict[str, Any],
    *,
    now: datetime,
    language: str,
    templates: dict[str, WhatsAppTemplate] | None = None,
) -> Sent:
    """Send ``text`` to the customer of ``conversation_id`` (see the module's docstring). ``templates``: language →
    WhatsApp template for when the window is closed. Raises WindowClosed (nothing sent) and
    :class:`bot.core.rasa.RasaError` when Rasa refused or could not be reached."""
    event: dict[str, Any] = {"event": "bot", "text": text, "metadata": metadata}
    sent = Sent()
    if conversation_ids.channel_from_id(conversation_id) == WHATSAPP and not await whatsapp_window_open(
        session, conversation_id, now
    ):
        template = (templates or {}).get(language)
        if template is None:
            raise WindowClosed(f"WhatsApp's 24-hour window of {conversation_id} is closed and no template is set")
        custom = {"whatsapp_template": {"name": template.name, "language": template.code}}
        event = {**event, "text": f"[WhatsApp template {template.name} ({template.code})]", "data": {"custom": custom}}
        sent = Sent(as_template=template.name)
    await rasa.append_events(conversation_id, [event], deliver=True)
    return sent
