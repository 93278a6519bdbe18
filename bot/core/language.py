"""The language of the turn being handled (an ISO 639-1 code, None for the business's default), one per asyncio
task: set by :func:`bot.texts.i18n.use`, which checks it against the business's languages, and read there and by
whatever shows catalog words in it (:class:`bot.commerce.search.CategoryLabels`). A ``ContextVar``, so actions
running concurrently on one event loop keep their own."""

from contextvars import ContextVar

ACTIVE: ContextVar[str | None] = ContextVar("closer_language", default=None)
