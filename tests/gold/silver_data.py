"""A seeded generator of Silver rows for Gold's tests, written as Silver Parquet files directly.

It varies what the pipeline's producer never does: days without any event, users with a single event,
sessions that cross midnight, events exactly at a window's edge and a microsecond before it, purchases
without a USD amount, items without a category, and items that are bought or carted but never viewed.
"""

from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from medallion.core import catalog

UTC = dt.UTC
FIRST_DAY = dt.date(2026, 9, 1)
DAYS = 40
EMPTY_DAYS = {5, 6, 17, 18, 19}  # day offsets no session starts on (a day before may spill into them)
# A feature date whose windows get events exactly at their edges.
EDGE_DATE = FIRST_DAY + dt.timedelta(days=35)
TYPES = ("page_view", "search", "click", "add_to_cart", "remove_from_cart", "purchase")
WEIGHTS = (30, 10, 25, 15, 5, 15)

SCHEMA = pa.schema(
    [
        ("event_id", pa.string()),
        ("event_time", pa.timestamp("us", tz="UTC")),
        ("user_id", pa.string()),
        ("session_id", pa.string()),
        ("item_id", pa.string()),
        ("item_category", pa.string()),
        ("amount_usd", pa.decimal128(18, 4)),
        ("price", pa.decimal128(18, 4)),
        ("quantity", pa.int32()),
        ("currency", pa.string()),
        ("device_type", pa.string()),
        ("email_hmac", pa.string()),  # Silver carries it; Gold must not
        (catalog.EVENT_DATE, pa.date32()),
        (catalog.EVENT_TYPE, pa.string()),
    ]
)


def _midnight(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), tzinfo=UTC)


class Generator:
    def __init__(self, seed: int = 7) -> None:
        self.rng = random.Random(seed)
        self.rows: list[dict[str, Any]] = []
        self.items = [f"i{n:03d}" for n in range(60)]
        self.category = {i: (None if n % 13 == 0 else f"c{n % 6}") for n, i in enumerate(self.items)}
        self.users = [f"u{n:02d}" for n in range(40)]

    def event(self, user: str, session: str, t: dt.datetime, etype: str, item: str | None) -> None:
        amount = None
        if etype in ("add_to_cart", "remove_from_cart", "purchase"):
            item = item or self.rng.choice(self.items)
        if etype == "purchase" and self.rng.random() > 0.12:  # some purchases have no USD amount
            amount = Decimal(self.rng.randint(100, 250_000)) / Decimal(100)
        self.rows.append(
            {
                "event_id": f"e{len(self.rows):06d}",
                "event_time": t,
                "user_id": user,
                "session_id": session,
                "item_id": item,
                "item_category": self.category.get(item) if item else None,
                "amount_usd": amount,
                "price": amount,
                "quantity": 1 if amount is not None else None,
                "currency": "USD" if amount is not None else None,
                "device_type": self.rng.choice(("mobile", "desktop")),
                "email_hmac": f"{self.rng.getrandbits(128):032x}",
                catalog.EVENT_DATE: t.astimezone(UTC).date(),
                catalog.EVENT_TYPE: etype,
            }
        )

    def session(self, user: str, sid: str, start: dt.datetime, n: int) -> None:
        t = start
        for _ in range(n):
            etype = self.rng.choices(TYPES, WEIGHTS)[0]
            item = None  # a search never has an item; a view or click usually does; commerce always
            if etype in ("page_view", "click") and self.rng.random() < 0.7:
                item = self.rng.choice(self.items)
            self.event(user, sid, t, etype, item)
            t += dt.timedelta(seconds=self.rng.randint(0, 2400), microseconds=self.rng.randint(0, 999_999))

    def generate(self) -> list[dict[str, Any]]:
        n_session = 0
        for offset in range(DAYS):
            if offset in EMPTY_DAYS:
                continue
            day = FIRST_DAY + dt.timedelta(days=offset)
            for _ in range(self.rng.randint(6, 22)):
                n_session += 1
                user = self.rng.choice(self.users)
                # late in the day sometimes, so that sessions cross midnight
                start = _midnight(day) + dt.timedelta(
                    seconds=self.rng.choice((self.rng.randint(0, 86_399), 86_000))
                )
                self.session(user, f"s{n_session:05d}", start, self.rng.choice((1, 1, 2, 3, 5, 8, 13)))
        # users with one event in all the history
        for n in range(5):
            day = FIRST_DAY + dt.timedelta(days=7 * n + 2)
            self.event(
                f"solo{n}", f"solo-s{n}", _midnight(day) + dt.timedelta(hours=n * 5), "page_view", None
            )
        # events exactly at the edges of EDGE_DATE's 7- and 30-day windows, and just outside them
        end = _midnight(EDGE_DATE + dt.timedelta(days=1))
        for days in (7, 30):
            edge = end - dt.timedelta(days=days)
            self.event("edge", f"edge-in-{days}", edge, "purchase", "i001")
            self.event("edge", f"edge-out-{days}", edge - dt.timedelta(microseconds=1), "click", "i002")
        self.event("edge", "edge-last", end - dt.timedelta(microseconds=1), "page_view", "i001")
        # an item that is only ever carted and bought, never viewed
        for k in range(6):
            t = _midnight(FIRST_DAY + dt.timedelta(days=20 + k)) + dt.timedelta(hours=10)
            self.event("buyer", f"nv-{k}", t, "add_to_cart", "never-viewed")
            self.event("buyer", f"nv-{k}", t + dt.timedelta(minutes=3), "purchase", "never-viewed")
        return self.rows


def write_silver(path: str | Path, rows: list[dict[str, Any]]) -> None:
    """Rows → a hive-partitioned Silver table (event_date / event_type), as Silver's writer lays it out."""
    table = pa.Table.from_pylist(rows, schema=SCHEMA)
    pq.write_to_dataset(table, str(path), partition_cols=list(catalog.SILVER.partitions))


def generate(seed: int = 7) -> list[dict[str, Any]]:
    return Generator(seed).generate()
