"""Console users, for admins: ``/console/users`` lists them with their open sessions; an admin creates a
user, changes a user's role or password, disables a user and ends (revokes) a session. Each change is
written to the audit log (:mod:`bot.core.audit`) in the same transaction.

- ``POST /console/users`` (fields ``email``, ``name``, ``role``, ``password``): a new user.
- ``POST /console/users/<id>/role`` (field ``role``), ``…/password`` (field ``password``; revokes their
  sessions), ``…/disable`` (revokes their sessions).
- ``POST /console/users/sessions/<hash>/revoke``: end one session (``hash``: its id's SHA-256 hex digest).
"""

import logging
from collections import defaultdict

from aiohttp import web

from bot.core import audit
from bot.core.db import session_scope
from bot.core.models import User
from bot.web import accounts
from bot.web.appkeys import settings_key
from bot.web.console import PREFIX, USER, flash, render, requires

log = logging.getLogger(__name__)

routes = web.RouteTableDef()

PAGE = f"{PREFIX}/users"


async def _page(
    request: web.Request, status: int = 200, error: str | None = None, form: dict | None = None
) -> web.Response:
    async with session_scope(request.app[settings_key].database_url) as db:
        users = await accounts.list_users(db)
        sessions = defaultdict(list)
        for row in await accounts.active_sessions(db):
            sessions[row.user_id].append(row)
    return await render(
        request,
        "manager/users.html",
        status=status,
        title="Users",
        users=users,
        roles=accounts.ROLES,
        sessions=sessions,
        min_password=accounts.MIN_PASSWORD_CHARS,
        error=error,
        form=form or {"role": "manager"},
    )


@routes.get("/users")
@requires("admin")
async def users_page(request: web.Request) -> web.Response:
    """Every console user (email, name, role, status, last sign-in, open sessions) and a form for a new one."""
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
            audit.record(db, request[USER], "user.create", "user", user.id, email=user.email, role=user.role)
    except accounts.AccountError as exc:
        log.warning("console user not created by %s: %s", request[USER].email, exc)
        return await _page(request, 400, f"Not created: {exc}.", {"email": email, "name": name, "role": role})
    log.info("console user %s created by %s", user.email, request[USER].email)
    await flash(request, f"Created {user.email} ({user.role}).")
    raise web.HTTPSeeOther(PAGE)


async def _other_user(request: web.Request, db, verb: str) -> User | web.Response:
    """The user of the path's ``user_id``; raises 404 when there is none. The page with 400 (a response)
    when it is the admin's own account: ``verb`` says what they may not do to it."""
    user = await accounts.get_user(db, int(request.match_info["user_id"]))
    if user is None:
        raise web.HTTPNotFound(text="No such user.")
    if user.id == request[USER].id:
        log.warning("console user %s tried to %s their own account", user.email, verb)
        return await _page(request, 400, f"You cannot {verb} your own account.")
    return user


@routes.post(r"/users/{user_id:\d+}/disable")
@requires("admin")
async def disable(request: web.Request) -> web.Response:
    """Disable a user (their sessions are revoked at once): 303 back to the list; 404 for an unknown user,
    400 for the admin's own account."""
    admin = request[USER]
    async with session_scope(request.app[settings_key].database_url) as db:
        user = await _other_user(request, db, "disable")
        if isinstance(user, web.Response):
            return user
        await accounts.disable(db, user.email)
        audit.record(db, admin, "user.disable", "user", user.id, email=user.email)
    log.info("console user %s disabled by %s", user.email, admin.email)
    await flash(request, f"Disabled {user.email}.")
    raise web.HTTPSeeOther(PAGE)


@routes.post(r"/users/{user_id:\d+}/role")
@requires("admin")
async def set_role(request: web.Request) -> web.Response:
    """Form field ``role`` (one of ROLES): 303 back to the list; 404 for an unknown user, 400 for an unknown
    role or the admin's own account (so that the last admin cannot demote themselves)."""
    role = str((await request.post()).get("role", ""))
    admin = request[USER]
    try:
        async with session_scope(request.app[settings_key].database_url) as db:
            user = await _other_user(request, db, "change the role of")
            if isinstance(user, web.Response):
                return user
            user, previous = await accounts.set_role(db, user.email, role)
            if previous != role:
                audit.record(
                    db, admin, "user.role", "user", user.id, email=user.email, **{"from": previous, "to": role}
                )
    except accounts.AccountError as exc:
        return await _page(request, 400, f"Role not changed: {exc}.")
    log.info("console user %s made %s (was %s) by %s", user.email, role, previous, admin.email)
    await flash(request, f"{user.email} is now {role}." if previous != role else f"{user.email} is already {role}.")
    raise web.HTTPSeeOther(PAGE)


@routes.post(r"/users/{user_id:\d+}/password")
@requires("admin")
async def set_password(request: web.Request) -> web.Response:
    """Form field ``password``: give the user a new password and revoke their sessions; 303 back to the list
    (to the login page for the admin's own, whose session ends too); 404 for an unknown user, 400 for a
    password under MIN_PASSWORD_CHARS."""
    password = str((await request.post()).get("password", ""))
    admin = request[USER]
    try:
        async with session_scope(request.app[settings_key].database_url) as db:
            user = await accounts.get_user(db, int(request.match_info["user_id"]))
            if user is None:
                raise web.HTTPNotFound(text="No such user.")
            await accounts.set_password(db, user.email, password)
            audit.record(db, admin, "user.password", "user", user.id, email=user.email)
    except accounts.AccountError as exc:
        return await _page(request, 400, f"Password not changed: {exc}.")
    log.info("console user %s given a new password by %s; their sessions revoked", user.email, admin.email)
    await flash(request, f"New password for {user.email}; their sessions have ended.")
    raise web.HTTPSeeOther(PAGE)


@routes.post(r"/users/sessions/{id_hash:[0-9a-f]{64}}/revoke")
@requires("admin")
async def revoke(request: web.Request) -> web.Response:
    """End one console session at once: 303 back to the list; 404 for an unknown or already ended one."""
    async with session_scope(request.app[settings_key].database_url) as db:
        row = await accounts.revoke_session(db, request.match_info["id_hash"])
        if row is None:
            raise web.HTTPNotFound(text="No such open session.")
        audit.record(db, request[USER], "session.revoke", "session", row.id_hash, user_id=row.user_id)
    log.info("console session %s of user %s revoked by %s", row.id_hash[:8], row.user_id, request[USER].email)
    await flash(request, f"Ended session {row.id_hash[:8]}.")
    raise web.HTTPSeeOther(PAGE)
