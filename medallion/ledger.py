"""The run ledger: one JSON record per stage run, written under the lake so every setting can read it.

Records are separate small files (``_ledger/<stage>/<started>-<run_id>.json``) rather than one appended
file, because object stores cannot append; `status` lists and reads them with pyarrow's filesystem
layer, no Spark. A record is written when the run ends, whatever its outcome (Bronze writes each
micro-batch's record twice under one key: once when it is written, once when Spark has reported it).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from loguru import logger

from medallion import lakefs


def new_run_id() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:8]


@dataclass
class RunRecord:
    """What one stage run did. ``counts`` must reconcile: input = output + dlq (+ declared drops)."""

    stage: str
    run_id: str
    started_at: str
    inputs: dict[str, Any] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    outcome: str = "running"
    error: str | None = None
    finished_at: str | None = None
    duration_s: float = 0.0

    def count(self, **counts: int) -> None:
        for name, value in counts.items():
            self.counts[name] = self.counts.get(name, 0) + int(value)


class Ledger:
    def __init__(self, lake_root: str) -> None:
        self.root = lakefs.join(lake_root, "_ledger")

    def write(self, record: RunRecord, key: str | None = None) -> None:
        """Write ``record``; a later write with the same ``key`` replaces it (default: one per run)."""
        name = f"{key or record.started_at.replace(':', '').replace('-', '') + '-' + record.run_id}.json"
        lakefs.write_text(lakefs.join(self.root, record.stage, name), json.dumps(asdict(record), default=str))

    def records(self, stage: str | None = None) -> list[RunRecord]:
        """Every record (of one stage), oldest first."""
        out = []
        for path in lakefs.list_files(self.root, suffix=".json"):
            data = json.loads(lakefs.read_text(path))
            if stage is None or data.get("stage") == stage:
                out.append(RunRecord(**data))
        return sorted(out, key=lambda r: r.started_at)

    def last(self, stage: str, outcome: str | None = "succeeded") -> RunRecord | None:
        runs = [r for r in self.records(stage) if outcome is None or r.outcome == outcome]
        return runs[-1] if runs else None

    @contextmanager
    def run(self, stage: str, run_id: str | None = None, **inputs: Any) -> Iterator[RunRecord]:
        """Record a stage run: yields the record to fill in, writes it with the outcome and duration."""
        record = RunRecord(
            stage=stage,
            run_id=run_id or new_run_id(),
            started_at=datetime.now(UTC).isoformat(timespec="milliseconds"),
            inputs={k: str(v) if v is not None else None for k, v in inputs.items()},
        )
        start = time.perf_counter()
        try:
            yield record
            record.outcome = "succeeded"
        except BaseException as exc:
            record.outcome = "failed"
            record.error = f"{type(exc).__name__}: {exc}"
            raise
        finally:
            record.duration_s = round(time.perf_counter() - start, 3)
            record.finished_at = datetime.now(UTC).isoformat(timespec="milliseconds")
            self.write(record)
            logger.info(
                "{stage} run {run_id} {outcome} in {d:.1f}s: {counts}",
                stage=stage,
                run_id=record.run_id,
                outcome=record.outcome,
                d=record.duration_s,
                counts=record.counts,
            )
