"""The amoCRM adapter: contacts, leads (amoCRM's deals) and notes through amoCRM's REST API v4, authorised by
OAuth 2.0 with the tokens kept encrypted in the business DB (:class:`~bot.core.models.OAuthToken`).

Tokens: ``python -m bot amocrm-authorize CODE`` exchanges the integration's authorisation code for the first access
token (24 h) and refresh token (single-use, 3 months); before a token expires, and once after a 401, the adapter
refreshes it and stores the new pair before using it. A refused refresh (the grant revoked, or unused for 3 months)
is :class:`~bot.crm.base.CRMRejected`: authorise again.

Requests are spaced to at most ``requests_per_second`` less a tenth for network jitter (amoCRM allows 7 per second
per integration; more gets 429 and, repeated, a blocked address). Errors: 429 → :class:`CRMRateLimited`
(``Retry-After`` seconds, else 1 s); 5xx, connection errors and timeouts → :class:`CRMUnavailable`; other 4xx →
:class:`CRMRejected` with amoCRM's title and detail. The outbox (:mod:`bot.crm.outbox`) retries the first two.

Mapping: a contact's name, phone (``PHONE``, ``WORK``) and e-mail (``EMAIL``, ``WORK``); a lead's name, price (whole
units of the account's currency), pipeline and status (``status_ids`` for Closer's stages; won and lost are amoCRM's
fixed 142 and 143), the contact linked, and tags: the deal's own plus where the lead came from (``site-lead`` for the
web chat, ``<channel>-lead`` for any other channel: ``telegram-lead``, ``avito-lead``); a note is a ``common`` note.
"""

import asyncio
import json
import logging
import weakref
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import aiohttp
from aiolimiter import AsyncLimiter
from sqlalchemy import select

from bot.core.db import session_scope
from bot.core.models import OAuthToken, utcnow
from bot.core.money import exponent
from bot.crm.base import ContactRecord, CRMProvider, CRMRateLimited, CRMRejected, CRMUnavailable, DealRecord, as_utc

log = logging.getLogger(__name__)

PROVIDER = "amocrm"
WON, LOST = 142, 143  # amoCRM's own statuses, the same in every pipeline
REFRESH_BEFORE_S = 300.0  # refresh an access token this long before it expires


def source_tag(channel: str) -> str:
    """The tag that says where a lead came from: ``site-lead`` for the web chat, else ``<channel>-lead``."""
    return "site-lead" if channel == "web" else f"{channel}-lead"


class AmoCRM(CRMProvider):
    """amoCRM's API v4 at ``base_url`` (``https://<subdomain>.amocrm.ru``) for the integration ``client_id``; its
    tokens in the business DB at ``database_url``. Leads go to ``pipeline_id`` (None: the account's main pipeline)
    with the status ``status_ids`` gives each Closer stage. Every request is bounded by ``timeout_s`` seconds."""

    name = PROVIDER

    def __init__(
        self,
        base_url: str,
        client_id: str,
        client_secret: str,
        redirect_uri: str,
        database_url: str | None = None,
        pipeline_id: int | None = None,
        status_ids: dict[str, int] | None = None,
        timeout_s: float = 10.0,
        requests_per_second: float = 7.0,
    ):
        self.base_url, self.database_url = base_url.rstrip("/"), database_url
        self.client = {"client_id": client_id, "client_secret": client_secret, "redirect_uri": redirect_uri}
        self.pipeline_id, self.timeout_s = pipeline_id, timeout_s
        self.status_ids = {"won": WON, "lost": LOST, **(status_ids or {})}
        self._interval_s = 1.1 / requests_per_second  # a tenth spare: requests reach amoCRM with some jitter
        self._token: OAuthToken | None = None

    @classmethod
    def from_settings(cls, settings: Any) -> "AmoCRM":
        """From the ``amocrm_*`` settings and ``database_url``. Raises ValueError when the address or the OAuth
        client is not set."""
        needed = ("amocrm_base_url", "amocrm_client_id", "amocrm_client_secret", "amocrm_redirect_uri")
        missing = [f"CLOSER_{name.upper()}" for name in needed if not getattr(settings, name)]
        if missing:
            raise ValueError(f"crm_provider is amocrm but {', '.join(missing)} is not set")
        return cls(
            settings.amocrm_base_url,
            settings.amocrm_client_id,
            settings.amocrm_client_secret,
            settings.amocrm_redirect_uri,
            settings.database_url,
            settings.amocrm_pipeline_id,
            settings.amocrm_status_ids,
            settings.amocrm_timeout,
            settings.amocrm_requests_per_second,
        )

    async def authorize(self, code: str) -> datetime:
        """Exchange the integration's authorisation ``code`` for tokens and store them; returns when the access
        token expires. Raises CRMRejected when amoCRM refuses the code (expired: it lives 20 minutes)."""
        return (await self._grant({"grant_type": "authorization_code", "code": code})).expires_at

    async def upsert_contact(self, contact: ContactRecord) -> str:
        """Update the contact known by ``external_id``, else the one amoCRM finds by the e-mail or phone, else
        create it; tagged with where it came from."""
        fields = [
            {"field_code": code, "values": [{"value": value, "enum_code": "WORK"}]}
            for code, value in (("PHONE", contact.phone), ("EMAIL", contact.email))
            if value
        ]
        body: dict[str, Any] = {"name": contact.name or contact.company or f"{contact.channel} customer"}
        if fields:
            body["custom_fields_values"] = fields
        contact_id = contact.external_id or await self._find("contacts", contact.email or contact.phone)
        if contact_id is not None:
            await self._call("PATCH", f"/api/v4/contacts/{contact_id}", body)
            return contact_id
        body["_embedded"] = {"tags": [{"name": source_tag(contact.channel)}]}
        created = await self._call("POST", "/api/v4/contacts", [body])
        return str(created["_embedded"]["contacts"][0]["id"])

    async def upsert_deal(self, deal: DealRecord) -> str:
        """Update the lead known by ``external_id`` or by its name (a create whose answer was lost), else create it
        linked to the contact ``contact_external_id``."""
        if deal.stage not in self.status_ids:
            raise CRMRejected(f"no amoCRM status for Closer stage {deal.stage!r} (set CLOSER_AMOCRM_STATUS_IDS)")
        body: dict[str, Any] = {"name": deal.name, "status_id": self.status_ids[deal.stage]}
        if self.pipeline_id is not None:
            body["pipeline_id"] = self.pipeline_id
        if deal.amount_minor is not None:
            whole = Decimal(deal.amount_minor).scaleb(-exponent(deal.currency)).quantize(1, rounding=ROUND_HALF_UP)
            body["price"] = int(whole)
        tags = [{"name": tag} for tag in dict.fromkeys([source_tag(deal.source_channel), *deal.tags])]
        lead_id = deal.external_id or await self._find("leads", deal.name)
        if lead_id is not None:
            await self._call("PATCH", f"/api/v4/leads/{lead_id}", {**body, "_embedded": {"tags": tags}})
            return lead_id
        if deal.contact_external_id is None:
            raise CRMRejected(f"deal {deal.local_id}: its contact is not in amoCRM yet")
        body["_embedded"] = {"tags": tags, "contacts": [{"id": int(deal.contact_external_id)}]}
        created = await self._call("POST", "/api/v4/leads", [body])
        return str(created["_embedded"]["leads"][0]["id"])

    async def add_note(self, deal: DealRecord, body: str, at: datetime | None = None) -> None:
        """A ``common`` note on the lead ``external_id`` (amoCRM dates a note itself; ``at`` is written in it when
        given)."""
        if deal.external_id is None:
            raise CRMRejected(f"deal {deal.local_id} is not in amoCRM yet")
        text = f"{as_utc(at).strftime('%Y-%m-%d %H:%M UTC')}\n{body}" if at else body
        await self._call(
            "POST", f"/api/v4/leads/{deal.external_id}/notes", [{"note_type": "common", "params": {"text": text}}]
        )

    async def _find(self, entity: str, query: str | None) -> str | None:
        """The id of the first ``entity`` (contacts, leads) amoCRM's search finds for ``query``, None for none."""
        if not query:
            return None
        found = await self._call("GET", f"/api/v4/{entity}", params={"query": query, "limit": "1"})
        records = (found.get("_embedded") or {}).get(entity) or []
        return str(records[0]["id"]) if records else None

    async def _access_token(self) -> str:
        """A stored access token valid for at least :data:`REFRESH_BEFORE_S`, refreshed first when needed. Raises
        CRMRejected when none is stored."""
        if self._token is None:
            async with session_scope(self.database_url) as session:
                self._token = await session.scalar(select(OAuthToken).where(OAuthToken.provider == PROVIDER))
            if self._token is None:
                raise CRMRejected("amoCRM is not authorised: run `python -m bot amocrm-authorize CODE`")
        if as_utc(self._token.expires_at) - timedelta(seconds=REFRESH_BEFORE_S) <= utcnow():
            await self._refresh()
        assert self._token is not None
        return self._token.access_token

    async def _refresh(self) -> None:
        """A new token pair, unless another process stored one since this one read its own (a refresh token is
        single-use: the stored one is the only one that still works)."""
        async with session_scope(self.database_url) as session:
            stored = await session.get(OAuthToken, PROVIDER)
        held = self._token
        if stored is None or held is None:
            raise CRMRejected("amoCRM is not authorised: run `python -m bot amocrm-authorize CODE`")
        fresh = as_utc(stored.expires_at) - timedelta(seconds=REFRESH_BEFORE_S) > utcnow()
        if stored.access_token != held.access_token and fresh:
            self._token = stored
            return
        granted = await self._grant({"grant_type": "refresh_token", "refresh_token": stored.refresh_token})
        log.info("amoCRM access token refreshed, valid until %s", granted.expires_at.isoformat(timespec="seconds"))

    async def _grant(self, grant: dict[str, str]) -> OAuthToken:
        """POST /oauth2/access_token with the client and ``grant``; the new pair stored (the refresh token used is
        void from now on), kept and returned."""
        answer = await self._request("POST", "/oauth2/access_token", {**self.client, **grant}, token=None)
        try:
            access, refresh, lifetime = answer["access_token"], answer["refresh_token"], float(answer["expires_in"])
        except (KeyError, TypeError, ValueError) as exc:
            raise CRMUnavailable(f"amoCRM's token answer lacks {exc}") from exc
        expires_at = utcnow() + timedelta(seconds=lifetime)
        async with session_scope(self.database_url) as session:
            stored = await session.get(OAuthToken, PROVIDER)
            if stored is None:
                stored = OAuthToken(provider=PROVIDER)
                session.add(stored)
            stored.access_token, stored.refresh_token, stored.expires_at = access, refresh, expires_at
        self._token = OAuthToken(provider=PROVIDER, access_token=access, refresh_token=refresh, expires_at=expires_at)
        return self._token

    async def _call(
        self, method: str, path: str, body: Any = None, params: dict[str, str] | None = None
    ) -> dict[str, Any]:
        """An API request with the access token; after a 401 the token is refreshed and the request sent once
        more."""
        try:
            return await self._request(method, path, body, await self._access_token(), params)
        except CRMRejected as exc:
            if exc.status != 401:
                raise
        await self._refresh()
        return await self._request(method, path, body, await self._access_token(), params)

    async def _request(
        self, method: str, path: str, body: Any, token: str | None, params: dict[str, str] | None = None
    ) -> dict[str, Any]:
        await self._wait_for_slot()
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        try:
            timeout = aiohttp.ClientTimeout(total=self.timeout_s)
            async with (
                aiohttp.ClientSession(timeout=timeout) as client,
                client.request(method, self.base_url + path, json=body, params=params, headers=headers) as response,
            ):
                text, status = await response.text(), response.status
                retry_after = response.headers.get("Retry-After", "")
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise CRMUnavailable(f"amoCRM {method} {path}: {type(exc).__name__} {exc}".strip()) from exc
        if status == 204:  # a search that found nothing
            return {}
        try:
            data = json.loads(text)
        except ValueError:
            data = None
        if 200 <= status < 300 and isinstance(data, dict):
            return data
        detail = data if isinstance(data, dict) else {}
        reason = " — ".join(str(detail[k]) for k in ("title", "detail", "hint") if detail.get(k)) or text[:300]
        message = f"amoCRM {status} on {method} {path}: {reason}"
        if status == 429:
            try:
                delay = float(retry_after)
            except ValueError:
                delay = 1.0
            raise CRMRateLimited(message, delay)
        if status < 400 or status >= 500:  # 5xx, or a success without the JSON record (a proxy's page)
            raise CRMUnavailable(message)
        raise CRMRejected(message, status)

    async def _wait_for_slot(self) -> None:
        await _limiter(self.client["client_id"], self._interval_s).acquire()


_limiters: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, AsyncLimiter]]" = weakref.WeakKeyDictionary()


def _limiter(client_id: str, interval_s: float) -> AsyncLimiter:
    """The limiter of integration ``client_id`` in this process (its running event loop), one request per
    ``interval_s`` seconds: every adapter of it shares amoCRM's limit."""
    limiters = _limiters.setdefault(asyncio.get_running_loop(), {})
    limiter = limiters.get(client_id)
    if limiter is None or limiter.time_period != interval_s:
        limiter = limiters[client_id] = AsyncLimiter(1, interval_s)
    return limiter
