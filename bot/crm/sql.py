"""The built-in CRM adapter: the business DB itself (``contacts``, ``deals``, ``deal_notes``)."""

from datetime import datetime

from bot.crm.base import ContactRecord, CRMProvider, DealRecord


class SqlCRM(CRMProvider):
    """The built-in CRM: the business DB itself, which ``save_lead`` and the actions already
    write. Nothing to send, so this provider does nothing and returns the local ids."""

    name = "sql"

    async def upsert_contact(self, contact: ContactRecord) -> str:
        return str(contact.local_id)

    async def upsert_deal(self, deal: DealRecord) -> str:
        return str(deal.local_id)

    async def add_note(self, deal: DealRecord, body: str, at: datetime | None = None) -> None:
        return None
