"""The start of a sale: the greeting, and the lead the lead form collected saved as a contact and its deal."""

from bot.commerce import inputs, leads
from bot.core import db
from bot.core.business import get_company
from bot.core.settings import get_settings
from bot.core.turn import Outcome, Turn


async def greet(turn: Turn) -> Outcome:
    """Greets with the brand; sets sales_stage greeting at the start of a conversation only."""
    company = get_company()
    outcome = Outcome().say(response="utter_greet", brand=company.brand, assistant=company.assistant_name)
    return outcome if turn.slot("sales_stage") else outcome.set("sales_stage", "greeting")


LEAD_FORM = "lead_form"
# The lead form's slots Closer itself reads; any other slot a business's lead form asks is a qualifying question.
LEAD_SLOTS = frozenset(("customer_name", "company", "email", "phone", "quantity", "budget", "timeline"))


def lead_of(turn: Turn) -> leads.Lead:
    """The lead in the lead form's slots, each normalised (the raw answer kept where it does not clean), with the
    answers to the business's own questions in its lead form (``Lead.qualification``)."""
    currency, region, slot = get_company().currency, get_settings().default_phone_region, turn.slot
    asked = turn.forms.get(LEAD_FORM, ())
    return leads.Lead(
        name=leads.clean_name(slot("customer_name") or "") or slot("customer_name"),
        company=leads.clean_company(slot("company") or "") or None,
        email=leads.clean_email(slot("email") or "") or slot("email"),
        phone=leads.clean_phone(slot("phone") or "", region) or slot("phone"),
        quantity=inputs.quantity(slot("quantity") or ""),
        budget_minor=inputs.budget(slot("budget") or "", currency),
        currency=currency,
        timeline=leads.clean_timeline(slot("timeline") or ""),
        channel=turn.channel,
        sender_id=turn.conversation_id,
        qualification=tuple((name, str(slot(name))) for name in asked if name not in LEAD_SLOTS and slot(name)),
        listing=_listing(turn),
    )


def _listing(turn: Turn) -> str | None:
    """The ad the customer writes about, from the channel's metadata of the latest message: Avito's ``item_id``
    (``{"avito": {"item_id": …}}``, connectors/avito.py: every message of a chat about an ad carries it)."""
    item = (turn.metadata.get(turn.channel) or {}).get("item_id") if turn.channel == "avito" else None
    return str(item) if item else None


async def save_lead(turn: Turn) -> Outcome:
    """After the lead form: store the contact and its deal (:func:`bot.commerce.leads.save_lead`), thank
    the customer, set contact_id and sales_stage (``quoting`` stays for action_send_quote, else ``closing``)."""
    async with db.session_scope() as session:
        contact, _, _ = await leads.save_lead(session, lead_of(turn))
    quoting = turn.slot("sales_stage") == "quoting"  # action_send_quote follows and closes
    return (
        Outcome()
        .say(response="utter_lead_saved", customer_name=contact.name, email=contact.email, phone=contact.phone)
        .set("sales_stage", "quoting" if quoting else "closing")
        .set("contact_id", contact.id)
    )
