"""What a commerce event costs: the item's price in the shopper's currency and the quantity.

Prices are `lookups.local_price` of the item's base price, so Silver's USD amounts match the lookup
tables exactly. Each (item, currency) price is formatted once, on first use.
"""

from __future__ import annotations

import random

from medallion.produce.lookups import World, local_price
from medallion.produce.model import draw_table

QUANTITIES = ((1, 0.70), (2, 0.20), (3, 0.06), (4, 0.03), (5, 0.01))
"""How many of an item a cart line holds, and how often."""


class Prices:
    """The ``"item_id":…,"price":…,"quantity":…,"currency":…,`` fragment of commerce events."""

    def __init__(self, world: World, rng: random.Random) -> None:
        self._world, self._bits = world, rng.getrandbits
        self.currencies = sorted({u.currency for u in world.users})
        """The run's currencies; a session refers to its user's by index here."""
        self.user_currency = [self.currencies.index(u.currency) for u in world.users]
        self._quantities = draw_table(list(QUANTITIES), 8)
        self._qty_currency = [[f'{q},"currency":"{c}",'.encode() for q in range(6)] for c in self.currencies]
        self._item_ids = [f'"item_id":"{it.item_id}",'.encode() for it in world.items]
        self._prices: dict[int, bytes] = {}

    def quantity(self) -> int:
        """A random quantity for a new cart line."""
        return self._quantities[self._bits(8)]

    def line(self, item: int, quantity: int, currency: int) -> bytes:
        """The fragment for ``quantity`` of ``item`` (an index into the world's items) in ``currency``."""
        return self._price(item, currency) + self._qty_currency[currency][quantity]

    def _price(self, item: int, currency: int) -> bytes:
        key = item * 16 + currency
        text = self._prices.get(key)
        if text is None:
            value = local_price(self._world, self._world.items[item], self.currencies[currency])
            number = str(int(value)) if value.is_integer() else repr(value)
            text = self._prices[key] = self._item_ids[item] + f'"price":{number},"quantity":'.encode()
        return text
