"""Quote turns: a quote request, the quote sent once the lead form is done, its acceptance, and discount
requests (granted up to the pricing cap, otherwise a manager's approval with a draft quote). Each turn
reads the cart once and prices it once."""

from typing import Any

from bot.commerce import browsing, deals, inputs, quotes
from bot.commerce import cart as carts
from bot.commerce.pricing import load_pricing
from bot.commerce.shopping import customer_segment
from bot.core import db
from bot.core.business import get_company
from bot.core.models import Contact, Quote
from bot.core.money import format_money
from bot.core.turn import Outcome, Turn
from bot.handoff.handover import hand_over
from bot.texts import i18n, messages
from bot.texts.i18n import _


def quote_document(quote: Quote) -> dict[str, Any]:
    """The quote PDF as a document message: Telegram and WhatsApp send the file, the widget a link; the caption
    in the active language."""
    caption = _("Quote %(number)s") % {"number": quote.number}
    return {"document": {"url": quotes.url(quote), "filename": f"{quote.number}.pdf", "caption": caption}}


async def request_quote(turn: Turn) -> Outcome:
    """Starts a quote request (sales_stage quoting); the lead form follows by rule."""
    return Outcome().say(response="utter_quote_needs_contact").set("sales_stage", "quoting")


async def send_quote(turn: Turn) -> Outcome:
    """After the lead form of a quote request (sales_stage quoting; otherwise nothing): issue the quote
    from the cart, send the PDF link, move the deal to ``proposal``; an order above the approval amount
    also calls a manager in. An empty cart is said so (sales_stage back to needs_analysis)."""
    if turn.slot("sales_stage") != "quoting":
        return Outcome()
    rules, company = load_pricing(), get_company()
    async with db.session_scope() as session:
        cart = await carts.get_cart(session, turn.conversation_id)
        if not cart.lines:
            return Outcome().say(response="utter_quote_cart_empty").set("sales_stage", "needs_analysis")
        contact = await session.get(Contact, turn.contact_id) if turn.contact_id else None
        deal = await deals.open_deal(session, contact_id=contact.id if contact else None)
        segment = await customer_segment(session, turn)
        priced = rules.price(carts.items(cart), segment, turn.granted_discount)
        quote = await quotes.issue(
            session, turn.conversation_id, priced, company.quote_validity_days, contact, deal, segment
        )
    valid_until = i18n.format_date(quote.valid_until.date())
    outcome = Outcome().say(
        text=messages.render("quote_sent", quote=quote, url=quotes.url(quote), valid_until=valid_until)
    )
    outcome.say(json_message=quote_document(quote)).set("sales_stage", "closing")
    if rules.needs_approval(priced):
        outcome.say(response="utter_big_order").then(await hand_over(turn, "order_amount", quote, cart))
    return outcome


async def accept_quote(turn: Turn) -> Outcome:
    """ "I accept the quote": the latest quote becomes accepted and the deal won; an expired one is
    refused with its date and an offer of a fresh quote."""
    async with db.session_scope() as session:
        try:
            quote = await quotes.accept(session, turn.conversation_id)
        except quotes.QuoteError as exc:
            return Outcome().say(response="utter_quote_not_accepted", reason=str(exc))
    return Outcome().say(response="utter_quote_accepted", number=quote.number).set("sales_stage", "closing")


async def handle_discount(turn: Turn) -> Outcome:
    """A discount request, with or without a cart, alone or with other requests in the same message.

    - a percentage (NLU ``discount`` entity or written in the text): within the bot's cap (pricing.yml) it is
      granted and the cart re-priced (with no cart yet it is kept in ``granted_discount`` for the cart to come);
      above it, never a yes or no from the bot: it goes to a manager for approval (a draft quote when there is a
      cart) with the discount asked for in the escalation's needs;
    - an amount of money ("500 AED off", "9000 for all of it"): a manager's approval likewise;
    - neither ("any discount for bulk?"): the volume tiers, and what to ask for.

    Products named in the same message ("40 chairs but only with 35% off": NLU entities ``category`` or
    ``product``) are shown first, with their prices and stock (:func:`bot.commerce.browsing.search_products`,
    which also keeps the quantity in its slot, so it reaches the manager's summary)."""
    shown = await browsing.search_products(turn) if turn.entity("category") or turn.entity("product") else Outcome()
    if not any(name == "shown_skus" for name, _ in shown.slots):  # nothing found: only the discount is answered
        shown = Outcome()
    return shown.then(await _discount(turn))


async def _discount(turn: Turn) -> Outcome:
    rules, company = load_pricing(), get_company()
    wanted = inputs.discount(turn.entity("discount"), turn.text)
    amounts = [] if wanted is not None else inputs.money_amounts(turn.text, company.money_words)
    amount = next((m for m in (inputs.budget(a, company.currency) for a in amounts) if m), None)
    if wanted is None and amount is None:
        return Outcome().say(text=messages.render("volume_tiers", tiers=rules.volume_tiers))
    async with db.session_scope() as session:
        cart = await carts.get_cart(session, turn.conversation_id)
        segment = await customer_segment(session, turn)
        decision = rules.discount_request(carts.items(cart), segment, wanted) if wanted is not None else None
        draft = None
        if cart.lines:
            deal = await deals.open_deal(session, contact_id=turn.contact_id)
            await quotes.negotiating(session, deal)
            if decision is None or not decision.granted:
                draft = await quotes.issue(
                    session,
                    turn.conversation_id,
                    rules.price(carts.items(cart), segment, turn.granted_discount),
                    company.quote_validity_days,
                    deal=deal,
                    segment=segment,
                    status="draft",
                )
    if decision is None or not decision.granted:
        percent = f"{wanted * 100:.0f}%" if wanted is not None else None
        asked = percent or i18n.format_money(amount, company.currency)
        for_manager = percent or format_money(amount, company.currency)  # managers read the default language
        if wanted is None:
            outcome = Outcome().say(response="utter_price_needs_approval", amount=asked)
        elif cart.lines:
            outcome = Outcome().say(response="utter_discount_needs_approval", discount=asked)
        else:
            outcome = Outcome().say(response="utter_discount_needs_approval_no_cart", discount=asked)
        return outcome.then(await hand_over(turn, "discount", draft, cart, needs={"discount asked": for_manager}))
    granted = f"{decision.granted_pct * 100:.0f}%"
    if cart.lines:
        priced = rules.price(carts.items(cart), segment, decision.granted_pct)
        heading = messages.render("cart_heading", change="discount", discount=granted)
        outcome = Outcome().say(text=messages.render("cart", cart=priced, heading=heading))
    else:
        cap = f"{rules.max_bot_discount * 100:.0f}%"
        outcome = Outcome().say(response="utter_discount_granted_for_cart", discount=granted, cap=cap)
    return outcome.set("granted_discount", str(decision.granted_pct)).set("sales_stage", "objection_handling")
