"""What an event is about: its page, and the item, search or cart line it carries, per event type.

- Items follow a Zipf law over the world's popularity ranks; after a search, item pages lean to the
  searched category.
- A page view is an item page (`ITEM_PAGE_SHARE`) or a plain page (home, deals, account, a category).
- add_to_cart usually adds the item last looked at; remove_from_cart takes a random cart line, purchase
  the newest, so neither ever refers to an item the session did not add.
- Every page is the referrer of the session's next event.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from medallion.produce.lookups import ADJECTIVES, CATEGORIES, World
from medallion.produce.model import EventType, draw_table
from medallion.produce.prices import Prices
from medallion.produce.sessions import Session

SITE = "https://shop.example.com"
ZIPF_EXPONENT = 1.1
ITEM_PAGE_SHARE = 0.6
"""Share of page views that are item pages."""
CLICK_STAYS_IN_FOCUS = 0.7
"""After a search, share of clicks on an item of the searched category..."""
VIEW_STAYS_IN_FOCUS = 0.5
"""...and of item-page views."""
ADDS_LAST_ITEM = 0.85
"""Share of add_to_cart events that add the item last looked at (the others: a popular item)."""

Content = tuple[bytes, bytes, bytes]
"""JSON fragments: the type's own members (ending in a comma), the page path, the page as a referrer."""


class Items:
    """Which item an event is about, and the JSON text of items and searches."""

    def __init__(self, world: World, rng: random.Random) -> None:
        self._draw, self._bits = rng.random, rng.getrandbits
        self.ids = [f'"item_id":"{it.item_id}",'.encode() for it in world.items]
        self.pages = [f"/p/{it.item_id}".encode() for it in world.items]
        self.refs = [f'"{SITE}/p/{it.item_id}"'.encode() for it in world.items]
        weight = [1.0 / it.popularity_rank**ZIPF_EXPONENT for it in world.items]
        self._zipf = draw_table(list(enumerate(weight)), 16)
        categories = list(CATEGORIES)
        in_category = [
            [(i, weight[i]) for i, it in enumerate(world.items) if it.category == c] for c in categories
        ]
        self._in_category = [draw_table(pairs or [(0, 1.0)], 12) for pairs in in_category]
        self._categories = draw_table(
            [(k, sum(w for _, w in pairs) or 1e-9) for k, pairs in enumerate(in_category)], 10
        )
        self._searches: list[list[Content]] = []  # per category: (search_query member, page, referrer)
        for c in categories:
            _, _, brands, nouns = CATEGORIES[c]
            texts = [
                *nouns,
                *(f"{a} {n}" for a in ADJECTIVES for n in nouns),
                *(f"{b} {n}" for b in brands for n in nouns),
            ]
            pages = ["/search?q=" + q.replace(" ", "+") for q in texts]
            self._searches.append(
                [
                    (f'"search_query":"{q}",'.encode(), p.encode(), f'"{SITE}{p}"'.encode())
                    for q, p in zip(texts, pages, strict=True)
                ]
            )

    def popular(self) -> int:
        """An item drawn by popularity (Zipf)."""
        return self._zipf[self._bits(16)]

    def looked_at(self, focus: int, stays_in_focus: float) -> int:
        """The item of an item page: of category ``focus`` (-1: none) with that share, else popular."""
        if focus >= 0 and self._draw() < stays_in_focus:
            return self._in_category[focus][self._bits(12)]
        return self.popular()

    def search(self) -> tuple[int, Content]:
        """A search: its category (by the categories' popularity) and its query's fragments."""
        category = self._categories[self._bits(10)]
        found = self._searches[category]
        return category, found[int(self._draw() * len(found))]


class Pages:
    """Per event type, the content of a session's next event (``by_type[t](session)``), updating the
    session's focus, last item and cart."""

    def __init__(self, world: World, rng: random.Random, items: Items, prices: Prices) -> None:
        self._draw = rng.random
        self._items, self._prices = items, prices
        self._plain = [
            (p.encode(), f'"{SITE}{p}"'.encode())
            for p in ("/", "/deals", "/account", *(f"/c/{c}" for c in CATEGORIES))
        ]
        self._cart = (b"/cart", f'"{SITE}/cart"'.encode())
        self._checkout = (b"/checkout/complete", f'"{SITE}/checkout/complete"'.encode())
        self.by_type: dict[EventType, Callable[[Session], Content]] = {
            EventType.PAGE_VIEW: self.page_view,
            EventType.SEARCH: self.search,
            EventType.CLICK: self.click,
            EventType.ADD_TO_CART: self.add_to_cart,
            EventType.REMOVE_FROM_CART: self.remove_from_cart,
            EventType.PURCHASE: self.purchase,
        }

    def page_view(self, s: Session) -> Content:
        if self._draw() < ITEM_PAGE_SHARE:
            return self._item_page(s, VIEW_STAYS_IN_FOCUS)
        page, ref = self._plain[int(self._draw() * len(self._plain))]
        return b'"item_id":null,', page, ref

    def click(self, s: Session) -> Content:
        return self._item_page(s, CLICK_STAYS_IN_FOCUS)

    def search(self, s: Session) -> Content:
        s.focus, content = self._items.search()
        return content

    def add_to_cart(self, s: Session) -> Content:
        item = s.last_item if s.last_item >= 0 and self._draw() < ADDS_LAST_ITEM else self._items.popular()
        quantity = self._prices.quantity()
        s.cart.append((item, quantity))
        return self._prices.line(item, quantity, s.cur), self._items.pages[item], self._items.refs[item]

    def remove_from_cart(self, s: Session) -> Content:
        item, quantity = s.cart.pop(int(self._draw() * len(s.cart)))
        return (self._prices.line(item, quantity, s.cur), *self._cart)

    def purchase(self, s: Session) -> Content:
        item, quantity = s.cart.pop()
        return (self._prices.line(item, quantity, s.cur), *self._checkout)

    def _item_page(self, s: Session, stays_in_focus: float) -> Content:
        item = s.last_item = self._items.looked_at(s.focus, stays_in_focus)
        return self._items.ids[item], self._items.pages[item], self._items.refs[item]
