"""Console users, for admins: ``/console/users`` lists them, creates one, disables one."""

import logging

from aiohttp import web

from bot import accounts
from bot.console import settings_key
from bot.db import session_scope
from bot.manager import PREFIX, USER, flash, render, requires
from bot.models import User

log = logging.getLogger(__name__)

routes = web.RouteTableDef()

PAGE = f"{PREFIX}/users"


async def _page(request: web.Request, status: int = 200, error: str | None = None,
                form: dict | None = None) -> web.Response:
    async with session_scope(request.app[settings_key].database_url) as db:
        users = await accounts.list_users(db)
    return await render(request, "manager/users.html", status=status, title="Users", users=users, roles=accounts.ROLES,
                        min_password=accounts.MIN_PASSWORD_CHARS, error=error, form=form or {"role": "manager"})


@routes.get("/users")
@requires("admin")
async def users_page(request: web.Request) -> web.Response:
    """Every console user (email, name, role, status, last sign-in) and a form for a new one."""
    return await _page(request)


@routes.post("/users")
@requires("admin")
async def create(request: web.Request) -> web.Response:
    """Form fields ``email``, ``name``, ``role``, ``password``: 303 back to the list, or the page again
    with 400 and the reason (invalid email, email in use, empty name, unknown role, short password)."""
    form = await request.post()
    email, name, role, password = (str(form.get(field, "")) for field in ("email", "name", "role", "password"))
    try:
        async with session_scope(request.app[settings_key].database_url) as db:
            user = await accounts.create_user(db, email, name, role, password)
    except accounts.AccountError as exc:
        log.warning("console user not created by %s: %s", request[USER].email, exc)
        return await _page(request, 400, f"Not created: {exc}.", {"email": email, "name": name, "role": role})
    log.info("console user %s created by %s", user.email, request[USER].email)
    await flash(request, f"Created {user.email} ({user.role}).")
    raise web.HTTPSeeOther(PAGE)


@routes.post(r"/users/{user_id:\d+}/disable")
@requires("admin")
async def disable(request: web.Request) -> web.Response:
    """Disable a user (their sessions end at once): 303 back to the list; 404 for an unknown user,
    400 for the admin's own account."""
    admin = request[USER]
    async with session_scope(request.app[settings_key].database_url) as db:
        user = await db.get(User, int(request.match_info["user_id"]))
        if user is not None and user.id != admin.id:
            await accounts.disable(db, user.email)
    if user is None:
        raise web.HTTPNotFound(text="No such user.")
    if user.id == admin.id:
        log.warning("console user %s tried to disable their own account", admin.email)
        return await _page(request, 400, "You cannot disable your own account.")
    log.info("console user %s disabled by %s", user.email, admin.email)
    await flash(request, f"Disabled {user.email}.")
    raise web.HTTPSeeOther(PAGE)
