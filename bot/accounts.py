"""Manager console users (table ``users``): roles, argon2 password hashes and the operations shared by
``python -m bot user`` and the console's Users page. Hashing takes about 0.1 s of CPU, so it runs in a
worker thread. Functions taking an AsyncSession flush but leave the commit to the caller."""

import asyncio
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from email_validator import EmailNotValidError, validate_email
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.models import User, utcnow

ROLES = ("manager", "admin")  # in order: each role may do everything the roles before it may
MIN_PASSWORD_CHARS = 12
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
    """Give the user with ``email`` a new password, which ends their open console sessions. Raises
    AccountError for an unknown email or a password under MIN_PASSWORD_CHARS."""
    _check_password(password)
    user = await _existing(session, email)
    user.password_hash = await asyncio.to_thread(_hasher.hash, password)
    await session.flush()
    return user


async def disable(session: AsyncSession, email: str) -> User:
    """Disable the user with ``email``: no more sign-ins, and their open sessions end.
    Raises AccountError for an unknown email."""
    user = await _existing(session, email)
    user.disabled = True
    await session.flush()
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
