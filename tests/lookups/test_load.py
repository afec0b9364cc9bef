"""``medallion lookups load``: a user's reference files checked against the catalogue, stored whole or not at
all, recorded in the ledger; currency rates keep their history. No Spark: plain files and pyarrow."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from medallion import lookups
from medallion.core import catalog
from medallion.core.config import Config
from medallion.core.ledger import Ledger
from medallion.lookups.tables import LookupFileError, read_current
from medallion.produce.lookups import write_lookups

ITEMS_CSV = (
    "item_id,category,brand,base_price_usd,popularity_rank\nSKU-1,shoes,Acme,19.9,1\nSKU 2/ä,hats,,5,2\n"
)


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def jsonl(rows: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(r) + "\n" for r in rows)


def test_each_format_loads_typed_as_the_catalogue_says(
    tmp_path: Path, make_config: Callable[..., Config]
) -> None:
    cfg = make_config()
    stored = lookups.load(cfg, "items", write(tmp_path, "items.csv", ITEMS_CSV))
    assert (stored.rows, stored.loaded) == (2, 2)
    items = read_current(cfg.lake.root, catalog.ITEMS)
    assert items is not None
    assert items.to_pylist()[1] == {
        "item_id": "SKU 2/ä",
        "category": "hats",
        "brand": None,  # an empty CSV field is a null
        "base_price_usd": 5.0,
        "popularity_rank": 2,
    }
    assert items.schema.field("popularity_rank").type == pa.int32()

    users = [
        {"user_id": "5f0c6d3e-8a4b-4c1e-9f2a-0b1c2d3e4f50", "signup_date": "2025-01-31", "country": "DE"},
        {"user_id": "42", "signup_date": "2024-12-01", "country": "FR"},
    ]
    for row in users:
        row |= {"city": None, "segment": "regular", "currency": "EUR"}
    parquet = tmp_path / "users.parquet"
    pq.write_table(pa.Table.from_pylist(users), parquet)
    lookups.load(cfg, "users", str(parquet))
    stored_users = read_current(cfg.lake.root, catalog.USERS)
    assert stored_users is not None and stored_users.column("signup_date").to_pylist() == [
        date(2025, 1, 31),
        date(2024, 12, 1),
    ]

    record = Ledger(cfg.lake.root).last(lookups.STAGE)
    assert record is not None and record.inputs["table"] == "lookup.users"
    assert record.counts == {"input": 2, "output": 2}


@pytest.mark.parametrize(
    ("text", "named"),
    [
        (
            ITEMS_CSV + "SKU-3,toys,Acme,cheap,3\n",
            "row 3 (line 4), column base_price_usd: 'cheap' is not a number",
        ),
        (
            ITEMS_CSV + "SKU-1,toys,Acme,1,3\n",
            "row 3 (line 4) repeats the key item_id=SKU-1 of row 1 (line 2)",
        ),
        (ITEMS_CSV + ",toys,Acme,1,3\n", "row 3 (line 4), column item_id: a value is required"),
        (ITEMS_CSV + "SKU\t4,toys,Acme,1,3\n", "column item_id: 'SKU\\t4' is not an id"),
        (ITEMS_CSV + "SKU-5,toys,Acme,1,2.5\n", "column popularity_rank: '2.5' is not an integer"),
        (
            ITEMS_CSV.replace("brand,", "brnad,"),
            "lacks brand and has columns the catalogue does not declare: brnad",
        ),
    ],
)
def test_a_bad_file_names_row_and_column_and_leaves_the_table_as_it_was(
    tmp_path: Path, make_config: Callable[..., Config], text: str, named: str
) -> None:
    cfg = make_config()
    lookups.load(cfg, "items", write(tmp_path, "good.csv", ITEMS_CSV))
    before = (Path(cfg.lake.root) / "lookups" / "items" / "part-00000.parquet").read_bytes()
    with pytest.raises(LookupFileError) as info:
        lookups.load(cfg, "items", write(tmp_path, "bad.csv", text))
    assert named in str(info.value)
    assert (Path(cfg.lake.root) / "lookups" / "items" / "part-00000.parquet").read_bytes() == before
    assert sorted(p.name for p in (Path(cfg.lake.root) / "lookups" / "items").iterdir()) == [
        "part-00000.parquet"
    ]
    failed = Ledger(cfg.lake.root).last(lookups.STAGE, outcome="failed")
    assert failed is not None and named in (failed.error or "")


def test_currency_rates_keep_their_history(tmp_path: Path, make_config: Callable[..., Config]) -> None:
    cfg = make_config()
    december = [
        {"currency": "EUR", "rate_to_usd": 1.05, "as_of_date": "2026-12-01"},
        {"currency": "GBP", "rate_to_usd": 1.25, "as_of_date": "2026-12-01"},
    ]
    lookups.load(cfg, "currency_rates", write(tmp_path, "dec.jsonl", jsonl(december)))
    january = [
        {"currency": "EUR", "rate_to_usd": 1.07, "as_of_date": "2027-01-01"},
        {"currency": "GBP", "rate_to_usd": 1.26, "as_of_date": "2026-12-01"},  # a correction
    ]
    stored = lookups.load(cfg, "currency_rates", write(tmp_path, "jan.jsonl", jsonl(january)))
    assert (stored.rows, stored.kept, stored.corrected) == (3, 1, 1)
    rates = read_current(cfg.lake.root, catalog.CURRENCY_RATES)
    assert rates is not None
    assert {(r["currency"], str(r["as_of_date"])): r["rate_to_usd"] for r in rates.to_pylist()} == {
        ("EUR", "2026-12-01"): 1.05,
        ("EUR", "2027-01-01"): 1.07,
        ("GBP", "2026-12-01"): 1.26,
    }
    replaced = lookups.load(
        cfg, "currency_rates", write(tmp_path, "jan2.jsonl", jsonl(january)), replace=True
    )
    assert (replaced.rows, replaced.kept) == (2, 0)
    with pytest.raises(LookupFileError, match="column rate_to_usd: -1.0 is not a positive rate"):
        bad = [{"currency": "EUR", "rate_to_usd": -1, "as_of_date": "2027-02-01"}]
        lookups.load(cfg, "currency_rates", write(tmp_path, "bad.jsonl", jsonl(bad)))

    states = {s.table.short_name: s for s in lookups.describe(cfg)}
    assert (
        states["currency_rates"].rows == 2
        and states["currency_rates"].history == "2 dates, 2026-12-01 to 2027-01-01"
    )
    assert states["items"].rows is None and states["items"].last_load is None


def test_produce_adds_its_rates_to_the_earlier_days(lake: Path) -> None:
    write_lookups(str(lake), seed=1, users=5, items=10, as_of=date(2026, 11, 1))
    write_lookups(str(lake), seed=1, users=5, items=10, as_of=date(2026, 11, 3))
    rates = read_current(str(lake), catalog.CURRENCY_RATES)
    assert rates is not None
    assert sorted(set(rates.column("as_of_date").to_pylist())) == [date(2026, 11, 1), date(2026, 11, 3)]


def test_silver_without_a_lookup_names_the_command_and_the_file_shape() -> None:
    message = lookups.missing_message(catalog.ITEMS, "/lake/lookups/items")
    assert "medallion lookups load items FILE" in message
    assert (
        "item_id (string), category (string), brand (string)" in message and "one row per item_id" in message
    )


def test_an_id_that_is_an_email_is_stored_as_bronze_stores_it(
    tmp_path: Path, make_config: Callable[..., Config]
) -> None:
    """A users table keyed by email joins the events that carry the same id, and holds no email in clear."""
    from medallion.bronze.records import BronzeDecoder
    from medallion.pii.keys import pii_key
    from tests.fixtures import records as kafka_records

    cfg = make_config()
    row = {"signup_date": "2025-01-01", "country": "DE", "city": None, "segment": "new", "currency": "EUR"}
    users = [{"user_id": "Zoe@Example.com", **row}, {"user_id": "u-7", **row}]
    lookups.load(cfg, "users", write(tmp_path, "users.jsonl", jsonl(users)))
    stored = read_current(cfg.lake.root, catalog.USERS)
    assert stored is not None
    hashed, plain = stored.column("user_id").to_pylist()
    assert plain == "u-7" and "@" not in hashed and len(hashed) == 64

    event = {
        "schema_version": 1,
        "event_id": "e-1",
        "event_type": "page_view",
        "event_time": "2025-11-25T11:00:00.000Z",
        "user_id": "Zoe@Example.com",
        "session_id": "s-1",
    }
    batch = kafka_records.kafka_batch([json.dumps(event).encode()], timestamp_us=1_764_072_000_000_000)
    assert BronzeDecoder(pii_key(cfg))(batch).to_pylist()[0]["user_id"] == hashed

    twice = [{"user_id": "zoe@example.com", **row}, {"user_id": "ZOE@example.com", **row}]
    with pytest.raises(LookupFileError, match="rows 1 and 2 hold the same person's user_id"):
        lookups.load(cfg, "users", write(tmp_path, "twice.jsonl", jsonl(twice)))
