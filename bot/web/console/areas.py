"""The manager console's areas and how they are served: :data:`AREAS` lists the modules of this package whose
``routes`` go under ``/console``; :func:`setup` mounts them with the session cookies, the sign-in middleware
and the security headers (:func:`bot.web.app.create_app` calls it)."""

from importlib import import_module

from aiohttp import web
from aiohttp_session import session_middleware
from aiohttp_session.cookie_storage import EncryptedCookieStorage
from cryptography.fernet import Fernet

from bot.core.keys import load_or_create_secret
from bot.core.settings import ROOT
from bot.web.appkeys import settings_key
from bot.web.console import NAV, PREFIX, PUBLIC, ROLE_ATTR, auth, in_console, nav_key

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
    "schedule",
)
COOKIE = "closer_console"
SECRET_KEY_FILE = ROOT / "var" / "console-secret.key"
SECURITY_HEADERS = {
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}


async def _security_headers(request: web.Request, response: web.StreamResponse) -> None:
    if in_console(request.path):
        response.headers.update(SECURITY_HEADERS)


def setup(app: web.Application) -> None:
    """Serve the manager console in ``app`` (reads ``app[settings_key]``): encrypted session cookies (holding
    the server-side session's id), the sign-in middleware, security headers and every area's routes.

    Raises RuntimeError, before anything is served, for a route without a role (see
    :func:`bot.web.console.requires`), ValueError for an invalid CLOSER_CONSOLE_SECRET_KEY and OSError when the
    key file cannot be made."""
    settings = app[settings_key]
    key = Fernet(settings.console_secret_key or load_or_create_secret(SECRET_KEY_FILE, Fernet.generate_key))
    storage = EncryptedCookieStorage(
        key,
        cookie_name=COOKIE,
        max_age=settings.console_session_max_age,
        path=PREFIX,
        httponly=True,
        samesite="Lax",
        secure=settings.console_secure_cookies,
    )
    app.middlewares.extend([session_middleware(storage), auth.middleware])
    app[auth.limiter_key] = auth.LoginLimiter()
    for name in AREAS:
        module = import_module(f"{__package__}.{name}")
        for route in module.routes:
            role = getattr(route.handler, ROLE_ATTR, None)
            if role is None or (role == PUBLIC and module is not auth):
                raise RuntimeError(
                    f"{module.__name__}.{route.handler.__name__} ({route.method} {PREFIX}{route.path}) "
                    "has no role: add @requires('manager') or @requires('admin') below its @routes line"
                )
            app.router.add_routes([web.RouteDef(route.method, PREFIX + route.path, route.handler, route.kwargs)])
        if hasattr(module, "setup"):  # an area's start-up work, e.g. a background task in app.cleanup_ctx
            module.setup(app)
    pages = {route.resource.canonical for route in app.router.routes() if route.method == "GET" and route.resource}
    app[nav_key] = tuple(item for item in NAV if item.path in pages)
    app.on_response_prepare.append(_security_headers)
