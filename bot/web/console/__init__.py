"""The manager console under ``/console``: sessions, sign-in, roles, and the pages of every area.

An area is one module of this package with a route table (paths relative to ``/console``); every
handler names the least role it needs, and :func:`render` draws a template inside the console layout::

    # bot/web/console/escalations.py
    from aiohttp import web
    from bot.web.console import render, requires

    routes = web.RouteTableDef()

    @routes.get("/escalations")
    @requires("manager")  # or "admin"; a handler without it stops the console at start-up
    async def escalations(request: web.Request) -> web.Response:
        return await render(request, "manager/escalations.html", title="Escalations", rows=[...])

and one line in :data:`AREAS`: ``"escalations",``. The decorator order matters (``@routes`` outermost).

- The signed-in user is ``request[USER]`` (a :class:`bot.core.models.User`); settings are
  ``request.app[settings_key]`` (:mod:`bot.web.chat`).
- Every POST/PUT/PATCH/DELETE needs the session's CSRF token: forms carry
  ``<input type="hidden" name="csrf_token" value="{{ csrf_token }}">``, scripts send ``X-CSRF-Token``.
  A missing or wrong token gets 403 before the handler runs.
- After a successful POST: ``await flash(request, "Saved.")`` and ``raise web.HTTPSeeOther(...)``;
  the next rendered page shows the message.
- Templates extend ``manager/base.html`` (block ``content``; pass ``title``); they get ``user``,
  ``csrf_token``, ``nav``, ``flashes``, ``path`` and the keyword arguments given to :func:`render`.
- :data:`NAV` fixes each area's entry page (e.g. ``/console/escalations``); an entry shows once that
  path has a GET route.
- Pages get ``X-Frame-Options: DENY``, a CSP allowing only this origin (plus inline styles; no inline
  scripts), ``Referrer-Policy: same-origin`` and ``Cache-Control: no-store``.
"""

import secrets
from dataclasses import dataclass
from importlib import import_module

from aiohttp import web
from aiohttp_session import Session, get_session, session_middleware
from aiohttp_session.cookie_storage import EncryptedCookieStorage
from cryptography.fernet import Fernet

from bot.web.accounts import ROLES, has_role
from bot.web.chat import settings_key, templates_key
from bot.core.keys import load_or_create_secret
from bot.core.models import User
from bot.core.settings import ROOT

PREFIX = "/console"
# Modules of this package whose ``routes`` are served under PREFIX, in this order.
AREAS = (
    "auth",
    "users",
    "sales",
    "analytics",
    "training",
    "escalations",
    "conversations",
    "nlu",
    "audit",
    "erasure",
)
COOKIE = "closer_console"
SECRET_KEY_FILE = ROOT / "var" / "console-secret.key"
ROLE_ATTR = "console_role"
PUBLIC = "public"  # the role of the sign-in routes; honoured in bot.web.console.auth only
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
SECURITY_HEADERS = {
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
                               "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}


@dataclass(frozen=True)
class NavItem:
    """An entry of the console's navigation: shown when a GET route exists at ``path`` and the user has ``role``."""

    label: str
    path: str
    role: str


# The console's navigation; an item shows once its path has a GET route and the user has its role.
NAV = (
    NavItem("Conversations", "/console/conversations", "manager"),
    NavItem("Escalations", "/console/escalations", "manager"),
    NavItem("NLU inbox", "/console/nlu", "manager"),
    NavItem("Pipeline", "/console/pipeline", "manager"),
    NavItem("Quotes", "/console/quotes", "manager"),
    NavItem("Contacts", "/console/contacts", "manager"),
    NavItem("Analytics", "/console/analytics", "manager"),
    NavItem("Training", "/console/training", "manager"),
    NavItem("Users", "/console/users", "admin"),
    NavItem("Audit log", "/console/audit", "admin"),
)

USER = web.RequestKey("console_user", User)
nav_key = web.AppKey("console_nav", tuple)


def requires(role: str):
    """Decorator: the handler serves signed-in users with ``role`` ("manager" or "admin"; an admin
    has every manager's rights). Others get 302 to the login page (GET) or 401, and 403 for a lesser
    role. Raises ValueError for an unknown role, at import."""
    if role not in ROLES:
        raise ValueError(f"unknown console role {role!r}; one of {', '.join(ROLES)}")

    def decorate(handler):
        setattr(handler, ROLE_ATTR, role)
        return handler
    return decorate


def public(handler):
    """Decorator for the sign-in routes of bot.web.console.auth only: served without a signed-in user
    (unsafe methods still need the CSRF token). :func:`setup_manager` refuses it anywhere else."""
    setattr(handler, ROLE_ATTR, PUBLIC)
    return handler


def csrf_token(session: Session) -> str:
    """The session's CSRF token (43 url-safe characters), made on first use."""
    if "csrf" not in session:
        session["csrf"] = secrets.token_urlsafe(32)
    return session["csrf"]


async def flash(request: web.Request, text: str, level: str = "info") -> None:
    """Keep ``text`` for the next page :func:`render` draws; ``level``: "info" or "error"."""
    session = await get_session(request)
    session["flash"] = [*session.get("flash", []), {"text": text, "level": level}]


async def render(request: web.Request, template: str, *, status: int = 200, **context) -> web.Response:
    """``template`` (a path under bot/web/templates, e.g. "manager/users.html") as an HTML response with
    ``status``, given ``context`` plus ``user`` (None before sign-in), ``csrf_token``, ``nav`` (the
    user's NavItems), ``flashes`` (list of {"text", "level"}, shown once) and ``path`` (the request's)."""
    session = await get_session(request)
    user = request.get(USER)
    nav = [item for item in request.app[nav_key] if user is not None and has_role(user.role, item.role)]
    html = request.app[templates_key].get_template(template).render(
        user=user, csrf_token=csrf_token(session), nav=nav, flashes=session.pop("flash", []), path=request.path,
        **context)
    return web.Response(text=html, status=status, content_type="text/html")


def in_console(path: str) -> bool:
    """Whether a request path is the manager console's."""
    return path == PREFIX or path.startswith(PREFIX + "/")


async def _security_headers(request: web.Request, response: web.StreamResponse) -> None:
    if in_console(request.path):
        response.headers.update(SECURITY_HEADERS)


def setup_manager(app: web.Application) -> None:
    """Serve the manager console in ``app`` (made by bot.web.chat.create_app; reads its settings):
    encrypted session cookies (holding the server-side session's id), the sign-in middleware, security
    headers and every area's routes.

    Raises RuntimeError, before anything is served, for a route without a role (see :func:`requires`),
    ValueError for an invalid CLOSER_CONSOLE_SECRET_KEY and OSError when the key file cannot be made."""
    from bot.web.console import auth  # area modules import this package

    settings = app[settings_key]
    key = Fernet(settings.console_secret_key or load_or_create_secret(SECRET_KEY_FILE, Fernet.generate_key))
    storage = EncryptedCookieStorage(key, cookie_name=COOKIE, max_age=settings.console_session_max_age, path=PREFIX,
                                     httponly=True, samesite="Lax", secure=settings.console_secure_cookies)
    app.middlewares.extend([session_middleware(storage), auth.middleware])
    app[auth.limiter_key] = auth.LoginLimiter()
    for name in AREAS:
        module = import_module(f"{__name__}.{name}")
        for route in module.routes:
            role = getattr(route.handler, ROLE_ATTR, None)
            if role is None or (role == PUBLIC and module is not auth):
                raise RuntimeError(f"{module.__name__}.{route.handler.__name__} ({route.method} {PREFIX}{route.path}) "
                                   "has no role: add @requires('manager') or @requires('admin') below its @routes line")
            app.router.add_routes([web.RouteDef(route.method, PREFIX + route.path, route.handler, route.kwargs)])
        if hasattr(module, "setup"):  # an area's start-up work, e.g. a background task in app.cleanup_ctx
            module.setup(app)
    pages = {route.resource.canonical for route in app.router.routes() if route.method == "GET" and route.resource}
    app[nav_key] = tuple(item for item in NAV if item.path in pages)
    app.on_response_prepare.append(_security_headers)
