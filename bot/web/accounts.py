"""Manager console users (table ``users``) and their sessions (table ``console_sessions``): roles, argon2
password hashes and the operations shared by ``python -m bot user`` and the console's Users page. Hashing
takes about 0.1 s of CPU, so it runs in a worker thread. Functions taking an AsyncSession flush but leave
the commit to the caller.

A console session is a random id (``secrets.token_urlsafe(32)``, 43 characters) that the browser keeps in
its encrypted cookie; the table holds only its SHA-256 hex digest. A new password or disabling the user
revokes every session of theirs, so a copied cookie stops working at once.
"""

import asyncio
import hashlib
import secrets
from datetime import UTC, datetime, timedelta
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from email_validator import EmailNotValidError, validate_email
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.models import ConsoleSession, User, utcnow

ROLES = ("manager", "admin")  # in order: each role may do everything the roles before it may
MIN_PASSWORD_CHARS = 12
# last_seen_at is written at most this often (seconds): a write per request would make every page view,
# and every poll of the takeover page (every few seconds), a write transaction.
SEEN_EVERY_S = 60
_hasher = PasswordHasher()  # argon2id with argon2-cffi's recommended cost


class AccountError(ValueError):
    """Bad input for a user operation (invalid email, unknown role, short password, duplicate or
    unknown user); the message says which, for the person who typed it."""


def has_role(role: str, needed: str) -> bool:
    """Whether a user with ``role`` may do what needs ``needed`` (an admin may do what a manager may)."""
    return role in ROLES and ROLES.index(role) >= ROLES.index(needed)


def normalize_email(email: str) -> str:
    """``email`` trimmed and lower-cased. Raises AccountError if it is not an email address."""
    try:
        return validate_email(email.strip(), check_deliverability=False).normalized.lower()
    except EmailNotValidError as exc:
        raise AccountError(f"{email!r} is not a valid email address: {exc}") from None


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_CHARS:
        raise AccountError(f"the password must have at least {MIN_PASSWORD_CHARS} characters")


@cache
def _dummy_hash() -> str:
    return _hasher.hash("closer: a hash to verify against for unknown emails")


def _verify(password_hash: str, password: str) -> tuple[bool, str | None]:
    """(matches, a fresh hash when the stored one uses outdated parameters) — blocking."""
    try:
        _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False, None
    return True, _hasher.hash(password) if _hasher.check_needs_rehash(password_hash) else None


async def get_user(session: AsyncSession, user_id: int) -> User | None:
    """The user with id ``user_id``, or None."""
    return await session.get(User, user_id)


async def by_email(session: AsyncSession, email: str) -> User | None:
    """The user with ``email`` (any case), or None."""
    return (await session.scalars(select(User).where(User.email == email.strip().lower()))).one_or_none()


async def _existing(session: AsyncSession, email: str) -> User:
    user = await by_email(session, email)
    if user is None:
        raise AccountError(f"no user with email {email.strip().lower()}")
    return user


async def list_users(session: AsyncSession) -> list[User]:
    """Every user, by email."""
    return list((await session.scalars(select(User).order_by(User.email))).all())


async def create_user(session: AsyncSession, email: str, name: str, role: str, password: str) -> User:
    """Add an enabled user. Raises AccountError for an invalid email, an email already in use, an
    empty name (or one over 255 characters), a role not in ROLES or a password under MIN_PASSWORD_CHARS."""
    email, name = normalize_email(email), name.strip()
    if not name or len(name) > 255:
        raise AccountError("the name must have 1 to 255 characters")
    if role not in ROLES:
        raise AccountError(f"the role must be one of {', '.join(ROLES)}, not {role!r}")
    _check_password(password)
    if await by_email(session, email) is not None:
        raise AccountError(f"a user with email {email} already exists")
    password_hash = await asyncio.to_thread(_hasher.hash, password)
    user = User(email=email, name=name, role=role, disabled=False, password_hash=password_hash)
    session.add(user)
    await session.flush()
    return user


async def set_password(session: AsyncSession, email: str, password: str) -> User:
    """Give the user with ``email`` a new password and revoke their console sessions. Raises AccountError
    for an unknown email or a password under MIN_PASSWORD_CHARS."""
    _check_password(password)
    user = await _existing(session, email)
    user.password_hash = await asyncio.to_thread(_hasher.hash, password)
    await revoke_sessions(session, user.id)
    return user


async def set_role(session: AsyncSession, email: str, role: str) -> tuple[User, str]:
    """Give the user with ``email`` the role ``role`` (their next request already has it): (the user, the
    role they had). Raises AccountError for an unknown email or a role not in ROLES."""
    if role not in ROLES:
        raise AccountError(f"the role must be one of {', '.join(ROLES)}, not {role!r}")
    user = await _existing(session, email)
    previous, user.role = user.role, role
    await session.flush()
    return user, previous


async def disable(session: AsyncSession, email: str) -> User:
    """Disable the user with ``email``: no more sign-ins, and their console sessions are revoked.
    Raises AccountError for an unknown email."""
    user = await _existing(session, email)
    user.disabled = True
    await revoke_sessions(session, user.id)
    return user


async def authenticate(session: AsyncSession, email: str, password: str) -> User | None:
    """The user whose email and password these are, or None (unknown email and wrong password look the
    same, and take the same time). A disabled user is returned as is, for the caller to refuse; for an
    enabled one ``last_login_at`` is set and a hash with outdated parameters is replaced."""
    user = await by_email(session, email)
    matches, new_hash = await asyncio.to_thread(_verify, user.password_hash if user else _dummy_hash(), password)
    if user is None or not matches:
        return None
    if not user.disabled:
        user.last_login_at = utcnow()
        if new_hash:
            user.password_hash = new_hash
        await session.flush()
    return user


def _utc(moment: datetime) -> datetime:
    """SQLite gives naive datetimes back; they were stored in UTC."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def hash_session_id(session_id: str) -> str:
    """The SHA-256 hex digest (64 characters) stored for a session id."""
    return hashlib.sha256(session_id.encode()).hexdigest()


async def start_session(
    session: AsyncSession, user: User, max_age_s: int, ip: str | None, user_agent: str | None
) -> tuple[str, ConsoleSession]:
    """A new console session for ``user`` lasting ``max_age_s`` seconds: (its id, for the cookie only;
    the stored row, holding the id's hash, the client's ``ip`` and ``user_agent`` cut at 255 characters)."""
    session_id, now = secrets.token_urlsafe(32), utcnow()
    row = ConsoleSession(
        id_hash=hash_session_id(session_id),
        user_id=user.id,
        created_at=now,
        last_seen_at=now,
        expires_at=now + timedelta(seconds=max_age_s),
        ip=ip,
        user_agent=(user_agent or "")[:255] or None,
    )
    session.add(row)
    await session.flush()
    return session_id, row


async def session_user(session: AsyncSession, session_id: str) -> tuple[ConsoleSession, User] | None:
    """The session with id ``session_id`` and its user while it counts: known, not revoked, not expired, of
    an enabled user; None otherwise. Sets ``last_seen_at`` when it is SEEN_EVERY_S seconds old or more."""
    found = (
        await session.execute(
            select(ConsoleSession, User)
            .join(User, User.id == ConsoleSession.user_id)
            .where(ConsoleSession.id_hash == hash_session_id(session_id))
        )
    ).one_or_none()
    if found is None:
        return None
    row, user = found
    now = utcnow()
    if row.revoked_at is not None or _utc(row.expires_at) <= now or user.disabled:
        return None
    if (now - _utc(row.last_seen_at)).total_seconds() >= SEEN_EVERY_S:
        row.last_seen_at = now
        await session.flush()
    return row, user


async def revoke_session(session: AsyncSession, id_hash: str) -> ConsoleSession | None:
    """Revoke the session whose id hashes to ``id_hash``: its row, or None when there is no such session
    or it was revoked already."""
    row = await session.get(ConsoleSession, id_hash)
    if row is None or row.revoked_at is not None:
        return None
    row.revoked_at = utcnow()
    await session.flush()
    return row


async def revoke_sessions(session: AsyncSession, user_id: int) -> int:
    """Revoke every unrevoked session of the user ``user_id`` (expired ones too): how many."""
    result = await session.execute(
        update(ConsoleSession)
        .where(ConsoleSession.user_id == user_id, ConsoleSession.revoked_at.is_(None))
        .values(revoked_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    return result.rowcount


async def active_sessions(session: AsyncSession) -> list[ConsoleSession]:
    """Every session that counts now (not revoked, not expired), most recently seen first."""
    return list(
        (
            await session.scalars(
                select(ConsoleSession)
                .where(ConsoleSession.revoked_at.is_(None), ConsoleSession.expires_at > utcnow())
                .order_by(ConsoleSession.last_seen_at.desc())
            )
        ).all()
    )
