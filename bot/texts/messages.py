"""Customer-facing message texts rendered from Jinja2 templates in ``bot/texts/templates/messages/``.

Templates are translated with Jinja2's i18n extension (``{% trans %}`` blocks and ``_()``, extracted into
the gettext catalogs by ``make translations-extract``) in the active language of :mod:`bot.texts.i18n`,
and get a ``money`` filter (minor units + currency → "AED 1,290.00" in that language's format) and a
``pct`` filter (Decimal fraction → "5%"); an undefined variable raises ``jinja2.UndefinedError`` instead
of printing nothing.
"""

from decimal import Decimal
from functools import lru_cache
from pathlib import Path

import jinja2

from bot.texts import i18n


def _pct(fraction: Decimal | str) -> str:
    value = (Decimal(str(fraction)) * 100).normalize()
    return f"{value:f}%"


@lru_cache
def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates" / "messages"),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
        extensions=["jinja2.ext.i18n"],
    )
    env.install_gettext_callables(i18n.gettext, i18n.ngettext, newstyle=True)  # type: ignore[attr-defined]
    env.filters["money"] = i18n.format_money
    env.filters["pct"] = _pct
    return env


def render(template: str, **context) -> str:
    """The text of ``templates/messages/<template>.txt.j2`` with ``context``, stripped."""
    return _environment().get_template(f"{template}.txt.j2").render(**context).strip()
