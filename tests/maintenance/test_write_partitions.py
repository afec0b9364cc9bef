"""`files.write_partitions`: a table's partitions written by pyarrow read in Spark exactly as if Spark had
written them (folders, types, rows, footer), and a second write of a partition replaces the first."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from medallion.core.catalog import columns
from medallion.core.lake import SPARK_ROW_METADATA, arrow_schema, spark_schema
from medallion.maintenance import files

COLUMNS = columns(
    "id string, at timestamp, amount double, n long, small int, tags array<string>, "
    "geo struct<country:string, lat:double>"
)
PARTS = ("day", "label", "batch")
UTC = dt.UTC


def _rows() -> list[dict[str, Any]]:
    at = dt.datetime(2026, 3, 29, 1, 30, 15, 123456, tzinfo=UTC)
    return [
        {"id": "a", "at": at, "amount": 1.5, "n": 2**40, "small": 3, "tags": ["x", None],
         "geo": {"country": "FR", "lat": 48.8}, "day": "2026-03-29", "label": "plain", "batch": 7},
        {"id": "b", "at": None, "amount": None, "n": None, "small": None, "tags": None, "geo": None,
         "day": "2026-03-29", "label": "a/b:c=d%e", "batch": 7},
        {"id": "c", "at": at + dt.timedelta(days=1), "amount": -0.0, "n": -1, "small": -2, "tags": [],
         "geo": {"country": None, "lat": None}, "day": "2026-03-30", "label": "plain", "batch": 7},
    ]  # fmt: skip


def _table(rows: list[dict[str, Any]]) -> pa.Table:
    schema = arrow_schema(COLUMNS)
    for name, kind in (("day", pa.string()), ("label", pa.string()), ("batch", pa.int64())):
        schema = schema.append(pa.field(name, kind))
    return pa.Table.from_pylist(rows, schema=schema)


def test_spark_reads_what_pyarrow_wrote_as_what_spark_writes(spark: Any, tmp_path: Path) -> None:
    ours, theirs = tmp_path / "ours", tmp_path / "theirs"
    table = _table(_rows())
    written = files.write_partitions(table, str(ours), PARTS, "part-00000.c000.snappy.parquet")
    ddl = ", ".join(f"`{c.name}` {c.type}" for c in COLUMNS) + ", day string, label string, batch long"
    spark.createDataFrame(table.to_pylist(), ddl).write.partitionBy(*PARTS).parquet(str(theirs))

    def folders(root: Path) -> set[str]:
        return {str(p.parent.relative_to(root)) for p in root.rglob("*.parquet")}

    assert folders(ours) == folders(theirs) == set(written)
    assert "day=2026-03-29/label=a%2Fb%3Ac%3Dd%25e/batch=7" in written
    a, b = spark.read.parquet(str(ours)), spark.read.parquet(str(theirs))
    assert a.schema == b.schema
    assert sorted(a.collect()) == sorted(b.collect())
    assert {r.label for r in a.collect()} == {"plain", "a/b:c=d%e"}
    ours_file = pq.ParquetFile(next(ours.rglob("*.parquet")))
    theirs_file = pq.ParquetFile(next(theirs.rglob("*.parquet")))
    assert ours_file.schema_arrow.equals(theirs_file.schema_arrow, check_metadata=False)
    key = SPARK_ROW_METADATA.encode()
    assert ours_file.schema_arrow.metadata[key] == theirs_file.schema_arrow.metadata[key]
    assert a.schema == spark_schema(COLUMNS).add("day", "date").add("label", "string").add("batch", "integer")


def test_a_second_write_replaces_its_partitions_and_leaves_the_others(tmp_path: Path) -> None:
    root, name = tmp_path / "t", "part-00000.c000.snappy.parquet"
    files.write_partitions(_table(_rows()), str(root), PARTS, name)
    again = root / "day=2026-03-29" / "label=plain" / "batch=7"
    (again / "part-00000-an-earlier-writer.c000.snappy.parquet").write_bytes(b"stale")
    (again / ".part-00000-an-earlier-writer.c000.snappy.parquet.crc").write_bytes(b"stale")
    (again / ".part-00000.c000.snappy.parquet.0123.tmp").write_bytes(b"a killed write")
    replay = [dict(_rows()[0], id="a2")]
    assert files.write_partitions(_table(replay), str(root), PARTS, name) == [str(again.relative_to(root))]
    assert sorted(p.name for p in again.iterdir()) == [name]
    assert pq.read_table(again / name).column("id").to_pylist() == ["a2"]
    untouched = pq.read_table(root / "day=2026-03-30" / "label=plain" / "batch=7" / name)
    assert untouched.column("id").to_pylist() == ["c"]
