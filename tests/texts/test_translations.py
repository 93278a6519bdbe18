"""The gettext catalogs against the code: every text Closer composes for customers (the msgids ``make
translations-extract`` finds through babel.cfg) is translated for every language of company.yml, and a few real
replies come out in Arabic and Russian with Babel's formats."""

import re
from string import Formatter

from babel.messages.catalog import Catalog, Message
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po

from actions.cart import ActionAddToCart
from bot.core import db
from bot.core.business import get_company
from bot.core.models import Product
from bot.core.money import format_money
from bot.core.settings import ROOT
from bot.texts import i18n, replies
from tests.actions.test_actions import ent, run, tracker

ARABIC = re.compile(r"[\u0600-\u06ff]")
CYRILLIC = re.compile(r"[\u0400-\u04ff]")


def extracted() -> Catalog:
    """The msgids of the code and templates, found as ``make translations-extract`` finds them (babel.cfg)."""
    with (ROOT / "babel.cfg").open() as fp:
        method_map, options_map = parse_mapping_cfg(fp)
    template = Catalog()
    for _filename, _lineno, message, _comments, context in extract_from_dir(ROOT, method_map, options_map):
        template.add(message, context=context)  # flags python-format / python-brace-format as pybabel does
    return template


def placeholders(text: str, message: Message) -> set[str]:
    """The named placeholders of ``text``: ``%(name)s`` in a python-format message, ``{name}`` in a
    python-brace-format one."""
    found = set(re.findall(r"%\((\w+)\)", text)) if "python-format" in message.flags else set()
    if "python-brace-format" in message.flags:
        found |= {name for _, name, _, _ in Formatter().parse(text) if name}
    return found


def problems(language: str, template: Catalog) -> list[str]:
    """What ``language``'s catalog lacks or gets wrong for ``template``'s msgids: missing, empty, fuzzy, a plural
    form missing, placeholders changed (Babel's checkers, and every form keeping exactly the msgid's named
    placeholders), obsolete entries."""
    path = i18n.LOCALE_DIR / language / "LC_MESSAGES" / f"{i18n.DOMAIN}.po"
    if not path.is_file():
        return [f"no catalog {path.relative_to(ROOT)}"]
    with path.open("rb") as fp:
        catalog = read_po(fp, locale=language)
    found = []
    for wanted in template:
        if not wanted.id:
            continue
        message = catalog.get(wanted.id, wanted.context)
        if message is None:
            found.append(f"missing: {wanted.id!r}")
            continue
        if message.fuzzy:
            found.append(f"fuzzy: {wanted.id!r}")
        if message.pluralizable != wanted.pluralizable:
            found.append(f"singular/plural differs from the code: {wanted.id!r}")
            continue
        texts = message.string if message.pluralizable else (message.string,)
        if not all(texts):
            found.append(f"untranslated (or a plural form empty): {wanted.id!r}")
        ids = wanted.id if wanted.pluralizable else (wanted.id,)
        expected = set().union(*(placeholders(i, wanted) for i in ids))
        found += [
            f"placeholders {sorted(placeholders(text, wanted))} ≠ {sorted(expected)}: {text!r}"
            for text in texts
            if text and placeholders(text, wanted) != expected
        ]
    found += [f"{'; '.join(map(str, errors))}: {message.id!r}" for message, errors in catalog.check()]
    found += [
        f"not in the code any more: {message.id!r}" for message in catalog if message.id and message.id not in template
    ]
    found += [f"obsolete entry: {key!r}" for key in catalog.obsolete]
    return found


def test_every_customer_text_is_translated_in_every_language():
    template = extracted()
    company = get_company()
    assert len(template) > 50  # the extraction found the code's texts, not nothing
    missing = {
        language: problems(language, template) for language in company.languages if language != i18n.SOURCE_LANGUAGE
    }
    missing = {language: found for language, found in missing.items() if found}
    report = "\n".join(f"{language}:\n  " + "\n  ".join(found) for language, found in missing.items())
    assert not missing, f"run `make translations-extract`, translate, `make translations`:\n{report}"


async def test_replies_come_out_in_arabic_and_russian_with_babel_formats(loaded_db):
    async with db.session_scope(loaded_db) as session:
        product = await session.get(Product, "OC-1006")
    english = format_money(product.price_minor, product.currency)
    for language, script, in_stock in (("ar", ARABIC, "متوفر في المخزون"), ("ru", CYRILLIC, "в наличии")):
        with i18n.use(language):
            line, stock = replies.product_line(product), replies.stock_line(product)
            price, name = i18n.format_money(product.price_minor, product.currency), product.display_name
        assert price != english and price in line and in_stock in line, line
        assert script.search(line.replace(name, "")), line  # the words around the catalog's name are translated
        assert script.search(stock.replace(name, "")) and "Dubai" in stock, (
            stock
        )  # warehouses as the catalog names them
    with i18n.use("ar"):
        assert "درهم" in i18n.format_money(product.price_minor, product.currency)  # company.yml's currency_symbols

    messages, _ = await run(
        ActionAddToCart(),
        tracker("добавь 12 OC-1006", "add_to_cart", [ent("sku", "OC-1006"), ent("quantity", "12")], {"language": "ru"}),
    )
    cart = messages[0]["text"]
    with i18n.use("ru"):
        line_total = i18n.format_money(12 * product.price_minor, "AED")
    assert cart.startswith("Добавлено: 12 × ") and "Итого: " in cart and f"OC-1006) × 12: {line_total}" in cart, cart
    assert line_total.endswith(",00\xa0AED") and "." not in line_total  # ru_RU: a decimal comma, the code after
