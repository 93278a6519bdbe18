"""The business Closer sells for, read from ``knowledge/`` once per process."""

import asyncio
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache

import yaml
from sqlalchemy.ext.asyncio import AsyncSession

from bot.search import Vocabulary
from bot.settings import get_settings

SALES_STAGES = (
    "greeting",
    "qualifying",
    "needs_analysis",
    "solution",
    "objection_handling",
    "quoting",
    "closing",
    "handoff",
)


@dataclass(frozen=True)
class Company:
    """Company facts from ``knowledge/company.yml``; ``vat_rate`` is a fraction (0.05 = 5%)."""

    name: str
    brand: str
    assistant_name: str
    currency: str
    vat_rate: Decimal
    phone: str
    email: str
    hours: str
    warehouses: tuple[str, ...]


@lru_cache
def get_company() -> Company:
    """Raises OSError / KeyError at start-up when ``company.yml`` is missing or incomplete."""
    raw = yaml.safe_load((get_settings().knowledge_dir / "company.yml").read_text(encoding="utf-8"))
    hours = raw["business_hours"]
    return Company(
        name=raw["name"],
        brand=raw["brand"],
        assistant_name=raw.get("assistant_name", "Closer"),
        currency=raw["currency"],
        vat_rate=Decimal(str(raw["vat_rate"])),
        phone=raw["phone"],
        email=raw["email"],
        hours=f"{hours['days']} {hours['open']}–{hours['close']}",
        warehouses=tuple(raw["warehouses"]),
    )


_vocabulary: Vocabulary | None = None
_vocabulary_lock = asyncio.Lock()


async def get_vocabulary(session: AsyncSession) -> Vocabulary:
    """The catalog vocabulary, built on first use and kept for the process (restart the action
    server after a catalog import that adds colours, materials or features)."""
    global _vocabulary
    async with _vocabulary_lock:
        if _vocabulary is None:
            _vocabulary = await Vocabulary.load(session, get_settings().knowledge_dir / "vocabulary.yml")
    return _vocabulary
