"""Reading and writing the lake's partitioned tables: the I/O every batch job shares."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from medallion import lakefs
from medallion.errors import TerminalError


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


def require_columns(df: DataFrame, required: tuple[str, ...], stage: str) -> None:
    """Fail at a stage boundary with both the missing and the present columns named."""
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise TerminalError(
            f"{stage} input is missing columns {missing}; it has {sorted(df.columns)}. "
            f"Check that the input path holds {stage}'s input layer."
        )


def read_dates(
    spark: SparkSession, path: str, date_column: str, start: dt.date, end: dt.date, what: str
) -> DataFrame:
    """Rows of a date-partitioned table with ``start <= date_column <= end``; a clear error if absent."""
    if not lakefs.exists(path):
        raise TerminalError(f"No {what} data at {path}. Run the stage that writes it first.")
    df = spark.read.option("basePath", path).parquet(path)
    return df.where(F.col(date_column).between(F.lit(start), F.lit(end)))


def write_partitions(df: DataFrame, path: str, partition_by: Sequence[str]) -> None:
    """Dynamic partition overwrite: the partitions in ``df`` are replaced, all others are left alone."""
    df.write.mode("overwrite").partitionBy(*partition_by).parquet(path)


def date_range(start: dt.date, end: dt.date) -> list[dt.date]:
    """Every date from ``start`` to ``end``, both included; dates out of order are a usage error (exit 2)."""
    from medallion.errors import UsageError

    if end < start:
        raise UsageError(f"--end-date {end} is before --start-date {start}: give the earlier date first.")
    return [start + dt.timedelta(days=i) for i in range((end - start).days + 1)]


def bronze_batches(path: str) -> dict[str, set[int]]:
    """``{dt: {batch ids}}`` from Bronze's directory names, without reading data or starting Spark."""
    out: dict[str, set[int]] = {}
    for day in lakefs.list_partitions(path, "dt"):
        for hour in lakefs.list_partitions(lakefs.join(path, f"dt={day}"), "hr"):
            batches = lakefs.list_partitions(lakefs.join(path, f"dt={day}", f"hr={hour}"), "batch")
            out.setdefault(day, set()).update(int(b) for b in batches)
    return out
