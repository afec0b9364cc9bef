"""Bronze transforms on a micro-batch's decoded records (``medallion.bronze.records.DECODED_SCHEMA``) as one
Arrow table on the driver, all pure ``Table -> Table``. The per-record work (parse, rules, normalization,
PII) happens before, in `BronzeDecoder`; what is left here is the shape of the two outputs (duplicates
across batches: `bronze.dedup`). The job (``bronze/job.py`` and its pieces) does the streaming I/O.
"""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pyarrow.compute as pc

from medallion.bronze.records import BRONZE_FIELDS
from medallion.core.catalog import BATCH, BRONZE, DT, HR
from medallion.core.lake import arrow_schema, require_columns
from medallion.maintenance.register import ERASED_CLASS

BRONZE_COLUMNS = tuple(f.name for f in BRONZE_FIELDS)
BRONZE_SCHEMA = arrow_schema(BRONZE.columns, never_null=("_ingested_at", "_run_id"))
"""A Bronze data file's schema: the table's columns (no partition columns), with Spark's footer metadata,
exactly as Spark wrote Bronze before the driver did (the lineage columns required), so that `compact`
merges an hour holding files of both."""

_UTC = pa.timestamp("us", tz="UTC")


def valid_events(decoded: pa.Table) -> pa.Table:
    """The Bronze rows of decoded records, with exactly the Bronze table's columns."""
    require_columns(decoded, (*BRONZE_COLUMNS, "error_class"), "bronze")
    return decoded.filter(pc.is_null(decoded.column("error_class"))).select(list(BRONZE_COLUMNS))


def rejected_events(decoded: pa.Table) -> pa.Table:
    """Rejected records with the source columns the DLQ record wants (key and payload already redacted).
    A record of an erased person is no DLQ record: it is counted, and written nowhere."""
    require_columns(decoded, ("_topic", "_partition", "_offset", "key", "payload", *_REJECTION), "bronze")
    classes = decoded.column("error_class")
    rejected = decoded.filter(pc.and_(pc.is_valid(classes), pc.not_equal(classes, ERASED_CLASS)))
    source = {"_topic": "source_topic", "_partition": "source_partition", "_offset": "source_offset"}
    names = [*source, "key", "payload", *_REJECTION]
    return rejected.select(names).rename_columns([source.get(n, n) for n in names])


_REJECTION = ("error_class", "error_message", "failed_rules")


def event_dt(event_time: pa.ChunkedArray | pa.Array) -> pa.ChunkedArray | pa.Array:
    """Bronze's ``dt`` partition value: the event's UTC date, ``YYYY-MM-DD`` (a date's text is ISO's)."""
    return event_time.cast(_UTC).cast(pa.date32()).cast(pa.string())


def with_lineage(bronze: pa.Table, run_id: str, batch_id: int, ingested_at: dt.datetime) -> pa.Table:
    """Ingest metadata and the partition columns: ``dt``/``hr`` of the event time (UTC), and the batch; the
    data columns cast to Bronze's file schema (`BRONZE_SCHEMA`)."""
    n = bronze.num_rows
    event_time = bronze.column("event_time").cast(_UTC)
    lineage = {"_ingested_at": pa.repeat(pa.scalar(ingested_at, _UTC), n), "_run_id": pa.repeat(run_id, n)}
    data = pa.table(
        {
            f.name: bronze.column(f.name) if f.name in bronze.column_names else lineage[f.name]
            for f in BRONZE_SCHEMA
        }
    ).cast(BRONZE_SCHEMA)
    return (
        data.append_column(DT, event_dt(event_time))
        .append_column(HR, pc.hour(event_time).cast(pa.int32()))
        .append_column(BATCH, pa.repeat(pa.scalar(batch_id, pa.int64()), n))
    )
