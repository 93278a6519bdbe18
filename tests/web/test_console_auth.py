"""Manager console sign-in, server-side sessions, roles, CSRF, login rate limit, the Users page and
``python -m bot user``, against the real console app (bot.web.app.create_app) on loopback and a migrated
SQLite DB."""

import os
import re
import stat
import subprocess
import sys
import types
from datetime import UTC, datetime, timedelta

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from argon2 import PasswordHasher
from cryptography.fernet import Fernet
from sqlalchemy import select

import bot.web.console
import bot.web.console.areas
from bot.core import db
from bot.core.keys import load_or_create_secret
from bot.core.models import ConsoleSession, User
from bot.core.settings import ROOT, Settings
from bot.web import accounts
from bot.web.app import create_app
from bot.web.console import PUBLIC, ROLE_ATTR, in_console, public, render, requires
from bot.web.console.auth import LoginLimiter

PASSWORD = "correct horse battery staple"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
# Values tried for each {placeholder} of a route path, until the path resolves to that route.
SAMPLE_PARAMS = ("1", "web-0123456789", "a" * 43, "0" * 64)


def console_settings(db_url: str, **overrides) -> Settings:
    return Settings(database_url=db_url, console_secret_key=Fernet.generate_key().decode(), **overrides)


async def add_user(db_url: str, email: str, role: str = "manager", password: str = PASSWORD) -> User:
    async with db.session_scope(db_url) as session:
        return await accounts.create_user(session, email, email.split("@")[0].title(), role, password)


async def users(db_url: str) -> dict[str, User]:
    async with db.session_scope(db_url) as session:
        return {user.email: user for user in await accounts.list_users(session)}


@pytest.fixture
async def client(db_url: str):
    async with TestClient(TestServer(create_app(console_settings(db_url)))) as client:
        yield client


async def csrf(client: TestClient, path: str = "/console/login") -> str:
    """The CSRF token on a console page (the login form, or any signed-in page's logout form)."""
    response = await client.get(path)
    return CSRF.search(await response.text()).group(1)


async def login(client: TestClient, email: str, password: str = PASSWORD, next_path: str | None = None):
    data = {"email": email, "password": password, "csrf_token": await csrf(client)}
    if next_path is not None:
        data["next"] = next_path
    return await client.post("/console/login", data=data, allow_redirects=False)


async def test_passwords_are_argon2_hashes_and_outdated_hashes_are_replaced_at_sign_in(db_url):
    user = await add_user(db_url, "Ann@Example.com", "admin")
    assert user.email == "ann@example.com"
    assert user.password_hash.startswith("$argon2id$") and PASSWORD not in user.password_hash
    async with db.session_scope(db_url) as session:
        assert await accounts.authenticate(session, "ann@example.com", "wrong password!!") is None
        assert await accounts.authenticate(session, "nobody@example.com", PASSWORD) is None
        signed_in = await accounts.authenticate(session, " ANN@example.com ", PASSWORD)
        assert signed_in.id == user.id and signed_in.last_login_at is not None

        signed_in.password_hash = PasswordHasher(time_cost=1, memory_cost=8192).hash(PASSWORD)  # weaker than today's
    async with db.session_scope(db_url) as session:
        rehashed = await accounts.authenticate(session, "ann@example.com", PASSWORD)
    assert not PasswordHasher().check_needs_rehash(rehashed.password_hash)
    assert (await users(db_url))["ann@example.com"].password_hash == rehashed.password_hash


@pytest.mark.parametrize(
    "email, role, password, reason",
    [
        ("ANN@example.com", "manager", PASSWORD, "already exists"),
        ("bob@example.com", "owner", PASSWORD, "role must be one of manager, admin"),
        ("bob@example.com", "manager", "x" * 11, "at least 12 characters"),
        ("bob@", "manager", PASSWORD, "not a valid email"),
    ],
)
async def test_bad_new_users_are_refused_and_nothing_is_stored(db_url, email, role, password, reason):
    await add_user(db_url, "ann@example.com", "admin")
    with pytest.raises(accounts.AccountError, match=reason):
        await add_user(db_url, email, role, password)
    assert list(await users(db_url)) == ["ann@example.com"]


async def test_signing_in_leads_to_the_page_asked_for_with_a_new_session(client, db_url):
    await add_user(db_url, "ann@example.com", "admin")
    response = await client.get("/console/users", allow_redirects=False)
    assert (response.status, response.headers["Location"]) == (302, "/console/login?next=/console/users")
    anonymous_token = await csrf(client)

    response = await login(client, "ann@example.com", next_path="/console/users")
    assert (response.status, response.headers["Location"]) == (303, "/console/users")
    page = await client.get("/console/users")
    assert page.status == 200 and "ann@example.com" in await page.text()
    assert CSRF.search(await page.text()).group(1) != anonymous_token
    assert (await users(db_url))["ann@example.com"].last_login_at is not None

    home = await client.get("/console/", allow_redirects=False)
    assert (home.status, home.headers["Location"]) == (302, "/console/conversations")


async def test_unknown_email_and_wrong_password_get_the_same_error(client, db_url):
    await add_user(db_url, "ann@example.com", "admin")
    wrong = await login(client, "ann@example.com", "not the password")
    unknown = await login(client, "nobody@example.com", PASSWORD)
    assert wrong.status == unknown.status == 401
    for response in (wrong, unknown):
        assert "Unknown email or wrong password." in await response.text()
    assert (await client.get("/console/users", allow_redirects=False)).status == 302


async def test_disabled_users_cannot_sign_in_and_their_sessions_end(client, db_url):
    await add_user(db_url, "ann@example.com", "admin")
    await add_user(db_url, "max@example.com")
    assert (await login(client, "ann@example.com")).status == 303
    async with db.session_scope(db_url) as session:
        await accounts.disable(session, "ann@example.com")
    response = await client.get("/console/users", allow_redirects=False)
    assert (response.status, response.headers["Location"]) == (302, "/console/login?next=/console/users")

    refused = await login(client, "ann@example.com")
    assert refused.status == 403 and "This account is disabled" in await refused.text()
    assert (await login(client, "max@example.com")).status == 303


async def test_a_new_password_ends_open_sessions(client, db_url):
    await add_user(db_url, "ann@example.com", "admin")
    await login(client, "ann@example.com")
    assert (await client.get("/console/users", allow_redirects=False)).status == 200
    async with db.session_scope(db_url) as session:
        await accounts.set_password(session, "ann@example.com", "another long password")
    assert (await client.get("/console/users", allow_redirects=False)).status == 302


async def test_five_failures_for_one_email_lock_it_for_a_while_but_not_other_users(client, db_url):
    await add_user(db_url, "ann@example.com", "admin")
    await add_user(db_url, "max@example.com")
    for _ in range(5):
        assert (await login(client, "ann@example.com", "not the password")).status == 401
    locked = await login(client, "ann@example.com")  # even the right password
    assert locked.status == 429
    assert 0 < int(locked.headers["Retry-After"]) <= 15 * 60
    assert "Too many failed sign-ins" in await locked.text()
    assert (await client.get("/console/users", allow_redirects=False)).status == 302

    assert (await login(client, "max@example.com")).status == 303


async def test_twenty_failures_from_one_address_lock_it(client, db_url):
    await add_user(db_url, "max@example.com")
    for n in range(20):
        assert (await login(client, f"guess{n}@example.com", "not the password")).status == 401
    locked = await login(client, "max@example.com")
    assert locked.status == 429 and int(locked.headers["Retry-After"]) > 0


def test_failures_older_than_the_window_no_longer_count_and_a_success_clears_the_email():
    now = [1000.0]
    limiter = LoginLimiter(per_email=2, per_ip=3, window=60, clock=lambda: now[0])
    limiter.failed("ann", "10.0.0.1")
    now[0] += 20
    limiter.failed("ann", "10.0.0.1")
    assert limiter.retry_after("ann", "10.0.0.2") == 40  # the first failure leaves the window in 40 s
    assert limiter.retry_after("max", "10.0.0.1") == 0
    now[0] += 40
    assert limiter.retry_after("ann", "10.0.0.2") == 0

    limiter.failed("max", "10.0.0.1")
    limiter.failed("max", "10.0.0.1")
    assert limiter.retry_after("eve", "10.0.0.1") == 20  # three from this address since 1020 s
    limiter.succeeded("ann")
    assert limiter.retry_after("ann", "10.0.0.9") == 0


async def test_unsafe_requests_without_the_csrf_token_are_refused_and_change_nothing(client, db_url):
    await add_user(db_url, "ann@example.com", "admin")
    no_token = await client.post(
        "/console/login", data={"email": "ann@example.com", "password": PASSWORD}, allow_redirects=False
    )
    assert no_token.status == 403
    assert (await client.get("/console/users", allow_redirects=False)).status == 302

    await login(client, "ann@example.com")
    new_user = {"email": "max@example.com", "name": "Max", "role": "manager", "password": PASSWORD}
    for extra in ({}, {"csrf_token": "x" * 43}):
        response = await client.post("/console/users", data={**new_user, **extra}, allow_redirects=False)
        assert response.status == 403
    assert (await client.post("/console/logout", data={"csrf_token": ""}, allow_redirects=False)).status == 403
    assert list(await users(db_url)) == ["ann@example.com"]
    assert (await client.get("/console/users", allow_redirects=False)).status == 200  # still signed in

    token = await csrf(client, "/console/users")
    response = await client.post(
        "/console/users", data=new_user, headers={"X-CSRF-Token": token}, allow_redirects=False
    )
    assert response.status == 303
    assert (await users(db_url))["max@example.com"].role == "manager"


def copied_cookie(client: TestClient) -> str:
    """This browser's console cookie, as someone who copied it would hold it."""
    return client.session.cookie_jar.filter_cookies(client.make_url("/console/"))["closer_console"].value


async def status_with(client: TestClient, cookie: str, path: str = "/console/users") -> int:
    """The status another browser sending ``cookie`` gets for GET ``path`` (redirects not followed)."""
    async with (
        aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as other,
        other.get(
            client.make_url(path), headers={"Cookie": f"closer_console={cookie}"}, allow_redirects=False
        ) as response,
    ):
        return response.status


async def console_sessions(db_url: str) -> list[ConsoleSession]:
    async with db.session_scope(db_url) as session:
        return list((await session.scalars(select(ConsoleSession).order_by(ConsoleSession.created_at))).all())


async def test_a_sign_in_is_a_session_row_holding_only_the_ids_hash(client, db_url):
    await add_user(db_url, "ann@example.com", "admin")
    await login(client, "ann@example.com")
    [row] = await console_sessions(db_url)
    assert re.fullmatch(r"[0-9a-f]{64}", row.id_hash)
    assert (row.ip, row.revoked_at) == ("127.0.0.1", None) and "aiohttp" in row.user_agent.lower()
    assert row.expires_at - row.created_at == timedelta(seconds=8 * 3600)
    assert row.id_hash not in copied_cookie(client)


async def test_a_copied_cookie_stops_working_once_its_browser_logs_out(client, db_url):
    await add_user(db_url, "ann@example.com", "admin")
    await login(client, "ann@example.com")
    cookie = copied_cookie(client)
    assert await status_with(client, cookie) == 200
    token = await csrf(client, "/console/users")
    assert (await client.post("/console/logout", data={"csrf_token": token}, allow_redirects=False)).status == 303
    assert await status_with(client, cookie) == 302
    assert (await client.get("/console/users", allow_redirects=False)).status == 302
    [row] = await console_sessions(db_url)
    assert row.revoked_at is not None


@pytest.mark.parametrize("change, fields", [("password", {"password": "a brand new passphrase"}), ("disable", {})])
async def test_a_new_password_or_disabling_ends_every_session_of_the_user_at_once(client, db_url, change, fields):
    await add_user(db_url, "ann@example.com", "admin")
    max_id = (await add_user(db_url, "max@example.com")).id
    cookies = []
    for _ in range(2):  # two browsers
        client.session.cookie_jar.clear()
        await login(client, "max@example.com")
        cookies.append(copied_cookie(client))
    assert [await status_with(client, cookie, "/console/conversations") for cookie in cookies] == [200, 200]

    client.session.cookie_jar.clear()
    await login(client, "ann@example.com")
    token = await csrf(client, "/console/users")
    page = await (await client.get("/console/users")).text()
    assert page.count("<td>max@example.com</td>") == 3  # the users table and max's two open sessions
    response = await client.post(
        f"/console/users/{max_id}/{change}", data={**fields, "csrf_token": token}, allow_redirects=False
    )
    assert response.status == 303
    assert [await status_with(client, cookie, "/console/conversations") for cookie in cookies] == [302, 302]
    assert (await client.get("/console/users", allow_redirects=False)).status == 200  # the admin's own goes on
    if change == "password":
        assert (await login(client, "max@example.com", "a brand new passphrase")).status == 303


async def test_an_expired_session_is_signed_out(client, db_url):
    await add_user(db_url, "ann@example.com", "admin")
    await login(client, "ann@example.com")
    async with db.session_scope(db_url) as session:
        [row] = (await session.scalars(select(ConsoleSession))).all()
        row.expires_at = datetime.now(UTC) - timedelta(seconds=1)
    response = await client.get("/console/users", allow_redirects=False)
    assert (response.status, response.headers["Location"]) == (302, "/console/login?next=/console/users")


async def test_last_seen_is_written_at_most_once_a_minute(client, db_url):
    await add_user(db_url, "ann@example.com", "admin")
    await login(client, "ann@example.com")

    async def last_seen_after_a_request(ago_s: int) -> timedelta:
        moved = datetime.now(UTC) - timedelta(seconds=ago_s)
        async with db.session_scope(db_url) as session:
            [row] = (await session.scalars(select(ConsoleSession))).all()
            row.last_seen_at = moved
        assert (await client.get("/console/users")).status == 200
        [row] = await console_sessions(db_url)
        return row.last_seen_at.replace(tzinfo=UTC) - moved

    assert await last_seen_after_a_request(30) == timedelta(0)
    assert await last_seen_after_a_request(90) >= timedelta(seconds=89)


async def test_an_admin_ends_one_session_of_another_user(client, db_url):
    await add_user(db_url, "ann@example.com", "admin")
    await add_user(db_url, "max@example.com")
    await login(client, "max@example.com")
    cookie = copied_cookie(client)
    client.session.cookie_jar.clear()
    await login(client, "ann@example.com")
    token = await csrf(client, "/console/users")
    max_id = (await users(db_url))["max@example.com"].id
    [max_session] = [row for row in await console_sessions(db_url) if row.user_id == max_id]
    page = await (await client.get("/console/users")).text()
    assert f'action="/console/users/sessions/{max_session.id_hash}/revoke"' in page
    ended = await client.post(f"/console/users/sessions/{max_session.id_hash}/revoke", data={"csrf_token": token})
    assert ended.status == 200 and f"Ended session {max_session.id_hash[:8]}." in await ended.text()
    assert await status_with(client, cookie, "/console/conversations") == 302
    again = await client.post(f"/console/users/sessions/{max_session.id_hash}/revoke", data={"csrf_token": token})
    assert again.status == 404


async def test_admins_change_roles_but_not_their_own(client, db_url):
    await add_user(db_url, "ann@example.com", "admin")
    max_id = (await add_user(db_url, "max@example.com")).id
    await login(client, "ann@example.com")
    token = await csrf(client, "/console/users")
    promoted = await client.post(f"/console/users/{max_id}/role", data={"role": "admin", "csrf_token": token})
    assert promoted.status == 200 and "max@example.com is now admin." in await promoted.text()
    assert (await users(db_url))["max@example.com"].role == "admin"
    unknown = await client.post(f"/console/users/{max_id}/role", data={"role": "owner", "csrf_token": token})
    assert unknown.status == 400 and "role must be one of manager, admin" in await unknown.text()
    own_id = (await users(db_url))["ann@example.com"].id
    own = await client.post(f"/console/users/{own_id}/role", data={"role": "manager", "csrf_token": token})
    assert own.status == 400 and (await users(db_url))["ann@example.com"].role == "admin"
    short = await client.post(f"/console/users/{max_id}/password", data={"password": "short", "csrf_token": token})
    assert short.status == 400 and "at least 12 characters" in await short.text()


def sample_path(route) -> str:
    """A concrete path that ``route`` serves."""
    info = route.resource.get_info()
    for value in SAMPLE_PARAMS:
        path = re.sub(r"\{[^}]+\}", value, route.resource.canonical)
        if path == info.get("path") or ("pattern" in info and info["pattern"].fullmatch(path)):
            return path
    raise AssertionError(f"add a value matching {route.resource.canonical} to SAMPLE_PARAMS")


async def test_every_console_route_has_a_role_and_refuses_strangers_and_lesser_roles(db_url):
    """Walks the real app's route table, so it also guards the routes of areas added later."""
    await add_user(db_url, "max@example.com", "manager")
    app = create_app(console_settings(db_url))
    routes = [
        route for route in app.router.routes() if route.resource is not None and in_console(route.resource.canonical)
    ]
    public_routes = {(r.method, r.resource.canonical) for r in routes if getattr(r.handler, ROLE_ATTR, None) == PUBLIC}
    assert public_routes == {
        ("GET", "/console/login"),
        ("HEAD", "/console/login"),
        ("POST", "/console/login"),
        ("POST", "/console/logout"),
    }
    guarded = [route for route in routes if getattr(route.handler, ROLE_ATTR, None) != PUBLIC]
    for route in guarded:
        assert getattr(route.handler, ROLE_ATTR, None) in accounts.ROLES, f"{route} has no role"
    assert any(route.resource.canonical == "/console/users" for route in guarded)

    async with TestClient(TestServer(app)) as client:
        for route in guarded:
            path = sample_path(route)
            response = await client.request(route.method, path, allow_redirects=False)
            if route.method in ("GET", "HEAD"):
                assert (response.status, response.headers["Location"]) == (302, f"/console/login?next={path}"), route
                as_json = await client.request(
                    route.method, path, headers={"Accept": "application/json"}, allow_redirects=False
                )
                assert as_json.status == 401, route
            else:
                assert response.status == 401, route

        await login(client, "max@example.com")
        token = await csrf(client, "/console/users")  # the 403 page still has the logout form
        for route in guarded:
            if getattr(route.handler, ROLE_ATTR) == "admin":
                response = await client.request(
                    route.method, sample_path(route), headers={"X-CSRF-Token": token}, allow_redirects=False
                )
                assert response.status == 403, route


probe = web.RouteTableDef()


@probe.get("/probe")
@requires("manager")
async def probe_page(request: web.Request) -> web.Response:
    return await render(
        request, "manager/base.html", title="Probe", message=f"hello {request[bot.web.console.USER].email}"
    )


def add_area(monkeypatch, name: str, routes: web.RouteTableDef) -> None:
    module = types.SimpleNamespace(__name__=f"bot.web.console.{name}", routes=routes)
    monkeypatch.setitem(sys.modules, module.__name__, module)
    monkeypatch.setattr(bot.web.console.areas, "AREAS", (*bot.web.console.areas.AREAS, name))


async def test_an_area_added_to_the_list_serves_its_role_and_admins(monkeypatch, db_url):
    add_area(monkeypatch, "probe", probe)
    await add_user(db_url, "ann@example.com", "admin")
    await add_user(db_url, "max@example.com", "manager")
    async with TestClient(TestServer(create_app(console_settings(db_url)))) as client:
        assert (await client.get("/console/probe", allow_redirects=False)).status == 302
        for email in ("max@example.com", "ann@example.com"):
            await login(client, email)
            page = await client.get("/console/probe")
            assert page.status == 200 and f"hello {email}" in await page.text()
            nav = re.findall(r'<li><a href="([^"]+)"', await page.text())
            assert ("/console/users" in nav) == (email == "ann@example.com")
            await client.post("/console/logout", data={"csrf_token": CSRF.search(await page.text()).group(1)})


@pytest.mark.parametrize("marked_public", [False, True])
def test_a_route_without_a_role_or_wrongly_public_stops_the_console_at_start_up(monkeypatch, db_url, marked_public):
    unguarded = web.RouteTableDef()

    async def open_page(request: web.Request) -> web.Response:
        return web.Response(text="open")

    unguarded.post("/open")(public(open_page) if marked_public else open_page)
    add_area(monkeypatch, "unguarded", unguarded)
    with pytest.raises(RuntimeError, match=r"open_page \(POST /console/open\) has no role"):
        create_app(console_settings(db_url))


async def test_a_console_route_added_behind_the_managers_back_is_refused(db_url):
    await add_user(db_url, "ann@example.com", "admin")
    app = create_app(console_settings(db_url))
    app.router.add_get("/console/raw", lambda request: web.Response(text="raw"))
    async with TestClient(TestServer(app)) as client:
        await login(client, "ann@example.com")
        response = await client.get("/console/raw")
        assert response.status == 403 and "raw" not in await response.text()


@pytest.mark.parametrize(
    "next_path",
    [
        "//evil.example/x",
        "https://evil.example/",
        "/\\evil.example",
        "/console\\@evil.example",
        "javascript:alert(1)",
        "/quotes/x.pdf",
        "/console/\r\nSet-Cookie: x=1",
    ],
)
async def test_sign_in_never_leads_off_the_console(client, db_url, next_path):
    await add_user(db_url, "ann@example.com", "admin")
    form = await client.get("/console/login", params={"next": next_path})
    assert 'name="next"' not in await form.text()
    response = await login(client, "ann@example.com", next_path=next_path)
    assert (response.status, response.headers["Location"]) == (303, "/console/")


@pytest.mark.parametrize("secure", [False, True])
async def test_the_session_cookie_flags_and_the_security_headers(db_url, secure):
    async with TestClient(TestServer(create_app(console_settings(db_url, console_secure_cookies=secure)))) as client:
        page = await client.get("/console/login")  # the session (with its CSRF token) starts here
        cookie = page.cookies["closer_console"]
        assert cookie["httponly"] is True and cookie["samesite"] == "Lax" and cookie["path"] == "/console"
        assert cookie["max-age"] == str(8 * 3600)
        assert bool(cookie["secure"]) is secure
        assert CSRF.search(await page.text()).group(1) not in page.headers["Set-Cookie"]  # encrypted

        assert page.headers["X-Frame-Options"] == "DENY" and page.headers["Cache-Control"] == "no-store"
        assert page.headers["Referrer-Policy"] == "same-origin"
        policy = page.headers["Content-Security-Policy"]
        assert "default-src 'self'" in policy and "frame-ancestors 'none'" in policy and "script-src" not in policy
        assert "X-Frame-Options" not in (await client.get("/healthz")).headers  # the customer widget is not the console


async def test_admins_create_and_disable_users_on_the_users_page(client, db_url):
    await add_user(db_url, "ann@example.com", "admin")
    await login(client, "ann@example.com")
    token = await csrf(client, "/console/users")
    new_user = {"email": "Max@Example.com", "name": "Max", "role": "manager", "csrf_token": token}
    short = await client.post("/console/users", data={**new_user, "password": "short"})
    assert short.status == 400
    assert "at least 12 characters" in await short.text() and 'value="Max@Example.com"' in await short.text()
    created = await client.post("/console/users", data={**new_user, "password": PASSWORD})
    assert created.status == 200 and "Created max@example.com (manager)." in await created.text()
    stored = await users(db_url)
    assert set(stored) == {"ann@example.com", "max@example.com"}

    disabled = await client.post(f"/console/users/{stored['max@example.com'].id}/disable", data={"csrf_token": token})
    assert disabled.status == 200 and "Disabled max@example.com." in await disabled.text()
    assert (await users(db_url))["max@example.com"].disabled
    own = await client.post(f"/console/users/{stored['ann@example.com'].id}/disable", data={"csrf_token": token})
    assert own.status == 400 and not (await users(db_url))["ann@example.com"].disabled
    assert (await client.post("/console/users/999/disable", data={"csrf_token": token})).status == 404


async def test_without_a_configured_key_sessions_use_one_made_once_for_the_owner_only(monkeypatch, tmp_path, db_url):
    path = tmp_path / "var" / "console-secret.key"
    monkeypatch.setattr(bot.web.console.areas, "SECRET_KEY_FILE", path)
    await add_user(db_url, "ann@example.com", "admin")
    async with TestClient(TestServer(create_app(Settings(database_url=db_url)))) as client:
        assert (await login(client, "ann@example.com")).status == 303
        assert (await client.get("/console/users")).status == 200
    key = path.read_bytes()
    Fernet(key)  # a valid key
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_or_create_secret(path, Fernet.generate_key) == key
    assert [p.name for p in path.parent.iterdir()] == ["console-secret.key"]


def run_cli(db_url: str, *args: str, stdin: str = "") -> subprocess.CompletedProcess:
    env = {**os.environ, "CLOSER_DATABASE_URL": db_url}
    return subprocess.run(
        [sys.executable, "-m", "bot", "user", *args],
        cwd=ROOT,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )


async def test_the_user_command_adds_lists_changes_and_disables_users(db_url):
    def add(email: str, name: str, role: str, password: str) -> subprocess.CompletedProcess:
        return run_cli(
            db_url, "add", "--email", email, "--name", name, "--role", role, "--password-stdin", stdin=password + "\n"
        )

    added = add("Ann@Example.com", "Ann Admin", "admin", PASSWORD)
    assert added.returncode == 0, added.stderr
    duplicate = add("ann@example.com", "Ann", "admin", PASSWORD)
    assert duplicate.returncode == 2 and "already exists" in duplicate.stderr
    short = add("max@example.com", "Max", "manager", "short")
    assert short.returncode == 2 and "at least 12 characters" in short.stderr
    role = add("max@example.com", "Max", "owner", PASSWORD)
    assert role.returncode == 2 and "invalid choice: 'owner'" in role.stderr
    assert list(await users(db_url)) == ["ann@example.com"]

    changed = run_cli(
        db_url, "passwd", "--email", "ann@example.com", "--password-stdin", stdin="a brand new passphrase\n"
    )
    assert changed.returncode == 0, changed.stderr
    async with db.session_scope(db_url) as session:
        assert await accounts.authenticate(session, "ann@example.com", PASSWORD) is None
        assert await accounts.authenticate(session, "ann@example.com", "a brand new passphrase") is not None

    assert run_cli(db_url, "disable", "--email", "ann@example.com").returncode == 0
    listed = run_cli(db_url, "list")
    assert listed.returncode == 0
    assert listed.stdout.split("\t")[:4] == ["ann@example.com", "Ann Admin", "admin", "disabled"]
    unknown = run_cli(db_url, "disable", "--email", "nobody@example.com")
    assert unknown.returncode == 2 and "no user with email nobody@example.com" in unknown.stderr
