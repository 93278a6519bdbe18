"""Catalog and stock import on a real SQLite DB: our catalog, IKEA's real one, and broken files."""

import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bot.commerce import catalog
from bot.core import db
from bot.core.models import Product, StockLevel
from bot.core.settings import ROOT, get_settings
from bot.texts import i18n
from tests.conftest import SHARED

IKEA = SHARED / "catalog" / "ikea_sa_furniture.csv"
IKEA_MAPPING = ROOT / "tests" / "data" / "ikea_sa_mapping.yml"


async def count(url: str, model) -> int:
    async with db.session_scope(url) as session:
        return await session.scalar(select(func.count()).select_from(model))


async def test_default_catalog_loads_and_reimport_changes_nothing(db_url):
    knowledge = get_settings().knowledge_dir
    async with db.session_scope(db_url) as session:
        first = await catalog.import_catalog(session, knowledge / "catalog.csv")
        stock = await catalog.import_stock(session, knowledge / "stock.csv")
    assert (first.inserted, first.rejected) == (152, [])
    assert (stock.inserted, stock.rejected) == (304, [])
    async with db.session_scope(db_url) as session:
        again = await catalog.import_catalog(session, knowledge / "catalog.csv")
        stock_again = await catalog.import_stock(session, knowledge / "stock.csv")
        categories = set((await session.scalars(select(Product.category))).all())
        chair = await session.get(Product, "OC-1006")
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 152)
    assert (stock_again.inserted, stock_again.updated, stock_again.unchanged) == (0, 0, 304)
    assert categories == {"desk", "office_chair", "meeting_table", "storage", "lounge", "accessory"}
    assert (chair.name, chair.price_minor, chair.currency) == ("ErgoPro Ergonomic Chair, black", 129000, "AED")
    assert chair.attributes["features"] == ["ergonomic", "lumbar support", "mobile"]
    assert chair.attributes["height_cm"] == "105-118"
    assert chair.attributes["names"] == {
        "ar": "كرسي إرغو برو المريح، أسود",
        "ru": "Эргономичное кресло ErgoPro, чёрное",
    }


async def test_ikea_catalog_loads_through_a_column_mapping(db_url):
    mapping = catalog.ColumnMapping.load(IKEA_MAPPING)
    async with db.session_scope(db_url) as session:
        report = await catalog.import_catalog(session, IKEA, mapping)
    assert report.rows_read == 3694
    assert report.rejected == []
    assert report.inserted == 2962  # distinct item_id
    assert report.merged_duplicates == 3694 - 2962
    assert await count(db_url, Product) == 2962
    async with db.session_scope(db_url) as session:
        frekvens = await session.get(Product, "90420332")
        nordviken = await session.get(Product, "9333523")
        sale = (
            await session.scalars(select(Product).where(Product.attributes["old_price_minor"].as_integer() == 237500))
        ).first()
        decimal_price = (await session.scalars(select(Product).where(Product.price_minor == 260050))).first()
    # listed under two categories, blank depth, messy whitespace in the description
    assert (frekvens.name, frekvens.category, frekvens.price_minor, frekvens.currency) == (
        "FREKVENS",
        "Bar furniture",
        26500,
        "SAR",
    )
    assert frekvens.attributes["categories"] == ["Bar furniture", "Tables & desks"]
    assert frekvens.description == "Bar table, in/outdoor, 51x51 cm"
    assert "depth_cm" not in frekvens.attributes and "old_price_minor" not in frekvens.attributes
    assert (frekvens.attributes["height_cm"], frekvens.attributes["width_cm"]) == (99, 51)
    assert frekvens.attributes["sellable_online"] is True
    # all dimensions blank; not sellable online
    assert nordviken.price_minor == 209500 and nordviken.attributes["sellable_online"] is False
    assert not {"width_cm", "depth_cm", "height_cm"} & set(nordviken.attributes)
    assert sale is not None and sale.price_minor < 237500
    assert decimal_price is not None and decimal_price.currency == "SAR"

    async with db.session_scope(db_url) as session:
        again = await catalog.import_catalog(session, IKEA, mapping)
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 2962)


BROKEN = """sku,name,category,price,currency,colour,material,width_cm,depth_cm,height_cm,features,description
OC-1006,"ErgoPro Ergonomic Chair, black",office_chair,999.00,AED,black,mesh,68,65,105-118,ergonomic,changed
,No SKU,desk,100.00,AED,,,,,,,
DK-9001,  Good   Desk  ,desk,  450.50 ,AED,white,laminate,120,60,75,,"  fine
  row"
DK-9002,Bad Price,desk,12.345,AED,,,,,,,
DK-9003,Bad Currency,desk,100.00,DOLLAR,,,,,,,
DK-9004,Bad Width,desk,100.00,AED,,,wide,,,,
DK-9005,,desk,100.00,AED,,,,,,,
DK-9001,Good Desk,desk,460.00,AED,,,,,,,
DK 9006,Space In SKU,desk,100.00,AED,,,,,,,
DK-9007,Negative,desk,-5,AED,,,,,,,
"""


async def test_bad_rows_are_reported_with_line_and_reason_and_the_rest_loads(loaded_db, tmp_path):
    path = tmp_path / "broken.csv"
    path.write_text(BROKEN, encoding="utf-8")
    async with db.session_scope(loaded_db) as session:
        report = await catalog.import_catalog(session, path)
    reasons = {error.line: error.reason for error in report.rejected}
    assert set(reasons) == {3, 6, 7, 8, 9, 10, 11, 12}
    assert "SKU is empty" in reasons[3]
    assert "12.345" in reasons[6] and "price" in reasons[6]
    assert "'DOLLAR'" in reasons[7]
    assert "width_cm" in reasons[8]
    assert "name is empty" in reasons[9]
    assert "repeated SKU" in reasons[10] and "price_minor" in reasons[10]
    assert "SKU 'DK 9006'" in reasons[11]
    assert "-5" in reasons[12]
    assert all(str(error).startswith(f"{path}:") for error in report.rejected)
    assert (report.inserted, report.updated) == (1, 1)
    async with db.session_scope(loaded_db) as session:
        desk = await session.get(Product, "DK-9001")
        chair = await session.get(Product, "OC-1006")
    assert (desk.name, desk.price_minor, desk.description) == ("Good Desk", 45050, "fine row")
    assert chair.price_minor == 99900
    assert await count(loaded_db, Product) == 153


TRANSLATED = """sku,name,name_ar,name_ru,category,price,currency,colour,material,width_cm,depth_cm,height_cm,\
features,description
DK-9101,Nova Desk 120,مكتب نوفا 120,Стол Nova 120,desk,900.00,AED,,,,,,,
DK-9102,Pico Desk,,  Стол   Pico  ,desk,500.00,AED,,,,,,,
DK-9103,Plain Desk,,,desk,400.00,AED,,,,,,,
DK-9104,,مكتب بلا اسم,Стол без названия,desk,400.00,AED,,,,,,,
DK 9105,Bad SKU Desk,مكتب,Стол,desk,400.00,AED,,,,,,,
"""


async def test_translated_names_come_from_name_language_columns(db_url, tmp_path):
    """``name_ar``/``name_ru`` are optional: a row may translate its name into some languages, or none; a translation
    never stands in for a missing name, and a broken row is rejected for what is wrong with it."""
    path = tmp_path / "translated.csv"
    path.write_text(TRANSLATED, encoding="utf-8")
    async with db.session_scope(db_url) as session:
        report = await catalog.import_catalog(session, path)
        desks = {sku: await session.get(Product, sku) for sku in ("DK-9101", "DK-9102", "DK-9103")}
    assert [(error.line, error.reason) for error in report.rejected] == [
        (5, "DK-9104: name is empty"),
        (6, "SKU 'DK 9105' has characters other than letters, digits and . _ / -"),
    ]
    assert desks["DK-9101"].attributes == {"names": {"ar": "مكتب نوفا 120", "ru": "Стол Nova 120"}}
    assert desks["DK-9102"].attributes == {"names": {"ru": "Стол Pico"}}
    assert desks["DK-9103"].attributes == {}
    shown = {}
    for language in ("en", "ar", "ru", "fr"):  # fr: not a language of the business, so its default, English
        with i18n.use(language):
            shown[language] = [desk.display_name for desk in desks.values()]
    assert shown == {
        "en": ["Nova Desk 120", "Pico Desk", "Plain Desk"],
        "ar": ["مكتب نوفا 120", "Pico Desk", "Plain Desk"],
        "ru": ["Стол Nova 120", "Стол Pico", "Plain Desk"],
        "fr": ["Nova Desk 120", "Pico Desk", "Plain Desk"],
    }


async def test_stock_rows_for_unknown_skus_or_bad_quantities_are_rejected(loaded_db, tmp_path):
    path = tmp_path / "stock.csv"
    path.write_text(
        "sku,warehouse,quantity\nOC-1006,Dubai,7\nZZ-0000,Dubai,3\nOC-1007,Dubai,-1\nOC-1008,,4\nOC-1006,Dubai,9\n"
    )
    async with db.session_scope(loaded_db) as session:
        report = await catalog.import_stock(session, path)
        level = await session.get(StockLevel, ("OC-1006", "Dubai"))
    assert [e.line for e in report.rejected] == [3, 4, 5, 6]
    assert "unknown SKU 'ZZ-0000'" in report.rejected[0].reason
    assert level.quantity == 7
    assert await count(loaded_db, StockLevel) == 304


def test_cli_summary_and_exit_status(db_url, tmp_path):
    path = tmp_path / "broken.csv"
    path.write_text(BROKEN, encoding="utf-8")
    env = {"CLOSER_DATABASE_URL": db_url, "PATH": "/usr/bin:/bin"}

    def run(*args):
        return subprocess.run([sys.executable, "-m", "bot", *args], cwd=ROOT, env=env, capture_output=True, text=True)

    ok = run("import-catalog", str(ROOT / "knowledge" / "catalog.csv"))
    assert ok.returncode == 0, ok.stderr
    assert "152 inserted" in ok.stdout and "0 rejected" in ok.stdout
    bad = run("import-catalog", str(path))
    assert bad.returncode == 1
    assert "8 rejected" in bad.stdout
    assert f"rejected {path}:3: SKU is empty" in bad.stderr
    missing = run("import-catalog", str(IKEA))
    assert missing.returncode == 2 and "missing columns" in missing.stderr
    ikea = run("import-catalog", str(IKEA), "--mapping", str(IKEA_MAPPING))
    assert ikea.returncode == 0 and "2962 inserted" in ikea.stdout


def test_invalid_mapping_is_refused(tmp_path: Path):
    path = tmp_path / "m.yml"
    path.write_text("columns: {sku: a, name: b}\n")
    with pytest.raises(catalog.MappingError, match="category, price"):
        catalog.ColumnMapping.load(path)
