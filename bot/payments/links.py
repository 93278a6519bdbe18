"""A prepayment link sent in the conversation: what ``action_request_prepayment`` does
(:func:`bot.payments.service.request_prepayment` makes the payment).

The payment is for the conversation's latest quote (the commercial proposal), its share pricing.yml's
``prepayment`` of the total including VAT, in the quote's currency; the link is YooKassa's payment page, which sends
the customer back to the web chat. Once YooKassa notifies the payment (``POST /webhooks/yookassa``, confirmed by
reading it back), the deal is won and the customer gets the invoice and contract (:mod:`bot.commerce.invoicing`).
Anything in the way is said to the customer in their language: no proposal yet, the proposal expired or awaits a
manager, payments not set up, YooKassa not answering, already paid.
"""

import logging

from bot.commerce import deals, quotes
from bot.core import db
from bot.core.caches import process_cache
from bot.core.models import Deal
from bot.core.settings import get_settings
from bot.core.turn import Outcome, Turn
from bot.payments import service
from bot.payments.yookassa import PaymentError, YooKassa
from bot.texts import i18n
from bot.texts.i18n import gettext as _

log = logging.getLogger(__name__)


@process_cache
def get_client() -> YooKassa | None:
    """The process's YooKassa client, None when the shop is not configured (CLOSER_YOOKASSA_SHOP_ID and
    CLOSER_YOOKASSA_SECRET_KEY)."""
    settings = get_settings()
    return YooKassa.from_settings(settings) if settings.yookassa_shop_id and settings.yookassa_secret_key else None


async def send_prepayment_link(turn: Turn) -> Outcome:
    """The link to pay the prepayment of the conversation's latest quote, with the amount and the quote's number; or
    why there is none (see the module docstring). Sets ``sales_stage`` to ``closing`` when a link is sent."""
    client = get_client()
    if client is None:
        log.info("no payment link in %s: YooKassa is not configured", turn.conversation_id)
        note = "The customer asked to pay online; payments are not set up: send them the payment details."
        await deals.note_for_managers(turn.contact_id, turn.conversation_id, note)
        return Outcome().say(text=_("A manager will send you the payment details shortly."))
    async with db.session_scope() as session:
        quote = await quotes.latest(session, turn.conversation_id)
        if quote is None:
            return Outcome().say(text=_("Let me prepare a proposal first: ask me for one, then you can pay online."))
        number = quote.number
        description = _("Prepayment for proposal %(number)s") % {"number": number}
        try:
            payment = await service.request_prepayment(
                session, quote, client, return_url=service.return_url(get_settings()), description=description
            )
        except service.PrepaymentRefused as refused:
            log.info("no payment link for quote %s: %s", number, refused)
            if refused.reason == "expired":
                return Outcome().say(
                    text=_("Proposal %(number)s has expired: ask me for a new one.") % {"number": number}
                )
            if quote.deal_id is not None and (deal := await session.get(Deal, quote.deal_id)) is not None:
                await deals.record(session, deal, f"No payment link for quote {number} ({refused}): send the details.")
            return Outcome().say(text=_("A manager will send you the payment details shortly."))
        except PaymentError as error:
            log.error("YooKassa refused the prepayment of quote %s: %s", number, error)
            return Outcome().say(text=_("The payment service is not answering. Please try again in a few minutes."))
        if payment.status == "succeeded":
            return Outcome().say(
                text=_("The prepayment for proposal %(number)s is already paid. Thank you!") % {"number": number}
            )
        amount = i18n.format_money(payment.amount_minor, payment.currency)
        text = _("Here is the link to pay the prepayment of %(amount)s for proposal %(number)s:") % {
            "amount": amount,
            "number": number,
        }
    return Outcome().say(text=f"{text}\n{payment.confirmation_url}").set("sales_stage", "closing")
