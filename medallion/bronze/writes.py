"""One micro-batch's two outputs: valid rows into Bronze, rejected records into the DLQ.

The batch comes to the driver whole, as one Arrow table, in the one Spark job that reads Kafka and
decodes (with its valid events' id hashes): the duplicates are dropped there (`bronze.dedup`), the
counts taken, and Bronze written from there by pyarrow, one file per event hour
(`medallion.maintenance.files.write_partitions`), while Spark writes the few rejected records to the DLQ.
So the batch is never cached, joined or shuffled in Spark, and Parquet encoding of Bronze's wide rows
does not wait on a Spark write's fixed costs; the price is that a batch's rows pass through the driver's
memory, which ``ingest.max_offsets_per_trigger`` bounds: the table is about 0.6 KB a record (112 MB for
the benchmark's 200k), and its copies while it is split and written take the peak to about four times that.

Both writes replace the partitions they write, which include the batch id, so a batch replayed after a
crash replaces exactly what its first attempt wrote (exactly-once with the replayable source and the
checkpoint). Bronze is partitioned by the *event* hour: a replay must land in the same directories
(ingest time would move), and Silver reads by event date.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.util import inheritable_thread_target

from medallion.bronze.accounting import BatchMetrics, now_iso
from medallion.bronze.dedup import DedupIndex, with_id_hash
from medallion.bronze.records import PII_BITS
from medallion.bronze.transforms import event_dt, rejected_events, valid_events, with_lineage
from medallion.core.catalog import BATCH, BRONZE, BRONZE_DLQ, DT
from medallion.core.config import Config
from medallion.core.dlq import as_dlq_records, write_dlq
from medallion.maintenance import files
from medallion.maintenance.register import ERASED_CLASS

BRONZE_FILE = "part-00000.c000.snappy.parquet"
"""The name of a batch's one file in each Bronze hour folder (``dt=D/hr=H/batch=N``), the same on a replay."""


def write_batch(
    batch: DataFrame, batch_id: int, *, run_id: str, cfg: Config, dedup: DedupIndex
) -> BatchMetrics:
    """Write one decoded micro-batch to Bronze and the DLQ, less the duplicates ``dedup`` finds; then hold
    the batch's new ids in ``dedup``. Idempotent per batch id."""
    start, started_at = time.perf_counter(), now_iso()
    # The one Spark job: Kafka and decoding run in it, and the whole batch comes to the driver.
    table = with_id_hash(batch).toArrow()
    phases = {"read": round(time.perf_counter() - start, 3)}
    decision = dedup.decide(table, batch_id)
    kept = decision.kept
    reasons, n_valid, dates, pii = _counts(kept.append_column(DT, event_dt(kept.column("event_time"))))
    erased = reasons.pop(ERASED_CLASS, 0)  # records of erased people: counted, written nowhere
    # The two writes run at once: the DLQ's Spark job is mostly fixed cost (a job, a commit), which then
    # overlaps the Bronze write (pyarrow, which lets go of the GIL) instead of following it. The DLQ's
    # thread carries this one's Spark local properties (the query's job group: stopping the query
    # cancels its job).
    writes: dict[str, Callable[[], object]] = {}
    if n_valid:
        bronze = with_lineage(valid_events(kept), run_id, batch_id, dt.datetime.now(dt.UTC))
        writes["bronze"] = lambda: files.write_partitions(
            bronze, BRONZE.path(cfg), BRONZE.partitions, BRONZE_FILE
        )
    if reasons:
        rejected = rejected_events(kept)
        writes["dlq"] = inheritable_thread_target(batch.sparkSession)(
            lambda: write_rejected(
                batch.sparkSession, rejected, batch_id, run_id=run_id, path=BRONZE_DLQ.path(cfg)
            )
        )
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="bronze-write") as pool:
        futures = {name: pool.submit(_timed, write) for name, write in writes.items()}
        phases |= {name: future.result() for name, future in futures.items()}
    held = time.perf_counter()
    dedup.commit(decision)
    phases["dedup"] = round(decision.seconds + time.perf_counter() - held, 3)
    return BatchMetrics(
        batch_id=batch_id,
        bronze=n_valid,
        dlq=sum(reasons.values()),
        duplicates=decision.duplicates,
        ids_held=dedup.held,
        dlq_by_reason=reasons,
        erased=erased,
        pii_scrubbed=pii,
        dates=dates,
        seconds=time.perf_counter() - start,
        started_at=started_at,
        phases=phases,
    )


def _counts(rows: pa.Table) -> tuple[dict[str, int], int, list[str], dict[str, int]]:
    """A batch's rows not dropped as duplicates (`Decision.kept`, with ``dt``: ``error_class``, ``_scrubbed``)
    counted: rejected records by class, valid rows, the Bronze dates they write (``silver --incremental``
    rebuilds them once the batch is committed, without listing Bronze's folders), PII values scrubbed."""
    classes = rows.column("error_class")
    rejected = classes.filter(pc.is_valid(classes)).value_counts().to_pylist()
    reasons = {r["values"]: r["counts"] for r in rejected}
    valid = rows.filter(pc.is_null(classes))
    dates = sorted(d for d in pc.unique(valid.column(DT)).to_pylist() if d is not None)
    scrubbed = pc.fill_null(rows.column("_scrubbed"), 0).to_numpy()
    pii = {n: int(np.count_nonzero(scrubbed & bit)) for n, bit in PII_BITS.items()}
    return reasons, valid.num_rows, dates, pii


def write_rejected(spark: SparkSession, rejected: pa.Table, batch_id: int, *, run_id: str, path: str) -> None:
    """The batch's rejected records (`rejected_events`) into the DLQ, replacing what an earlier attempt of
    this batch wrote."""
    dlq = (
        spark.createDataFrame(rejected)
        .transform(as_dlq_records("bronze", run_id))
        .withColumn(BATCH, F.lit(batch_id).cast("long"))
    )
    write_dlq(dlq, path, BRONZE_DLQ.partitions)


def _timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return round(time.perf_counter() - start, 3)
