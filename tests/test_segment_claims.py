"""A known customer's pricing segment goes only to conversations that are theirs (tests/e2e/test_injection.py's
attack ``other-lead-with-victims-phone``: typing a VIP's phone number into the web chat's lead form gave the
VIP discount): the contact's own conversation, or a WhatsApp conversation from the contact's phone number."""

from rasa_sdk import Tracker

from actions.cart import customer_segment
from bot import db
from bot.leads import Lead, save_lead


def tracker_of(sender_id: str, contact_id: int) -> Tracker:
    return Tracker(sender_id, {"contact_id": float(contact_id)}, {"text": "", "intent": {}, "entities": []}, [], False,
                   None, None, "action_listen")


async def test_a_contacts_segment_needs_its_own_conversation_or_its_phone_on_whatsapp(loaded_db):
    async with db.session_scope() as session:
        vip, _, _ = await save_lead(session, Lead("Zubaida Quillfeather", "Quillfeather Holdings", "zubaida@quillfeather.ae",
                                                  "+971509876543", 37, None, "AED", None, "whatsapp",
                                                  "whatsapp-971509876543"))
        vip.segment = "vip"
        # someone on the web chat types her phone number: the lead form finds her contact
        claimed, _, created = await save_lead(session, Lead("Mallory Evans", "Mallory Trading", "mallory@attacker.ae",
                                                            "+971509876543", 2, None, "AED", None, "web", "web-mallory"))
        assert claimed.id == vip.id and not created
        assert await customer_segment(session, tracker_of("web-mallory", vip.id)) == "new"
        assert await customer_segment(session, tracker_of("telegram-4242", vip.id)) == "new"
        assert await customer_segment(session, tracker_of("whatsapp-971509876543", vip.id)) == "vip"
        regular, _, _ = await save_lead(session, Lead("Rita Regular", None, "rita@example.ae", "+971501234567", 1,
                                                      None, "AED", None, "web", "web-rita"))
        regular.segment = "regular"
        assert await customer_segment(session, tracker_of("web-rita", regular.id)) == "regular"
