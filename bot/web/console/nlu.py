"""The NLU inbox (:mod:`bot.review.annotations`): managers' corrections of customer messages, made on the
transcript pages (:mod:`bot.web.console.conversations`), exported into Rasa training data.

- ``GET /console/nlu?tab=pending|exported|discarded``: the corrections with that status, oldest first.
- ``POST /console/nlu/export``: write the pending ones into the training data of the language each message
  was written in, ``<project_root>/data/nlu/annotations.yml`` or ``…/data/nlu/<language>/annotations.yml``
  (the settings' ``project_root``); the next page says where, what was written, what was already there
  (duplicates) and what was left pending (conflicts, with the reason).
- ``POST /console/nlu/<id>/discard``: drop a pending correction (kept for the record, never exported).
"""

import logging
from zoneinfo import ZoneInfo

from aiohttp import web

from bot.core import audit
from bot.core.business import get_company
from bot.core.db import session_scope
from bot.core.tracker import get_reader
from bot.review import annotations
from bot.web.appkeys import settings_key
from bot.web.console import PREFIX, USER, flash, render, requires
from bot.web.console.conversations import local_time, page_url

log = logging.getLogger(__name__)

routes = web.RouteTableDef()

PAGE = f"{PREFIX}/nlu"
TABS = {"pending": "Pending", "exported": "Exported", "discarded": "Discarded"}


async def _page(request: web.Request, tab: str, status: int = 200, error: str | None = None) -> web.Response:
    zone = ZoneInfo(get_company().timezone)
    async with session_scope(request.app[settings_key].database_url) as db:
        rows = await annotations.list_annotations(db, status=tab)
        counts = await annotations.counts(db)
    return await render(
        request,
        "manager/nlu.html",
        status=status,
        title="NLU inbox",
        tab=tab,
        tabs=TABS,
        counts=counts,
        rows=rows,
        error=error,
        local=local_time(zone),
        zone=zone.key,
        page_url=page_url,
        export_files={language: annotations.export_file(language) for language in get_company().languages},
    )


@routes.get("/nlu")
@requires("manager")
async def inbox(request: web.Request) -> web.Response:
    """The corrections of tab ``tab`` (default pending) with every tab's count; 400 for an unknown tab."""
    tab = request.query.get("tab", "pending")
    if tab not in TABS:
        log.info("NLU inbox: unknown tab %r", tab)
        return await _page(request, "pending", 400, f"Unknown tab {tab!r}; one of {', '.join(TABS)}.")
    return await _page(request, tab)


@routes.post("/nlu/export")
@requires("manager")
async def export(request: web.Request) -> web.Response:
    """Export every pending correction (:func:`bot.review.annotations.export`; audit entry ``nlu.export`` naming
    the files written, comma-separated); 303 to the inbox with the counts, the files and each conflict's reason
    flashed; the inbox with 500 and the reason when the training data or the tracker store cannot be read, or
    the training data cannot be written (nothing marked exported)."""
    settings = request.app[settings_key]
    try:
        async with session_scope(settings.database_url) as db:
            summary = await annotations.export(db, settings.project_root, get_reader(settings.tracker_database_url))
            files = ", ".join(path.relative_to(settings.project_root).as_posix() for path in summary.paths)
            audit.record(
                db,
                request[USER],
                "nlu.export",
                "nlu_file",
                files or None,
                written=len(summary.written),
                duplicates=len(summary.duplicates),
                conflicts=len(summary.conflicts),
            )
    except annotations.ExportError as exc:
        return await _page(request, "pending", 500, f"Nothing exported: {exc}")
    log.info(
        "NLU export by %s: %d written, %d duplicates, %d conflicts",
        request[USER].email,
        len(summary.written),
        len(summary.duplicates),
        len(summary.conflicts),
    )
    await flash(
        request,
        f"Exported to {', '.join(map(str, summary.paths)) or 'no file'}: {len(summary.written)} written, "
        f"{len(summary.duplicates)} already in the training data (duplicates), "
        f"{len(summary.conflicts)} left pending (conflicts).",
    )
    for conflict in summary.conflicts:
        await flash(
            request, f"Conflict, left pending: “{conflict.text}” → {conflict.intent}: {conflict.reason}.", "error"
        )
    raise web.HTTPSeeOther(PAGE)


@routes.post(r"/nlu/{annotation_id:\d+}/discard")
@requires("manager")
async def discard(request: web.Request) -> web.Response:
    """Discard a pending correction; 303 to the inbox, or the inbox with 404 (unknown) or 409 (exported or
    discarded already)."""
    annotation_id = int(request.match_info["annotation_id"])
    try:
        async with session_scope(request.app[settings_key].database_url) as db:
            annotation = await annotations.discard(db, annotation_id)
    except annotations.AnnotationNotFound as exc:
        log.info("NLU inbox: %s", exc)
        return await _page(request, "pending", 404, f"Not discarded: {exc}.")
    except annotations.AnnotationNotPending as exc:
        log.info("NLU inbox: %s", exc)
        return await _page(request, "pending", 409, f"Not discarded: {exc}.")
    log.info("annotation %d discarded by %s", annotation_id, request[USER].email)
    await flash(request, f"Discarded the correction of “{annotation.text}”.")
    raise web.HTTPSeeOther(PAGE)
