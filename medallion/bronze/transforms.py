"""Bronze transforms on decoded records (``medallion.bronze.records.DECODED_SCHEMA``), all pure
``DataFrame -> DataFrame``. The per-record work (parse, rules, normalization, PII) happens before, in
`BronzeDecoder`; what is left here needs Spark: the shapes of the two outputs (duplicates across
batches: `bronze.dedup`). The job (``bronze/job.py`` and its pieces) does the streaming I/O.
"""

from __future__ import annotations

from collections.abc import Callable

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from medallion.bronze.records import BRONZE_FIELDS
from medallion.core.catalog import BATCH, DT, HR
from medallion.core.lake import require_columns
from medallion.maintenance.register import ERASED_CLASS

BRONZE_COLUMNS = tuple(f.name for f in BRONZE_FIELDS)


def valid_events(df: DataFrame) -> DataFrame:
    """The Bronze rows of decoded records, with exactly the Bronze table's columns."""
    require_columns(df, BRONZE_COLUMNS, "bronze")
    return df.where(F.col("error_class").isNull()).select(*BRONZE_COLUMNS)


def rejected_events(df: DataFrame) -> DataFrame:
    """Rejected records with the source columns the DLQ record wants (key and payload already redacted).
    A record of an erased person is no DLQ record: it is counted, and written nowhere."""
    require_columns(df, ("error_class", "failed_rules", "payload"), "bronze")
    return df.where(F.col("error_class").isNotNull() & (F.col("error_class") != ERASED_CLASS)).select(
        F.col("_topic").alias("source_topic"),
        F.col("_partition").alias("source_partition"),
        F.col("_offset").alias("source_offset"),
        "key",
        "payload",
        "error_class",
        "error_message",
        "failed_rules",
    )


def event_dt() -> Column:
    """Bronze's ``dt`` partition value: the event's UTC date (the session's zone is UTC)."""
    return F.date_format("event_time", "yyyy-MM-dd")


def with_lineage(run_id: str, batch_id: int) -> Callable[[DataFrame], DataFrame]:
    """Ingest metadata and the partition columns: ``dt``/``hr`` of the event time, and the batch."""

    def _(df: DataFrame) -> DataFrame:
        return df.withColumns(
            {
                "_ingested_at": F.current_timestamp(),
                "_run_id": F.lit(run_id),
                DT: event_dt(),
                HR: F.hour("event_time"),
                BATCH: F.lit(batch_id).cast("long"),
            }
        )

    return _
