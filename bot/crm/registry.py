"""Which CRM adapter runs: ``crm_provider`` (a setting) → the adapter class. A new CRM is one file in
this package (a :class:`~bot.crm.base.CRMProvider` subclass) plus one line in :data:`ADAPTERS`."""

from typing import Any

from bot.crm.amocrm import AmoCRM
from bot.crm.base import CRMProvider
from bot.crm.hubspot import HubSpotCRM
from bot.crm.sql import SqlCRM

ADAPTERS: dict[str, type[CRMProvider]] = {SqlCRM.name: SqlCRM, HubSpotCRM.name: HubSpotCRM, AmoCRM.name: AmoCRM}


def provider_from_settings(settings: Any) -> CRMProvider:
    """The adapter named by ``settings.crm_provider``, built from the settings its ``from_settings`` reads
    (HubSpot: ``hubspot_token``, ``hubspot_api_base``, ``hubspot_timeout`` and ``hubspot_pipeline``; amoCRM: the
    ``amocrm_*`` settings). Raises ValueError for an unknown provider or a missing setting (HubSpot without a
    token, amoCRM without its address or OAuth client)."""
    adapter = ADAPTERS.get(settings.crm_provider)
    if adapter is None:
        raise ValueError(f"unknown crm_provider {settings.crm_provider!r} (expected {' or '.join(ADAPTERS)})")
    return adapter.from_settings(settings)
