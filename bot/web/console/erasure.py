""" "Forget me" in the console, for admins (:mod:`bot.privacy.erasure`):

- ``GET /console/contacts/<id>/erase``, ``GET /console/conversations/<id>/erase``: the confirmation page
  (what will be erased, what stays).
- ``POST`` to the same paths with ``confirm=yes`` (and the CSRF token): erases the customer — the contact
  and all their conversations, or the conversation and its contact if it has one — records the
  ``customer.erase`` audit entry, then 303 to the (anonymised) contact's page or the conversation list
  with the counts. Without ``confirm=yes``: 400, the page again. 404 for an unknown contact.

Managers get 403: erasure cannot be undone.
"""

import logging

from aiohttp import web

from bot.privacy import erasure
from bot.web.appkeys import settings_key
from bot.web.console import PREFIX, USER, flash, render, requires

log = logging.getLogger(__name__)

routes = web.RouteTableDef()

CONTACT_PATH = r"/contacts/{contact_id:\d+}/erase"
CONVERSATION_PATH = "/conversations/{conversation_id}/erase"


async def _confirm_page(request: web.Request, what: str, status: int = 200, error: str | None = None) -> web.Response:
    return await render(
        request, "manager/erase.html", status=status, title=f"Erase {what}", what=what, action=request.path, error=error
    )


def _describe(request: web.Request) -> tuple[dict, str]:
    """The :func:`bot.privacy.erasure.erase` arguments and the words for the page, from the path."""
    if "contact_id" in request.match_info:
        contact_id = int(request.match_info["contact_id"])
        return {"contact_id": contact_id}, f"contact #{contact_id}"
    conversation_id = request.match_info["conversation_id"]
    return {"conversation_id": conversation_id}, f"conversation {conversation_id}"


@routes.get(CONTACT_PATH)
@requires("admin")
async def confirm_contact(request: web.Request) -> web.Response:
    """The confirmation page of a contact's erasure."""
    return await _confirm_page(request, _describe(request)[1])


@routes.get(CONVERSATION_PATH)
@requires("admin")
async def confirm_conversation(request: web.Request) -> web.Response:
    """The confirmation page of a conversation's (and its customer's) erasure."""
    return await _confirm_page(request, _describe(request)[1])


@routes.post(CONTACT_PATH)
@requires("admin")
async def erase_contact(request: web.Request) -> web.Response:
    """Erase the contact and everything about them (module docstring)."""
    return await _erase(request)


@routes.post(CONVERSATION_PATH)
@requires("admin")
async def erase_conversation(request: web.Request) -> web.Response:
    """Erase the conversation and its customer (module docstring)."""
    return await _erase(request)


async def _erase(request: web.Request) -> web.Response:
    target, what = _describe(request)
    if (await request.post()).get("confirm") != "yes":
        return await _confirm_page(request, what, 400, "Tick the box to confirm: erasure cannot be undone.")
    settings, user = request.app[settings_key], request[USER]
    try:
        report = await erasure.erase(
            **target,
            via="console",
            actor=user,
            database_url=settings.database_url,
            tracker_url=settings.tracker_database_url,
        )
    except erasure.NothingToErase:
        raise web.HTTPNotFound(text="No such contact.") from None
    log.info("erasure by %s: %s", user.email, report.summary())
    note = (
        " The external CRM keeps its records of this customer: delete them there."
        if report.counts["crm_external_records"]
        else ""
    )
    pending = " Some conversation events could not be rewritten yet; they will be." if report.pending else ""
    await flash(request, f"Erased: {report.summary()}.{note}{pending}")
    if report.contact_id is not None:
        raise web.HTTPSeeOther(f"{PREFIX}/contacts/{report.contact_id}")
    raise web.HTTPSeeOther(f"{PREFIX}/conversations")
