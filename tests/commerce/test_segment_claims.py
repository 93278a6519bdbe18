"""A known customer's contact and pricing segment go only to conversations that are theirs
(tests/e2e/test_injection.py's attack ``other-lead-with-victims-phone``: typing a VIP's phone number into the web
chat's lead form gave the VIP discount, overwrote her contact and put her company on the attacker's quote): the
contact's own conversation, or a WhatsApp conversation from the contact's phone number."""

from bot.commerce.leads import Lead, save_lead
from bot.commerce.shopping import customer_segment
from bot.core import db
from bot.core.turn import Turn


def turn_of(sender_id: str, contact_id: int) -> Turn:
    return Turn(sender_id, sender_id.split("-")[0], slots={"contact_id": float(contact_id)})


async def test_a_contacts_segment_needs_its_own_conversation_or_its_phone_on_whatsapp(loaded_db):
    async with db.session_scope() as session:
        vip, _, _ = await save_lead(
            session,
            Lead(
                "Zubaida Quillfeather",
                "Quillfeather Holdings",
                "zubaida@quillfeather.ae",
                "+971509876543",
                37,
                None,
                "AED",
                None,
                "whatsapp",
                "whatsapp-971509876543",
            ),
        )
        vip.segment = "vip"
        # someone on the web chat types her phone number (and no company): her contact is left alone
        claimed, deal, created = await save_lead(
            session,
            Lead(
                "Mallory Evans",
                None,
                "mallory@attacker.ae",
                "+971509876543",
                2,
                None,
                "AED",
                None,
                "web",
                "web-mallory",
            ),
        )
        assert created and claimed.id != vip.id and claimed.company is None and claimed.segment == "new"
        assert (vip.name, vip.email, vip.company) == (
            "Zubaida Quillfeather",
            "zubaida@quillfeather.ae",
            "Quillfeather Holdings",
        )
        assert [note.body for note in deal.notes] == [
            f"Same phone or e-mail as contact #{vip.id}, typed in another conversation: "
            "merge them if it is the same person."
        ]
        assert deal not in vip.deals
        assert await customer_segment(session, turn_of("web-mallory", vip.id)) == "new"
        assert await customer_segment(session, turn_of("telegram-4242", vip.id)) == "new"
        assert await customer_segment(session, turn_of("whatsapp-971509876543", vip.id)) == "vip"
        regular, _, _ = await save_lead(
            session,
            Lead("Rita Regular", None, "rita@example.ae", "+971501234567", 1, None, "AED", None, "web", "web-rita"),
        )
        regular.segment = "regular"
        assert await customer_segment(session, turn_of("web-rita", regular.id)) == "regular"
