"""The dead-letter record every stage writes, and the one writer.

A DLQ row says where the bad input came from (Kafka coordinates or the input file/partition), what it was
(key and payload, PII-scrubbed), and why it was rejected (error class, message, every failed rule).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from medallion.core.catalog import DLQ_COLUMNS
from medallion.core.lake import spark_schema, write_partitions

DLQ_SCHEMA = spark_schema(DLQ_COLUMNS)
"""Every stage's DLQ record (the columns in `catalog.DLQ_COLUMNS`)."""


def as_dlq_records(stage: str, run_id: str, keep: Sequence[str] = ()) -> Callable[[DataFrame], DataFrame]:
    """Shape rejected rows into DLQ records: missing source columns become nulls, stage/run/time are set.

    The input must carry ``error_class``, ``error_message`` and ``failed_rules``; ``keep`` names extra
    columns (partition columns) to carry along.
    """

    def _(df: DataFrame) -> DataFrame:
        present = set(df.columns)
        fixed: dict[str, Column] = {
            "stage": F.lit(stage),
            "run_id": F.lit(run_id),
            "failed_at": F.current_timestamp(),
        }
        cols = [
            (fixed[f.name] if f.name in fixed else F.col(f.name) if f.name in present else F.lit(None))
            .cast(f.dataType)
            .alias(f.name)
            for f in DLQ_SCHEMA.fields
        ]
        return df.select(*cols, *keep)

    return _


def write_dlq(df: DataFrame, path: str, partition_by: Sequence[str]) -> None:
    """Write DLQ records with dynamic partition overwrite, so a re-run replaces what it wrote before."""
    write_partitions(df, path, partition_by)
