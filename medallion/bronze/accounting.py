"""Per-batch accounting: what a micro-batch wrote, what Spark says it read, and its one ledger record.

``input = bronze + dlq + duplicates`` is checked for every batch: Bronze, DLQ and duplicate counts come
from the batch itself, input rows from Spark's progress report.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from typing import Any

from loguru import logger

from medallion.bronze.ownership import checkpoint_id
from medallion.core import lakefs, stages
from medallion.core.catalog import INGEST_DATA_LOSS
from medallion.core.config import Config
from medallion.core.ledger import Ledger, RunRecord


@dataclass
class BatchMetrics:
    batch_id: int
    bronze: int
    dlq: int
    dlq_by_reason: dict[str, int]
    pii_scrubbed: dict[str, int]
    seconds: float
    dates: list[str] = field(default_factory=list)  # the Bronze dt partitions the batch wrote
    started_at: str = ""
    phases: dict[str, float] = field(default_factory=dict)  # seconds: read (+decode, dedup), bronze, dlq
    input: int = 0  # from Spark's progress report: records read from Kafka in this batch
    duplicates: int = 0
    ids_held: int = 0  # event ids the dedup index holds after this batch
    lag: int | None = None
    skipped: list[dict[str, Any]] = field(default_factory=list)  # offsets deleted before they were read
    erased: int = 0  # records of people in the erasure register: dropped, written nowhere

    @property
    def rows_per_s(self) -> float:
        return self.input / self.seconds if self.seconds else 0.0

    @property
    def reconciled(self) -> bool:
        return self.input == self.bronze + self.dlq + self.duplicates + self.erased


@dataclass
class IngestResult:
    run_id: str
    batches: list[BatchMetrics] = field(default_factory=list)

    def total(self, name: str) -> int:
        return sum(getattr(b, name) for b in self.batches)


class BatchLedger:
    """One ledger record per micro-batch, written twice under one name.

    First inside foreachBatch, right after both outputs are written and before Spark commits the batch
    (outcome ``written``: Bronze and DLQ counts, input not known yet), so a kill at any later moment
    cannot lose the record of data that is in the lake. Then, once Spark's progress report gives the
    input, completed (``succeeded`` or ``unreconciled``). A batch replayed after a crash
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
        return checkpoint_id(self.cfg)

    def written(self, metrics: BatchMetrics) -> None:
        self.pending[metrics.batch_id] = metrics
        self._write(metrics, "written")

    def drain(self, progress: Sequence[Any]) -> None:
        """Complete the pending batches that Spark's progress reports cover."""
        for report in progress:
            metrics = self.pending.pop(report.get("batchId", -1), None)
            if metrics is None:
                continue
            metrics.input = int(report.get("numInputRows", 0))
            metrics.lag = lag(report)
            metrics.skipped = skipped_ranges(INGEST_DATA_LOSS.path(self.cfg), report)
            self._record(metrics)

    def _write(self, m: BatchMetrics, outcome: str) -> None:
        record = RunRecord(
            stage=stages.INGEST.name,
            run_id=f"{self.run_id}-b{m.batch_id}",
            started_at=m.started_at,
            inputs={"topic": self.cfg.kafka.topic, "batch_id": m.batch_id},
            who=stages.who(),
        )
        if outcome == "written":
            record.count(output=m.bronze, dlq=m.dlq)
        else:
            record.count(input=m.input, output=m.bronze, dlq=m.dlq, dropped=m.duplicates + m.erased)
        record.metrics = {
            "dlq_by_reason": m.dlq_by_reason,
            "pii_scrubbed": m.pii_scrubbed,
            "rows_per_s": round(m.rows_per_s, 1),
            "seconds_by_phase": m.phases,
            "lag": m.lag,
            "dedup_ids_held": m.ids_held,
            BRONZE_DATES: m.dates,
        }
        if m.skipped:
            record.metrics["skipped_offsets"] = m.skipped
        if m.erased:
            record.metrics["erased"] = m.erased
        record.outcome = outcome
        record.duration_s = round(m.seconds, 3)
        record.finished_at = now_iso()
        self.ledger.write(record, key=batch_key(self.cfg.kafka.topic, self.checkpoint_id, m.batch_id))

    def _record(self, m: BatchMetrics) -> None:
        self._write(m, "succeeded" if m.reconciled else "unreconciled")
        logger.info(
            "batch {b}: {i} records → bronze {o}, dlq {d}, duplicates {u} in {s:.1f}s (lag {lag})",
            b=m.batch_id,
            i=m.input,
            o=m.bronze,
            d=m.dlq,
            u=m.duplicates,
            s=m.seconds,
            lag=m.lag,
        )
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


BRONZE_DATES = "bronze_dates"
"""The metric of a batch's ledger record that lists the Bronze dates it wrote."""


def batch_key(topic: str, checkpoint: str, batch_id: int) -> str:
    """The ledger key of one ingest batch's record."""
    return f"{topic}-{checkpoint}-b{batch_id:08d}"


def lag(report: dict[str, Any]) -> int | None:
    """Records behind the log end after this batch, from the progress report (None when not reported)."""
    behind = 0
    for source in report.get("sources", []):
        try:
            end = json.loads(source.get("endOffset") or "null") or {}
            latest = json.loads(source.get("latestOffset") or "null")
        except (TypeError, ValueError):
            return None
        if not isinstance(latest, dict):
            return None
        behind += sum(
            max(0, int(o) - int(end.get(t, {}).get(p, 0))) for t, ps in latest.items() for p, o in ps.items()
        )
    return behind


def skipped_ranges(folder: str, report: dict[str, Any]) -> list[dict[str, Any]]:
    """The offset ranges this batch skipped: those the source recorded (``dataLossLog``) starting where
    the batch starts. The batch reads from the log start instead; the skipped offsets are no input."""
    names = set(lakefs.list_children(folder)[1]) if lakefs.exists(folder) else set()
    if not names:
        return []
    found = []
    for source in report.get("sources", []):
        try:
            start = json.loads(source.get("startOffset") or "null") or {}
        except (TypeError, ValueError):
            continue
        for topic, partitions in start.items():
            for partition, offset in partitions.items():
                name = f"{topic}-{partition}-{offset}.json"
                if name in names:
                    found.append(json.loads(lakefs.read_text(lakefs.join(folder, name))))
    return found


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")
