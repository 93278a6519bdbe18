"""What every CRM adapter shares: the records Closer sends, the errors an adapter raises, and
:class:`CRMProvider`, the base class of an adapter (one file per adapter in this package, listed in
:mod:`bot.crm.registry`).

Money is integer minor units plus an ISO 4217 code; times are aware UTC.
"""

from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Self

from bot.core.models import Contact, Deal


class CRMError(Exception):
    """A CRM call failed; the message says how (with the CRM's own message when it sent one)."""


class CRMRateLimited(CRMError):
    """The CRM asked to slow down; try again in ``retry_after_s`` seconds."""

    def __init__(self, message: str, retry_after_s: float):
        super().__init__(message)
        self.retry_after_s = retry_after_s


class CRMUnavailable(CRMError):
    """The CRM could not be reached, timed out or failed (5xx): retry later."""


class CRMRejected(CRMError):
    """The CRM refused the request (4xx other than 429, e.g. invalid data or a bad token) or the
    write cannot be made: retrying will not help until a person fixes it. ``status`` is the HTTP
    status, or None when the refusal is Closer's own."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class ContactRecord:
    """A contact as sent to a CRM. ``phone`` is E.164; ``tags`` the customer segment (pricing tier);
    ``external_id`` the CRM's id once known."""

    local_id: int
    name: str | None
    company: str | None
    email: str | None
    phone: str | None
    channel: str
    tags: list[str]
    external_id: str | None


@dataclass(frozen=True)
class DealRecord:
    """A deal as sent to a CRM. ``stage`` is Closer's (new, qualified, proposal, negotiation, won,
    lost); ``amount_minor`` minor units of ``currency`` (ISO 4217); the ``*external_id`` fields are
    the CRM's ids of the deal and its contact once known."""

    local_id: int
    contact_local_id: int
    name: str
    stage: str
    amount_minor: int | None
    currency: str
    source_channel: str
    tags: list[str]
    external_id: str | None
    contact_external_id: str | None


def contact_record(contact: Contact, provider_name: str | None = None) -> ContactRecord:
    """The record of a (flushed) contact row, with its id in ``provider_name``'s CRM if given."""
    return ContactRecord(
        contact.id,
        contact.name,
        contact.company,
        contact.email,
        contact.phone,
        contact.channel,
        [contact.segment],
        (contact.external_ids or {}).get(provider_name),
    )


def deal_record(deal: Deal, provider_name: str | None = None) -> DealRecord:
    """The record of a (flushed) deal row, named after its contact's company or name (``deal.contact``
    must be loaded, as it is after ``save_lead``). The amount is the quoted net amount, if any."""
    contact = deal.contact
    who = contact.company or contact.name or f"{contact.channel} customer"
    return DealRecord(
        deal.id,
        deal.contact_id,
        f"{who} (Closer deal #{deal.id})",
        deal.stage,
        deal.amount_minor,
        deal.currency,
        deal.source_channel,
        list(deal.tags or []),
        (deal.external_ids or {}).get(provider_name),
        (contact.external_ids or {}).get(provider_name),
    )


class CRMProvider(ABC):
    """A CRM Closer writes to: subclass it in a file of its own, set ``name`` (it keys ``external_ids`` and
    outbox rows, and is the ``crm_provider`` setting that picks the adapter) and add it to
    :data:`bot.crm.registry.ADAPTERS`. Methods raise :class:`CRMError` subclasses."""

    name: str

    @classmethod
    def from_settings(cls, settings: Any) -> Self:
        """The adapter configured by ``settings`` (:class:`bot.core.settings.Settings`). Raises ValueError for
        a missing or bad setting."""
        return cls()

    @abstractmethod
    async def upsert_contact(self, contact: ContactRecord) -> str:
        """Create or update the contact; returns the CRM's id of it."""

    @abstractmethod
    async def upsert_deal(self, deal: DealRecord) -> str:
        """Create (associated with ``deal.contact_external_id``) or update the deal; returns its id."""

    @abstractmethod
    async def add_note(self, deal: DealRecord, body: str, at: datetime | None = None) -> None:
        """Add a note written at ``at`` (default: now) to the deal ``deal.external_id``."""


def as_utc(moment: datetime) -> datetime:
    """Aware UTC; a naive time (SQLite hands those back) is taken as UTC."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
