"""The web chat: serves the widget and relays its messages to Rasa's REST channel (:func:`setup` mounts it in the
console process's application, :func:`bot.web.app.create_app`).

Routes:

- ``GET /``: the chat page, in the customer's language (:func:`page_language`) with a selector of the
  business's languages (``company.yml``); the widget sends ``/set_language{"language": "<code>"}`` when the
  customer picks one and switches its own texts (:func:`widget_texts`, every language's in the page).
- ``POST /api/chat``: JSON ``{"sender": str, "message": str, "language": str (optional)}`` → ``{"messages":
  [...], "paused": bool}``, messages in Rasa's REST channel format; the conversation id is ``"web-" +
  sender``; ``paused``: a manager has the conversation (the widget then polls ``/api/chat/updates`` often);
  ``language``: the widget's, for the messages this route composes itself (errors). Rate-limited per
  sender and per client IP address (429 with ``Retry-After``).
- ``GET /api/chat/updates?sender=<id>&after=<unix seconds>``: a manager's replies and Closer's follow-ups since
  ``after``.
- ``POST /api/feedback``: JSON ``{"sender": str, "answer_id": str, "rating": "up" | "down",
  "comment": str (optional)}`` → ``{"status": "saved"}``; 👍/👎 on a knowledge answer.
- ``GET /quotes/<token>.pdf``: a quote as PDF behind its unguessable link (410 once expired).
- ``GET /documents/<token>.pdf``: an invoice or contract issued after a payment, as PDF behind its unguessable link.

The page of a business that prices by a formula also has the price calculator (:mod:`bot.web.calculator`).

The widget's script and style sheet are under ``/static`` (:mod:`bot.web.app`).
"""

import asyncio
import logging
import math
import re
import urllib.parse
from functools import cache
from typing import Any
from zoneinfo import available_timezones

from aiohttp import web
from babel import Locale, negotiate_locale

from bot.answering.feedback import MAX_COMMENT_CHARS, RATINGS, UnknownAnswer, record_feedback
from bot.commerce import invoicing, quotes
from bot.commerce.formula import load_formula
from bot.commerce.quote_pdf import QuoteDocument, render_quote_pdf
from bot.contracts import conversation_ids
from bot.core.business import Company, get_company
from bot.core.db import session_scope
from bot.core.rasa import RasaError
from bot.handoff.takeover import pushed_messages
from bot.texts import i18n
from bot.texts.i18n import gettext as _
from bot.web.appkeys import rasa_key, settings_key, templates_key
from connectors.ratelimit import RateLimiter  # standard library only, shared with the Rasa channels

log = logging.getLogger(__name__)

_SENDER = re.compile(r"[A-Za-z0-9_-]{8,64}")
_ANSWER_ID = re.compile(r"[0-9a-f]{32}")
_TOKEN = re.compile(r"[A-Za-z0-9_-]{43}")  # secrets.token_urlsafe(32)
LANGUAGE_COOKIE = "closer_language"  # the language the customer picked in the widget (chat.js sets it)

sender_limiter_key = web.AppKey("chat_sender_limiter", RateLimiter)
ip_limiter_key = web.AppKey("chat_ip_limiter", RateLimiter)


def _reply(text: str, status: int) -> web.Response:
    return web.json_response({"messages": [{"text": text}]}, status=status)


def _sorry() -> str:
    return _("Sorry, I'm having trouble answering right now. Please try again in a minute, or call us.")


def _slow_down(retry_after: str) -> web.Response:
    """429 with ``Retry-After`` (whole seconds) and the polite message the widget shows: the Rasa channels'
    :data:`connectors.ratelimit.SLOW_DOWN_REPLY`, written out here for gettext's extraction."""
    response = _reply(_("You're writing faster than I can read. Please wait a moment, then send that again."), 429)
    response.headers["Retry-After"] = retry_after
    return response


def _over_limit(request: web.Request, sender: str) -> web.Response | None:
    """A 429 (:func:`_slow_down`) when the conversation ``web-<sender>`` or the client's IP address
    (``request.remote``: behind a reverse proxy, the proxy's) is over its rate limit; None otherwise.
    Logged at warning for the first refusal of a window, at debug after; never the message."""
    limits = (
        (request.app[sender_limiter_key], "conversation", conversation_ids.make("web", sender)),
        (request.app[ip_limiter_key], "IP address", request.remote or "unknown"),
    )
    for limiter, kind, key in limits:
        decision = limiter.take(key)
        if not decision.allowed:
            log.log(
                logging.WARNING if decision.notify else logging.DEBUG,
                "web chat: the %s %s is over the rate limit of %d messages per %g s; a message of web-%s refused (429)",
                kind,
                key,
                limiter.messages,
                limiter.window_s,
                sender,
            )
            return _slow_down(decision.retry_after_header)
    return None


def _preferred(accept_language: str) -> list[str]:
    """The language tags of an ``Accept-Language`` header (``"ar-AE,ar;q=0.9,en;q=0.5"``), lower-case,
    most preferred first (by ``q``, then by order); ``*``, ``q=0`` and unreadable weights left out."""
    weighted = []
    for position, part in enumerate(accept_language.split(",")):
        tag, _semicolon, parameters = part.partition(";")
        name, _equals, value = parameters.partition("=")
        try:
            weight = float(value) if name.strip() == "q" else 1.0
        except ValueError:
            weight = 0.0
        if tag.strip() not in ("", "*") and weight > 0:
            weighted.append((-weight, position, tag.strip().lower()))
    return [tag for *_order, tag in sorted(weighted)]


def page_language(request: web.Request) -> str:
    """The chat page's language (ISO 639-1, one of ``company.yml``'s ``languages``): the one the customer
    picked in the widget (the ``closer_language`` cookie), else the browser's most preferred one the
    business serves (``Accept-Language`` through Babel's ``negotiate_locale``: ``ar-AE`` → ``ar``), else
    the business's ``default_language``."""
    company = get_company()
    picked = request.cookies.get(LANGUAGE_COOKIE)
    if picked in company.languages:
        return picked
    preferred = _preferred(request.headers.get("Accept-Language", ""))
    return negotiate_locale(preferred, company.languages, sep="-") or company.default_language


def widget_texts(company: Company) -> dict[str, str]:
    """The widget's own texts in the active language (:func:`bot.texts.i18n.gettext`; the catalogs'
    msgids are the English texts here), by the key the page (``data-text``, ``data-label``,
    ``data-tip``, ``data-placeholder``) and chat.js (``t(key)``) use, the business's brand, assistant name
    and phone number filled in, its tagline and message box hint (``company.yml``) in that language."""
    phone = f"\u2066{company.phone}\u2069"  # isolated left to right: its digits keep their order in Arabic
    return {
        "title": _("{brand} — chat with {assistant}").format(brand=company.brand, assistant=company.assistant_name),
        "chat": _("Chat with {brand}").format(brand=company.brand),
        "tagline": company.taglines.get(i18n.current()) or _("Sales assistant"),
        "language": _("Language"),
        "new_chat": _("New chat"),
        "new_chat_tip": _("Start a new conversation"),
        "typing": _("{assistant} is typing").format(assistant=company.assistant_name),
        "placeholder": company.chat_placeholders.get(i18n.current()) or _("Type your message…"),
        "message": _("Your message"),
        "send": _("Send"),
        "footer": _('Prefer a person? Call {phone} or type "talk to a manager".').format(phone=phone),
        "hi": _("hi"),
        "manager": _("Sales manager"),
        "helpful": _("Helpful"),
        "not_helpful": _("Not helpful"),
        "comment": _("Anything to add? (optional)"),
        "comment_label": _("Comment on this answer"),
        "thanks": _("Thanks for your feedback!"),
        "feedback_error": _("Sorry, that didn't go through. Please try again."),
        "offline": _("Sorry, I can't reach the server. Please check your connection and try again."),
    }


async def chat_page(request: web.Request) -> web.Response:
    """The web chat page (HTML) for the business in knowledge/company.yml, in :func:`page_language`. The
    page carries every language's name (in itself: English, العربية, Русский), direction (``ltr`` or
    ``rtl``) and :func:`widget_texts` for the widget to switch to; with the price calculator
    (:mod:`bot.web.calculator`) when the business prices by a formula."""
    company = get_company()
    language = page_language(request)
    languages = {}
    for code in company.languages:
        with i18n.use(code):
            name = Locale.parse(code).get_display_name(code) or code
            languages[code] = {
                "name": name[:1].upper() + name[1:],
                "dir": Locale.parse(code).text_direction,
                "texts": widget_texts(company),
            }
    template = request.app[templates_key].get_template("chat.html")
    calculator = load_formula() is not None
    page = template.render(brand=company.brand, language=language, languages=languages, calculator=calculator)
    return web.Response(text=page, content_type="text/html")


async def chat_api(request: web.Request) -> web.Response:
    """Relay one customer message to Rasa: 200 ``{"messages": [...], "paused": bool}``, ``paused`` being
    whether Rasa has the conversation paused after the turn (a manager has it). While paused the messages are
    the bot's holding message when one is due (:mod:`connectors.paused`), else none: the widget adds no text of
    its own. 400 for a malformed body, 413 for an over-long message, 502 when Rasa fails or
    times out, 429 with ``Retry-After`` over the sender's or the IP address's rate limit (the settings
    ``rate_limit_*``; also when Rasa's REST channel refuses); every error body still carries a polite
    message to show, in the body's ``language`` (one of the business's; else its default language)."""
    try:
        body = await request.json()
    except ValueError:
        body = None
    language = body.get("language") if isinstance(body, dict) else None
    with i18n.use(language if isinstance(language, str) else None):
        return await _relay(request, body)


_time_zones = cache(available_timezones)  # reads the tz database's files: once


def _metadata(body: Any) -> dict[str, Any]:
    """What the widget tells about the customer with a message, for the actions (``Turn.metadata``): ``timezone``, the
    browser's IANA time zone, when it is one (else left out)."""
    zone = body.get("timezone")
    return {"timezone": zone} if isinstance(zone, str) and zone in _time_zones() else {}


async def _relay(request: web.Request, body: object) -> web.Response:
    """:func:`chat_api` for the JSON ``body`` (None: unreadable), its replies in the active language."""
    settings = request.app[settings_key]
    sender, message = (body.get("sender"), body.get("message")) if isinstance(body, dict) else (None, None)
    if not isinstance(sender, str) or not _SENDER.fullmatch(sender) or not isinstance(message, str):
        return _reply(_("Sorry, I couldn't read that message."), 400)
    message = message.strip()
    if not message:
        return _reply(_("It looks like your message was empty — what can I help you with?"), 400)
    if len(message) > settings.max_message_chars:
        too_long = _("That message is too long for me (over {max_chars} characters). Could you shorten it?")
        return _reply(too_long.format(max_chars=settings.max_message_chars), 413)
    refusal = _over_limit(request, sender)
    if refusal is not None:
        return refusal
    try:
        conversation_id = conversation_ids.make("web", sender)
        messages = await request.app[rasa_key].send_message(conversation_id, message, _metadata(body))
    except RasaError as exc:
        if exc.status == 429:  # Rasa's REST channel has a stricter limit of its own (credentials.yml)
            return _slow_down(exc.retry_after or "1")
        log.error("Rasa did not answer for conversation web-%s: %s", sender, exc)
        return _reply(_sorry(), 502)
    paused = await _paused(request.app, conversation_ids.make("web", sender))
    if not messages and not paused:
        log.warning("Rasa sent no reply in conversation web-%s", sender)
        messages = [{"text": _sorry()}]
    return web.json_response({"messages": messages, "paused": paused})


async def _paused(app: web.Application, conversation_id: str) -> bool:
    """Whether Rasa has the conversation paused (a manager took it over); False if Rasa can't say."""
    try:
        return bool((await app[rasa_key].tracker(conversation_id, events=False)).get("paused"))
    except RasaError:
        return False


def _error(message: str, status: int) -> web.Response:
    return web.json_response({"error": message}, status=status)


async def chat_updates(request: web.Request) -> web.Response:
    """Managers' replies and what Closer wrote first (follow-ups, the escalation watchdog) in the web chat's
    conversation (``"web-" + sender``), for the widget to poll. Query: ``sender`` (as for /api/chat), ``after``
    (Unix seconds, default 0). 200 ``{"messages": [{"text": str, "timestamp": float, "from": "manager" | "bot"}],
    "paused": bool}``: those messages stamped after ``after``, oldest first
    (:func:`bot.handoff.takeover.pushed_messages`), read from Rasa's tracker (HTTP API, authenticated);
    ``paused``: a manager still has the conversation. ``{"error": str}`` with 400 for
    a malformed ``sender`` or ``after``, 502 when Rasa fails or times out."""
    sender, after = request.query.get("sender", ""), request.query.get("after", "0")
    if not _SENDER.fullmatch(sender):
        return _error("sender must be 8 to 64 letters, digits, '_' or '-'", 400)
    try:
        after_s = float(after)
    except ValueError:
        after_s = math.nan
    if not math.isfinite(after_s) or after_s < 0:
        return _error("after must be a non-negative number of seconds since 1970", 400)
    try:
        tracker = await request.app[rasa_key].tracker(conversation_ids.make("web", sender))
    except RasaError as exc:
        log.error("Rasa did not give the tracker of conversation web-%s: %s", sender, exc)
        return _error("the conversation cannot be read right now", 502)
    replies = [{"text": m.text, "timestamp": m.timestamp, "from": m.speaker} for m in pushed_messages(tracker, after_s)]
    return web.json_response({"messages": replies, "paused": bool(tracker.get("paused"))})


async def feedback_api(request: web.Request) -> web.Response:
    """Store a customer's 👍/👎 on a knowledge answer of their own conversation (``"web-" + sender``).

    Body: JSON ``{"sender": str (as for /api/chat), "answer_id": 32 lower-case hex digits,
    "rating": "up" | "down", "comment": str (optional, at most 500 characters)}``. Rating an answer
    again replaces the earlier rating; a missing or blank comment keeps the earlier comment.
    200 ``{"status": "saved"}``; otherwise ``{"error": str}`` with 400 for a malformed body or field,
    404 when the conversation has no such answer, 413 for a longer comment."""
    try:
        body = await request.json()
    except ValueError:
        return _error("body is not valid JSON", 400)
    if not isinstance(body, dict):
        return _error("body must be a JSON object", 400)
    sender, answer_id, rating, comment = (body.get(key) for key in ("sender", "answer_id", "rating", "comment"))
    if not isinstance(sender, str) or not _SENDER.fullmatch(sender):
        return _error("sender must be 8 to 64 letters, digits, '_' or '-'", 400)
    if not isinstance(answer_id, str) or not _ANSWER_ID.fullmatch(answer_id):
        return _error("answer_id must be 32 lower-case hex digits", 400)
    if not isinstance(rating, str) or rating not in RATINGS:
        return _error('rating must be "up" or "down"', 400)
    if comment is not None and not isinstance(comment, str):
        return _error("comment must be a string", 400)
    comment = (comment.strip() or None) if comment else None
    if comment and len(comment) > MAX_COMMENT_CHARS:
        return _error(f"comment is longer than {MAX_COMMENT_CHARS} characters", 413)
    conversation_id = conversation_ids.make("web", sender)
    try:
        async with session_scope(request.app[settings_key].database_url) as session:
            await record_feedback(session, answer_id, conversation_id, RATINGS[rating], comment)
    except UnknownAnswer:
        return _error("no such answer in this conversation", 404)
    log.info(
        "Feedback %s%s on answer %s in conversation %s",
        rating,
        " with a comment" if comment else "",
        answer_id,
        conversation_id,
    )
    return web.json_response({"status": "saved"})


async def quote_pdf(request: web.Request) -> web.Response:
    """The quote PDF behind an unguessable link (``/quotes/<token>.pdf``): 200 application/pdf,
    404 for an unknown token, 410 with a short page once the quote has expired."""
    token = request.match_info["token"]
    if not _TOKEN.fullmatch(token):
        raise web.HTTPNotFound(text="No such quote.")
    async with session_scope(request.app[settings_key].database_url) as session:
        quote = await quotes.by_token(session, token)
    if quote is None:
        raise web.HTTPNotFound(text="No such quote.")
    if quote.status == "expired":
        log.info("expired quote %s requested", quote.number)
        return web.Response(status=410, text=f"Quote {quote.number} has expired. Ask us in the chat for a new one.")
    return await _pdf(quotes.document(quote, get_company()))


async def document_pdf(request: web.Request) -> web.Response:
    """An invoice or contract PDF behind an unguessable link (``/documents/<token>.pdf``,
    :mod:`bot.commerce.invoicing`): 200 application/pdf, 404 for an unknown token. Documents do not expire."""
    token = request.match_info["token"]
    if not _TOKEN.fullmatch(token):
        raise web.HTTPNotFound(text="No such document.")
    async with session_scope(request.app[settings_key].database_url) as session:
        doc = await invoicing.by_token(session, token)
        if doc is None:
            raise web.HTTPNotFound(text="No such document.")
        content = invoicing.document(doc, get_company())
    return await _pdf(content)


async def _pdf(document: QuoteDocument) -> web.Response:
    """``document`` rendered (off the event loop) as an inline PDF named by its number, never cached."""
    pdf = await asyncio.to_thread(render_quote_pdf, document)
    return web.Response(
        body=pdf,
        content_type="application/pdf",
        headers={"Content-Disposition": _inline(f"{document.number}.pdf"), "Cache-Control": "private, no-store"},
    )


def _inline(filename: str) -> str:
    """A Content-Disposition header showing ``filename``: as it is when ASCII, else RFC 6266's UTF-8 form
    (``КП-2026-0001.pdf``) with an ASCII fallback."""
    if filename.isascii():
        return f'inline; filename="{filename}"'
    fallback = filename.encode("ascii", "replace").decode().replace("?", "_")
    return f"inline; filename=\"{fallback}\"; filename*=UTF-8''{urllib.parse.quote(filename)}"


def setup(app: web.Application) -> None:
    """Serve the web chat's routes (the module's docstring) in ``app``, whose settings (``app[settings_key]``)
    give the rate limits. Raises ValueError for a ``rate_limit_*`` setting that is not positive."""
    settings = app[settings_key]
    app[sender_limiter_key] = RateLimiter(settings.rate_limit_messages, settings.rate_limit_window_s)
    app[ip_limiter_key] = RateLimiter(settings.rate_limit_ip_messages, settings.rate_limit_window_s)
    app.router.add_get("/", chat_page)
    app.router.add_post("/api/chat", chat_api)
    app.router.add_get("/api/chat/updates", chat_updates)
    app.router.add_post("/api/feedback", feedback_api)
    app.router.add_get("/quotes/{token}.pdf", quote_pdf)
    app.router.add_get("/documents/{token}.pdf", document_pdf)
