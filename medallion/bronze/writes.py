"""One micro-batch's two outputs: valid rows into Bronze, rejected records into the DLQ.

Each is written with dynamic partition overwrite into partitions that include the batch id, so a batch
replayed after a crash replaces exactly what its first attempt wrote (exactly-once with the replayable
source and the checkpoint). Bronze is partitioned by the *event* hour: a replay must land in the same
directories (ingest time would move), and Silver reads by event date.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.util import inheritable_thread_target

from medallion.bronze.accounting import BatchMetrics, now_iso
from medallion.bronze.dedup import DedupIndex
from medallion.bronze.records import PII_BITS
from medallion.bronze.transforms import event_dt, rejected_events, valid_events, with_lineage
from medallion.core.catalog import BATCH, BRONZE, BRONZE_DLQ, DT
from medallion.core.config import Config
from medallion.core.dlq import as_dlq_records, write_dlq
from medallion.maintenance.register import ERASED_CLASS


def write_batch(
    batch: DataFrame, batch_id: int, *, run_id: str, cfg: Config, dedup: DedupIndex
) -> BatchMetrics:
    """Write one decoded micro-batch to Bronze and the DLQ, less the duplicates ``dedup`` finds; then hold
    the batch's new ids in ``dedup``. Idempotent per batch id."""
    start, started_at = time.perf_counter(), now_iso()
    batch = batch.persist()
    try:
        # The first job: Kafka and decoding run in it, and it brings what the counts need.
        decision = dedup.decide(batch, batch_id, event_dt().alias(DT), "_scrubbed")
        phases = {"read": round(time.perf_counter() - start, 3)}
        checked = decision.apply(batch)
        reasons, n_valid, dates, pii = _counts(decision.kept)
        erased = reasons.pop(ERASED_CLASS, 0)  # records of erased people: counted, written nowhere
        # The two writes run as concurrent Spark jobs: the DLQ's is mostly fixed cost (a job, a
        # commit), which then overlaps the Bronze write instead of following it. Each thread carries
        # this one's Spark local properties (the query's job group: stopping the query cancels them).
        writes = {}
        if n_valid:
            writes["bronze"] = lambda: write_bronze(checked, batch_id, run_id=run_id, path=BRONZE.path(cfg))
        if reasons:
            writes["dlq"] = lambda: write_rejected(
                checked, batch_id, run_id=run_id, path=BRONZE_DLQ.path(cfg)
            )
        with ThreadPoolExecutor(max_workers=2, thread_name_prefix="bronze-write") as pool:
            # One wrapper per write: each copies the properties once, so the threads never share them.
            futures = {
                name: pool.submit(inheritable_thread_target(checked.sparkSession)(_timed), write)
                for name, write in writes.items()
            }
            phases |= {name: future.result() for name, future in futures.items()}
        held = time.perf_counter()
        dedup.commit(decision)
        phases["dedup"] = round(decision.seconds + time.perf_counter() - held, 3)
    finally:
        batch.unpersist()
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
    """A batch's rows not dropped as duplicates (`Decision.kept`: ``error_class``, ``dt``, ``_scrubbed``)
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


def write_bronze(checked: DataFrame, batch_id: int, *, run_id: str, path: str) -> None:
    """The batch's valid rows into Bronze, replacing what an earlier attempt of this batch wrote."""
    bronze = valid_events(checked).transform(with_lineage(run_id, batch_id))
    # One file per hour directory and batch, not one per Kafka partition and hour: a historical backlog
    # spans many hours, and small files are what slows every later reader.
    hour_columns = [c for c in BRONZE.partitions if c != BATCH]
    bronze.repartition(*hour_columns).write.mode("overwrite").partitionBy(*BRONZE.partitions).parquet(path)


def write_rejected(checked: DataFrame, batch_id: int, *, run_id: str, path: str) -> None:
    """The batch's rejected records into the DLQ, replacing what an earlier attempt of this batch wrote."""
    dlq = (
        rejected_events(checked)
        .transform(as_dlq_records("bronze", run_id))
        .withColumn(BATCH, F.lit(batch_id).cast("long"))
    )
    write_dlq(dlq, path, BRONZE_DLQ.partitions)


def _timed(fn: Callable[[], None]) -> float:
    start = time.perf_counter()
    fn()
    return round(time.perf_counter() - start, 3)
