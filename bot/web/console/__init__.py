"""The manager console under ``/console``: what every area's pages use (roles, rendering, flashed messages,
the navigation). :mod:`bot.web.console.areas` serves the areas with sessions and sign-in.

An area is one module of this package with a route table (paths relative to ``/console``); every
handler names the least role it needs, parses the request, calls a function of the ``bot/`` package that
owns the data (queries live there, never in a handler) and draws a template inside the console layout with
:func:`render`::

    # bot/web/console/escalations.py
    from aiohttp import web
    from bot.web.console import render, requires

    routes = web.RouteTableDef()

    @routes.get("/escalations")
    @requires("manager")  # or "admin"; a handler without it stops the console at start-up
    async def escalations(request: web.Request) -> web.Response:
        return await render(request, "manager/escalations.html", title="Escalations", rows=[...])

and one line in :data:`bot.web.console.areas.AREAS`: ``"escalations",``. The decorator order matters
(``@routes`` outermost).

- The signed-in user is ``request[USER]`` (a :class:`bot.core.models.User`); the process's services are
  ``request.app[settings_key]``, ``request.app[rasa_key]`` (:mod:`bot.web.appkeys`).
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

from aiohttp import web
from aiohttp_session import Session, get_session

from bot.core.models import User
from bot.web.accounts import ROLES, has_role
from bot.web.appkeys import templates_key

PREFIX = "/console"
ROLE_ATTR = "console_role"
PUBLIC = "public"  # the role of the sign-in routes; honoured in bot.web.console.auth only
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


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
    NavItem("Schedule", "/console/schedule", "manager"),
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
    (unsafe methods still need the CSRF token). :func:`bot.web.console.areas.setup` refuses it anywhere else."""
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
    html = (
        request.app[templates_key]
        .get_template(template)
        .render(
            user=user,
            csrf_token=csrf_token(session),
            nav=nav,
            flashes=session.pop("flash", []),
            path=request.path,
            **context,
        )
    )
    return web.Response(text=html, status=status, content_type="text/html")


def in_console(path: str) -> bool:
    """Whether a request path is the manager console's."""
    return path == PREFIX or path.startswith(PREFIX + "/")
