"""Catalog and stock import: CSV files → ``products`` and ``stock``, idempotent (upsert by SKU).

A product's name in another language comes from an optional column named after the name column and the
language's ISO 639-1 code (``name_ar``, ``name_ru``), kept in ``attributes["names"]``
(:attr:`bot.core.models.Product.display_name`); an empty cell leaves that language with the catalog name.

Every row is validated. A bad row becomes a :class:`RowError` (file, line, reason), is logged and
skipped; the rest loads in one transaction. A source's columns are mapped onto ours by a
:class:`ColumnMapping` (YAML), so a foreign catalog such as IKEA's loads without code changes.
"""

import csv
import logging
import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.models import Product, StockLevel
from bot.core.money import MoneyError, exponent, parse_amount, to_minor

log = logging.getLogger(__name__)

_SKU = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,63}$")
_RANGE = re.compile(r"^\d+(?:\.\d+)?(?:-\d+(?:\.\d+)?)?$")
_TRUE, _FALSE = {"true", "yes", "y", "1"}, {"false", "no", "n", "0"}
FIELDS = ("sku", "name", "category", "price", "currency", "description")
TYPES = ("text", "number", "range", "list", "bool", "money")


class MappingError(ValueError):
    """Raised when a column-mapping file is invalid or names columns the CSV does not have."""


@dataclass(frozen=True)
class RowError:
    """One rejected row: ``file:line: reason`` (line is the CSV's physical line number)."""

    file: str
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.reason}"


@dataclass
class ImportReport:
    """Counts of one import run; ``rejected`` lists every skipped row."""

    rows_read: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    merged_duplicates: int = 0
    rejected: list[RowError] = field(default_factory=list)

    def summary(self) -> str:
        return (
            f"{self.rows_read} rows read: {self.inserted} inserted, {self.updated} updated, "
            f"{self.unchanged} unchanged, {self.merged_duplicates} duplicate rows merged, "
            f"{len(self.rejected)} rejected"
        )


@dataclass(frozen=True)
class Attribute:
    column: str
    type: str = "text"


@dataclass(frozen=True)
class ColumnMapping:
    """Which CSV column feeds which product field.

    ``columns`` maps our fields (sku, name, category, price and optionally currency, description)
    to source columns; ``currency`` is the fixed ISO 4217 code when the source has no currency
    column; ``attributes`` maps attribute names to source columns with a type (text, number,
    range, list, bool, money); cells equal to one of ``null_values`` (after whitespace is
    collapsed) count as empty.
    """

    columns: dict[str, str]
    attributes: dict[str, Attribute] = field(default_factory=dict)
    currency: str | None = None
    null_values: frozenset[str] = frozenset({""})

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> "ColumnMapping":
        columns = dict(raw.get("columns") or {})
        missing = [f for f in ("sku", "name", "category", "price") if f not in columns]
        if missing:
            raise MappingError(f"mapping lacks columns for {', '.join(missing)}")
        unknown = set(columns) - set(FIELDS)
        if unknown:
            raise MappingError(f"mapping names unknown fields {sorted(unknown)}")
        if "currency" not in columns:
            if not raw.get("currency"):
                raise MappingError("mapping needs a currency column or a fixed currency")
            try:
                exponent(raw["currency"])
            except MoneyError as exc:
                raise MappingError(str(exc)) from exc
        attributes = {}
        for name, spec in (raw.get("attributes") or {}).items():
            attr = Attribute(spec) if isinstance(spec, str) else Attribute(**spec)
            if attr.type not in TYPES:
                raise MappingError(f"attribute {name}: type {attr.type!r} is not one of {TYPES}")
            attributes[name] = attr
        nulls = frozenset({""} | {str(v) for v in raw.get("null_values") or []})
        return cls(columns, attributes, raw.get("currency"), nulls)

    @classmethod
    def load(cls, path: Path) -> "ColumnMapping":
        """Read a mapping YAML file. Raises MappingError if it is invalid."""
        try:
            raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            raise MappingError(f"{path}: {exc}") from exc
        if not isinstance(raw, dict):
            raise MappingError(f"{path}: a mapping must be a YAML object")
        return cls.from_dict(raw)

    def source_columns(self) -> set[str]:
        return set(self.columns.values()) | {a.column for a in self.attributes.values()}


# Closer's own catalog format (knowledge/catalog.csv).
DEFAULT_MAPPING = ColumnMapping.from_dict(
    {
        "columns": {f: f for f in FIELDS},
        "attributes": {
            "colour": "colour",
            "material": "material",
            "width_cm": {"column": "width_cm", "type": "number"},
            "depth_cm": {"column": "depth_cm", "type": "number"},
            "height_cm": {"column": "height_cm", "type": "range"},
            "features": {"column": "features", "type": "list"},
        },
    }
)


def _clean(value: str | None) -> str:
    return " ".join((value or "").split())


def _number(text: str) -> int | float:
    value = Decimal(text)
    return int(value) if value == value.to_integral_value() else float(value)


def _convert(name: str, attr: Attribute, text: str, currency: str) -> Any:
    """One attribute cell → its JSON value. Raises ValueError with a reason for the row report."""
    if attr.type == "text":
        return text
    if attr.type == "number":
        try:
            value = _number(text)
        except InvalidOperation:
            raise ValueError(f"{name} {text!r} is not a number") from None
        if value < 0:
            raise ValueError(f"{name} {text!r} is negative")
        return value
    if attr.type == "range":
        if not _RANGE.match(text):
            raise ValueError(f"{name} {text!r} is neither a number nor a range like 98-110")
        return _number(text) if "-" not in text else text
    if attr.type == "list":
        return [_clean(part) for part in text.split(";") if _clean(part)]
    if attr.type == "bool":
        if text.lower() in _TRUE:
            return True
        if text.lower() in _FALSE:
            return False
        raise ValueError(f"{name} {text!r} is not a yes/no value")
    try:  # money
        return parse_amount(text, currency)
    except MoneyError:
        raise ValueError(f"{name} {text!r} is not an amount") from None


def parse_product_row(row: dict[str, str], mapping: ColumnMapping) -> dict[str, Any]:
    """One CSV row → product fields (``price_minor`` in minor units; the translated names, if any, in
    ``attributes["names"]``, language → name). Raises ValueError with the reason when the row is invalid."""

    def cell(column: str | None) -> str:
        value = _clean(row.get(column)) if column else ""
        return "" if value in mapping.null_values else value

    sku = cell(mapping.columns["sku"])
    if not sku:
        raise ValueError("SKU is empty")
    if not _SKU.match(sku):
        raise ValueError(f"SKU {sku!r} has characters other than letters, digits and . _ / -")
    name, category = cell(mapping.columns["name"]), cell(mapping.columns["category"])
    if not name:
        raise ValueError(f"{sku}: name is empty")
    if not category:
        raise ValueError(f"{sku}: category is empty")
    currency = (cell(mapping.columns.get("currency")) or mapping.currency or "").upper()
    try:
        exponent(currency)
    except MoneyError:
        raise ValueError(f"{sku}: currency {currency!r} is not an ISO 4217 code") from None
    price_text = cell(mapping.columns["price"]).replace(",", "")
    try:
        price_minor = to_minor(Decimal(price_text), currency)
    except (InvalidOperation, MoneyError):
        raise ValueError(f"{sku}: price {price_text!r} is not a valid {currency} amount") from None
    attributes = {}
    for attr_name, attr in mapping.attributes.items():
        text = cell(attr.column)
        if text:
            try:
                attributes[attr_name] = _convert(attr_name, attr, text, currency)
            except ValueError as exc:
                raise ValueError(f"{sku}: {exc}") from None
    names = {}
    for column in row:  # name_ar, name_ru, …: the name column followed by a language code
        translated = re.fullmatch(rf"{re.escape(mapping.columns['name'])}_([a-z]{{2}})", column or "")
        if translated and cell(column):
            names[translated[1]] = cell(column)
    if names:
        attributes["names"] = names
    return {
        "sku": sku,
        "name": name,
        "category": category,
        "price_minor": price_minor,
        "currency": currency,
        "description": cell(mapping.columns.get("description")),
        "attributes": attributes,
    }


def _read_csv(path: Path, required: set[str]):
    """Yield (line number, row) of a CSV file. Raises MappingError if required columns are missing."""
    with open(path, newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        missing = required - set(reader.fieldnames or [])
        if missing:
            raise MappingError(f"{path}: missing columns {sorted(missing)}")
        for row in reader:
            yield reader.line_num, row


def _merge_duplicate(first: dict[str, Any], again: dict[str, Any]) -> None:
    """Fold a repeated SKU into its first row: the same item listed under another category."""
    for key in ("name", "price_minor", "currency"):
        if first[key] != again[key]:
            raise ValueError(f"{again['sku']}: repeated SKU with a different {key} ({again[key]!r} vs {first[key]!r})")
    categories = first["attributes"].setdefault("categories", [first["category"]])
    if again["category"] not in categories:
        categories.append(again["category"])


async def import_catalog(session: AsyncSession, path: Path, mapping: ColumnMapping = DEFAULT_MAPPING) -> ImportReport:
    """Upsert the products of a catalog CSV by SKU. Raises MappingError (nothing written) when the
    file lacks mapped columns; bad rows are reported, not raised."""
    report = ImportReport()
    parsed: dict[str, dict[str, Any]] = {}
    for line, row in _read_csv(path, mapping.source_columns()):
        report.rows_read += 1
        try:
            product = parse_product_row(row, mapping)
            if product["sku"] in parsed:
                _merge_duplicate(parsed[product["sku"]], product)
                report.merged_duplicates += 1
            else:
                parsed[product["sku"]] = product
        except ValueError as exc:
            report.rejected.append(RowError(str(path), line, str(exc)))
    existing = {p.sku: p for p in (await session.scalars(select(Product))).all()}
    for sku, fields in parsed.items():
        current = existing.get(sku)
        if current is None:
            session.add(Product(**fields))
            report.inserted += 1
        elif any(getattr(current, key) != value for key, value in fields.items()):
            for key, value in fields.items():
                setattr(current, key, value)
            report.updated += 1
        else:
            report.unchanged += 1
    await session.flush()
    for error in report.rejected:
        log.warning("catalog row rejected: %s", error)
    return report


async def import_stock(session: AsyncSession, path: Path) -> ImportReport:
    """Upsert stock levels from a CSV with columns sku, warehouse, quantity (units on hand).
    Rows naming an unknown SKU or a quantity that is not a whole number ≥ 0 are rejected."""
    report = ImportReport()
    known = set((await session.scalars(select(Product.sku))).all())
    existing = {(s.sku, s.warehouse): s for s in (await session.scalars(select(StockLevel))).all()}
    seen: set[tuple[str, str]] = set()
    for line, row in _read_csv(path, {"sku", "warehouse", "quantity"}):
        report.rows_read += 1
        sku, warehouse, quantity = _clean(row["sku"]), _clean(row["warehouse"]), _clean(row["quantity"])
        reason = None
        if sku not in known:
            reason = f"unknown SKU {sku!r}"
        elif not warehouse:
            reason = f"{sku}: warehouse is empty"
        elif not quantity.isdigit():
            reason = f"{sku}: quantity {quantity!r} is not a whole number of units"
        elif (sku, warehouse) in seen:
            reason = f"{sku}: {warehouse} listed twice"
        if reason:
            report.rejected.append(RowError(str(path), line, reason))
            log.warning("stock row rejected: %s:%s: %s", path, line, reason)
            continue
        seen.add((sku, warehouse))
        level = existing.get((sku, warehouse))
        if level is None:
            session.add(StockLevel(sku=sku, warehouse=warehouse, quantity=int(quantity)))
            report.inserted += 1
        elif level.quantity != int(quantity):
            level.quantity = int(quantity)
            report.updated += 1
        else:
            report.unchanged += 1
    await session.flush()
    return report
