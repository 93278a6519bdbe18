"""The console's conversation review (Rasa X's "conversations" screen) over :mod:`bot.review.conversations`.

- ``GET /console/conversations``: the indexed conversations, newest first, ``PER_PAGE`` a page. Query
  (all optional; they round-trip in the page's links): ``channel``; ``customer`` (contact name, email,
  company or phone); ``since``/``until`` (dates ``YYYY-MM-DD`` in the business time zone,
  ``get_company().timezone``, both days included); ``stage`` (furthest sales stage); ``escalated``,
  ``quote``, ``reviewed``, ``flagged`` (``yes``/``no``); ``confidence_below`` (0–1); ``fallbacks``
  (at least this many ``nlu_fallback`` messages); ``language`` (the customer's, ISO 639-1: one of
  ``get_company().languages`` in the form); ``tag``; ``q`` (text said by anyone); ``min_score``/``max_score``
  (the quality scorecard's total, 0–30, :mod:`bot.review.scoring`); ``sort`` (``newest``, the default;
  ``score``: worst first; ``-score``: best first); ``page``.
  A value the list cannot use gets 400 with the reason on the page.
- ``GET /console/conversations/<id>``: the transcript (NLU details, actions, knowledge answers with
  their LLM cost and feedback) with a side panel: tags, flag, review, contact, escalation, test story.
- ``POST …/<id>/tags`` (``tags``: comma- or space-separated), ``…/<id>/flag`` (``flagged``: 1 or 0;
  ``note``), ``…/<id>/reviewed``, ``…/<id>/story`` (``name``, ``overwrite``: 1 to replace a story of
  that name), ``…/<id>/messages/<event id>/correct``: a correction for the NLU inbox (``intent``, and
  per entity ``entity``, ``span`` — the text as it stands in the message —, ``start`` — its character
  offset, given when the manager selected the text in the page — and ``value``, for a synonym).
  A refused form shows the page again with the reason next to it (400, 404, 409), nothing stored.

The conversation index follows Rasa's tracker store: :func:`setup` adds a background task refreshing
it every REFRESH_INTERVAL_S seconds (which also completes pending erasures and applies retention,
:func:`bot.privacy.erasure.run_due`), and the list refreshes it before it is drawn (one query when
nothing is new). Training data and test stories go to the settings' ``project_root``.
"""

import asyncio
import logging
import math
from collections.abc import Sequence
from contextlib import suppress
from datetime import UTC, date, datetime, time, timedelta
from itertools import zip_longest
from typing import Any
from zoneinfo import ZoneInfo

import yaml
from aiohttp import web

from bot.contracts.languages import DETECTED_BY
from bot.core import audit
from bot.core.business import SALES_STAGES, get_company
from bot.core.db import session_scope
from bot.core.tracker import TrackerStoreUnavailable, get_reader
from bot.handoff import takeover
from bot.privacy import erasure
from bot.review import annotations, scoring, stories
from bot.review import conversations as conv
from bot.review.conversations import page_url
from bot.web.appkeys import settings_key
from bot.web.console import PREFIX, USER, flash, render, requires

log = logging.getLogger(__name__)

routes = web.RouteTableDef()

PER_PAGE = 25
LOW_SCORE = 20  # scorecard totals below this show in red
REFRESH_INTERVAL_S = 5.0
TAKEOVER_PATH = f"{PREFIX}/escalations/take"  # the escalations area's "take over any conversation" form
YES_NO = {"": None, "yes": True, "no": False}
FLAGS = {"escalated": "escalated", "quote": "quote_created", "reviewed": "reviewed", "flagged": "flagged"}
BLANK_ENTITY_ROWS = 2  # empty entity rows under a correction form's prefilled ones
_failing: dict[str, str] = {}  # tracker store URL → the error, while it cannot be read (logged once)


# --- the index -------------------------------------------------------------------------------------------


async def refresh_index(app: web.Application) -> str | None:
    """Fold the tracker store's new events into the conversation index (:func:`bot.review.conversations.refresh`).
    Never raises (but for cancellation): returns None, or the reason the index could not be brought up to
    date. An unreadable tracker store is logged once until it can be read again; other errors every time."""
    settings = app[settings_key]
    url = settings.tracker_database_url
    try:
        async with session_scope(settings.database_url) as session:
            await conv.refresh(get_reader(url), session)
    except TrackerStoreUnavailable as exc:
        if url not in _failing:
            log.warning("conversation index not refreshed: %s", exc)
        _failing[url] = str(exc)
        return f"The tracker store cannot be read ({exc}); the conversations indexed before are shown."
    except Exception as exc:  # the console keeps serving; the next refresh tries again
        log.exception("conversation index not refreshed")
        return f"The conversation index could not be brought up to date: {exc}"
    if _failing.pop(url, None) is not None:
        log.info("the tracker store can be read again")
    return None


async def _refresh_forever(app: web.Application) -> None:
    settings = app[settings_key]
    while True:
        # Erasures first, in this same loop, so that no refresh is indexing a conversation as it is erased.
        await erasure.run_due(settings.database_url, settings.tracker_database_url, settings.retention_days)
        await refresh_index(app)
        await asyncio.sleep(REFRESH_INTERVAL_S)


async def index_refresher(app: web.Application):
    """``app.cleanup_ctx`` entry: refresh the conversation index in the background while the console runs,
    then close the tracker store's connections."""
    task = asyncio.create_task(_refresh_forever(app), name="conversation-index")
    yield
    task.cancel()
    with suppress(asyncio.CancelledError):
        await task
    await get_reader(app[settings_key].tracker_database_url).close()


def setup(app: web.Application) -> None:
    """Start-up work of this area: the background refresh of the conversation index."""
    app.cleanup_ctx.append(index_refresher)


# --- the list --------------------------------------------------------------------------------------------


def parse_filters(query: Any, zone: ZoneInfo) -> tuple[conv.ConversationFilters, int]:
    """The list's filters and page number from the query string (a mapping of str, see the module's
    docstring); dates are days in ``zone``. Raises InvalidFilter for a malformed value."""

    def get(name: str) -> str:
        return str(query.get(name, "")).strip()

    def number(name: str, kind: type, low: float, high: float | None = None):
        raw = get(name)
        if not raw:
            return None
        try:
            value = kind(raw)
        except ValueError:
            value = None
        if value is None or not math.isfinite(value) or value < low or (high is not None and value > high):
            bound = f"from {low} to {high}" if high is not None else f"of {low} or more"
            raise conv.InvalidFilter(f"{name} must be a {'whole ' if kind is int else ''}number {bound}, not {raw!r}")
        return value

    def day(name: str) -> date | None:
        raw = get(name)
        try:
            return date.fromisoformat(raw) if raw else None
        except ValueError:
            raise conv.InvalidFilter(f"{name} must be a date (YYYY-MM-DD), not {raw!r}") from None

    flags = {}
    for name, field in FLAGS.items():
        if get(name) not in YES_NO:
            raise conv.InvalidFilter(f"{name} must be yes, no or empty, not {get(name)!r}")
        flags[field] = YES_NO[get(name)]
    since, until = day("since"), day("until")
    if since and until and since > until:
        raise conv.InvalidFilter(f"the date range ends ({until}) before it starts ({since})")
    filters = conv.ConversationFilters(
        channel=get("channel") or None,
        customer=get("customer") or None,
        since=datetime.combine(since, time(), zone) if since else None,
        until=datetime.combine(until + timedelta(days=1), time(), zone) if until else None,
        stage=get("stage") or None,
        escalated=flags["escalated"],
        quote_created=flags["quote_created"],
        confidence_below=number("confidence_below", float, 0, 1),
        min_fallbacks=number("fallbacks", int, 0),
        language=get("language") or None,
        tag=get("tag") or None,
        reviewed=flags["reviewed"],
        flagged=flags["flagged"],
        text=get("q") or None,
        min_score=number("min_score", int, 0, conv.MAX_TOTAL),
        max_score=number("max_score", int, 0, conv.MAX_TOTAL),
    )
    return filters, number("page", int, 1) or 1


def _zone() -> ZoneInfo:
    return ZoneInfo(get_company().timezone)


def local_time(zone: ZoneInfo):
    """A template helper: a datetime (naive ones are UTC, as SQLite gives them back) as "YYYY-MM-DD HH:MM" in
    ``zone``."""

    def local(moment: datetime | None) -> str:
        if moment is None:
            return ""
        return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(zone).strftime("%Y-%m-%d %H:%M")

    return local


@routes.get("/conversations")
@requires("manager")
async def conversation_list(request: web.Request) -> web.Response:
    """The conversation list: filters from the query string, newest first, paginated; 400 with the
    reason for a filter or page it cannot use."""
    zone = _zone()
    notice = await refresh_index(request.app)
    query = {name: value.strip() for name, value in request.query.items()}
    status, error, page = 200, None, None
    async with session_scope(request.app[settings_key].database_url) as db:
        try:
            filters, number = parse_filters(request.query, zone)
            page = await conv.list_conversations(db, filters, number, PER_PAGE, query.get("sort") or "newest")
        except (conv.InvalidFilter, conv.InvalidTag) as exc:
            log.info("conversation list refused for %s: %s", request[USER].email, exc)
            status, error = 400, str(exc)
        channels = await conv.known_channels(db)
        tags = await conv.known_tags(db)

    def link(number: int) -> str:
        return str(request.rel_url.update_query(page=number))

    return await render(
        request,
        "manager/conversations.html",
        status=status,
        title="Conversations",
        page=page,
        error=error,
        notice=notice,
        query=query,
        channels=channels,
        tags=tags,
        stages=SALES_STAGES,
        languages=get_company().languages,
        link=link,
        local=local_time(zone),
        zone=zone.key,
        page_url=page_url,
        max_score=conv.MAX_TOTAL,
        low_score=LOW_SCORE,
        sort_link=str(request.rel_url.update_query(sort="score", page=1)),
    )


# --- the transcript --------------------------------------------------------------------------------------


def _prefill(message: conv.CustomerMessage, annotation) -> dict[str, Any]:
    """A correction form's starting values: the pending correction's, else what NLU found."""
    if annotation is not None:
        lead = len(message.text) - len(message.text.lstrip())  # the annotation's offsets are into the stripped text
        entities = [
            {
                "entity": e["entity"],
                "span": annotation.text[e["start"] : e["end"]],
                "start": e["start"] + lead,
                "value": e["value"] if e["value"] != annotation.text[e["start"] : e["end"]] else "",
            }
            for e in annotation.corrected_entities
        ]
        return {"intent": annotation.corrected_intent, "entities": entities}
    entities, end_of_last = [], 0
    spans = sorted(
        (
            e
            for e in message.entities
            if isinstance(e.get("start"), int) and isinstance(e.get("end"), int) and e.get("extractor") != DETECTED_BY
        ),
        key=lambda e: (e["start"], -e["end"]),
    )
    for e in spans:
        start, end = e["start"], e["end"]
        if start < end_of_last:
            continue  # another extractor's view of words already taken (a correction's entities may not overlap)
        end_of_last = end
        span = message.text[start:end]
        value = e.get("value")
        entities.append(
            {
                "entity": e.get("entity", ""),
                "span": span,
                "start": start,
                "value": value if isinstance(value, str) and value != span else "",
            }
        )
    return {"intent": message.intent or "", "entities": entities}


async def _domain(request: web.Request) -> tuple[annotations.DomainNames | None, str | None]:
    path = request.app[settings_key].project_root / "domain.yml"
    try:
        return await asyncio.to_thread(annotations.read_domain, path), None
    except (OSError, yaml.YAMLError) as exc:
        log.error("cannot read %s: %s", path, exc)
        return None, f"Corrections are not possible now: {path} cannot be read ({exc})."


def _takeover_path(app: web.Application) -> str | None:
    """The escalations area's take-over form path, if the console serves it."""
    posts = {route.resource.canonical for route in app.router.routes() if route.method == "POST" and route.resource}
    return TAKEOVER_PATH if TAKEOVER_PATH in posts else None


async def _transcript_page(
    request: web.Request,
    conversation_id: str,
    *,
    status: int = 200,
    errors: dict[int, str] | None = None,
    forms: dict[int, dict] | None = None,
    panel_error: str | None = None,
) -> web.Response:
    """The transcript page; ``errors``/``forms``: a refused correction's reason and values by event id;
    ``panel_error``: a refused side-panel form's reason."""
    settings = request.app[settings_key]
    zone = _zone()
    notice = await refresh_index(request.app)
    try:
        async with session_scope(settings.database_url) as db:
            transcript = await conv.transcript(get_reader(settings.tracker_database_url), db, conversation_id)
            made = await annotations.list_annotations(db, conversation_id=conversation_id)
            corrections = {a.event_id: a for a in made if a.status != "discarded"}  # the latest per message wins
            escalation = await takeover.latest(db, conversation_id)
            tags = await conv.known_tags(db)
            scorecard = await scoring.stored_scorecard(db, conversation_id)
    except conv.UnknownConversation:
        return await render(
            request,
            "manager/base.html",
            status=404,
            title="No such conversation",
            message=f"The tracker store has no conversation {conversation_id!r}.",
        )
    except TrackerStoreUnavailable as exc:
        log.error("transcript of %s not read: %s", conversation_id, exc)
        return await render(
            request,
            "manager/base.html",
            status=503,
            title="Conversation unavailable",
            message=f"The tracker store cannot be read right now: {exc}",
        )
    domain, domain_error = await _domain(request)
    forms = forms or {}
    pending = {event_id: a for event_id, a in corrections.items() if a.status == "pending"}
    prefills = {
        e.event_id: forms.get(e.event_id) or _prefill(e, pending.get(e.event_id))
        for e in transcript.entries
        if e.kind == "customer"
    }
    return await render(
        request,
        "manager/transcript.html",
        status=status,
        title=f"Conversation {conversation_id}",
        transcript=transcript,
        summary=transcript.summary,
        corrections=corrections,
        escalation=escalation,
        scorecard=scorecard,
        max_score=conv.MAX_TOTAL,
        domain=domain,
        domain_error=domain_error,
        errors=errors or {},
        prefills=prefills,
        blank_rows=BLANK_ENTITY_ROWS,
        panel_error=panel_error,
        notice=notice,
        known_tags=tags,
        takeover_path=_takeover_path(request.app),
        local=local_time(zone),
        zone=zone.key,
        page_url=page_url(conversation_id),
        story_dir=stories.STORIES_DIR,
    )


@routes.get("/conversations/{conversation_id}")
@requires("manager")
async def transcript_page(request: web.Request) -> web.Response:
    """One conversation's transcript and side panel; 404 when the tracker store does not have it, 503
    when the tracker store cannot be read."""
    return await _transcript_page(request, request.match_info["conversation_id"])


async def _panel(request: web.Request, action, done: str) -> web.Response:
    """Run ``action(db)`` (a side-panel change); 303 back to the transcript with ``done`` flashed, or the
    page again with the reason: 400 for bad input, 404 for a conversation not indexed."""
    conversation_id = request.match_info["conversation_id"]
    try:
        async with session_scope(request.app[settings_key].database_url) as db:
            await action(db)
    except (conv.InvalidTag, conv.InvalidReview) as exc:
        log.info("%s refused for %s: %s", request.path, request[USER].email, exc)
        return await _transcript_page(request, conversation_id, status=400, panel_error=f"Not saved: {exc}.")
    except conv.UnknownConversation as exc:
        return await render(
            request, "manager/base.html", status=404, title="No such conversation", message=f"Not saved: {exc}."
        )
    await flash(request, done)
    raise web.HTTPSeeOther(page_url(conversation_id))


@routes.post("/conversations/{conversation_id}/tags")
@requires("manager")
async def set_tags(request: web.Request) -> web.Response:
    """Form field ``tags``: the conversation's tags, comma- or space-separated ("" removes all)."""
    raw = str((await request.post()).get("tags", ""))
    tags = raw.replace(",", " ").split()
    return await _panel(
        request, lambda db: conv.set_tags(db, request.match_info["conversation_id"], tags), "Tags saved."
    )


@routes.post("/conversations/{conversation_id}/flag")
@requires("manager")
async def set_flag(request: web.Request) -> web.Response:
    """Form fields ``flagged`` (1 flags the conversation for attention, 0 clears the flag) and ``note``
    (optional: replaces the review note; empty removes it)."""
    form = await request.post()
    flagged = form.get("flagged") == "1"
    note = str(form["note"]) if "note" in form else None
    return await _panel(
        request,
        lambda db: conv.set_flag(db, request.match_info["conversation_id"], flagged, note),
        "Flagged." if flagged else "Flag cleared.",
    )


@routes.post("/conversations/{conversation_id}/reviewed")
@requires("manager")
async def mark_reviewed(request: web.Request) -> web.Response:
    """Record that the signed-in manager reviewed the conversation now."""
    email = request[USER].email
    return await _panel(
        request, lambda db: conv.mark_reviewed(db, request.match_info["conversation_id"], email), "Marked as reviewed."
    )


@routes.post("/conversations/{conversation_id}/story")
@requires("manager")
async def save_story(request: web.Request) -> web.Response:
    """Form fields ``name`` and ``overwrite`` (1 replaces a story of that name): save the conversation as a
    Rasa test story under ``<project_root>/tests/stories/`` (audit entry ``story.save``); 303 back with the
    path flashed, or the page with 400 (bad name, no customer message) or 409 (a story of that name exists)."""
    settings = request.app[settings_key]
    conversation_id = request.match_info["conversation_id"]
    form = await request.post()
    name, overwrite = str(form.get("name", "")).strip(), form.get("overwrite") == "1"
    try:
        events = await get_reader(settings.tracker_database_url).conversation_events(conversation_id)
        if not events:
            raise conv.UnknownConversation(f"no conversation {conversation_id!r} in the tracker store")
        async with session_scope(settings.database_url) as db:
            path = await stories.save_test_story(
                db, settings.project_root, conversation_id, [(e.id, e.data) for e in events], name, overwrite=overwrite
            )
            audit.record(
                db,
                request[USER],
                "story.save",
                "test_story",
                path.relative_to(settings.project_root).as_posix(),
                overwrite=overwrite,
            )
    except (stories.InvalidStoryName, stories.NothingToSave, stories.StoryExists) as exc:
        log.info("test story of %s not saved for %s: %s", conversation_id, request[USER].email, exc)
        status = 409 if isinstance(exc, stories.StoryExists) else 400
        hint = " (tick “replace” to overwrite it)" if status == 409 else ""
        return await _transcript_page(
            request, conversation_id, status=status, panel_error=f"Test story not saved: {exc}{hint}."
        )
    except conv.UnknownConversation as exc:
        return await render(request, "manager/base.html", status=404, title="No such conversation", message=str(exc))
    except TrackerStoreUnavailable as exc:
        return await render(
            request,
            "manager/base.html",
            status=503,
            title="Conversation unavailable",
            message=f"The tracker store cannot be read right now: {exc}",
        )
    log.info("conversation %s saved as test story %s by %s", conversation_id, path, request[USER].email)
    await flash(request, f"Saved the test story {path}.")
    raise web.HTTPSeeOther(page_url(conversation_id))


# --- corrections for the NLU inbox -----------------------------------------------------------------------


def _occurrences(text: str, span: str) -> list[int]:
    found, at = [], text.find(span)
    while at != -1:
        found.append(at)
        at = text.find(span, at + 1)
    return found


def locate_entities(text: str, rows: Sequence[tuple[str, str, str, str]]) -> list[dict[str, Any]]:
    """The entities of a correction form as :func:`bot.review.annotations.annotate` takes them. ``rows``: per
    entity (name, span — the words as they stand in ``text`` —, start — the span's character offset when
    the page knew it, else "" —, value — "" for the span itself). A given start is used when the span
    stands there; otherwise the span must occur exactly once in ``text``. Rows with neither name nor span
    are skipped. Raises InvalidAnnotation for half a row or a span that is missing or ambiguous."""
    entities = []
    for number, (name, span, start, value) in enumerate(rows, start=1):
        name, span, value = name.strip(), span.strip(), value.strip()
        if not name and not span:
            continue
        if not name or not span:
            raise annotations.InvalidAnnotation(f"entity {number}: give both the entity and its words in the message")
        given = int(start) if start.strip().isdigit() else None
        if given is None or text[given : given + len(span)] != span:
            found = _occurrences(text, span)
            if not found:
                raise annotations.InvalidAnnotation(
                    f"entity {number}: {span!r} is not in the message (spans are the "
                    "message's own words, exactly as written)"
                )
            if len(found) > 1:
                raise annotations.InvalidAnnotation(
                    f"entity {number}: {span!r} occurs {len(found)} times in the "
                    "message: select the one you mean in the message text"
                )
            given = found[0]
        entities.append(
            {"start": given, "end": given + len(span), "entity": name, **({"value": value} if value else {})}
        )
    return entities


@routes.post(r"/conversations/{conversation_id}/messages/{event_id:\d+}/correct")
@requires("manager")
async def correct(request: web.Request) -> web.Response:
    """Correct NLU on one customer message: a pending annotation for the NLU inbox (a second correction
    replaces the first). 303 back to the message; the page again with 400 and the reason next to the form
    (unknown intent or entity, span missing, ambiguous or not a whole word, …), nothing stored; 404 for
    a message the conversation does not have."""
    settings = request.app[settings_key]
    conversation_id, event_id = request.match_info["conversation_id"], int(request.match_info["event_id"])
    form = await request.post()
    intent = str(form.get("intent", "")).strip()
    rows = [
        tuple(map(str, row))
        for row in zip_longest(
            *(form.getall(field, []) for field in ("entity", "span", "start", "value")), fillvalue=""
        )
    ]
    try:
        events = await get_reader(settings.tracker_database_url).conversation_events(conversation_id)
    except TrackerStoreUnavailable as exc:
        return await render(
            request,
            "manager/base.html",
            status=503,
            title="Conversation unavailable",
            message=f"The tracker store cannot be read right now: {exc}",
        )
    event = next((e for e in events if e.id == event_id and e.type_name == "user"), None)
    if event is None:
        return await render(
            request,
            "manager/base.html",
            status=404,
            title="No such message",
            message=f"Conversation {conversation_id!r} has no customer message {event_id}.",
        )
    text = event.data.get("text") or ""
    predicted = (event.data.get("parse_data") or {}).get("intent") or {}
    try:
        entities = locate_entities(text, rows)
        async with session_scope(settings.database_url) as db:
            await annotations.annotate(
                db,
                settings.project_root,
                conversation_id=conversation_id,
                event_id=event_id,
                text=text,
                predicted_intent=predicted.get("name"),
                predicted_confidence=predicted.get("confidence"),
                intent=intent,
                entities=entities,
                created_by=request[USER].email,
            )
    except annotations.InvalidAnnotation as exc:
        log.info("correction of event %d in %s refused for %s: %s", event_id, conversation_id, request[USER].email, exc)
        kept = {
            "intent": intent,
            "entities": [
                dict(zip(("entity", "span", "start", "value"), row, strict=True))
                for row in rows
                if any(part.strip() for part in row[:2])
            ],
        }
        return await _transcript_page(
            request, conversation_id, status=400, errors={event_id: f"Not saved: {exc}."}, forms={event_id: kept}
        )
    except (OSError, yaml.YAMLError) as exc:
        log.error("correction of event %d in %s failed: %s", event_id, conversation_id, exc)
        return await render(
            request, "manager/base.html", status=500, title="Not saved", message=f"domain.yml cannot be read: {exc}"
        )
    log.info("event %d of %s corrected to %s by %s", event_id, conversation_id, intent, request[USER].email)
    await flash(request, f"Correction saved: “{text.strip()}” → {intent}, pending in the NLU inbox.")
    raise web.HTTPSeeOther(f"{page_url(conversation_id)}#m{event_id}")
