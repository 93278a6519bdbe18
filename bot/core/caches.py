"""Per-process caches, and :func:`reset`, the one way to drop them.

Settings, the business read from ``knowledge/`` (company, pricing rules, catalog vocabulary), the PII
keyring and the Chroma client with its retrievers are each built on first use and kept for the life of
the process: a running server sees a changed setting or ``knowledge/`` file after a restart. :func:`reset`
drops them all, so that the next use reads the environment and ``knowledge/`` again; it is for tests and
for commands that change ``CLOSER_*`` variables inside one process, never for the running services.

Kept by :func:`reset`, because nothing they hold depends on settings: DB engines and tracker readers (one
per URL; dispose an engine with ``await db.get_engine(url).dispose()``), secret files (one per path), the
embedding model (about 5 s to load), the PDF fonts and the message templates.
"""

from collections.abc import Callable
from functools import lru_cache
from typing import TypeVar

T = TypeVar("T")

_clears: list[Callable[[], None]] = []


def process_cache(build: Callable[[], T]) -> Callable[[], T]:
    """Decorator: ``build()`` runs once, its result is kept until :func:`reset`."""
    cached = lru_cache(maxsize=None)(build)
    _clears.append(cached.cache_clear)
    return cached


def on_reset(clear: Callable[[], None]) -> Callable[[], None]:
    """Decorator (or call): ``clear()``, which forgets a module's own cached objects, runs on every
    :func:`reset`. Returns ``clear``."""
    _clears.append(clear)
    return clear


def reset() -> None:
    """Drop every per-process cache of the modules imported so far (see the module docstring)."""
    for clear in _clears:
        clear()
