from __future__ import annotations

from decimal import Decimal
from typing import Any

from medallion.silver.transforms import dedupe_events, with_amounts, with_item_attributes, with_usd_amount

EVENTS = (
    "event_id string, source_topic string, source_partition int, source_offset long, item_id string, "
    "price decimal(18,4), quantity int, currency string"
)


def test_dedupe_keeps_the_first_written_copy_deterministically(spark: Any) -> None:
    rows = [
        ("e1", "t", 1, 9, "i1", None, None, None),
        ("e1", "t", 0, 50, "i2", None, None, None),
        ("e2", "t", 0, 3, "i1", None, None, None),
    ]
    out = spark.createDataFrame(rows, EVENTS).transform(dedupe_events)
    assert sorted((r.event_id, r.source_partition, r.source_offset) for r in out.collect()) == [
        ("e1", 0, 50),
        ("e2", 0, 3),
    ]


def test_amounts_in_usd_and_item_attributes(spark: Any) -> None:
    rows = [
        ("e1", "t", 0, 1, "i1", Decimal("10.00"), 3, "EUR"),
        ("e2", "t", 0, 2, "i9", Decimal("5.00"), 1, "USD"),
        ("e3", "t", 0, 3, None, None, None, None),
    ]
    rates = spark.createDataFrame([("EUR", 1.1), ("USD", 1.0)], "currency string, rate_to_usd double")
    items = spark.createDataFrame([("i1", "books", "Acme")], "item_id string, category string, brand string")
    out = (
        spark.createDataFrame(rows, EVENTS)
        .transform(with_amounts)
        .transform(with_usd_amount(rates))
        .transform(with_item_attributes(items))
    )
    got = {r.event_id: (r.amount, r.amount_usd, r.item_category) for r in out.collect()}
    assert got == {
        "e1": (Decimal("30.0000"), Decimal("33.0000"), "books"),
        "e2": (Decimal("5.0000"), Decimal("5.0000"), None),
        "e3": (None, None, None),
    }
    assert out.count() == len(rows)  # a left join on a lookup never adds or drops events
