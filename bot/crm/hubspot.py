"""The HubSpot adapter: contacts, deals and notes through HubSpot's CRM v3 REST API."""

import json
import re
from datetime import datetime
from decimal import Decimal
from typing import Any

import aiohttp

from bot.core.models import utcnow
from bot.core.money import exponent
from bot.crm.base import ContactRecord, CRMProvider, CRMRateLimited, CRMRejected, CRMUnavailable, DealRecord, as_utc

#: Closer's pipeline stage → stage id in HubSpot's default sales pipeline.
HUBSPOT_STAGES = {
    "new": "appointmentscheduled",
    "qualified": "qualifiedtobuy",
    "proposal": "presentationscheduled",
    "negotiation": "decisionmakerboughtin",
    "won": "closedwon",
    "lost": "closedlost",
}

_EXISTING_ID = re.compile(r"Existing ID: (\d+)")


class HubSpotCRM(CRMProvider):
    """HubSpot through its CRM v3 REST API with a private-app token (scopes
    ``crm.objects.contacts.read/write`` and ``crm.objects.deals.read/write``). Every request is
    bounded by ``timeout_s`` seconds. Deals go to ``pipeline`` with :data:`HUBSPOT_STAGES`, the stage
    ids of HubSpot's default pipeline; ``deal_currency_code`` must be a currency enabled in the account.

    Errors: 429 → :class:`CRMRateLimited` (``Retry-After`` seconds, else 10 s, 1 h for the daily
    limit); 5xx, connection errors and timeouts → :class:`CRMUnavailable`; any other 4xx →
    :class:`CRMRejected` with HubSpot's message."""

    name = "hubspot"

    def __init__(
        self, token: str, api_base: str = "https://api.hubapi.com", timeout_s: float = 10.0, pipeline: str = "default"
    ):
        self.token, self.api_base, self.timeout_s, self.pipeline = token, api_base.rstrip("/"), timeout_s, pipeline

    @classmethod
    def from_settings(cls, settings: Any) -> "HubSpotCRM":
        """From ``hubspot_token``, ``hubspot_api_base``, ``hubspot_timeout`` and ``hubspot_pipeline``. Raises
        ValueError without a token."""
        if not settings.hubspot_token:
            raise ValueError("crm_provider is hubspot but CLOSER_HUBSPOT_TOKEN is not set")
        return cls(
            settings.hubspot_token, settings.hubspot_api_base, settings.hubspot_timeout, settings.hubspot_pipeline
        )

    async def upsert_contact(self, contact: ContactRecord) -> str:
        """Update the contact known by ``external_id``, else the one HubSpot has with the same email
        (preferred) or phone, else create it. Properties: firstname/lastname (the name split at the
        first space), email, phone, company."""
        properties = {"email": contact.email, "phone": contact.phone, "company": contact.company}
        if contact.name:
            properties["firstname"], _, properties["lastname"] = contact.name.strip().partition(" ")
        properties = {key: value for key, value in properties.items() if value is not None}
        async with self._client() as client:
            contact_id = contact.external_id or await self._find_contact(client, contact)
            if contact_id is None:
                try:
                    created = await self._call(client, "POST", "/crm/v3/objects/contacts", {"properties": properties})
                    return created["id"]
                except CRMRejected as exc:  # created moments ago, not yet in the search index
                    existing = _EXISTING_ID.search(str(exc)) if exc.status == 409 else None
                    if existing is None:
                        raise
                    contact_id = existing.group(1)
            await self._call(client, "PATCH", f"/crm/v3/objects/contacts/{contact_id}", {"properties": properties})
            return contact_id

    async def upsert_deal(self, deal: DealRecord) -> str:
        """Update the deal known by ``external_id`` or by its name (a create whose answer was lost),
        else create it associated with the contact ``contact_external_id``. Properties: dealname,
        amount (major units, decimal string), deal_currency_code, pipeline, dealstage."""
        if deal.stage not in HUBSPOT_STAGES:
            raise CRMRejected(f"no HubSpot stage for Closer stage {deal.stage!r}")
        properties = {
            "dealname": deal.name,
            "deal_currency_code": deal.currency,
            "pipeline": self.pipeline,
            "dealstage": HUBSPOT_STAGES[deal.stage],
        }
        if deal.amount_minor is not None:
            properties["amount"] = f"{Decimal(deal.amount_minor).scaleb(-exponent(deal.currency)):f}"
        async with self._client() as client:
            deal_id = deal.external_id or await self._search(client, "deals", [("dealname", deal.name)])
            if deal_id is not None:
                await self._call(client, "PATCH", f"/crm/v3/objects/deals/{deal_id}", {"properties": properties})
                return deal_id
            if deal.contact_external_id is None:
                raise CRMRejected(f"deal {deal.local_id}: its contact is not in HubSpot yet")
            body = {"properties": properties, "associations": [_association(deal.contact_external_id, 3)]}
            return (await self._call(client, "POST", "/crm/v3/objects/deals", body))["id"]

    async def add_note(self, deal: DealRecord, body: str, at: datetime | None = None) -> None:
        """Create a note (hs_note_body, hs_timestamp = ``at``, default now) on the deal ``external_id``."""
        if deal.external_id is None:
            raise CRMRejected(f"deal {deal.local_id} is not in HubSpot yet")
        when = as_utc(at or utcnow()).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        note = {
            "properties": {"hs_note_body": body, "hs_timestamp": when},
            "associations": [_association(deal.external_id, 214)],
        }
        async with self._client() as client:
            await self._call(client, "POST", "/crm/v3/objects/notes", note)

    def _client(self) -> aiohttp.ClientSession:
        return aiohttp.ClientSession(
            headers={"Authorization": f"Bearer {self.token}"}, timeout=aiohttp.ClientTimeout(total=self.timeout_s)
        )

    async def _find_contact(self, client: aiohttp.ClientSession, contact: ContactRecord) -> str | None:
        keys = [(key, value) for key, value in (("email", contact.email), ("phone", contact.phone)) if value]
        return await self._search(client, "contacts", keys, prefer=("email", contact.email)) if keys else None

    async def _search(
        self,
        client: aiohttp.ClientSession,
        object_type: str,
        keys: list[tuple[str, str]],
        prefer: tuple[str, str | None] | None = None,
    ) -> str | None:
        """The id of a record whose property equals one of ``keys`` (property, value); among several,
        the one matching ``prefer``."""
        body = {
            "filterGroups": [
                {"filters": [{"propertyName": key, "operator": "EQ", "value": value}]} for key, value in keys
            ],
            "properties": [key for key, _ in keys],
            "limit": 10,
        }
        results = (await self._call(client, "POST", f"/crm/v3/objects/{object_type}/search", body))["results"]
        if not results:
            return None
        key, value = prefer or keys[0]
        wanted = (value or "").lower()
        return next((r for r in results if (r["properties"].get(key) or "").lower() == wanted), results[0])["id"]

    async def _call(
        self, client: aiohttp.ClientSession, method: str, path: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        try:
            async with client.request(method, self.api_base + path, json=body) as response:
                text = await response.text()
                status, retry_after = response.status, response.headers.get("Retry-After", "")
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise CRMUnavailable(f"HubSpot {method} {path}: {type(exc).__name__} {exc}".strip()) from exc
        try:
            data = json.loads(text)
        except ValueError:
            data = None
        if not isinstance(data, dict):
            data = {}
        if 200 <= status < 300 and data:
            return data
        message = f"HubSpot {status} on {method} {path}: {data.get('message') or text[:300]}"
        if status == 429:
            try:
                delay = float(retry_after)
            except ValueError:
                delay = 3600.0 if data.get("policyName") == "DAILY" else 10.0
            raise CRMRateLimited(message, delay)
        if status < 400 or status >= 500:  # 5xx, or a success without the JSON record (a proxy's page)
            raise CRMUnavailable(message)
        raise CRMRejected(message, status)


def _association(to_id: str, type_id: int) -> dict[str, Any]:
    return {"to": {"id": to_id}, "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": type_id}]}
