"""Cart actions: add, remove, change quantities, show (:mod:`bot.commerce.shopping`)."""

from actions.base import SafeAction
from bot.commerce import shopping
from bot.core.turn import Outcome, Turn


class ActionAddToCart(SafeAction):
    """Adds the named product (or the one just shown), shows the cart and a cross-sell suggestion."""

    def name(self) -> str:
        return "action_add_to_cart"

    async def act(self, turn: Turn) -> Outcome:
        return await shopping.add_to_cart(turn)


class ActionRemoveFromCart(SafeAction):
    """Removes the named lines and shows the cart."""

    def name(self) -> str:
        return "action_remove_from_cart"

    async def act(self, turn: Turn) -> Outcome:
        return await shopping.remove_from_cart(turn)


class ActionChangeQuantity(SafeAction):
    """Sets the quantity of the named cart line to the number said."""

    def name(self) -> str:
        return "action_change_quantity"

    async def act(self, turn: Turn) -> Outcome:
        return await shopping.change_quantity(turn)


class ActionShowCart(SafeAction):
    """The cart with line totals, discounts, VAT and total."""

    def name(self) -> str:
        return "action_show_cart"

    async def act(self, turn: Turn) -> Outcome:
        return await shopping.show_cart(turn)
