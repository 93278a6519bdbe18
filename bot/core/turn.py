"""One customer turn as the actions see it, and what an action does about it.

:class:`Turn` is read once from Rasa's tracker by ``actions.base.read_turn``; the use cases in ``bot/``
take it and return an :class:`Outcome`, which the action utters and turns into Rasa events. Neither
imports rasa-sdk, so the use cases run and are tested without a tracker.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any


@dataclass(frozen=True)
class Turn:
    """The latest customer message and the conversation around it.

    ``conversation_id`` is Rasa's sender id (``<channel>-<native id>``); ``channel`` is ``web`` for the
    widget (Rasa's rest/socketio), else Rasa's channel name. ``entities`` maps an entity name to its
    distinct values in the latest message, in order (entities with a role or group left out, as
    rasa-sdk's ``get_latest_entity_values`` does). ``slots`` are the tracker's slots. ``user_messages``
    holds (text, intent name) of every customer message, oldest first (the latest one last);
    ``said`` holds (``"customer"`` or ``"bot"``, text) of every message with text, oldest first. ``forms`` maps each
    form of the business's domain to its required slots, in order (e.g. the questions its lead form asks).
    ``metadata`` is what the channel sent with the latest message (the web chat's ``timezone``; a platform's ids, e.g.
    ``{"avito": {"chat_id", "item_id", …}}``)."""

    conversation_id: str
    channel: str
    text: str = ""
    intent: str | None = None
    entities: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    slots: Mapping[str, Any] = field(default_factory=dict)
    user_messages: tuple[tuple[str, str | None], ...] = ()
    said: tuple[tuple[str, str], ...] = ()
    forms: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    metadata: Mapping[str, Any] = field(default_factory=dict)

    def entity(self, name: str) -> list[str]:
        """Distinct values of entity ``name`` in the latest message, in order (empty when none)."""
        return list(self.entities.get(name, ()))

    def slot(self, name: str) -> Any:
        """The value of slot ``name``, None when unset."""
        return self.slots.get(name)

    @property
    def language(self) -> str | None:
        """The customer's language (slot ``language``, ISO 639-1), None until one was detected or asked for:
        :func:`bot.texts.i18n.current` then takes the business's default."""
        return self.slots.get("language") or None

    @property
    def contact_id(self) -> int | None:
        """The contact saved in this conversation (slot ``contact_id``; Rasa stores it as a float), if any."""
        value = self.slots.get("contact_id")
        return int(value) if value else None

    @property
    def granted_discount(self) -> Decimal:
        """The extra discount (a fraction) the bot granted in this conversation (slot ``granted_discount``),
        0 if none."""
        return Decimal(self.slots.get("granted_discount") or "0")


@dataclass
class Outcome:
    """What to do about a turn. ``messages`` are sent in order, each the keyword arguments of one
    rasa-sdk ``dispatcher.utter_message`` (``response=`` a domain response and its variables, or
    ``text=``, ``buttons=``, ``json_message=``); ``slots`` are (name, value) set in order; ``reset_slots``
    resets every slot first; ``pause`` pauses the bot afterwards (a manager takes over)."""

    messages: list[dict[str, Any]] = field(default_factory=list)
    slots: list[tuple[str, Any]] = field(default_factory=list)
    reset_slots: bool = False
    pause: bool = False

    def say(self, **message: Any) -> "Outcome":
        """Add one message (``utter_message`` keyword arguments); returns self."""
        self.messages.append(message)
        return self

    def set(self, slot: str, value: Any) -> "Outcome":
        """Set ``slot`` to ``value`` (after the slots set before); returns self."""
        self.slots.append((slot, value))
        return self

    def then(self, other: "Outcome") -> "Outcome":
        """Append ``other``'s messages and slots and take its pause; returns self."""
        self.messages += other.messages
        self.slots += other.slots
        self.pause = self.pause or other.pause
        return self
