"""Reading a date range of a lake table as the catalogue declares it (`medallion.core.lake.read_dates`)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from medallion.core import catalog
from medallion.core.lake import read_dates


def test_files_written_before_a_column_was_widened_read_as_the_catalogue_declares(
    spark: Any, tmp_path: Path
) -> None:
    """Silver's ``quantity`` was an int before it became a long: a lake holds both kinds of file after an
    upgrade, and Gold reads a window across them. Read by one file's schema, Spark refuses the mix."""
    root = tmp_path / "silver"
    for day, kind, big in (("2026-01-01", pa.int32(), 7), ("2026-01-02", pa.int64(), 3_000_000_000)):
        folder = root / f"{catalog.EVENT_DATE}={day}" / f"{catalog.EVENT_TYPE}=purchase"
        folder.mkdir(parents=True)
        table = pa.table({"event_id": [f"e-{day}"], "quantity": pa.array([big], kind)})
        pq.write_table(table, folder / "part-0.parquet")

    df = read_dates(
        spark,
        str(root),
        catalog.EVENT_DATE,
        dt.date(2026, 1, 1),
        dt.date(2026, 1, 2),
        "Silver",
        catalog.SILVER.columns,
    )
    assert dict(df.dtypes)["quantity"] == "bigint" and dict(df.dtypes)[catalog.EVENT_DATE] == "date"
    rows = {r["event_id"]: r for r in df.collect()}
    assert {e: r["quantity"] for e, r in rows.items()} == {"e-2026-01-01": 7, "e-2026-01-02": 3_000_000_000}
    assert all(r["amount_usd"] is None for r in rows.values())  # declared, absent from these files
    assert [c for c in df.columns if c not in {c.name for c in catalog.SILVER.columns}] == [
        catalog.EVENT_DATE,
        catalog.EVENT_TYPE,
    ]
