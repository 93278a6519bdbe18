"""Signing in to the manager console: login and logout, the middleware guarding every ``/console``
route, and a limit on failed sign-ins.

Sessions are kept on the server (table ``console_sessions``, :mod:`bot.web.accounts`); the browser's
encrypted cookie (aiohttp-session, Fernet) holds the session id, the CSRF token and the flashed messages.
Every request reads the session's row and its user: an unknown, revoked or expired session (signing in
lasts CLOSER_CONSOLE_SESSION_MAX_AGE seconds), or one of a disabled user, is signed out. Logging out
revokes the row, a new password or disabling the user revokes all of theirs, and an admin may revoke any
on the Users page — a copied cookie stops working at once. Signing in and out are written to the audit
log (:mod:`bot.core.audit`).

Failed sign-ins are counted in memory, in this process: after 5 failures for one email or 20 from one
IP address within 15 minutes, further attempts get 429 with ``Retry-After`` until the oldest of those
failures is 15 minutes old. That holds for the single console process Closer runs; replicas would each
count their own. Behind a reverse proxy ``request.remote`` is the proxy, so the per-IP limit then
counts everyone together.
"""

import logging
import math
import secrets
import time
from collections import deque
from collections.abc import Callable
from urllib.parse import urlsplit

from aiohttp import web
from aiohttp_session import Session, get_session, new_session
from yarl import URL

from bot.core import audit
from bot.core.db import session_scope
from bot.core.models import User
from bot.web import accounts
from bot.web.appkeys import settings_key
from bot.web.console import (
    PREFIX,
    PUBLIC,
    ROLE_ATTR,
    SAFE_METHODS,
    USER,
    csrf_token,
    flash,
    in_console,
    public,
    render,
    requires,
)

log = logging.getLogger(__name__)

routes = web.RouteTableDef()

WRONG_CREDENTIALS = "Unknown email or wrong password."
LOGIN = f"{PREFIX}/login"
HOME = f"{PREFIX}/"


class LoginLimiter:
    """Failed sign-ins within the last ``window`` seconds, per email and per client IP address, kept in
    memory. ``clock`` gives seconds (monotonic)."""

    def __init__(
        self, per_email: int = 5, per_ip: int = 20, window: float = 15 * 60, clock: Callable[[], float] = time.monotonic
    ):
        self.limits = {"email": per_email, "ip": per_ip}
        self.window = window
        self.clock = clock
        self._failures: dict[tuple[str, str], deque[float]] = {}

    def _recent(self, key: tuple[str, str], now: float) -> deque[float]:
        times = self._failures.get(key, deque())
        while times and times[0] <= now - self.window:
            times.popleft()
        if not times:
            self._failures.pop(key, None)
        return times

    def retry_after(self, email: str, ip: str) -> int:
        """Whole seconds until ``email`` may try to sign in from ``ip`` again; 0 if it may now."""
        now = self.clock()
        waits = [0.0]
        for kind, value in (("email", email), ("ip", ip)):
            times = self._recent((kind, value), now)
            if len(times) >= self.limits[kind]:
                waits.append(times[-self.limits[kind]] + self.window - now)
        return math.ceil(max(waits))

    def failed(self, email: str, ip: str) -> None:
        """Count a failed sign-in (and forget failures older than the window, for every key)."""
        now = self.clock()
        for key in list(self._failures):
            self._recent(key, now)
        for key in (("email", email), ("ip", ip)):
            self._failures.setdefault(key, deque()).append(now)

    def succeeded(self, email: str) -> None:
        """Forget the failed sign-ins for ``email`` (those of its IP address still count)."""
        self._failures.pop(("email", email), None)


limiter_key = web.AppKey("console_login_limiter", LoginLimiter)


def local_path(value: object) -> str | None:
    """``value`` if it is a path inside the console (where to go after signing in), else None:
    no scheme, host, backslash or control character, so it cannot lead to another site."""
    if not isinstance(value, str) or not in_console(value) or "\\" in value or any(ord(c) < 32 for c in value):
        return None
    parts = urlsplit(value)
    return None if parts.scheme or parts.netloc else value


async def _signed_in(request: web.Request, session: Session) -> User | None:
    """The user of the cookie's session while it counts (:func:`bot.web.accounts.session_user`), or None; the
    cookie of a session that no longer counts is cleared."""
    session_id = session.get("sid")
    if session_id is None:
        return None
    async with session_scope(request.app[settings_key].database_url) as db:
        found = await accounts.session_user(db, session_id)
    if found is None:
        log.info(
            "console session %s ended (logged out, revoked, expired, or its user disabled or deleted)",
            accounts.hash_session_id(session_id)[:8],
        )
        session.invalidate()
        return None
    return found[1]


def _wants_json(request: web.Request) -> bool:
    return "application/json" in request.headers.get("Accept", "")


def _sign_in_first(request: web.Request) -> web.Response:
    """302 to the login page (coming back here afterwards) for a page; 401 for an unsafe method or JSON."""
    if request.method in SAFE_METHODS and not _wants_json(request):
        raise web.HTTPFound(URL(LOGIN).with_query(next=request.path_qs))
    if _wants_json(request):
        return web.json_response({"error": "sign in first"}, status=401)
    return web.Response(text=f"Sign in first: {LOGIN}", status=401)


async def _csrf_ok(request: web.Request, session: Session) -> bool:
    """Whether the request carries the session's CSRF token (header X-CSRF-Token or form field csrf_token)."""
    expected = session.get("csrf")
    given = request.headers.get("X-CSRF-Token")
    if given is None and request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        given = (await request.post()).get("csrf_token")
    return bool(expected) and isinstance(given, str) and secrets.compare_digest(given.encode(), expected.encode())


@web.middleware
async def middleware(request: web.Request, handler) -> web.StreamResponse:
    """Guard every /console request: routes other than login/logout need a signed-in, enabled user
    (else 302 to the login page for a page, 401 for an unsafe method or an ``Accept: application/json``
    request) with the route's role (else 403, also for a route that has no role); every unsafe
    method needs the session's CSRF token (else 403). Sets ``request[USER]``."""
    if not in_console(request.path):
        return await handler(request)
    session = await get_session(request)
    role = getattr(request.match_info.handler, ROLE_ATTR, None)
    if role != PUBLIC:
        user = await _signed_in(request, session)
        if user is None:
            return _sign_in_first(request)
        request[USER] = user
        if request.match_info.http_exception is None and (role is None or not accounts.has_role(user.role, role)):
            log.warning(
                "console user %s (%s) refused %s %s (needs %s)",
                user.email,
                user.role,
                request.method,
                request.path,
                role,
            )
            return await render(
                request,
                "manager/base.html",
                status=403,
                title="Not allowed",
                message="Your role does not give access to this page.",
            )
    if request.method not in SAFE_METHODS and not await _csrf_ok(request, session):
        log.warning("CSRF token missing or wrong: %s %s from %s", request.method, request.path, request.remote)
        if _wants_json(request):
            return web.json_response({"error": "CSRF token missing or wrong"}, status=403)
        return web.Response(
            status=403, text="The form's security token is missing or out of date: reload the page and try again."
        )
    return await handler(request)


@routes.get("")
@routes.get("/")
@requires("manager")
async def home(request: web.Request) -> web.Response:
    """Where signing in leads: the conversations."""
    raise web.HTTPFound(f"{PREFIX}/conversations")


@routes.get("/login")
@public
async def login_page(request: web.Request) -> web.Response:
    """The sign-in form; ``?next=`` (a console path) is where a successful sign-in leads."""
    next_path = local_path(request.query.get("next"))
    return await render(request, "manager/login.html", title="Sign in", email="", next=next_path)


@routes.post("/login")
@public
async def login(request: web.Request) -> web.Response:
    """Form fields ``email``, ``password``, ``next``, ``csrf_token``. 303 to ``next`` (or /console/) with a
    new session (a ``console_sessions`` row and an audit entry ``session.sign_in``); the form again with 401
    for an unknown email or wrong password (the same message), 403 for a disabled user, 429 with
    ``Retry-After`` (seconds) after too many failures."""
    form = await request.post()
    email, password = str(form.get("email", "")).strip().lower(), str(form.get("password", ""))
    next_path, ip = local_path(form.get("next")), request.remote or "unknown"
    limiter = request.app[limiter_key]

    async def again(error: str, status: int) -> web.Response:
        return await render(
            request, "manager/login.html", status=status, title="Sign in", email=email, next=next_path, error=error
        )

    wait = limiter.retry_after(email, ip)
    if wait:
        log.warning("console sign-in for %s from %s refused: too many failures", email, ip)
        response = await again(f"Too many failed sign-ins. Try again in {math.ceil(wait / 60)} minute(s).", 429)
        response.headers["Retry-After"] = str(wait)
        return response
    settings = request.app[settings_key]
    async with session_scope(settings.database_url) as db:
        user = await accounts.authenticate(db, email, password)
        if user is not None and not user.disabled:
            session_id, row = await accounts.start_session(
                db, user, settings.console_session_max_age, request.remote, request.headers.get("User-Agent")
            )
            audit.record(db, user, "session.sign_in", "session", row.id_hash)
    if user is None:
        limiter.failed(email, ip)
        log.warning("console sign-in failed for %s from %s", email, ip)
        return await again(WRONG_CREDENTIALS, 401)
    if user.disabled:
        log.warning("console sign-in refused for disabled user %s from %s", email, ip)
        return await again("This account is disabled. Ask an administrator.", 403)
    limiter.succeeded(email)
    session = await new_session(request)  # a new session (and CSRF token) on every sign-in
    session["sid"] = session_id
    csrf_token(session)
    log.info("console user %s signed in from %s", user.email, ip)
    raise web.HTTPSeeOther(next_path or HOME)


@routes.post("/logout")
@public
async def logout(request: web.Request) -> web.Response:
    """End this browser's session (the CSRF token is required, as for any POST): its row is revoked (with
    an audit entry ``session.sign_out`` unless it was revoked already) and the cookie replaced; 303 to the
    login page."""
    session_id = (await get_session(request)).get("sid")
    if session_id is not None:
        async with session_scope(request.app[settings_key].database_url) as db:
            row = await accounts.revoke_session(db, accounts.hash_session_id(session_id))
            user = await accounts.get_user(db, row.user_id) if row is not None else None
            if user is not None:
                audit.record(db, user, "session.sign_out", "session", row.id_hash)
        log.info("console user %s logged out", user.email if user else None)
    await new_session(request)
    await flash(request, "You have logged out.")
    raise web.HTTPSeeOther(LOGIN)
