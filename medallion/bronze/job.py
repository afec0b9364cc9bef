"""Kafka → Bronze: one streaming query, each micro-batch split into Bronze rows and DLQ rows.

Exactly-once for both outputs: the source is replayable (offset ranges in the checkpoint), and each output
is written with dynamic partition overwrite into partitions that include the batch id, so a batch replayed
after a crash replaces exactly what its first attempt wrote. Partitions are ``dt``/``hr`` of the *event*
time: a replay must land in the same directories (ingest time would move), and Silver reads by event date.

The streaming plan reads the topic through the Kafka source with Bronze's decoder (parse, rules,
normalization and PII scrubbing, per record, in the source's Python reader: ``bronze/records.py``) and
drops duplicate events (Spark's ``dropDuplicatesWithinWatermark``, its state in the checkpoint);
``foreachBatch`` persists the batch once and writes both outputs. Per-batch counts are completed from
Spark's progress report (input rows, duplicates dropped) and recorded in the ledger, so
``input = bronze + dlq + duplicates`` is checked for every batch.
"""

from __future__ import annotations

import json
import signal
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from typing import Any

from loguru import logger
from pyspark.errors import StreamingQueryException
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.util import inheritable_thread_target

from medallion import lakefs
from medallion.bronze.records import PII_BITS, BronzeDecoder, BronzeRules
from medallion.bronze.transforms import drop_duplicate_events, rejected_events, valid_events, with_lineage
from medallion.config import Config
from medallion.dlq import as_dlq_records, write_dlq
from medallion.errors import ConfigError, TerminalError
from medallion.kafka.source import register, source_error
from medallion.ledger import Ledger, RunRecord

BRONZE_PARTITIONS = ("dt", "hr", "batch")
DLQ_PARTITIONS = ("batch",)


@dataclass
class BatchMetrics:
    batch_id: int
    bronze: int
    dlq: int
    dlq_by_reason: dict[str, int]
    pii_scrubbed: dict[str, int]
    seconds: float
    started_at: str = ""
    phases: dict[str, float] = field(default_factory=dict)  # seconds: read (+decode, dedup), bronze, dlq
    input: int = 0  # from Spark's progress report: records read from Kafka in this batch
    duplicates: int = 0
    lag: int | None = None

    @property
    def rows_per_s(self) -> float:
        return self.input / self.seconds if self.seconds else 0.0

    @property
    def reconciled(self) -> bool:
        return self.input == self.bronze + self.dlq + self.duplicates


@dataclass
class IngestResult:
    run_id: str
    batches: list[BatchMetrics] = field(default_factory=list)

    def total(self, name: str) -> int:
        return sum(getattr(b, name) for b in self.batches)


def source_options(cfg: Config) -> dict[str, str]:
    options = {
        "kafka.bootstrap.servers": cfg.kafka.bootstrap_servers,
        "subscribe": cfg.kafka.topic,
        "startingOffsets": cfg.ingest.starting_offsets,
        "failOnDataLoss": str(cfg.ingest.fail_on_data_loss).lower(),
        "groupIdForLag": f"medallion-bronze-{cfg.kafka.topic}",
    }
    if cfg.ingest.max_offsets_per_trigger:
        options["maxOffsetsPerTrigger"] = str(cfg.ingest.max_offsets_per_trigger)
    options |= {f"kafka.{k}": v for k, v in cfg.kafka.client.items()}
    return options


def checkpoint_path(cfg: Config) -> str:
    return cfg.lake.path("_checkpoints", "bronze", cfg.kafka.topic)


BRONZE_SOURCE = "medallion_bronze"


def checked_stream(spark: SparkSession, cfg: Config, pii_key: bytes) -> DataFrame:
    """The streaming plan up to foreachBatch: read and decode (parse, validate, scrub), drop duplicates."""
    register(spark, BRONZE_SOURCE, BronzeDecoder(pii_key, BronzeRules()))
    return (
        spark.readStream.format(BRONZE_SOURCE)
        .options(**source_options(cfg))
        .load()
        .transform(drop_duplicate_events(cfg.ingest.dedup_watermark))
    )


def write_batch(checked: DataFrame, batch_id: int, *, run_id: str, cfg: Config) -> BatchMetrics:
    """Write one decoded micro-batch to Bronze and the DLQ. Idempotent per batch id."""
    start, started_at = time.perf_counter(), _now_iso()
    checked = checked.persist()
    try:
        counts = (
            checked.groupBy("error_class")
            .agg(
                F.count(F.lit(1)).alias("n"),
                *[
                    F.sum(F.col("_scrubbed").bitwiseAND(bit).cast("boolean").cast("long")).alias(n)
                    for n, bit in PII_BITS.items()
                ],
            )
            .collect()
        )
        phases = {"read": round(time.perf_counter() - start, 3)}  # Kafka, decoding and dedup run in this job
        reasons = {r["error_class"]: r["n"] for r in counts if r["error_class"] is not None}
        n_valid = sum(r["n"] for r in counts if r["error_class"] is None)
        pii = {n: sum(int(r[n] or 0) for r in counts) for n in PII_BITS}
        # The two writes run as concurrent Spark jobs: the DLQ's is mostly fixed cost (a job, a
        # commit), which then overlaps the Bronze write instead of following it. Each thread carries
        # this one's Spark local properties (the query's job group: stopping the query cancels them).
        writes = {}
        if n_valid:
            writes["bronze"] = lambda: write_bronze(checked, batch_id, run_id=run_id, path=cfg.lake.bronze)
        if reasons:
            writes["dlq"] = lambda: write_rejected(
                checked, batch_id, run_id=run_id, path=cfg.lake.path("dlq", "bronze")
            )
        with ThreadPoolExecutor(max_workers=2, thread_name_prefix="bronze-write") as pool:
            # One wrapper per write: each copies the properties once, so the threads never share them.
            futures = {
                name: pool.submit(inheritable_thread_target(checked.sparkSession)(_timed), write)
                for name, write in writes.items()
            }
            phases |= {name: future.result() for name, future in futures.items()}
    finally:
        checked.unpersist()
    return BatchMetrics(
        batch_id=batch_id,
        bronze=n_valid,
        dlq=sum(reasons.values()),
        dlq_by_reason=reasons,
        pii_scrubbed=pii,
        seconds=time.perf_counter() - start,
        started_at=started_at,
        phases=phases,
    )


def write_bronze(checked: DataFrame, batch_id: int, *, run_id: str, path: str) -> None:
    """The batch's valid rows into Bronze, replacing what an earlier attempt of this batch wrote."""
    bronze = valid_events(checked).transform(with_lineage(run_id, batch_id))
    # One file per hour directory and batch, not one per Kafka partition and hour: a historical backlog
    # spans many hours, and small files are what slows every later reader.
    bronze.repartition(*BRONZE_PARTITIONS[:2]).write.mode("overwrite").partitionBy(
        *BRONZE_PARTITIONS
    ).parquet(path)


def write_rejected(checked: DataFrame, batch_id: int, *, run_id: str, path: str) -> None:
    """The batch's rejected records into the DLQ, replacing what an earlier attempt of this batch wrote."""
    dlq = (
        rejected_events(checked)
        .transform(as_dlq_records("bronze", run_id))
        .withColumn("batch", F.lit(batch_id).cast("long"))
    )
    write_dlq(dlq, path, DLQ_PARTITIONS)


def _timed(fn: Callable[[], None]) -> float:
    start = time.perf_counter()
    fn()
    return round(time.perf_counter() - start, 3)


class _BatchLedger:
    """One ledger record per micro-batch, written twice under one name.

    First inside foreachBatch, right after both outputs are written and before Spark commits the batch
    (outcome ``written``: Bronze and DLQ counts, input not known yet), so a kill at any later moment
    cannot lose the record of data that is in the lake. Then, once Spark's progress report gives the
    input and duplicates, completed (``succeeded`` or ``unreconciled``). A batch replayed after a crash
    writes under the same name (the checkpoint's id and the batch id), so each batch has one record:
    the last attempt's. A record left ``written`` means the process died after the batch was written.
    """

    def __init__(
        self,
        ledger: Ledger,
        cfg: Config,
        run_id: str,
        result: IngestResult,
        on_batch: Callable[[BatchMetrics], None] | None,
    ) -> None:
        self.ledger, self.cfg, self.run_id, self.result, self.on_batch = ledger, cfg, run_id, result, on_batch
        self.pending: dict[int, BatchMetrics] = {}

    @cached_property
    def checkpoint_id(self) -> str:
        """Read once, at the first batch: the checkpoint's metadata exists from the query's start."""
        return _checkpoint_id(self.cfg)

    def written(self, metrics: BatchMetrics) -> None:
        self.pending[metrics.batch_id] = metrics
        self._write(metrics, "written")

    def drain(self, progress: Sequence[Any]) -> None:
        for report in progress:
            metrics = self.pending.pop(report.get("batchId", -1), None)
            if metrics is None:
                continue
            metrics.input = int(report.get("numInputRows", 0))
            metrics.duplicates = sum(
                int(op.get("customMetrics", {}).get("numDroppedDuplicateRows", 0))
                for op in report.get("stateOperators", [])
            )
            metrics.lag = _lag(report)
            self._record(metrics)

    def _write(self, m: BatchMetrics, outcome: str) -> None:
        record = RunRecord(
            stage="ingest",
            run_id=f"{self.run_id}-b{m.batch_id}",
            started_at=m.started_at,
            inputs={"topic": self.cfg.kafka.topic, "batch": m.batch_id},
        )
        if outcome == "written":
            record.count(output=m.bronze, dlq=m.dlq)
        else:
            record.count(input=m.input, output=m.bronze, dlq=m.dlq, dropped=m.duplicates)
        record.metrics = {
            "dlq_by_reason": m.dlq_by_reason,
            "pii_scrubbed": m.pii_scrubbed,
            "rows_per_s": round(m.rows_per_s, 1),
            "seconds_by_phase": m.phases,
            "lag": m.lag,
        }
        record.outcome = outcome
        record.duration_s = round(m.seconds, 3)
        record.finished_at = _now_iso()
        self.ledger.write(record, key=f"{self.cfg.kafka.topic}-{self.checkpoint_id}-b{m.batch_id:08d}")

    def _record(self, m: BatchMetrics) -> None:
        self._write(m, "succeeded" if m.reconciled else "unreconciled")
        if not m.reconciled:
            logger.error(
                "batch {b}: input {i} != bronze {o} + dlq {d} + duplicates {u}",
                b=m.batch_id,
                i=m.input,
                o=m.bronze,
                d=m.dlq,
                u=m.duplicates,
            )
        self.result.batches.append(m)
        if self.on_batch:
            self.on_batch(m)


def claim_bronze(cfg: Config, checkpoint_id: str) -> None:
    """Refuse to write a Bronze table that another checkpoint wrote.

    Bronze and DLQ partitions are named by the checkpoint's batch ids, which start again at 0 in a new
    checkpoint (another topic, or a deleted checkpoint): its batch 0 would silently replace the old
    batch 0 in every hour both touch. So Bronze records which checkpoint owns it (``_owner.json``, a
    name readers skip), and a different one stops before writing anything.
    """
    marker = lakefs.join(cfg.lake.bronze, "_owner.json")
    mine = {"topic": cfg.kafka.topic, "checkpoint": checkpoint_id}
    if lakefs.exists(marker):
        owner = json.loads(lakefs.read_text(marker))
        if owner != mine:
            raise ConfigError(
                f"Bronze at {cfg.lake.bronze} was written by the ingest of topic {owner.get('topic')!r} "
                f"with checkpoint {owner.get('checkpoint')}; this ingest (topic {mine['topic']!r}, checkpoint "
                f"{mine['checkpoint']} in {checkpoint_path(cfg)}) numbers its batches from 0 again and would "
                "overwrite Bronze's. Restore that checkpoint, or give this ingest its own lake "
                "(lake.root), or move Bronze and dlq/bronze away to ingest from scratch."
            )
        return
    lakefs.write_text(marker, json.dumps(mine))


def _checkpoint_id(cfg: Config) -> str:
    """The id Spark gave the query in its checkpoint: the same across restarts, new for a new checkpoint."""
    text = lakefs.read_text(lakefs.join(checkpoint_path(cfg), "metadata"))
    return str(json.loads(text.splitlines()[0])["id"])[:8]


def _lag(report: dict[str, Any]) -> int | None:
    """Records behind the log end after this batch, from the progress report (None when not reported)."""
    lag = 0
    for source in report.get("sources", []):
        try:
            end = json.loads(source.get("endOffset") or "null") or {}
            latest = json.loads(source.get("latestOffset") or "null")
        except (TypeError, ValueError):
            return None
        if not isinstance(latest, dict):
            return None
        lag += sum(
            max(0, int(o) - int(end.get(t, {}).get(p, 0))) for t, ps in latest.items() for p, o in ps.items()
        )
    return lag


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def run(
    spark: SparkSession,
    cfg: Config,
    *,
    pii_key: bytes,
    run_id: str,
    ledger: Ledger,
    once: bool = True,
    on_batch: Callable[[BatchMetrics], None] | None = None,
    stop_event: threading.Event | None = None,
) -> IngestResult:
    """Run the Bronze stream: until the topic is drained (``once``) or until stopped (SIGTERM/Ctrl-C)."""
    result = IngestResult(run_id=run_id)
    batches = _BatchLedger(ledger, cfg, run_id, result, on_batch)

    claimed = threading.Event()

    def process(batch: DataFrame, batch_id: int) -> None:
        if not claimed.is_set():
            claim_bronze(cfg, batches.checkpoint_id)
            claimed.set()
        batches.written(write_batch(batch, batch_id, run_id=run_id, cfg=cfg))

    writer = (
        checked_stream(spark, cfg, pii_key)
        .writeStream.foreachBatch(process)
        .option("checkpointLocation", checkpoint_path(cfg))
    )
    writer = (
        writer.trigger(availableNow=True)
        if once
        else writer.trigger(processingTime=cfg.ingest.trigger_interval)
    )
    _remove_unfinished_writes(cfg)
    query = writer.queryName(f"bronze_{cfg.kafka.topic}").start()
    stop = stop_event or threading.Event()
    restore = _stop_on_signals(stop) if threading.current_thread() is threading.main_thread() else {}
    try:
        try:
            while query.isActive:
                if stop.is_set():
                    _stop_between_batches(query)
                    break
                query.awaitTermination(1)  # raises when the query failed
                batches.drain(query.recentProgress)
            failure = query.exception()
        except StreamingQueryException as exc:
            failure = exc
        batches.drain(query.recentProgress)
        if failure is not None:
            # Our own errors (source, Bronze ownership) come back as text inside Spark's; recover them.
            raise source_error(failure) or TerminalError(
                f"ingest of {cfg.kafka.topic} failed: {failure}"
            ) from None
    finally:
        for sig, handler in restore.items():
            signal.signal(sig, handler)
    return result


# Where a dynamic partition overwrite stages its files until the write commits.
SPARK_STAGING = ".spark-staging-"


def _remove_unfinished_writes(cfg: Config) -> None:
    """Delete the staging folders of writes a kill interrupted. No reader sees them (hidden names), but
    they hold a batch's worth of disk each. One ingest runs per lake (its Bronze table and DLQ are the
    lake's, its batch ids the checkpoint's), and none of its writes is running before the query starts,
    so every staging folder found now is a leftover; the batch it belonged to is replayed from the
    checkpoint."""
    for table in (cfg.lake.bronze, cfg.lake.path("dlq", "bronze")):
        removed = lakefs.remove_dirs(table, SPARK_STAGING)
        if removed:
            logger.info(
                "removed {n} unfinished write(s) left in {t} by an earlier kill", n=len(removed), t=table
            )


def _stop_on_signals(stop: threading.Event) -> dict[int, Any]:
    def request_stop(signum: int, _frame: Any) -> None:
        logger.info("signal {s}: stopping after the current micro-batch", s=signum)
        stop.set()

    previous: dict[int, Any] = {}
    for sig in (signal.SIGTERM, signal.SIGINT):
        previous[sig] = signal.getsignal(sig)
        signal.signal(sig, request_stop)
    return previous


def _stop_between_batches(query: Any, timeout_s: float = 600) -> None:
    """Stop once the running micro-batch (if any) has committed, so nothing is replayed on restart."""
    deadline = time.monotonic() + timeout_s
    while query.isActive and query.status.get("isTriggerActive") and time.monotonic() < deadline:
        time.sleep(0.2)
    query.stop()
