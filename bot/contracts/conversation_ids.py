"""Conversation ids, and their pseudonyms in logs.

Conversation ids: Rasa's sender id of a customer's conversation is ``<channel>-<native id>``, the
native id being the channel's own id of the customer (the web chat's session id, Telegram's chat id,
WhatsApp's ``wa_id``, Avito's ``chat_id``), e.g. ``web-3f2a…``, ``telegram-1111111``,
``telegram--1001234`` (a negative chat id), ``whatsapp-971501112233``, ``avito-u2i-PJIBDmGhVVdQpNZMgvW~Sw``. Only
the first ``-`` separates the two.

Rasa's input channel names ``rest`` and ``socketio`` (the web chat's transports) are the channel ``web``.
"""

import hashlib
import hmac

CHANNELS = ("web", "telegram", "whatsapp", "avito")
WEB_INPUT_CHANNELS = ("rest", "socketio")  # Rasa's input channels of the web chat
OTHER = "other"  # the channel of a conversation whose id names none of CHANNELS
SEPARATOR = "-"


def make(channel: str, native_id: object) -> str:
    """The conversation id of ``native_id`` (str or int) on ``channel``, e.g. ``make("telegram", 42)`` →
    ``"telegram-42"``. Raises ValueError for a channel not in :data:`CHANNELS` or an empty native id."""
    native = str(native_id)
    if channel not in CHANNELS or not native:
        raise ValueError(f"no conversation id for channel {channel!r} and native id {native!r}")
    return f"{channel}{SEPARATOR}{native}"


def parse(conversation_id: str) -> tuple[str, str] | None:
    """``(channel, native id)`` of a ``<channel>-<native id>`` id whose channel is one of
    :data:`CHANNELS` and whose native id is not empty, e.g. ``"telegram--100"`` → ``("telegram", "-100")``;
    None for any other string."""
    channel, separator, native = conversation_id.partition(SEPARATOR)
    return (channel, native) if separator and native and channel in CHANNELS else None


def channel_from_id(conversation_id: str) -> str:
    """The channel named by ``conversation_id`` (see :func:`parse`), else :data:`OTHER`."""
    parsed = parse(conversation_id)
    return parsed[0] if parsed else OTHER


def channel_from_input(input_channel: str) -> str:
    """The channel of a message that came through Rasa's input channel ``input_channel``: ``web`` for
    ``rest`` and ``socketio``, else the input channel's own name (``telegram``, ``whatsapp``, …)."""
    return "web" if input_channel in WEB_INPUT_CHANNELS else input_channel


def pseudonym(index_key: bytes, conversation_id: str) -> str:
    """A conversation's pseudonym in logs, the same in every process: ``c`` and the first 16 hex digits of the
    HMAC-SHA256 of ``conversation\\0<id>`` under the 32-byte blind-index key (``CLOSER_PII_INDEX_KEY``,
    :mod:`bot.privacy.encryption`). The id itself can hold a phone number (``whatsapp-971…``)."""
    return "c" + hmac.new(index_key, f"conversation\0{conversation_id}".encode(), hashlib.sha256).hexdigest()[:16]
