from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from medallion.core import catalog
from medallion.silver.job import repeated_copies
from medallion.silver.lookups import JOINS, joined
from medallion.silver.transforms import (
    DUPLICATE,
    mark_duplicates,
    rates_in_force,
    with_amounts,
    with_usd_amount,
)

EVENTS = (
    "event_id string, source_topic string, source_partition int, source_offset long, item_id string, "
    "price decimal(18,4), quantity int, currency string"
)
COPIES = (
    "event_id string, source_topic string, source_partition int, source_offset long, _bronze_file string, "
    "_bronze_row long"
)


def test_dedupe_keeps_the_first_written_copy_deterministically(spark: Any) -> None:
    rows = [
        ("e1", "t", 1, 9, "f1", 0),
        ("e1", "t", 0, 50, "f1", 1),  # a higher offset, but on a lower partition: first
        ("e2", "t", 0, 3, "f1", 2),
        ("e3", "t_b", 0, 5, "f1", 3),
        ("e3", "t_a", 0, 5, "f2", 0),  # the same coordinates on two topics: t_a's is first
        ("e4", "t", 2, 7, "f2", 4),
        ("e4", "t", 2, 7, "f1", 9),  # the same Kafka record in two Bronze files: the first file's
        ("e4", "t", 2, 7, "f1", 8),  # ... and in one file twice: its first row
        ("e4", "t", 2, 8, "f0", 0),
        (None, "t", 0, 1, "f1", 5),  # rows without an id: one of them is the event, the others copies
        (None, "t", 0, 0, "f1", 6),
    ]
    df = spark.createDataFrame(rows, COPIES)
    expected = [
        ("e1", 0, 50, "f1", 1, False),
        ("e1", 1, 9, "f1", 0, True),
        ("e2", 0, 3, "f1", 2, False),
        ("e3", 0, 5, "f1", 3, True),
        ("e3", 0, 5, "f2", 0, False),
        ("e4", 2, 7, "f1", 8, False),
        ("e4", 2, 7, "f1", 9, True),
        ("e4", 2, 7, "f2", 4, True),
        ("e4", 2, 8, "f0", 0, True),
        (None, 0, 0, "f1", 6, False),
        (None, 0, 1, "f1", 5, True),
    ]

    def marked(repeated: Any) -> list[tuple[Any, ...]]:
        out = df.transform(mark_duplicates(repeated)).collect()
        assert len(out) == len(rows)
        return sorted(
            (
                (r.event_id, r.source_partition, r.source_offset, r._bronze_file, r._bronze_row, r[DUPLICATE])
                for r in out
            ),
            key=lambda t: (t[0] is None, t),
        )

    # held on the driver and broadcast (the usual case: few repeated ids), or joined as Spark plans it
    def broadcast(frame: Any) -> bool:
        return str(frame._jdf.queryExecution().analyzed().toString()).startswith(
            "ResolvedHint (strategy=broadcast)"
        )

    held = repeated_copies(df)
    assert held is not None and broadcast(held) and marked(held) == expected
    many = repeated_copies(df, limit=2)  # more than the limit: not held
    assert many is not None and not broadcast(many)
    assert many.count() == 4 and marked(many) == expected
    assert repeated_copies(df.where("event_id = 'e2'")) is None  # no id repeats: nothing to join


def test_amounts_in_usd_at_the_rate_in_force_and_item_attributes(spark: Any) -> None:
    d1, d2, d3 = dt.date(2026, 1, 4), dt.date(2026, 1, 5), dt.date(2026, 1, 6)
    rows = [
        ("e1", "t", 0, 1, "i1", Decimal("10.00"), 3, "EUR", d2),
        ("e2", "t", 0, 2, "i9", Decimal("5.00"), 1, "USD", d1),
        ("e3", "t", 0, 3, None, None, None, None, d2),
        ("e4", "t", 0, 4, "i1", Decimal("10.00"), 1, "EUR", d3),  # the newer rate
        ("e5", "t", 0, 5, "i1", Decimal("10.00"), 1, "EUR", d1),  # before any EUR rate: none
        ("e6", "t", 0, 6, "i1", Decimal("10.00"), 1, "GBP", d2),  # no GBP rate at all
    ]
    rates = spark.createDataFrame(
        [("EUR", 1.1, d2), ("EUR", 1.2, d3), ("USD", 1.0, d1)],
        "currency string, rate_to_usd double, as_of_date date",
    )
    items = spark.createDataFrame([("i1", "books", "Acme")], "item_id string, category string, brand string")
    in_force = rates_in_force(rates, d1, d3)
    assert sorted(tuple(r) for r in in_force.collect()) == [
        ("EUR", d2, 1.1),
        ("EUR", d3, 1.2),
        ("USD", d1, 1.0),
        ("USD", d2, 1.0),
        ("USD", d3, 1.0),
    ]
    out = (
        spark.createDataFrame(rows, EVENTS + ", event_date date")
        .transform(with_amounts)
        .transform(with_usd_amount(in_force))
        .transform(joined(next(j for j in JOINS if j.table == catalog.ITEMS), items))
    )
    got = {r.event_id: (r.amount, r.amount_usd, r.item_category) for r in out.collect()}
    assert got == {
        "e1": (Decimal("30.0000"), Decimal("33.0000"), "books"),
        "e2": (Decimal("5.0000"), Decimal("5.0000"), None),
        "e3": (None, None, None),
        "e4": (Decimal("10.0000"), Decimal("12.0000"), "books"),
        "e5": (Decimal("10.0000"), None, "books"),
        "e6": (Decimal("10.0000"), None, "books"),
    }
    assert out.count() == len(rows)  # a left join on a lookup never adds or drops events


def test_a_value_beyond_silvers_type_is_null_never_an_error(spark: Any) -> None:
    """Under ANSI (Spark's default) a plain cast of 3e9 to int, or of 1e15 to decimal(18,4), fails the
    whole job; `fitted` gives null for exactly the values the catalogue's type cannot hold."""
    from medallion.silver.transforms import fitted

    df = spark.createDataFrame(
        [(3e9, 3_000_000_000), (1e15, 1), (99999999999999.0, 2**63 - 1), (None, None)],
        "price double, quantity long",
    )
    got = df.select(fitted(df["price"], "price").alias("p"), fitted(df["quantity"], "quantity").alias("q"))
    assert [(None if r.p is None else str(r.p), r.q) for r in got.collect()] == [
        ("3000000000.0000", 3_000_000_000),
        (None, 1),
        ("99999999999999.0000", 2**63 - 1),
        (None, None),
    ]
    lines = spark.createDataFrame(
        [(Decimal("2.5"), 4), (Decimal("1000000000000"), 10**6), (Decimal("99999999999999"), 2**63 - 1)],
        "price decimal(18,4), quantity long",
    )
    assert [r.amount for r in lines.transform(with_amounts).collect()] == [Decimal("10.0000"), None, None]
