"""Lead capture: validation of what the lead form collects, and the contact + deal in the CRM tables.

Contacts are deduplicated by phone (E.164), email (normalised) or channel sender id, in that order,
through the blind indexes of their encrypted phone and e-mail (:mod:`bot.privacy.encryption`); the console finds
them with :func:`contact_matches`.
"""

import logging
import re
from dataclasses import dataclass

import phonenumbers
from email_validator import EmailNotValidError, validate_email
from sqlalchemy import ColumnElement, and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.commerce import deals
from bot.contracts import conversation_ids
from bot.core.models import Contact, Deal
from bot.privacy.encryption import get_keyring

log = logging.getLogger(__name__)

_EMAIL_IN_TEXT = re.compile(r"[^\s<>()\[\],;:\"']+@[^\s<>()\[\],;:\"']+")
_NAME = re.compile(r"^[^\W\d_]+(?:[ '.\-][^\W\d_]+)*\.?$")
_PHONE_LIKE = re.compile(r"[\d\s().+-]+")
_PHONE_PUNCTUATION = re.compile(r"[\s().-]")
# "No company" in each language the default business serves (utter_ask_company suggests "private" / شخصي / частное лицо)
NO_COMPANY = {
    "no",
    "none",
    "n/a",
    "na",
    "-",
    "private",
    "individual",
    "myself",
    "personal",
    "just me",
    "no company",
} | {
    "شخصي",
    "لنفسي",
    "فردي",
    "لا يوجد",
    "ما في",
    "частное лицо",
    "частник",
    "для себя",
    "нет",
    "физлицо",
}


def clean_email(text: str) -> str | None:
    """The email address in ``text``, normalised (lower-case domain), or None if there is no valid
    one. Syntax only: no DNS look-up."""
    for candidate in _EMAIL_IN_TEXT.findall(text or ""):
        try:
            return validate_email(candidate.strip("."), check_deliverability=False).normalized
        except EmailNotValidError:
            continue
    return None


def clean_phone(text: str, region: str = "AE") -> str | None:
    """The first valid phone number in ``text`` as E.164 (``"050 123 4567"`` → ``"+971501234567"``
    for region AE), or None."""
    for match in phonenumbers.PhoneNumberMatcher(text or "", region):
        if phonenumbers.is_valid_number(match.number):
            return phonenumbers.format_number(match.number, phonenumbers.PhoneNumberFormat.E164)
    return None


def clean_name(text: str) -> str | None:
    """A person's name: letters (any script), spaces, apostrophes, dots and hyphens, 2–80
    characters; title-cased when typed all lower-case. None otherwise."""
    value = " ".join((text or "").split())
    for prefix in ("my name is ", "i am ", "i'm ", "this is ", "name: ", "it's ", "меня зовут ", "اسمي ", "انا "):
        if value.lower().startswith(prefix):
            value = value[len(prefix) :]
    if not (2 <= len(value) <= 80) or not _NAME.match(value):
        return None
    return value.title() if value.islower() else value


def clean_company(text: str) -> str | None:
    """A company name (2–120 characters); ``""`` when the customer buys privately; None if unusable."""
    value = " ".join((text or "").split()).strip(".")
    if value.lower() in NO_COMPANY:
        return ""
    return value if 2 <= len(value) <= 120 else None


def clean_timeline(text: str) -> str | None:
    """When the customer needs the furniture, as they said it (2–120 characters), or None."""
    value = " ".join((text or "").split())
    return value if 2 <= len(value) <= 120 else None


@dataclass(frozen=True)
class Lead:
    """What the lead form collected. Phone is E.164; budget in minor units of ``currency``. ``qualification`` holds
    (slot, answer) of the business's own qualifying questions in its lead form (company size, channels, …), as the
    customer answered them, in the form's order. ``listing`` is the platform's ad the customer wrote about (Avito's
    item id), when the channel says."""

    name: str
    company: str | None
    email: str
    phone: str
    quantity: int | None
    budget_minor: int | None
    currency: str
    timeline: str | None
    channel: str
    sender_id: str
    qualification: tuple[tuple[str, str], ...] = ()
    listing: str | None = None


def speaks_for(contact: Contact, conversation_id: str) -> bool:
    """Whether ``conversation_id`` is proven to be the customer of ``contact``: it is the conversation the
    contact was saved from, or a WhatsApp conversation from the contact's phone number (WhatsApp verified
    the number). A phone number or e-mail typed into a chat proves nothing: anyone may know them."""
    return contact.sender_id == conversation_id or (
        bool(contact.phone) and conversation_ids.parse(conversation_id) == ("whatsapp", contact.phone.lstrip("+"))
    )


async def save_lead(session: AsyncSession, lead: Lead) -> tuple[Contact, Deal, bool]:
    """Create or update the contact and its open deal at stage ``qualified``, tagged ``<channel>-lead`` for
    each channel the customer came through, both queued for the external CRM (:func:`bot.commerce.deals.record`).
    Returns (contact, deal, whether the contact is new).

    The contact updated is the one with this phone, else this e-mail, else this channel and sender id,
    among the contacts this conversation :func:`speaks_for`. A contact with the same phone or e-mail that
    it does not speak for (someone typed another customer's details) is left untouched: the lead gets a
    contact of its own, and its deal a note naming the other contact for a manager to check and merge."""
    keyring = get_keyring()
    phone_index, email_index = keyring.phone_index(lead.phone), keyring.email_index(lead.email)
    candidates = (
        await session.scalars(
            select(Contact).where(
                or_(
                    Contact.phone_index == phone_index,
                    Contact.email_index == email_index,
                    (Contact.channel == lead.channel) & (Contact.sender_id == lead.sender_id),
                )
            )
        )
    ).all()
    rank = {"phone": 0, "email": 1, "sender": 2}

    def match_rank(contact: Contact) -> int:
        if contact.phone_index == phone_index:
            return rank["phone"]
        return rank["email"] if contact.email_index == email_index else rank["sender"]

    contact = min((c for c in candidates if speaks_for(c, lead.sender_id)), key=match_rank, default=None)
    claimed = sorted(c.id for c in candidates if not speaks_for(c, lead.sender_id))
    created = contact is None
    if created:
        contact = Contact(channel=lead.channel, sender_id=lead.sender_id, deals=[])
        session.add(contact)
    contact.name, contact.email, contact.phone = lead.name, lead.email, lead.phone
    contact.company = lead.company or contact.company
    contact.consent = True
    deal = None if created else await deals.open_deal(session, contact_id=contact.id)
    if deal is None:
        deal = deals.start(contact, lead.currency, lead.channel, [f"{lead.channel}-lead"])
    if f"{lead.channel}-lead" not in deal.tags:  # the same customer, now also on another channel
        deal.tags = [*deal.tags, f"{lead.channel}-lead"]
    deal.quantity = lead.quantity or deal.quantity
    deal.budget_minor = lead.budget_minor or deal.budget_minor
    deal.timeline = lead.timeline or deal.timeline
    note = None
    if claimed and created:
        log.warning(
            "lead in %s gave the phone or e-mail of contact(s) %s; saved as a contact of its own",
            lead.sender_id,
            claimed,
        )
        note = (
            f"Same phone or e-mail as contact #{', #'.join(map(str, claimed))}, typed in "
            "another conversation: merge them if it is the same person."
        )
    if lead.listing:
        note = f"Written about {lead.channel} ad {lead.listing}" + (f"\n{note}" if note else "")
    if lead.qualification:
        answers = "; ".join(f"{slot}: {answer}" for slot, answer in lead.qualification)
        note = f"Qualification: {answers}" + (f"\n{note}" if note else "")
    await deals.advance(session, deal, deals.LEAD_SAVED, note)
    return contact, deal, created


def contact_matches(text: str, region: str = "AE") -> ColumnElement[bool]:
    """Contacts that ``text`` (stripped, non-empty) finds, without decrypting any: those with every
    whitespace-separated word of ``text`` (case-insensitively) as a word, or the start of a word, of their
    name, company, e-mail or phone, whole or split at punctuation (bot.privacy.encryption's search tokens). Text of
    digits, spaces and ``+().-`` is a phone number: the contact's whole number (``"50 123 4567"`` in
    ``region``), or its start, punctuation left out (``"+971 50"``).

    A trade-off of encryption: until then this was a substring search. Now ``"acme"``, ``"ann@acme"``,
    ``"Stone"`` and ``"+97150"`` find what they did, but the middle or end of a word does not
    (``"cme"``, ``"4567"``), and a word prefix needs 3 characters (``"st"`` finds only a whole word ``st``)."""
    keyring = get_keyring()
    phone_like = _PHONE_LIKE.fullmatch(text)
    words = [_PHONE_PUNCTUATION.sub("", text)] if phone_like else text.lower().split()
    found = and_(*(Contact.search_tokens.contains(f" {keyring.search_token(word)} ") for word in words))
    phone = _phone_number(text, region) if phone_like else None
    return or_(found, Contact.phone_index == keyring.phone_index(phone)) if phone else found


def _phone_number(text: str, region: str) -> str | None:
    """``text`` as a valid phone number in E.164 (read in ``region`` without a country code), or None."""
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
