"""Kafka → Bronze: one streaming query, each micro-batch split into Bronze rows and DLQ rows.

The pieces, each in its own module:

- the plan (`bronze/stream.py`): the Kafka source with Bronze's decoder;
- the duplicates (`bronze/dedup.py`): an index of the ids seen within the window, in the checkpoint;
- the writes (`bronze/writes.py`): each micro-batch's valid rows into Bronze and rejected records into
  the DLQ, both exactly-once by batch id;
- the accounting (`bronze/accounting.py`): one ledger record per batch, ``input = bronze + dlq +
  duplicates`` checked from Spark's progress report;
- the ownership check (`bronze/ownership.py`): one checkpoint writes a lake's Bronze.

This module runs the query: until the topic is drained (``once``, for cron) or until SIGTERM/Ctrl-C,
which stops it between micro-batches. The query starts from a snapshot of the erasure register
(`medallion.maintenance.register`), and restarts from its checkpoint when the register changes.
"""

from __future__ import annotations

import contextvars
import signal
import threading
import time
from collections.abc import Callable
from typing import Any

from loguru import logger
from pyspark.errors import StreamingQueryException
from pyspark.sql import DataFrame, SparkSession

from medallion.bronze.accounting import BatchLedger, BatchMetrics, IngestResult
from medallion.bronze.dedup import DedupIndex, adopt_spark_state, window_ms
from medallion.bronze.ownership import claim_bronze
from medallion.bronze.stream import checked_stream
from medallion.bronze.writes import write_batch
from medallion.core import lakefs
from medallion.core.catalog import BRONZE, BRONZE_DLQ, ERASURE_REGISTER, INGEST_CHECKPOINT, INGEST_DEDUP
from medallion.core.config import Config
from medallion.core.errors import MedallionError, TerminalError, TransientError
from medallion.core.ledger import Ledger
from medallion.core.retry import retry_transient
from medallion.engines.kafka.source import source_error
from medallion.maintenance import register

__all__ = ["BatchMetrics", "IngestResult", "checkpoint_path", "run"]


def checkpoint_path(cfg: Config) -> str:
    return INGEST_CHECKPOINT.path(cfg)


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
    batches = BatchLedger(ledger, cfg, run_id, result, on_batch)
    register_path = ERASURE_REGISTER.path(cfg)
    claimed = threading.Event()
    stop = stop_event or threading.Event()
    restore = _stop_on_signals(stop) if threading.current_thread() is threading.main_thread() else {}
    window = window_ms(cfg.ingest.dedup_watermark)
    adopt_spark_state(spark, INGEST_CHECKPOINT.path(cfg), INGEST_DEDUP.path(cfg), window)
    dedup = DedupIndex(INGEST_DEDUP.path(cfg), window)
    logged = contextvars.copy_context()  # the stage's log context (run id, stage), for Spark's thread

    def one_query() -> bool:
        """Run the query once: True when it ended (drained or stopped), False when the erasure register
        changed under it (run again, from the checkpoint, with the new hashes)."""
        version, erased = register.snapshot(register_path)

        def process(batch: DataFrame, batch_id: int) -> None:
            # Spark calls this from its own thread: in the stage's context, so its lines carry the run id.
            logged.run(process_in_context, batch, batch_id)

        def process_in_context(batch: DataFrame, batch_id: int) -> None:
            if stop.is_set():  # a batch that began after SIGTERM: nothing written, the next run replays it
                logger.info("batch {b} not started: stopping (Spark reports it as an error)", b=batch_id)
                raise RuntimeError(STOPPED)
            if register.snapshot(register_path)[0] != version:
                raise RuntimeError(REGISTER_CHANGED)  # nothing written: replayed with the new hashes
            if not claimed.is_set():  # once per run: the owner cannot change while this query runs
                claim_bronze(cfg, batches.checkpoint_id)
                claimed.set()
            batches.written(write_batch(batch, batch_id, run_id=run_id, cfg=cfg, dedup=dedup))

        writer = (
            checked_stream(spark, cfg, pii_key, erased)
            .writeStream.foreachBatch(process)
            .option("checkpointLocation", INGEST_CHECKPOINT.path(cfg))
        )
        writer = (
            writer.trigger(availableNow=True)
            if once
            else writer.trigger(processingTime=cfg.ingest.trigger_interval)
        )
        _remove_unfinished_writes(cfg)
        failure = _until_done(writer.queryName(f"bronze_{cfg.kafka.topic}").start(), stop, batches)
        if failure is None or (stop.is_set() and STOPPED in str(failure)):
            return True
        if REGISTER_CHANGED in str(failure):
            logger.info("the erasure register changed: the stream restarts from its checkpoint to apply it")
            return False
        raise query_error(cfg, failure)

    restarting = retry_transient(attempts=5, max_wait_s=30.0, max_delay_s=600.0, only=SparkFault)(one_query)
    try:
        while not restarting():
            pass
    finally:
        for sig, handler in restore.items():
            signal.signal(sig, handler)
    return result


# What a micro-batch raises when it would start after a stop was asked for: with batches back to back
# (a backlog, a short trigger interval) Spark is almost never between two of them, so waiting for a gap
# could run on until the topic is drained; the batch is left uncommitted and replayed exactly once.
STOPPED = "medallion: the ingest was asked to stop before this micro-batch"

# What a micro-batch raises when the erasure register changed since its query started (`register`).
REGISTER_CHANGED = "medallion: the erasure register changed since this query started"

# Spark failures of the machine, not of the data: a Python worker that did not start in time (Spark waits
# a fixed 10 s for it to connect back, which a loaded host can miss) or an executor lost. The query is
# restarted from its checkpoint (the one retry policy), which replays the unfinished batch exactly once.
TRANSIENT_SPARK_FAILURES = (
    "Python worker failed to connect back",
    "ExecutorLostFailure",
)


# What Spark says when a batch brought to the driver (`bronze.writes`) is over spark.driver.maxResultSize.
TOO_BIG_FOR_THE_DRIVER = "bigger than spark.driver.maxResultSize"


class SparkFault(TransientError):
    """A micro-batch failed for the machine's sake (`TRANSIENT_SPARK_FAILURES`): the query is restarted."""


def query_error(cfg: Config, failure: BaseException) -> MedallionError:
    """What a failed query means: our own error recovered from Spark's text (source, Bronze ownership), a
    transient fault of the machine (retried), or a terminal failure."""
    found = source_error(failure)
    if found is not None:
        return found
    text = str(failure)
    if TOO_BIG_FOR_THE_DRIVER in text:
        return TerminalError(
            f"ingest of {cfg.kafka.topic}: a micro-batch is larger than the driver takes "
            f"(spark.driver.maxResultSize): each batch comes to the driver whole. Nothing of it was written; "
            f"lower ingest.max_offsets_per_trigger (now {cfg.ingest.max_offsets_per_trigger or 'no cap'}) or "
            f"raise spark.driver.maxResultSize and spark.driver_memory, then run the ingest again. ({failure})"
        )
    transient = next((m for m in TRANSIENT_SPARK_FAILURES if m in text), None)
    if transient is not None:
        return SparkFault(f"ingest of {cfg.kafka.topic}: Spark failed a micro-batch ({transient})")
    return TerminalError(f"ingest of {cfg.kafka.topic} failed: {failure}")


def _until_done(query: Any, stop: threading.Event, batches: BatchLedger) -> BaseException | None:
    """Wait for ``query`` to end (drained, stopped between batches, or failed); its failure, if any."""
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
    return failure


# Where a dynamic partition overwrite stages its files until the write commits.
SPARK_STAGING = ".spark-staging-"


def _remove_unfinished_writes(cfg: Config) -> None:
    """Delete the staging folders of writes a kill interrupted. No reader sees them (hidden names), but
    they hold a batch's worth of disk each. One ingest runs per lake (its Bronze table and DLQ are the
    lake's, its batch ids the checkpoint's), and none of its writes is running before the query starts,
    so every staging folder found now is a leftover; the batch it belonged to is replayed from the
    checkpoint."""
    for table in (BRONZE.path(cfg), BRONZE_DLQ.path(cfg)):
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
    """Stop once the running micro-batch (if any) has committed; the next one, if Spark starts it, ends at
    once with `STOPPED` before it writes anything."""
    deadline = time.monotonic() + timeout_s
    while query.isActive and query.status.get("isTriggerActive") and time.monotonic() < deadline:
        time.sleep(0.2)
    query.stop()
