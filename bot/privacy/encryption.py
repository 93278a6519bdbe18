"""Customer data (PII) encrypted at rest in the business DB, and keyed blind indexes for the look-ups
that used to compare it in SQL.

Stored value: ``enc:v1:<kid>:<base64url(nonce ‖ ciphertext ‖ tag)>`` (unpadded base64url): a random
12-byte nonce, the UTF-8 plaintext encrypted with AES-256-GCM under the key ``kid``, and GCM's 16-byte
tag; 8 + len(kid) + ⌈4/3 × (28 + plaintext bytes)⌉ characters in all. The associated data is
``enc:v1:<kid>:<table>.<column>``, so a value copied into another column, or relabelled with another key
id, fails to decrypt. It is not bound to the row (an INSERT's primary key is not known before it runs):
swapping two rows' values of the same column goes unnoticed.

Models keep plain ``str`` attributes: :class:`Encrypted` (and :class:`EncryptedJSON` for a JSON value)
encrypts on the way into SQL and decrypts on the way out. Such a column cannot be compared or sorted in
SQL (every value has its own nonce); comparing it raises TypeError at query construction.

Keys (settings, :mod:`bot.core.settings`); make one with
``python -c "import secrets; print(secrets.token_urlsafe(32))"``:

- ``CLOSER_PII_KEYS``: ``kid:base64url(32 bytes)``, comma-separated; kid: 1–32 of ``A-Z a-z 0-9 _ -``.
  Development default: ``dev:`` + ``var/pii-dev.key``.
- ``CLOSER_PII_ACTIVE_KEY``: the kid new values are written under. Development default: the only kid, if there
  is one.
- ``CLOSER_PII_INDEX_KEY``: base64url(32 bytes): the HMAC-SHA256 key of the blind indexes. Development default:
  ``var/pii-index.key``.

Development files are generated once (mode 0600, :func:`bot.core.keys.load_or_create_secret`); production
refuses to start without the settings. Rotation: add the new key to ``CLOSER_PII_KEYS``, make it
active, restart, run ``python -m bot rotate-key`` (:mod:`bot.privacy.keyrotation`); once it reports nothing
left under the old key, remove that key. A new index key takes ``python -m bot rotate-key --index``,
and look-ups miss rows until that has run.

Blind indexes: the hex HMAC-SHA256 (64 characters) of ``<kind>\\0<normalised value>``: an e-mail
stripped and lower-cased, a phone as E.164 (the caller normalises it: :func:`bot.commerce.leads.clean_phone`).
Search tokens (:meth:`Keyring.search_tokens`): the first 8 bytes of the HMAC of ``search\\0<term>``,
in hex, for every whitespace-separated piece and every word of a value, lower-cased, and for each of their
prefixes of :data:`MIN_PREFIX` characters or more. What the indexes reveal to a reader of the DB: which
contacts share an e-mail or phone, and which share a word or word prefix (frequency analysis can guess
common names); values' lengths show through ciphertext lengths.

Errors: :class:`KeyConfigError` (a ``ValueError``) names the setting at fault; :class:`DecryptionError`
names the column and why a stored value cannot be read (unknown key id, tampered with or moved from
another column, not encrypted at all). A stored value is never handed back undecrypted.
"""

import base64
import binascii
import hashlib
import hmac
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import Text
from sqlalchemy.sql import operators
from sqlalchemy.types import TypeDecorator

from bot.contracts import conversation_ids
from bot.core.caches import process_cache
from bot.core.keys import PII_INDEX_KEY_FILE, load_or_create_secret
from bot.core.settings import ROOT, Settings, get_settings

PREFIX = "enc:v1:"
NONCE_BYTES = 12
KEY_BYTES = 32
MIN_PREFIX = 3  # shortest word prefix a search finds; shorter words are found whole only
MAX_PREFIX = 32  # longer terms are indexed by their prefixes up to this length, and whole
DEV_KID = "dev"
DEV_KEY_FILE = ROOT / "var" / "pii-dev.key"
DEV_INDEX_KEY_FILE = PII_INDEX_KEY_FILE
_KID = re.compile(r"[A-Za-z0-9_-]{1,32}")
_KEY = re.compile(r"[A-Za-z0-9_-]{43}=?")  # base64url of 32 bytes


class KeyConfigError(ValueError):
    """A missing or malformed PII key setting; the message names the setting."""


class DecryptionError(Exception):
    """A stored value that cannot be decrypted; the message names the column and the reason."""


def _decode_key(text: str, setting: str) -> bytes:
    text = text.strip()
    if not _KEY.fullmatch(text):
        raise KeyConfigError(f"{setting}: a key is 32 bytes in base64url (43 characters), got {len(text)} characters")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except binascii.Error as exc:
        raise KeyConfigError(f"{setting}: not base64url ({exc})") from None


def parse_keys(text: str) -> dict[str, bytes]:
    """``CLOSER_PII_KEYS`` (``kid:base64url,kid:base64url``) as kid → 32-byte key, in the order given.
    Raises KeyConfigError for a malformed entry, a bad kid or key, or a kid given twice."""
    keys: dict[str, bytes] = {}
    for entry in filter(None, (part.strip() for part in text.split(","))):
        kid, colon, key = entry.partition(":")
        if not colon or not _KID.fullmatch(kid):
            raise KeyConfigError(
                "CLOSER_PII_KEYS: each entry is kid:base64url-key, the kid 1-32 of A-Z a-z 0-9 _ - "
                f"(entry {len(keys) + 1} is not)"
            )
        if kid in keys:
            raise KeyConfigError(f"CLOSER_PII_KEYS: key id {kid!r} is given twice")
        keys[kid] = _decode_key(key, f"CLOSER_PII_KEYS (key {kid!r})")
    if not keys:
        raise KeyConfigError("CLOSER_PII_KEYS is empty")
    return keys


@dataclass(frozen=True)
class Keyring:
    """The data keys by kid, the kid new values are written under, and the blind index key."""

    keys: Mapping[str, bytes]
    active: str
    index_key: bytes

    @classmethod
    def from_settings(cls, settings: Settings) -> "Keyring":
        """The keyring of ``settings`` (module docstring); in development a key that is not set is read from
        (or first generated into) its file under ``var/``. Raises KeyConfigError naming the setting that is
        missing (production) or malformed, OSError if a development key file cannot be read or made."""
        production = settings.environment == "production"
        if settings.pii_keys:
            keys = parse_keys(settings.pii_keys)
        elif production:
            raise KeyConfigError("CLOSER_PII_KEYS is not set (CLOSER_ENVIRONMENT=production generates no keys)")
        else:
            keys = {DEV_KID: _decode_key(load_or_create_secret(DEV_KEY_FILE).decode(), str(DEV_KEY_FILE))}
        active = settings.pii_active_key or (next(iter(keys)) if len(keys) == 1 else None)
        if active not in keys:
            raise KeyConfigError(
                f"CLOSER_PII_ACTIVE_KEY must name the key new values are written under, one of "
                f"CLOSER_PII_KEYS' {', '.join(keys)} (it is {active!r})"
            )
        if settings.pii_index_key:
            index_key = _decode_key(settings.pii_index_key, "CLOSER_PII_INDEX_KEY")
        elif production:
            raise KeyConfigError("CLOSER_PII_INDEX_KEY is not set (CLOSER_ENVIRONMENT=production generates no keys)")
        else:
            index_key = _decode_key(load_or_create_secret(DEV_INDEX_KEY_FILE).decode(), str(DEV_INDEX_KEY_FILE))
        return cls(keys, active, index_key)

    def encrypt(self, plaintext: str, field: str) -> str:
        """``plaintext`` encrypted under the active key for the column ``field`` (``"table.column"``)."""
        nonce = os.urandom(NONCE_BYTES)
        sealed = AESGCM(self.keys[self.active]).encrypt(nonce, plaintext.encode(), _aad(self.active, field))
        return f"{PREFIX}{self.active}:{base64.urlsafe_b64encode(nonce + sealed).rstrip(b'=').decode()}"

    def decrypt(self, value: str, field: str) -> str:
        """The plaintext of ``value`` stored in ``field``. Raises DecryptionError if it is not an encrypted
        value, its kid is not in the keyring, or it fails authentication (tampered with, or not ``field``'s)."""
        if not value.startswith(PREFIX):
            raise DecryptionError(
                f"{field}: the stored value is not encrypted (expected {PREFIX}<kid>:…); was it written around the ORM?"
            )
        kid, _, body = value[len(PREFIX) :].partition(":")
        if kid not in self.keys:
            raise DecryptionError(
                f"{field}: the value is under key id {kid!r}, which CLOSER_PII_KEYS does not have "
                f"(it has {', '.join(self.keys)})"
            )
        try:
            raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
            return AESGCM(self.keys[kid]).decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], _aad(kid, field)).decode()
        except (binascii.Error, ValueError, InvalidTag):  # ValueError: too short for a nonce and a tag
            raise DecryptionError(
                f"{field}: the value under key {kid!r} fails authentication (tampered with, or "
                "copied from another column)"
            ) from None

    def active_prefix(self) -> str:
        """How every value written under the active key starts: ``enc:v1:<active kid>:``."""
        return f"{PREFIX}{self.active}:"

    def _hmac(self, kind: str, value: str) -> bytes:
        return hmac.new(self.index_key, f"{kind}\0{value}".encode(), hashlib.sha256).digest()

    def email_index(self, email: str | None) -> str | None:
        """The blind index of an e-mail address (stripped, lower-cased); None for none."""
        email = (email or "").strip().lower()
        return self._hmac("email", email).hex() if email else None

    def phone_index(self, phone: str | None) -> str | None:
        """The blind index of an E.164 phone number; None for none."""
        phone = (phone or "").strip()
        return self._hmac("phone", phone).hex() if phone else None

    def conversation_ref(self, conversation_id: str) -> str:
        """A conversation's pseudonym in logs (``c`` and 16 hex digits): its id (which holds a WhatsApp customer's
        phone number) keyed with the index key (:func:`bot.contracts.conversation_ids.pseudonym`)."""
        return conversation_ids.pseudonym(self.index_key, conversation_id)

    def search_token(self, term: str) -> str:
        """The search token (16 hex digits) of one lower-cased term."""
        return self._hmac("search", term).hex()[:16]

    def search_tokens(self, *values: str | None) -> str | None:
        """The tokens of ``values`` (module docstring) as one string, sorted and space-separated with a
        space at either end, so that ``LIKE '% <token> %'`` finds a whole token; None if there are none."""
        terms: set[str] = set()
        for value in filter(None, values):
            lowered = value.lower()
            for term in {*lowered.split(), *re.findall(r"\w+", lowered)}:
                terms.add(term)
                terms.update(term[:end] for end in range(MIN_PREFIX, min(len(term), MAX_PREFIX) + 1))
        return f" {' '.join(sorted(self.search_token(term) for term in terms))} " if terms else None


def _aad(kid: str, field: str) -> bytes:
    return f"{PREFIX}{kid}:{field}".encode()


@process_cache
def get_keyring() -> Keyring:
    """The process's keyring, built once from :func:`bot.core.settings.get_settings`. Raises KeyConfigError or
    OSError (:meth:`Keyring.from_settings`); call it at start-up so a bad key stops the process there."""
    return Keyring.from_settings(get_settings())


class Encrypted(TypeDecorator):
    """A ``str`` column stored encrypted (module docstring) for ``field`` (``"table.column"``, bound into
    every value: keep it when the column is renamed). Reading raises DecryptionError for a value that
    cannot be decrypted; comparing or ordering by the column in SQL raises TypeError."""

    impl = Text
    cache_ok = True

    def __init__(self, field: str) -> None:
        super().__init__()
        self.field = field

    def process_bind_param(self, value: Any, dialect: Any) -> str | None:
        return None if value is None else get_keyring().encrypt(value, self.field)

    def process_result_value(self, value: str | None, dialect: Any) -> Any:
        return None if value is None else get_keyring().decrypt(value, self.field)

    class comparator_factory(TypeDecorator.Comparator):
        """Allows IS (NOT) NULL only: any other comparison would be against a fresh nonce and never match."""

        def operate(self, op, *other, **kwargs):
            if op in (operators.is_, operators.is_not):
                return super().operate(op, *other, **kwargs)
            raise TypeError(
                f"{self.type.field} is encrypted: it cannot be compared or sorted in SQL "
                "(use a blind index, see bot.privacy.encryption)"
            )

        def reverse_operate(self, op, other, **kwargs):
            raise TypeError(f"{self.type.field} is encrypted: it cannot be compared or sorted in SQL")


class EncryptedJSON(Encrypted):
    """A JSON value (dict, list, …) stored encrypted as its JSON text; otherwise as :class:`Encrypted`."""

    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Any) -> str | None:
        return None if value is None else super().process_bind_param(json.dumps(value, ensure_ascii=False), dialect)

    def process_result_value(self, value: str | None, dialect: Any) -> Any:
        return None if value is None else json.loads(super().process_result_value(value, dialect))
