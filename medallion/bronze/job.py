"""Kafka → Bronze: one streaming query, each micro-batch split into Bronze rows and DLQ rows.

Exactly-once for both outputs: the source is replayable (offset ranges in the checkpoint), and each output
is written with dynamic partition overwrite into partitions that include the batch id, so a batch replayed
after a crash replaces exactly what its first attempt wrote. Partitions are ``dt``/``hr`` of the *event*
time: a replay must land in the same directories (ingest time would move), and Silver reads by event date.

The streaming plan parses, validates and drops duplicate events (stateless work plus Spark's
``dropDuplicatesWithinWatermark``, its state in the checkpoint); ``foreachBatch`` persists the batch
once and writes both outputs. Per-batch counts are completed from Spark's progress report (input rows,
duplicates dropped) and recorded in the ledger, so ``input = bronze + dlq + duplicates`` is checked for
every batch.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from loguru import logger
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from medallion.bronze.transforms import (
    BronzeRules,
    as_rejected,
    drop_duplicate_events,
    normalize_and_scrub,
    parse_events,
    rejected_events,
    valid_events,
    with_lineage,
    with_validation,
)
from medallion.config import Config
from medallion.dlq import as_dlq_records, write_dlq
from medallion.errors import TerminalError
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


def checked_stream(spark: SparkSession, cfg: Config) -> DataFrame:
    """The streaming plan up to foreachBatch: read, parse, validate, drop duplicate events."""
    return (
        spark.readStream.format("medallion_kafka")
        .options(**source_options(cfg))
        .load()
        .transform(parse_events)
        .transform(with_validation(BronzeRules()))
        .transform(drop_duplicate_events(cfg.ingest.dedup_watermark))
    )


def write_batch(
    checked: DataFrame, batch_id: int, *, pii_key: bytes, run_id: str, cfg: Config
) -> BatchMetrics:
    """Scrub and write one validated micro-batch to Bronze and the DLQ. Idempotent per batch id."""
    start = time.perf_counter()
    checked = checked.persist()
    try:
        valid = F.col("error_class").isNull()
        counts = (
            checked.groupBy("error_class")
            .agg(
                F.count(F.lit(1)).alias("n"),
                *[F.sum((valid & F.col(c).isNotNull()).cast("long")).alias(n) for n, c in PII_FIELDS.items()],
            )
            .collect()
        )
        reasons = {r["error_class"]: r["n"] for r in counts if r["error_class"] is not None}
        n_valid = sum(r["n"] for r in counts if r["error_class"] is None)
        pii = {n: sum(int(r[n] or 0) for r in counts) for n in PII_FIELDS}
        if n_valid:
            bronze = (
                valid_events(checked)
                .transform(normalize_and_scrub(pii_key))
                .transform(with_lineage(run_id, batch_id))
            )
            # One file per hour directory and batch, not one per Kafka partition and hour: a historical
            # backlog spans many hours, and small files are what slows every later reader.
            bronze.repartition(*BRONZE_PARTITIONS[:2]).write.mode("overwrite").partitionBy(
                *BRONZE_PARTITIONS
            ).parquet(cfg.lake.bronze)
        if reasons:
            dlq = (
                rejected_events(checked)
                .transform(as_rejected)
                .transform(as_dlq_records("bronze", run_id))
                .withColumn("batch", F.lit(batch_id).cast("long"))
            )
            write_dlq(dlq, cfg.lake.path("dlq", "bronze"), DLQ_PARTITIONS)
    finally:
        checked.unpersist()
    return BatchMetrics(
        batch_id=batch_id,
        bronze=n_valid,
        dlq=sum(reasons.values()),
        dlq_by_reason=reasons,
        pii_scrubbed=pii,
        seconds=time.perf_counter() - start,
    )


# PII values a valid event carried, counted per batch as they are scrubbed.
PII_FIELDS = {
    "emails": "e.user.email",
    "phones": "e.user.phone",
    "ips": "e.context.ip",
    "names": "e.user.name",
}


class _BatchLedger:
    """Joins what foreachBatch measured with Spark's progress report, then records the batch once."""

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

    def written(self, metrics: BatchMetrics) -> None:
        self.pending[metrics.batch_id] = metrics

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

    def _record(self, m: BatchMetrics) -> None:
        record = RunRecord(
            stage="ingest",
            run_id=f"{self.run_id}-b{m.batch_id}",
            started_at=_now_iso(),
            inputs={"topic": self.cfg.kafka.topic, "batch": m.batch_id},
        )
        record.count(input=m.input, output=m.bronze, dlq=m.dlq, dropped=m.duplicates)
        record.metrics = {
            "dlq_by_reason": m.dlq_by_reason,
            "pii_scrubbed": m.pii_scrubbed,
            "rows_per_s": round(m.rows_per_s, 1),
            "lag": m.lag,
        }
        record.outcome = "succeeded" if m.reconciled else "unreconciled"
        record.duration_s = round(m.seconds, 3)
        record.finished_at = _now_iso()
        self.ledger.write(record)
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


def _lag(report: dict[str, Any]) -> int | None:
    """Records behind the log end after this batch, from the progress report (None when not reported)."""
    import json

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
    from datetime import datetime, timezone

    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


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

    def process(batch: DataFrame, batch_id: int) -> None:
        batches.written(write_batch(batch, batch_id, pii_key=pii_key, run_id=run_id, cfg=cfg))

    writer = (
        checked_stream(spark, cfg)
        .writeStream.foreachBatch(process)
        .option("checkpointLocation", checkpoint_path(cfg))
    )
    writer = (
        writer.trigger(availableNow=True)
        if once
        else writer.trigger(processingTime=cfg.ingest.trigger_interval)
    )
    query = writer.queryName(f"bronze_{cfg.kafka.topic}").start()
    stop = stop_event or threading.Event()
    restore = _stop_on_signals(stop) if threading.current_thread() is threading.main_thread() else {}
    try:
        while query.isActive:
            if stop.is_set():
                _stop_between_batches(query)
                break
            query.awaitTermination(1)
            batches.drain(query.recentProgress)
        batches.drain(query.recentProgress)
        exc = query.exception()
        if exc is not None:
            from medallion.kafka.source import source_error

            raise source_error(exc) or TerminalError(f"ingest of {cfg.kafka.topic} failed: {exc}") from None
    finally:
        for sig, handler in restore.items():
            signal.signal(sig, handler)
    return result


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
