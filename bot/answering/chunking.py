"""Documents for retrieval: ``knowledge/`` Markdown split into chunks by heading, and catalog
products as one document each.

A chunk id is ``<file relative to knowledge/>#<heading slug>`` (``policies/delivery.md#delivery-charges``);
a section longer than the size cap is cut on line boundaries into parts ``…#slug/2``, ``…#slug/3``,
each starting with the last lines of the previous part (the overlap). Text before the first ``##``
is its own chunk under the ``#`` title's slug. Tables become one sentence per row
("Area: Dubai; Delivery charge: Free.") so that they read as prose in an answer.

Policies may be written per language: a file under ``policies/<lang>/`` (``lang`` one of ``company.yml``'s
``languages``) is in that language, every other file in the ``default_language``; each chunk's metadata says which.
"""

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.business import get_company
from bot.core.models import Product

_SLUG = re.compile(r"[\W_]+")
_TABLE_RULE = re.compile(r"^\|?\s*:?-{3,}")


@dataclass(frozen=True)
class Chunk:
    """One retrievable passage. ``text`` is what is embedded and shown; ``metadata`` holds
    ``source`` (file under knowledge/ or ``catalog``), ``title``, ``heading``, ``sku`` ("" for
    policy text), ``language`` (ISO 639-1 of knowledge/ text, "" for products) and ``hash`` (sha256 of the
    language and text, for incremental re-indexing)."""

    id: str
    text: str
    metadata: dict[str, str]


def slug(heading: str) -> str:
    """``"Same-day delivery in Dubai"`` → ``"same-day-delivery-in-dubai"``; letters of any script are kept
    (``"Стоимость доставки"`` → ``"стоимость-доставки"``)."""
    return _SLUG.sub("-", heading.lower()).strip("-")


def _chunk(chunk_id: str, text: str, source: str, title: str, heading: str, sku: str = "", language: str = "") -> Chunk:
    digest = hashlib.sha256((language + text).encode("utf-8")).hexdigest()
    metadata = {"source": source, "title": title, "heading": heading, "sku": sku, "language": language}
    return Chunk(chunk_id, text, {**metadata, "hash": digest})


def _table_rows(lines: list[str]) -> list[str]:
    cells = [
        [c.strip() for c in line.strip().strip("|").split("|")] for line in lines if not _TABLE_RULE.match(line.strip())
    ]
    if len(cells) < 2:
        return [" ".join(row) for row in cells]
    header = cells[0]
    return ["; ".join(f"{h}: {v}" for h, v in zip(header, row, strict=False) if v) + "." for row in cells[1:]]


def _prose(lines: list[str]) -> list[str]:
    """Body lines with tables turned into sentences, Markdown emphasis dropped, blank lines removed."""
    out: list[str] = []
    table: list[str] = []
    for line in [*lines, ""]:
        line = line.replace("**", "").replace("__", "").rstrip()
        if line.lstrip().startswith("|"):
            table.append(line)
            continue
        if table:
            out.extend(_table_rows(table))
            table = []
        if line.strip():
            out.append(line)
    return out


def _parts(lines: list[str], max_chars: int, overlap_chars: int) -> list[list[str]]:
    """Lines grouped into parts of at most ``max_chars`` (a longer single line stays whole), each
    after the first beginning with up to ``overlap_chars`` of the previous part's last lines."""
    parts: list[list[str]] = []
    current: list[str] = []
    for line in lines:
        if current and sum(len(x) + 1 for x in current) + len(line) > max_chars:
            parts.append(current)
            carried: list[str] = []
            for previous in reversed(current):
                if sum(len(x) + 1 for x in carried) + len(previous) > overlap_chars:
                    break
                carried.insert(0, previous)
            current = carried
        current.append(line)
    if current:
        parts.append(current)
    return parts


def split_markdown(
    text: str, source: str, max_chars: int = 1200, overlap_chars: int = 150, language: str = "en"
) -> list[Chunk]:
    """Chunks of one Markdown file; ``source`` is its path relative to ``knowledge/``, ``language`` the
    language it is written in. Each chunk's text starts with "Title — Heading" so the passage carries its
    context."""
    title = source
    sections: list[tuple[str, list[str]]] = []
    for line in text.splitlines():
        if line.startswith("# ") and not sections:
            title = line[2:].strip()
            sections.append((title, []))
        elif line.startswith("## "):
            sections.append((line[3:].strip(), []))
        elif sections:
            sections[-1][1].append(line)
        elif line.strip():
            sections.append((title, [line]))
    chunks: list[Chunk] = []
    for heading, body in sections:
        lines = _prose(body)
        if not lines:
            continue
        label = title if heading == title else f"{title} — {heading}"
        for n, part in enumerate(_parts(lines, max_chars, overlap_chars), start=1):
            chunk_id = f"{source}#{slug(heading)}" + (f"/{n}" if n > 1 else "")
            chunks.append(_chunk(chunk_id, "\n".join([label, *part]), source, title, heading, language=language))
    return chunks


def knowledge_chunks(knowledge_dir: Path, max_chars: int = 1200, overlap_chars: int = 150) -> list[Chunk]:
    """Chunks of every ``*.md`` under ``knowledge_dir`` except its README, in path order, each in the
    language of its directory ``policies/<lang>/`` or else in the default language (module docstring)."""
    company = get_company()
    chunks: list[Chunk] = []
    for path in sorted(knowledge_dir.rglob("*.md")):
        source = path.relative_to(knowledge_dir).as_posix()
        if source.lower() == "readme.md":
            continue
        parts = source.split("/")
        in_own = len(parts) > 2 and parts[0] == "policies" and parts[1] in company.languages
        language = parts[1] if in_own else company.default_language
        chunks.extend(split_markdown(path.read_text(encoding="utf-8"), source, max_chars, overlap_chars, language))
    return chunks


def product_chunk(product: Product, category_label: str | None = None) -> Chunk:
    """A product as one document: name, category, finish, size in cm, features and description.
    Prices and stock are left out on purpose: they are read from the DB when shown."""
    a = product.attributes or {}
    size = " × ".join(str(a[k]) for k in ("width_cm", "depth_cm", "height_cm") if a.get(k))
    lines = [
        product.name,
        f"Category: {category_label or product.category.replace('_', ' ')}.",
        ", ".join(x for x in (a.get("colour"), a.get("material")) if x),
        f"Size (W × D × H): {size} cm." if size else "",
        ("Features: " + ", ".join(a["features"]) + ".") if a.get("features") else "",
        product.description or "",
    ]
    text = "\n".join(line for line in lines if line)
    return _chunk(
        f"product:{product.sku}", text, "catalog", product.name, category_label or product.category, product.sku
    )


async def catalog_chunks(session: AsyncSession, labels: Mapping[str, str]) -> list[Chunk]:
    """A :func:`product_chunk` for every product in the DB; ``labels`` maps category id → label."""
    products = (await session.scalars(select(Product).order_by(Product.sku))).all()
    return [product_chunk(p, labels.get(p.category)) for p in products]
