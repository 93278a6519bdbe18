"""The escalations inbox and the manager takeover (:mod:`bot.handoff.takeover` does the work).

- ``GET /console/escalations?tab=pending|in_progress|resolved``: the inbox, newest first, with counts.
- ``GET /console/escalations/<id>``: the summary, the last messages of the conversation (Rasa's tracker,
  refreshed every few seconds by /static/console-takeover.js from ``…/<id>/messages``), Take over, a reply
  box and Hand back with a note.
- ``POST /console/escalations/<id>/take``, ``…/reply`` (field ``text``), ``…/handback`` (field ``note``).
- ``POST /console/escalations/take`` (field ``conversation_id``): take over a conversation nobody escalated.

Taking over, replying (never the text) and handing back are written to the audit log (:mod:`bot.core.audit`).

A refused operation shows the page again with the reason and the status that fits (400, 403, 404, 409;
502 when Rasa failed), keeping what the manager typed.
"""

import logging
from datetime import UTC, datetime

from aiohttp import web

from bot.contracts import conversation_ids
from bot.core import audit
from bot.core.db import session_scope
from bot.core.rasa import RasaError
from bot.handoff import takeover
from bot.handoff.escalation import REASONS
from bot.web.appkeys import rasa_key, settings_key
from bot.web.console import PREFIX, USER, flash, render, requires

log = logging.getLogger(__name__)

routes = web.RouteTableDef()

TABS = {"pending": "Pending", "in_progress": "In progress", "resolved": "Resolved"}
INBOX_LIMIT = 100
EXCERPT_CHARS = 160


def _utc(moment: datetime) -> datetime:
    """SQLite gives naive datetimes back; they were stored in UTC."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def when(moment: datetime | None) -> str:
    """A stored time as "2026-03-07 09:15 UTC"; "" for None."""
    return _utc(moment).astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if moment is not None else ""


def age(since: datetime, now: datetime) -> str:
    """``now - since`` in the largest whole unit: "just now", "5 min", "3 h", "2 d"."""
    seconds = max(0, int((now - _utc(since)).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds // size} {unit}"
    return "just now"


def excerpt(summary: str) -> str:
    """The summary on one line without the lines the inbox shows in columns (reason, conversation; see
    :func:`bot.handoff.escalation.structured_summary`), cut at EXCERPT_CHARS characters."""
    kept = [line for line in summary.splitlines() if not line.startswith(("Escalation:", "Conversation:"))]
    line = " ".join(" ".join(kept).split())
    return line if len(line) <= EXCERPT_CHARS else line[: EXCERPT_CHARS - 1].rstrip() + "…"


def channel(conversation_id: str) -> str:
    """The channel a conversation id names (``web-…`` → web), else ``other`` (bot.contracts.conversation_ids)."""
    return conversation_ids.channel_from_id(conversation_id)


def iso(timestamp: float) -> str:
    """Unix seconds as ISO 8601 in UTC, e.g. "2026-03-07T09:15:02+00:00"."""
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="seconds")


def _page(escalation_id: int) -> str:
    return f"{PREFIX}/escalations/{escalation_id}"


@routes.get("/escalations")
@requires("manager")
async def inbox(request: web.Request) -> web.Response:
    """The escalations with the status of tab ``tab`` (default pending), the newest INBOX_LIMIT first:
    reason, customer, channel, summary excerpt, age, assignee; every tab's count. 400 for an unknown tab."""
    tab = request.query.get("tab", "pending")
    if tab not in TABS:
        raise web.HTTPBadRequest(text=f"Unknown tab; one of {', '.join(TABS)}.")
    async with session_scope(request.app[settings_key].database_url) as db:
        counts = await takeover.counts(db)
        escalations = await takeover.inbox(db, tab, INBOX_LIMIT)
        customers = await takeover.customers(db, {e.conversation_id for e in escalations})
    now = datetime.now(UTC)
    rows = [
        {
            "escalation": e,
            "reason": REASONS.get(e.reason, e.reason),
            "customer": customers.get(e.conversation_id),
            "channel": channel(e.conversation_id),
            "excerpt": excerpt(e.summary),
            "age": age(e.created_at, now),
        }
        for e in escalations
    ]
    return await render(
        request,
        "manager/escalations.html",
        title="Escalations",
        tab=tab,
        tabs=TABS,
        counts=counts,
        rows=rows,
        limit=INBOX_LIMIT,
    )


async def _detail(
    request: web.Request, escalation_id: int, status: int = 200, error: str | None = None, form: dict | None = None
) -> web.Response:
    try:
        async with session_scope(request.app[settings_key].database_url) as db:
            escalation = await takeover.get_escalation(db, escalation_id)
            customer = (await takeover.customers(db, {escalation.conversation_id})).get(escalation.conversation_id)
    except takeover.UnknownEscalation:
        raise web.HTTPNotFound(text="No such escalation.") from None
    try:
        transcript, transcript_error = (
            await takeover.transcript(escalation.conversation_id, request.app[rasa_key]),
            None,
        )
    except RasaError as exc:
        log.error("transcript of %s not read: %s", escalation.conversation_id, exc)
        transcript, transcript_error = None, str(exc)
    return await render(
        request,
        "manager/escalations_detail.html",
        status=status,
        title=f"Escalation #{escalation.id}",
        escalation=escalation,
        reason=REASONS.get(escalation.reason, escalation.reason),
        customer=customer,
        channel=channel(escalation.conversation_id),
        transcript=transcript,
        transcript_error=transcript_error,
        may_act=takeover.may_act(escalation, request[USER]),
        error=error,
        form=form or {},
        tabs=TABS,
        max_reply=takeover.MAX_REPLY_CHARS,
        max_note=takeover.MAX_NOTE_CHARS,
        age=age(escalation.created_at, datetime.now(UTC)),
        when=when,
        iso=iso,
    )


@routes.get(r"/escalations/{escalation_id:\d+}")
@requires("manager")
async def detail(request: web.Request) -> web.Response:
    """One escalation: summary, transcript, and the forms that fit its status. 404 for an unknown id."""
    return await _detail(request, int(request.match_info["escalation_id"]))


@routes.get(r"/escalations/{escalation_id:\d+}/messages")
@requires("manager")
async def messages(request: web.Request) -> web.Response:
    """The detail page's transcript as JSON: ``{"messages": [{"speaker": "customer"|"bot"|"manager",
    "text": str, "timestamp": float (Unix seconds), "manager": str|null}], "paused": bool, "status": str}``
    (the escalation's status). 404 for an unknown id, 502 ``{"error": str}`` when Rasa fails."""
    try:
        async with session_scope(request.app[settings_key].database_url) as db:
            escalation = await takeover.get_escalation(db, int(request.match_info["escalation_id"]))
    except takeover.UnknownEscalation:
        return web.json_response({"error": "no such escalation"}, status=404)
    try:
        transcript = await takeover.transcript(escalation.conversation_id, request.app[rasa_key])
    except RasaError as exc:
        log.error("transcript of %s not read: %s", escalation.conversation_id, exc)
        return web.json_response({"error": str(exc)}, status=502)
    return web.json_response(
        {
            "messages": [
                {"speaker": m.speaker, "text": m.text, "timestamp": m.timestamp, "manager": m.manager}
                for m in transcript.messages
            ],
            "paused": transcript.paused,
            "status": escalation.status,
        }
    )


async def _act(request: web.Request, escalation_id: int | None, action, form: dict, done: str) -> web.Response:
    """Run ``action(db, rasa)`` (a :mod:`bot.handoff.takeover` call returning the escalation's id); on success
    flash ``done`` and go to the escalation's page. A refusal shows the escalation's page again (or, without
    one, a short page) with the reason and the fitting status: the error's own, 502 when Rasa failed."""
    user = request[USER]
    try:
        async with session_scope(request.app[settings_key].database_url) as db:
            escalation_id = await action(db, request.app[rasa_key])
    except (takeover.TakeoverError, RasaError) as exc:
        status = exc.status if isinstance(exc, takeover.TakeoverError) else 502
        log.warning("%s refused for %s (%s): %s", request.path, user.email, status, exc)
        message = f"Not done: {exc}." if status != 502 else f"Not done, Rasa failed: {exc}"
        if escalation_id is None or isinstance(exc, takeover.UnknownEscalation):
            return await render(request, "manager/base.html", status=status, title="Not done", message=message)
        return await _detail(request, escalation_id, status, message, form)
    await flash(request, done)
    raise web.HTTPSeeOther(_page(escalation_id))


TAKEN = "You have the conversation now: the bot stays silent."


@routes.post(r"/escalations/{escalation_id:\d+}/take")
@requires("manager")
async def take(request: web.Request) -> web.Response:
    """Take the escalation over (the bot is paused): 303 to its page; or the page with 404, 403 (another
    manager has it), 409 (resolved) or 502 (Rasa failed)."""
    escalation_id = int(request.match_info["escalation_id"])

    async def action(db, rasa) -> int:
        taken = await takeover.take_over(db, escalation_id, request[USER], rasa)
        audit.record(db, request[USER], "escalation.take_over", "escalation", taken.id)
        return taken.id

    return await _act(request, escalation_id, action, {}, TAKEN)


@routes.post("/escalations/take")
@requires("manager")
async def take_conversation(request: web.Request) -> web.Response:
    """Form field ``conversation_id``: take a conversation over even if nobody escalated it; 303 to its
    escalation's page. 400 for a malformed id, 404 when Rasa has no customer message in it, 502 when Rasa
    failed."""
    conversation_id = str((await request.post()).get("conversation_id", "")).strip()

    async def action(db, rasa) -> int:
        taken = await takeover.take_over(db, conversation_id, request[USER], rasa)
        audit.record(db, request[USER], "escalation.take_over", "escalation", taken.id)
        return taken.id

    return await _act(request, None, action, {}, TAKEN)


@routes.post(r"/escalations/{escalation_id:\d+}/reply")
@requires("manager")
async def reply(request: web.Request) -> web.Response:
    """Form field ``text``: send it to the customer through their channel (Rasa); 303 to the page, or the
    page with 400 (empty or too long), 403, 404, 409 (not taken over) or 502, the text kept."""
    escalation_id = int(request.match_info["escalation_id"])
    text = str((await request.post()).get("text", ""))

    async def action(db, rasa) -> int:
        await takeover.reply(db, escalation_id, text, request[USER], rasa)
        audit.record(db, request[USER], "escalation.reply", "escalation", escalation_id)
        return escalation_id

    return await _act(request, escalation_id, action, {"text": text}, "Sent to the customer.")


@routes.post(r"/escalations/{escalation_id:\d+}/handback")
@requires("manager")
async def hand_back(request: web.Request) -> web.Response:
    """Form field ``note``: give the conversation back to the bot, resolving the escalation; 303 to the
    page, or the page with 400 (no note), 403, 404, 409 (resolved) or 502, the note kept."""
    escalation_id = int(request.match_info["escalation_id"])
    note = str((await request.post()).get("note", ""))

    async def action(db, rasa) -> int:
        resolved = await takeover.hand_back(db, escalation_id, note, request[USER], rasa)
        audit.record(db, request[USER], "escalation.hand_back", "escalation", resolved.id)
        return resolved.id

    return await _act(request, escalation_id, action, {"note": note}, "Handed back: the bot answers again.")
