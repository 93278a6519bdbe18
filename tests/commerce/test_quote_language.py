"""A quote keeps the language of the conversation that asked for it: issued in a Russian turn it is stored with
``language`` "ru" and its lines named as the catalog names them in Russian, and its PDF, rendered later outside
any turn (as the console serves /quotes/<token>.pdf), is in Russian. Migration 0014 gives the quotes issued
before it the default language."""

import io
import sqlite3

from alembic import command
from pypdf import PdfReader
from sqlalchemy import select

from actions.cart import ActionAddToCart
from actions.quotes import ActionSendQuote
from bot.commerce import quotes
from bot.commerce.quote_pdf import render_quote_pdf
from bot.core import db
from bot.core.business import get_company
from bot.core.models import Quote
from bot.texts import i18n
from tests.actions.test_actions import ent, run, tracker
from tests.commerce.test_quote_pdf import plain


async def test_a_quote_is_in_the_language_of_the_turn_that_issued_it(loaded_db):
    add = tracker("12 OC-1006", "add_to_cart", [ent("sku", "OC-1006"), ent("quantity", "12")], {"language": "ru"})
    await run(ActionAddToCart(), add)
    await run(ActionSendQuote(), tracker("", "request_quote", slots={"sales_stage": "quoting", "language": "ru"}))
    await run(ActionSendQuote(), tracker("", "request_quote", slots={"sales_stage": "quoting"}))  # no language: en
    async with db.session_scope(loaded_db) as session:
        russian, english = (await session.scalars(select(Quote).order_by(Quote.id))).all()
        documents = [quotes.document(quote, get_company()) for quote in (russian, english)]
    assert (russian.language, english.language) == ("ru", "en")
    assert [line.name for line in russian.lines] == ["Эргономичное кресло ErgoPro, чёрное"]
    assert [line.name for line in english.lines] == ["ErgoPro Ergonomic Chair, black"]

    assert i18n.current() == "en"  # rendered outside any turn, as the console renders it
    russian_text, english_text = (
        plain(PdfReader(io.BytesIO(render_quote_pdf(document))).pages[0].extract_text()) for document in documents
    )
    with i18n.use("ru"):
        expected = [i18n.gettext("QUOTATION"), i18n.gettext("Customer"), i18n.gettext("Total")]
        expected += [i18n.format_money(russian.total_minor, "AED"), "Эргономичное кресло ErgoPro, чёрное"]
    assert all(plain(text) in russian_text for text in expected)
    assert "QUOTATION" in english_text and "ErgoPro Ergonomic Chair, black" in english_text


def test_migration_0014_gives_earlier_quotes_the_default_language_and_the_downgrade_keeps_them(tmp_path):
    url = f"sqlite+aiosqlite:///{tmp_path / 'old.db'}"
    config = db.alembic_config(url)
    command.upgrade(config, "0013")
    with sqlite3.connect(tmp_path / "old.db") as connection:
        connection.execute(
            "INSERT INTO quotes (id, number, conversation_id, status, segment, currency, subtotal_minor, "
            "discount_minor, net_minor, vat_rate, vat_minor, total_minor, extra_discount_pct, valid_until, token, "
            "created_at) VALUES (1, 'Q-2026-0001', 'web-a', 'sent', 'new', 'AED', 129000, 0, 129000, '0.05', 6450, "
            "135450, '0', '2026-04-01 00:00:00', 't1', '2026-03-02 00:00:00')"
        )
        connection.execute(
            "INSERT INTO quote_lines (quote_id, position, sku, name, quantity, unit_price_minor, subtotal_minor, "
            "discount_pct, discount_minor, net_minor) VALUES (1, 1, 'OC-1006', 'ErgoPro', 1, 129000, 129000, '0', 0, "
            "129000)"
        )
    command.upgrade(config, "0014")
    with sqlite3.connect(tmp_path / "old.db") as connection:
        assert connection.execute("SELECT number, language FROM quotes").fetchall() == [("Q-2026-0001", "en")]
    command.downgrade(config, "0013")
    with sqlite3.connect(tmp_path / "old.db") as connection:
        assert "language" not in {row[1] for row in connection.execute("PRAGMA table_info(quotes)")}
        assert connection.execute("SELECT number FROM quotes").fetchall() == [("Q-2026-0001",)]
        assert connection.execute("SELECT sku FROM quote_lines").fetchall() == [("OC-1006",)]
