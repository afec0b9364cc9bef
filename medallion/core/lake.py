"""Reading and writing the lake's partitioned tables: the I/O every batch job shares."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass, field

import pyarrow as pa
import pyspark
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T
from pyspark.sql.pandas.types import to_arrow_schema

from medallion.core import lakefs
from medallion.core.catalog import BATCH, DT, HR, Column, split_top_level
from medallion.core.errors import TerminalError, UsageError


@dataclass
class StageResult:
    """What a batch stage did; ``input = output + dlq + dropped`` must hold."""

    stage: str
    run_id: str
    dates: list[str] = field(default_factory=list)
    input: int = 0
    output: int = 0
    dlq: int = 0
    dropped: int = 0
    seconds: float = 0.0


_SIMPLE_TYPES: dict[str, T.DataType] = {
    "string": T.StringType(),
    "int": T.IntegerType(),
    "long": T.LongType(),
    "bigint": T.LongType(),
    "double": T.DoubleType(),
    "float": T.FloatType(),
    "boolean": T.BooleanType(),
    "timestamp": T.TimestampType(),
    "date": T.DateType(),
}


def spark_type(text: str) -> T.DataType:
    """A catalogue type string (``long``, ``decimal(18,4)``, ``array<string>``, ``struct<a:int, b:string>``)
    as a Spark type, parsed here: Spark's own DDL parser needs a running session."""
    text = text.strip()
    if text in _SIMPLE_TYPES:
        return _SIMPLE_TYPES[text]
    if text.startswith("decimal(") and text.endswith(")"):
        precision, scale = (int(x) for x in text[len("decimal(") : -1].split(","))
        return T.DecimalType(precision, scale)
    if text.startswith("array<") and text.endswith(">"):
        return T.ArrayType(spark_type(text[len("array<") : -1]))
    if text.startswith("struct<") and text.endswith(">"):
        fields = []
        for member in split_top_level(text[len("struct<") : -1]):
            name, _, member_type = member.partition(":")
            fields.append(T.StructField(name.strip(), spark_type(member_type)))
        return T.StructType(fields)
    raise ValueError(f"catalogue type {text!r} is not one medallion knows")


def spark_schema(columns: tuple[Column, ...]) -> T.StructType:
    """Catalogue columns as a Spark schema (all nullable)."""
    return T.StructType([T.StructField(c.name, spark_type(c.type)) for c in columns])


SPARK_ROW_METADATA = "org.apache.spark.sql.parquet.row.metadata"
"""The footer key where Spark keeps a data file's Spark schema (JSON), and reads its types from."""


def arrow_schema(columns: tuple[Column, ...], never_null: tuple[str, ...] = ()) -> pa.Schema:
    """Catalogue columns as the Arrow schema of a data file Spark would write for them (timestamps in UTC),
    with the footer metadata Spark writes and reads back: its own schema as JSON (so a reader gets the
    declared types), and its version (so Spark reads dates and times as written, without a rebase).
    Columns are nullable but ``never_null`` (Spark writes a column it knows is never null, a literal or
    the clock, as required)."""
    schema = spark_schema(columns)
    for name in never_null:
        schema[name].nullable = False
    metadata = {
        "org.apache.spark.version": pyspark.__version__,
        SPARK_ROW_METADATA: json.dumps(schema.jsonValue(), separators=(",", ":")),
    }
    return to_arrow_schema(schema, timezone="UTC").with_metadata(metadata)


def require_columns(df: DataFrame | pa.Table, required: tuple[str, ...], stage: str) -> None:
    """Fail at a stage boundary with both the missing and the present columns named (a Spark DataFrame, or
    an Arrow table on the driver)."""
    present = df.column_names if isinstance(df, pa.Table) else df.columns
    missing = [c for c in required if c not in present]
    if missing:
        raise TerminalError(
            f"{stage} input is missing columns {missing}; it has {sorted(present)}. "
            f"Check that the input path holds {stage}'s input layer."
        )


def read_dates(
    spark: SparkSession,
    path: str,
    date_column: str,
    start: dt.date,
    end: dt.date,
    what: str,
    columns: Sequence[Column] = (),
) -> DataFrame:
    """Rows of a date-partitioned table with ``start <= date_column <= end``; a clear error if absent.

    With the table's catalogue ``columns``, files are read as the catalogue declares them rather than as
    one file says: files written before a column was widened (Silver's ``quantity``, once an int) or
    added read as today's type (or null), so one stage reads across an upgrade. Partition columns are
    found from the folders as before."""
    if not lakefs.exists(path):
        raise TerminalError(f"No {what} data at {path}. Run the stage that writes it first.")
    reader = spark.read.option("basePath", path)
    if columns:
        reader = reader.schema(", ".join(f"`{c.name}` {c.type}" for c in columns))
    df = reader.parquet(path)
    return df.where(F.col(date_column).between(F.lit(start), F.lit(end)))


def write_partitions(df: DataFrame, path: str, partition_by: Sequence[str]) -> None:
    """Dynamic partition overwrite: the partitions in ``df`` are replaced, all others are left alone."""
    df.write.mode("overwrite").partitionBy(*partition_by).parquet(path)


def date_range(start: dt.date, end: dt.date) -> list[dt.date]:
    """Every date from ``start`` to ``end``, both included; dates out of order are a usage error (exit 2)."""

    if end < start:
        raise UsageError(f"--end-date {end} is before --start-date {start}: give the earlier date first.")
    return [start + dt.timedelta(days=i) for i in range((end - start).days + 1)]


def bronze_batches(path: str) -> dict[str, set[int]]:
    """``{dt: {batch ids}}`` from Bronze's directory names, without reading data or starting Spark."""
    out: dict[str, set[int]] = {}
    for day in lakefs.list_partitions(path, DT):
        for hour in lakefs.list_partitions(lakefs.join(path, f"{DT}={day}"), HR):
            batches = lakefs.list_partitions(lakefs.join(path, f"{DT}={day}", f"{HR}={hour}"), BATCH)
            out.setdefault(day, set()).update(int(b) for b in batches)
    return out


def remove_partitions(path: str, column: str, values: Sequence[str]) -> list[str]:
    """Delete the ``column=value`` partitions of a table for ``values`` (those that exist); their names.

    Dynamic partition overwrite replaces only the partitions a write produces: a partition that should
    now be empty has to be removed, or a re-run would leave its old rows behind.
    """
    removed = []
    for value in values:
        removed += [d for d in lakefs.remove_dirs(path, f"{column}={value}") if d == f"{column}={value}"]
    return removed
