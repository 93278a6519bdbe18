"""The console's sales views; what they show comes from the read model :mod:`bot.commerce.sales_views`:

- ``/console/pipeline``: the deals as a board by pipeline stage, each column with its deal count and total
  amount per currency; ``?channel=`` keeps the deals of one source channel. A manager moves a deal to another
  stage (``POST /console/pipeline/deals/<id>/stage``) through :func:`bot.commerce.deals.move_by_manager`, which
  adds a deal note and queues the deal for the external CRM.
- ``/console/quotes``: quotes newest first, ``?status=`` and ``?page=``.
- ``/console/contacts``: contacts newest first, ``?q=`` searches name, email, phone and company (words); ``?page=``.
- ``/console/contacts/<id>``: one contact with their deals, quotes, escalations and conversations.

A bad filter or page number gets 400 and is logged.
"""

import logging
import math

from aiohttp import web
from yarl import URL

from bot.commerce import deals, sales_views
from bot.commerce.deals import STAGES
from bot.commerce.leads import contact_matches
from bot.commerce.sales_views import QUOTE_STATUSES, customer_name
from bot.core import audit
from bot.core.db import session_scope
from bot.core.models import Deal
from bot.web.appkeys import settings_key
from bot.web.console import PREFIX, USER, flash, render, requires

log = logging.getLogger(__name__)

routes = web.RouteTableDef()

PER_PAGE = 50
MAX_QUERY_CHARS = 200
PIPELINE = f"{PREFIX}/pipeline"


class BadRequest(ValueError):
    """A filter, page number or form field the sales views cannot use; the message says which and why."""


async def _bad_request(request: web.Request, error: BadRequest) -> web.Response:
    log.warning("console %s %s refused for %s: %s", request.method, request.path_qs, request[USER].email, error)
    return await render(request, "manager/base.html", status=400, title="Bad request", message=f"{error}.")


def _page_number(request: web.Request) -> int:
    """``?page=`` as a whole number ≥ 1 (default 1); raises BadRequest."""
    raw = request.query.get("page", "1")
    if not raw.isdigit() or int(raw) < 1:
        raise BadRequest(f"page must be a whole number from 1, not {raw!r}")
    return int(raw)


# --- pipeline ----------------------------------------------------------------------------------------------


@routes.get("/pipeline")
@requires("manager")
async def pipeline(request: web.Request) -> web.Response:
    """The pipeline board; ``?channel=`` one of the deals' source channels (400 for another)."""
    channel = request.query.get("channel") or None
    async with session_scope(request.app[settings_key].database_url) as db:
        channels = await sales_views.deal_channels(db)
        if channel is not None and channel not in channels:
            return await _bad_request(
                request,
                BadRequest(
                    f"no deal comes from channel {channel!r}; the deals' channels are: {', '.join(channels) or 'none'}"
                ),
            )
        columns = await sales_views.pipeline_board(db, channel)
    return await render(
        request,
        "manager/pipeline.html",
        title="Pipeline",
        columns=columns,
        stages=STAGES,
        channels=channels,
        channel=channel,
    )


@routes.post(r"/pipeline/deals/{deal_id:\d+}/stage")
@requires("manager")
async def move_deal(request: web.Request) -> web.Response:
    """Form fields ``stage`` (one of STAGES) and ``channel`` (the board's filter, to return to): moves the
    deal, notes who moved it (also in the audit log) and queues it for the external CRM, then 303 back to
    the board. 400 for an unknown stage, 404 for an unknown deal; neither changes anything."""
    form = await request.post()
    stage, channel = str(form.get("stage", "")), str(form.get("channel", ""))
    user = request[USER]
    if stage not in STAGES:
        return await _bad_request(request, BadRequest(f"{stage!r} is not a pipeline stage; one of {', '.join(STAGES)}"))
    async with session_scope(request.app[settings_key].database_url) as db:
        deal = await db.get(Deal, int(request.match_info["deal_id"]))
        if deal is None:
            raise web.HTTPNotFound(text="No such deal.")
        previous = await deals.move_by_manager(db, deal, stage, user.email)
        if previous != stage:
            audit.record(db, user, "deal.stage", "deal", deal.id, **{"from": previous, "to": stage})
    if previous == stage:
        await flash(request, f"Deal #{deal.id} is already at {stage}.")
    else:
        log.info("deal %s moved from %s to %s by %s", deal.id, previous, stage, user.email)
        customer = customer_name(deal.contact.name, deal.contact.email, deal.source_channel)
        await flash(request, f"Deal #{deal.id} ({customer}) moved from {previous} to {stage}.")
    raise web.HTTPSeeOther(str(URL(PIPELINE).with_query({"channel": channel} if channel else {})))


# --- quotes ------------------------------------------------------------------------------------------------


@routes.get("/quotes")
@requires("manager")
async def quotes_page(request: web.Request) -> web.Response:
    """Quotes newest first, PER_PAGE a page; ``?status=`` one of QUOTE_STATUSES, ``?page=`` from 1 (400 else)."""
    status = request.query.get("status") or None
    try:
        page = _page_number(request)
        if status is not None and status not in QUOTE_STATUSES:
            raise BadRequest(f"{status!r} is not a quote status; one of {', '.join(QUOTE_STATUSES)}")
    except BadRequest as exc:
        return await _bad_request(request, exc)
    async with session_scope(request.app[settings_key].database_url) as db:
        rows, total = await sales_views.list_quotes(db, status=status, limit=PER_PAGE, offset=(page - 1) * PER_PAGE)
    return await render(
        request,
        "manager/quotes.html",
        title="Quotes",
        quotes=rows,
        total=total,
        page=page,
        pages=max(1, math.ceil(total / PER_PAGE)),
        statuses=QUOTE_STATUSES,
        shown_status=status,
        query={"status": status} if status else {},
    )


# --- contacts ----------------------------------------------------------------------------------------------


@routes.get("/contacts")
@requires("manager")
async def contacts_page(request: web.Request) -> web.Response:
    """Contacts newest first, PER_PAGE a page; ``?q=`` (up to MAX_QUERY_CHARS characters) searches name,
    email, phone and company by words and word prefixes, or a whole phone number (bot.commerce.leads.contact_matches);
    ``?page=`` from 1. 400 for a longer query or a bad page."""
    text = request.query.get("q", "").strip()
    try:
        page = _page_number(request)
        if len(text) > MAX_QUERY_CHARS:
            raise BadRequest(f"the search is longer than {MAX_QUERY_CHARS} characters")
    except BadRequest as exc:
        return await _bad_request(request, exc)
    where = [contact_matches(text, request.app[settings_key].default_phone_region)] if text else []
    async with session_scope(request.app[settings_key].database_url) as db:
        rows, total = await sales_views.list_contacts(db, *where, limit=PER_PAGE, offset=(page - 1) * PER_PAGE)
    return await render(
        request,
        "manager/contacts.html",
        title="Contacts",
        contacts=rows,
        total=total,
        page=page,
        pages=max(1, math.ceil(total / PER_PAGE)),
        q=text,
        query={"q": text} if text else {},
    )


@routes.get(r"/contacts/{contact_id:\d+}")
@requires("manager")
async def contact_page(request: web.Request) -> web.Response:
    """One contact: details, deals (with notes), quotes, escalations and conversations; 404 if unknown."""
    async with session_scope(request.app[settings_key].database_url) as db:
        page = await sales_views.contact_page(db, int(request.match_info["contact_id"]))
    if page is None:
        raise web.HTTPNotFound(text="No such contact.")
    contact = page.contact
    return await render(
        request,
        "manager/contact.html",
        title=customer_name(contact.name, contact.email, contact.channel),
        contact=contact,
        deals=page.deals,
        notes=page.notes,
        quotes=page.quotes,
        escalations=page.escalations,
        conversations=page.conversations,
    )
