"""`compact` on a Bronze the real ingest wrote (embedded broker, Spark): Spark reads the same schema and
rows before and after, a later ingest adds its batches beside the merged folders, and
`silver --incremental` still sees every event exactly once."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from medallion.core import catalog
from medallion.maintenance import jobs
from medallion.maintenance.files import data_files
from medallion.operations import pipeline
from medallion.operations.status import table_status


def spark_rows(spark: Any, path: str) -> Any:
    """Bronze as Spark reads it, without the batch id (compaction merges batch folders)."""
    return spark.read.parquet(path).drop(catalog.BATCH)


def same_rows(a: Any, b: Any) -> bool:
    """Equal as multisets of rows (nested structs included)."""
    return a.count() == b.count() and a.exceptAll(b).count() == 0 and b.exceptAll(a).count() == 0


@pytest.mark.integration
def test_compacted_bronze_reads_the_same_and_later_stages_see_every_event_once(
    spark: Any, kafka_broker: Any, make_topic: Any, make_config: Any, lake: Path
) -> None:
    topic = make_topic(partitions=2)
    cfg = make_config(
        **{
            "kafka.bootstrap_servers": kafka_broker.bootstrap,
            "kafka.topic": topic,
            "ingest.max_offsets_per_trigger": 250,
            "maintenance.compact_grace_hours": 0,
            "produce.users": 40,
        }
    )
    start = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=3)
    pipeline.produce(cfg, count=900, seed=5, bad_ratio=0.05, days=2, start_date=start)
    first = pipeline.ingest(cfg)
    assert len(first.batches) >= 3  # several micro-batches, so several files per hour
    pipeline.silver(cfg, incremental=True)

    bronze, dlq = catalog.BRONZE.path(cfg), catalog.BRONZE_DLQ.path(cfg)
    # Materialized now: a DataFrame keeps the file list it was planned with, which compaction replaces.
    before = spark_rows(spark, bronze).localCheckpoint()
    schema_before = spark.read.parquet(bronze).schema
    dlq_before = spark.read.parquet(dlq).drop(catalog.BATCH).localCheckpoint()
    files_before = len(data_files(bronze))
    status_before = table_status(cfg, catalog.BRONZE, dt.datetime.now(dt.UTC))

    done = jobs.compact(cfg, "bronze")
    jobs.compact(cfg, "dlq")
    assert done.compacted and len(data_files(bronze)) < files_before
    assert spark.read.parquet(bronze).schema == schema_before  # Spark's types, from the kept footer metadata
    assert same_rows(spark_rows(spark, bronze), before)
    assert same_rows(spark.read.parquet(dlq).drop(catalog.BATCH), dlq_before)
    assert jobs.compact(cfg, "bronze").compacted == []
    status_after = table_status(cfg, catalog.BRONZE, dt.datetime.now(dt.UTC))  # `status` reads it alike
    assert (status_after.rows, status_after.newest) == (status_before.rows, status_before.newest)

    # The ingest goes on: nothing to replay, then new events of the compacted (old) dates and of today.
    assert pipeline.ingest(cfg).total("input") == 0
    pipeline.produce(cfg, count=300, seed=6, days=4, start_date=start, write_lookups=False)
    later = pipeline.ingest(cfg)
    assert later.total("input") == 300 and all(b.reconciled for b in later.batches)
    ids = [r.event_id for r in spark.read.parquet(bronze).select("event_id").collect()]
    assert len(ids) == len(set(ids)) == before.count() + later.total("bronze")

    # Silver's incremental plan finds the dates the new batches wrote, compacted ones included, and
    # rebuilds them from every Bronze row of those dates, each once.
    silver = pipeline.silver(cfg, incremental=True)
    written = sorted({d for b in later.batches for d in b.dates})
    # today's events exist only once today has begun long enough (in the first minutes after midnight
    # UTC the generator's events of today are still in the future): the three compacted dates always
    assert written[:3] == [(start + dt.timedelta(n)).isoformat() for n in range(3)]
    assert [str(d) for d in silver.dates] == written
    assert silver.input == len(ids) == silver.output + silver.dlq + silver.dropped
    rows = pq.read_table(catalog.SILVER.path(cfg), columns=["event_id"]).column(0).to_pylist()
    assert len(rows) == len(set(rows)) == silver.output and set(rows) <= set(ids)
