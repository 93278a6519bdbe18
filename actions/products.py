"""Catalog actions: product search, price, stock, details, objections (:mod:`bot.commerce.browsing`)."""

from actions.base import SafeAction
from bot.commerce import browsing
from bot.core.turn import Outcome, Turn


class ActionSearchProducts(SafeAction):
    """Products matching the message, with DB prices and stock."""

    def name(self) -> str:
        return "action_search_products"

    async def act(self, turn: Turn) -> Outcome:
        return await browsing.search_products(turn)


class ActionShowPrice(SafeAction):
    """Unit prices (excl. VAT) of the products named, else of the last shown."""

    def name(self) -> str:
        return "action_show_price"

    async def act(self, turn: Turn) -> Outcome:
        return await browsing.show_price(turn)


class ActionShowStock(SafeAction):
    """Units on hand per warehouse, and whether they cover a quantity the customer named."""

    def name(self) -> str:
        return "action_show_stock"

    async def act(self, turn: Turn) -> Outcome:
        return await browsing.show_stock(turn)


class ActionProductDetails(SafeAction):
    """One product's card: price, finish, size, features, description, stock."""

    def name(self) -> str:
        return "action_product_details"

    async def act(self, turn: Turn) -> Outcome:
        return await browsing.product_details(turn)


class ActionHandleObjection(SafeAction):
    """Price objections get cheaper alternatives from the catalog; the others a response."""

    def name(self) -> str:
        return "action_handle_objection"

    async def act(self, turn: Turn) -> Outcome:
        return await browsing.handle_objection(turn)


class ActionCompareProducts(SafeAction):
    """The products the message refers to side by side: prices, stock and the attributes that differ."""

    def name(self) -> str:
        return "action_compare_products"

    async def act(self, turn: Turn) -> Outcome:
        return await browsing.compare_products(turn)
