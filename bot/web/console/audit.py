"""The audit log, for admins: ``GET /console/audit`` lists the entries of :mod:`bot.core.audit` newest first,
PER_PAGE a page. Query: ``actor`` (a console user's email), ``action`` (e.g. ``deal.stage``), ``page``
(from 1); 400 for a bad page number."""

import logging
import math

from aiohttp import web

from bot.core import audit
from bot.core.db import session_scope
from bot.web.appkeys import settings_key
from bot.web.console import USER, render, requires

log = logging.getLogger(__name__)

routes = web.RouteTableDef()

PER_PAGE = 50


@routes.get("/audit")
@requires("admin")
async def audit_page(request: web.Request) -> web.Response:
    """The entries matching the filters (time UTC, actor, action, target, detail), the filters' choices
    (the actors and actions in the log) and the pager."""
    actor, action = request.query.get("actor", "").strip(), request.query.get("action", "").strip()
    raw_page = request.query.get("page", "1")
    if not raw_page.isdigit() or int(raw_page) < 1:
        log.warning("audit log: bad page %r from %s", raw_page, request[USER].email)
        return await render(
            request,
            "manager/base.html",
            status=400,
            title="Bad request",
            message=f"page must be a whole number from 1, not {raw_page!r}.",
        )
    page = int(raw_page)
    async with session_scope(request.app[settings_key].database_url) as db:
        rows, total = await audit.entries(
            db, actor=actor or None, action=action or None, limit=PER_PAGE, offset=(page - 1) * PER_PAGE
        )
        actors, actions = await audit.known_actors_and_actions(db)
    query = {key: value for key, value in (("actor", actor), ("action", action)) if value}
    return await render(
        request,
        "manager/audit.html",
        title="Audit log",
        rows=rows,
        total=total,
        page=page,
        pages=max(1, math.ceil(total / PER_PAGE)),
        query=query,
        actors=actors,
        actions=actions,
    )
