"""The follow-up cadences of ``knowledge/follow_ups.yml`` (its comments say what each does)."""

from dataclasses import dataclass, field
from typing import Any

import yaml

from bot.core.caches import process_cache
from bot.core.settings import get_settings

CADENCES = ("quote_sent", "cart_abandoned", "lead_form_abandoned")
FILE = "follow_ups.yml"


class CadenceError(ValueError):
    """follow_ups.yml is missing a cadence or has a value of the wrong kind; the message names it."""


@dataclass(frozen=True)
class WhatsAppTemplate:
    """An approved WhatsApp message template: Meta's ``name`` and language ``code`` (e.g. ``en``, ``ar``)."""

    name: str
    code: str


@dataclass(frozen=True)
class Cadence:
    """One cadence: ``remind_after_hours`` (hours of silence before each reminder, in order),
    ``before_expiry_hours`` (quotes only: a last reminder this many hours before the quote expires; None:
    none), ``max_messages`` per conversation, ``whatsapp_templates`` language → template."""

    name: str
    remind_after_hours: tuple[float, ...]
    max_messages: int
    before_expiry_hours: float | None = None
    whatsapp_templates: dict[str, WhatsAppTemplate] = field(default_factory=dict)


@dataclass(frozen=True)
class FollowUpConfig:
    """The whole file: ``cadences`` by name, and the escalation watchdog's ``watchdog_minutes`` (business
    minutes an escalation may wait for a manager)."""

    cadences: dict[str, Cadence]
    watchdog_minutes: float


def _number(raw: Any, where: str) -> float:
    if isinstance(raw, bool) or not isinstance(raw, int | float) or raw < 0:
        raise CadenceError(f"{FILE}: {where} must be a number ≥ 0, not {raw!r}")
    return float(raw)


def _cadence(name: str, raw: Any) -> Cadence:
    if not isinstance(raw, dict):
        raise CadenceError(f"{FILE}: cadence {name} is missing or not a mapping")
    hours = raw.get("remind_after_hours")
    if not isinstance(hours, list) or not hours:
        raise CadenceError(f"{FILE}: {name}.remind_after_hours must be a list of hours")
    templates = {}
    for language, template in (raw.get("whatsapp_templates") or {}).items():
        if not isinstance(template, dict) or not template.get("name") or not template.get("language"):
            raise CadenceError(f"{FILE}: {name}.whatsapp_templates.{language} needs a name and a language")
        templates[str(language)] = WhatsAppTemplate(str(template["name"]), str(template["language"]))
    expiry = raw.get("before_expiry_hours")
    return Cadence(
        name=name,
        remind_after_hours=tuple(_number(h, f"{name}.remind_after_hours") for h in hours),
        max_messages=int(_number(raw.get("max_messages", len(hours)), f"{name}.max_messages")),
        before_expiry_hours=None if expiry is None else _number(expiry, f"{name}.before_expiry_hours"),
        whatsapp_templates=templates,
    )


@process_cache
def get_follow_up_config() -> FollowUpConfig:
    """``<knowledge_dir>/follow_ups.yml``, read once per process. Raises OSError when the file is missing and
    CadenceError when it lacks a cadence of :data:`CADENCES` or a value is wrong."""
    raw = yaml.safe_load((get_settings().knowledge_dir / FILE).read_text(encoding="utf-8")) or {}
    cadences = raw.get("cadences") or {}
    watchdog = raw.get("escalation_watchdog") or {}
    return FollowUpConfig(
        cadences={name: _cadence(name, cadences.get(name)) for name in CADENCES},
        watchdog_minutes=_number(
            watchdog.get("after_business_minutes", 15), "escalation_watchdog.after_business_minutes"
        ),
    )
