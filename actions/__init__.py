"""rasa-sdk actions, and nothing else: no business logic here.

The rule: an action reads the tracker into one :class:`~bot.core.turn.Turn` (``actions.base.read_turn``,
done by :class:`~actions.base.SafeAction`), calls ONE function in ``bot/`` that returns an
:class:`~bot.core.turn.Outcome` (messages to send, slots to set, pause or not), and SafeAction utters
it and returns its events. The use case, its DB session and its texts live in that ``bot/`` function
(``bot.commerce.shopping``, ``.browsing``, ``.quoting``, ``.qualifying``, ``bot.handoff.handover``,
``bot.answering.questions``, ``bot.privacy.forget_me``), where tests call it without a tracker. An
action module imports ``actions.base`` and ``bot``, never another action module. A new action:

    from actions.base import SafeAction
    from bot.commerce import shopping
    from bot.core.turn import Outcome, Turn


    class ActionShowCart(SafeAction):
        '''The cart with line totals, discounts, VAT and total.'''

        def name(self) -> str:
            return "action_show_cart"

        async def act(self, turn: Turn) -> Outcome:
            return await shopping.show_cart(turn)

(add its name to ``domain.yml``'s actions; a form's validation stays a rasa-sdk ``FormValidationAction``
calling ``bot`` cleaners, as in ``actions.leads``.)
"""

import logging

from bot.answering import embeddings, multilingual
from bot.commerce.formula import load_formula
from bot.commerce.pricing import load_pricing
from bot.core.business import get_company
from bot.privacy.encryption import get_keyring

# Read knowledge/company.yml and pricing.yml (its formula too, if any), the PII keys, and load the embedding models
# (about 5 s, and 1.5 s for the multilingual pair that Arabic and Russian questions use) when the action server
# starts: a broken file or a missing key stops start-up, and no customer waits for any of them.
get_company()
get_keyring()
load_pricing()
load_formula()
embeddings.load()
multilingual.load()

logging.getLogger("httpx").setLevel(logging.WARNING)  # its INFO lines carry URLs with the Telegram bot token
