"""Kafka → Bronze: one streaming query, each micro-batch split into Bronze rows and DLQ rows.

Exactly-once for both outputs: the source is replayable (offset ranges in the checkpoint), and each output
is written with dynamic partition overwrite into partitions that include the batch id, so a batch replayed
after a crash replaces exactly what its first attempt wrote. Partitions are ``dt``/``hr`` of the *event*
time: a replay must land in the same directories (ingest time would move), and Silver reads by event date.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from loguru import logger
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from medallion.bronze.transforms import (
    BronzeRules,
    as_rejected,
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
from medallion.ledger import Ledger

BRONZE_PARTITIONS = ("dt", "hr", "batch")
DLQ_PARTITIONS = ("batch",)


@dataclass
class BatchMetrics:
    batch_id: int
    input: int
    bronze: int
    dlq: int
    dlq_by_reason: dict[str, int]
    seconds: float

    @property
    def rows_per_s(self) -> float:
        return self.input / self.seconds if self.seconds else 0.0


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


def write_batch(
    raw: DataFrame, batch_id: int, *, cfg: Config, pii_key: bytes, run_id: str
) -> BatchMetrics:
    """Validate, scrub and write one micro-batch to Bronze and the DLQ. Idempotent per batch id."""
    start = time.perf_counter()
    checked = raw.transform(parse_events).transform(with_validation(BronzeRules())).persist()
    try:
        reasons = {
            r["error_class"] or "valid": r["count"]
            for r in checked.groupBy("error_class").count().collect()
        }
        n_valid = reasons.pop("valid", 0)
        n_input = n_valid + sum(reasons.values())
        if n_valid:
            bronze = valid_events(checked).transform(normalize_and_scrub(pii_key)).transform(
                with_lineage(run_id, batch_id)
            )
            bronze.write.mode("overwrite").partitionBy(*BRONZE_PARTITIONS).parquet(cfg.lake.bronze)
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
        input=n_input,
        bronze=n_valid,
        dlq=sum(reasons.values()),
        dlq_by_reason=reasons,
        seconds=time.perf_counter() - start,
    )


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

    def process(batch: DataFrame, batch_id: int) -> None:
        with ledger.run("ingest", run_id=f"{run_id}-b{batch_id}", topic=cfg.kafka.topic, batch=batch_id) as rec:
            metrics = write_batch(batch, batch_id, cfg=cfg, pii_key=pii_key, run_id=run_id)
            rec.count(input=metrics.input, output=metrics.bronze, dlq=metrics.dlq)
            rec.metrics = {"dlq_by_reason": metrics.dlq_by_reason, "rows_per_s": round(metrics.rows_per_s, 1)}
        result.batches.append(metrics)
        if on_batch:
            on_batch(metrics)

    stream = spark.readStream.format("medallion_kafka").options(**source_options(cfg)).load()
    writer = stream.writeStream.foreachBatch(process).option("checkpointLocation", checkpoint_path(cfg))
    writer = writer.trigger(availableNow=True) if once else writer.trigger(processingTime=cfg.ingest.trigger_interval)
    query = writer.queryName(f"bronze_{cfg.kafka.topic}").start()
    stop = stop_event or threading.Event()
    restore = _stop_on_signals(stop) if threading.current_thread() is threading.main_thread() else {}
    try:
        while query.isActive:
            if stop.is_set():
                _stop_between_batches(query)
                break
            query.awaitTermination(0.5)
        exc = query.exception()
        if exc is not None:
            from medallion.kafka.source import source_error

            raise source_error(exc) or TerminalError(f"ingest of {cfg.kafka.topic} failed: {exc}") from None
    finally:
        for sig, handler in restore.items():
            signal.signal(sig, handler)
    return result


def _stop_on_signals(stop: threading.Event) -> dict[int, Any]:
    previous = {}
    for sig in (signal.SIGTERM, signal.SIGINT):
        previous[sig] = signal.getsignal(sig)
        signal.signal(sig, lambda *_: (logger.info("stopping after the current micro-batch"), stop.set()))
    return previous


def _stop_between_batches(query: Any, timeout_s: float = 600) -> None:
    """Stop once the running micro-batch (if any) has committed, so nothing is replayed on restart."""
    deadline = time.monotonic() + timeout_s
    while query.isActive and query.status.get("isTriggerActive") and time.monotonic() < deadline:
        time.sleep(0.2)
    query.stop()
