"""The deal pipeline: its stages, the customer's open deal, and every move of a deal between stages.

Stages, in order: new → qualified → proposal → negotiation → won, or lost. What happens in the sale moves
a deal automatically, and only forward (:data:`LEAD_SAVED`, :data:`QUOTE_ISSUED`, :data:`BARGAINING`,
:data:`QUOTE_ACCEPTED`; a deal at any other stage stays where it is); a manager moves it anywhere from the
console's pipeline board (:func:`move_by_manager`). Every change goes through :func:`record`: the note added to the
deal, the DB flushed, and the deal, its contact and the note queued for the external CRM
(:func:`bot.crm.outbox.sync_deal`), all in the caller's transaction. No other module writes ``Deal.stage``.
"""

from dataclasses import dataclass

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.db import session_scope
from bot.core.models import Contact, Deal, DealNote, Quote
from bot.crm import outbox

STAGES = ("new", "qualified", "proposal", "negotiation", "won", "lost")  # pipeline stages, in order
CLOSED = ("won", "lost")


@dataclass(frozen=True)
class Move:
    """An automatic move: a deal at one of ``from_stages`` goes to ``to``, a later stage."""

    from_stages: tuple[str, ...]
    to: str

    def applies(self, deal: Deal) -> bool:
        """Whether ``deal`` is at one of the stages this move leaves."""
        return deal.stage in self.from_stages


LEAD_SAVED = Move(("new",), "qualified")  # the lead form is done
QUOTE_ISSUED = Move(("new", "qualified"), "proposal")  # a quote (sent or draft) priced the cart
BARGAINING = Move(("proposal",), "negotiation")  # a customer with a quote asks for a discount or objects to the price
QUOTE_ACCEPTED = Move(("new", "qualified", "proposal", "negotiation"), "won")  # the customer accepted the quote


def start(contact: Contact, currency: str, source_channel: str, tags: list[str]) -> Deal:
    """A new deal of ``contact`` at the first stage, added to ``contact.deals``; ``currency`` ISO 4217."""
    deal = Deal(stage=STAGES[0], currency=currency, source_channel=source_channel, tags=tags, notes=[])
    contact.deals.append(deal)
    return deal


async def open_deal(
    session: AsyncSession, *, contact_id: int | None = None, conversation_id: str | None = None
) -> Deal | None:
    """The customer's open deal: the most recently updated deal, neither won nor lost, of the contact
    ``contact_id`` when given (e.g. the ``contact_id`` slot the lead form set), else of the customer of
    ``conversation_id``: the contact saved in it (``Contact.sender_id``) or the deal of one of its quotes.
    None if there is none, or neither is given."""
    if contact_id is not None:
        whose = Deal.contact_id == contact_id
    elif conversation_id is not None:
        quoted = select(Quote.deal_id).where(Quote.conversation_id == conversation_id, Quote.deal_id.is_not(None))
        whose = or_(Contact.sender_id == conversation_id, Deal.id.in_(quoted))
    else:
        return None
    return (
        await session.scalars(
            select(Deal)
            .join(Contact, Deal.contact_id == Contact.id)
            .where(whose, Deal.stage.not_in(CLOSED))
            .order_by(Deal.updated_at.desc(), Deal.id.desc())
            .limit(1)
        )
    ).first()


async def record(session: AsyncSession, deal: Deal, note: str | None = None) -> None:
    """Keep a change of ``deal`` or its contact (stage, amount, details): ``note``, if any, added to the deal's
    notes, the session flushed, and the deal, its contact and the note queued for the external CRM.
    ``deal.contact`` must be loaded (it is, on a deal read from the DB or made by :func:`start`)."""
    if note:
        deal.notes.append(DealNote(body=note))
    await session.flush()
    await outbox.sync_deal(session, deal, note)


async def advance(session: AsyncSession, deal: Deal, move: Move, note: str | None = None) -> bool:
    """Something happened in the sale: ``deal`` takes the automatic ``move`` if it applies (forward only;
    at any other stage it stays), and the change is kept with ``note`` (:func:`record`) either way.
    Returns whether the stage moved."""
    moved = move.applies(deal)
    if moved:
        deal.stage = move.to
    await record(session, deal, note)
    return moved


async def move_by_manager(session: AsyncSession, deal: Deal, stage: str, by: str) -> str:
    """A manager (``by``, their e-mail) moves ``deal`` to ``stage``, backwards or forwards, from the console:
    kept with a note saying who (:func:`record`). Returns the previous stage; nothing changes when the deal is
    already there. Raises ValueError for a stage not in STAGES."""
    if stage not in STAGES:
        raise ValueError(f"{stage!r} is not a pipeline stage; one of {', '.join(STAGES)}")
    previous = deal.stage
    if previous != stage:
        deal.stage = stage
        await record(session, deal, f"Stage moved from {previous} to {stage} by {by} in the console.")
    return previous


async def note_for_managers(contact_id: int | None, conversation_id: str, note: str) -> bool:
    """``note`` on the customer's open deal (:func:`open_deal`), in a session of its own, so that the managers and the
    CRM see what the bot told the customer a manager would do. Returns False (nothing written) when there is no open
    deal."""
    async with session_scope() as session:
        deal = await open_deal(session, contact_id=contact_id, conversation_id=conversation_id)
        if deal is not None:
            await record(session, deal, note)
        return deal is not None
