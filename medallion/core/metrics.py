"""Prometheus text exposition: from `status` (gauges), and a textfile per stage written after every run.

Names follow Prometheus' conventions: a ``medallion_`` prefix, base units in the name (``_seconds``,
``_records``), ``_total`` only for counters. The per-run textfile (node-exporter's textfile collector
reads ``*.prom`` from one folder) carries the counters, ``medallion_stage_rows_total{stage, outcome}``
and ``medallion_stage_runs_total{stage, outcome}``, kept as running totals beside it and written
atomically (a temporary file renamed over the old one), so the collector never reads half a file.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from medallion.core import catalog, lakefs

if TYPE_CHECKING:
    from medallion.core.config import Config
    from medallion.core.ledger import RunRecord
    from medallion.core.status_model import Status

ROW_OUTCOMES = ("input", "output", "dlq", "dropped")


def _escape(value: object) -> str:
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(labels: dict[str, object]) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items()) + "}"


class Exposition:
    """Metric families in the text format: a HELP and TYPE line each, then its samples."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self._declared: set[str] = set()

    def add(
        self, name: str, kind: str, help_text: str, samples: Iterable[tuple[dict[str, object], float]]
    ) -> None:
        samples = list(samples)
        if not samples:
            return
        if name not in self._declared:
            self.lines += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
            self._declared.add(name)
        for labels, value in samples:
            self.lines.append(f"{name}{_labels(labels)} {float(value)!r}")

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


def status_exposition(status: Status) -> str:
    """The gauges of a `Status`: tables, Kafka offsets and lag, last runs, DLQ over 24 h, alerts."""
    out = Exposition()
    out.add(
        "medallion_table_rows",
        "gauge",
        "Rows of a lake table (Parquet footers).",
        [({"table": t.table}, t.rows) for t in status.tables],
    )
    out.add(
        "medallion_table_freshness_seconds",
        "gauge",
        "Age of the newest event (Bronze, Silver) or of the newest feature date's end (Gold).",
        [({"table": t.table}, t.freshness_s) for t in status.tables if t.freshness_s is not None],
    )
    topic = status.kafka.topic
    parts = status.kafka.partitions
    out.add(
        "medallion_kafka_lag_records",
        "gauge",
        "Records between the ingest checkpoint's committed offset and the log end.",
        [({"topic": topic, "partition": p.partition}, p.lag) for p in parts],
    )
    out.add(
        "medallion_kafka_log_end_offset",
        "gauge",
        "The log end offset of a partition.",
        [({"topic": topic, "partition": p.partition}, p.log_end) for p in parts],
    )
    out.add(
        "medallion_kafka_committed_offset",
        "gauge",
        "The ingest checkpoint's committed offset of a partition.",
        [({"topic": topic, "partition": p.partition}, p.committed) for p in parts],
    )
    out.add(
        "medallion_kafka_up",
        "gauge",
        "1 when the brokers answered.",
        [({"address": status.broker.address}, 1.0 if status.broker.reachable else 0.0)],
    )
    for run in status.runs:
        stage: dict[str, object] = {"stage": run.stage}
        out.add(
            "medallion_stage_last_run_duration_seconds",
            "gauge",
            "Duration of the stage's last run.",
            [(stage, run.duration_s)],
        )
        out.add(
            "medallion_stage_last_run_success",
            "gauge",
            "1 when the stage's last run succeeded (or, for ingest, was written).",
            [(stage, 1.0 if run.ok else 0.0)],
        )
        out.add(
            "medallion_stage_last_run_rows",
            "gauge",
            "Rows of the stage's last run, by outcome.",
            [({**stage, "outcome": k}, getattr(run, k)) for k in ROW_OUTCOMES],
        )
        if run.dq_score is not None:
            out.add(
                "medallion_stage_dq_score",
                "gauge",
                "Data-quality score of the last run.",
                [(stage, run.dq_score)],
            )
    out.add(
        "medallion_dlq_records_24h",
        "gauge",
        "Records sent to a stage's DLQ in the last 24 hours, by reason.",
        [({"stage": s, "reason": r}, n) for s, reasons in status.dlq_24h.items() for r, n in reasons.items()],
    )
    counts: dict[tuple[str, str], int] = {}
    for alert in status.alerts:
        counts[(alert.name, alert.severity)] = counts.get((alert.name, alert.severity), 0) + 1
    out.add(
        "medallion_alerts_active",
        "gauge",
        "Active alerts, by rule and severity.",
        [({"alert": n, "severity": s}, c) for (n, s), c in sorted(counts.items())],
    )
    return out.text()


def textfile_dir(cfg: Config) -> Path | None:
    """Where the per-run textfiles go: ``metrics.textfile_dir``, else below a local lake, else nowhere."""
    if cfg.metrics.textfile_dir:
        return Path(cfg.metrics.textfile_dir)
    return lakefs.local_path(catalog.METRICS.path(cfg)) if cfg.lake.is_local else None


def record_run(cfg: Config, record: RunRecord) -> Path | None:
    """Add one finished run to its stage's counters and rewrite the stage's textfile atomically."""
    folder = textfile_dir(cfg)
    if folder is None or record.outcome == "running":
        return None
    folder.mkdir(parents=True, exist_ok=True)
    stage = record.stage
    totals_path = folder / f"medallion_{stage}.totals.json"
    totals: dict[str, Any] = {"rows": {}, "runs": {}}
    if totals_path.exists():
        # A damaged totals file restarts the counters, as a restarted exporter would.
        with contextlib.suppress(ValueError):
            totals = json.loads(totals_path.read_text())
    for outcome in ROW_OUTCOMES:
        totals["rows"][outcome] = totals["rows"].get(outcome, 0) + int(record.counts.get(outcome, 0))
    totals["runs"][record.outcome] = totals["runs"].get(record.outcome, 0) + 1
    totals["last"] = {
        "duration_s": record.duration_s,
        "finished_at": record.finished_at,
        "success": record.outcome in ("succeeded", "written"),
    }
    out = Exposition()
    out.add(
        "medallion_stage_rows_total",
        "counter",
        "Rows a stage has handled, by outcome (input, output, dlq, dropped).",
        [({"stage": stage, "outcome": k}, v) for k, v in sorted(totals["rows"].items())],
    )
    out.add(
        "medallion_stage_runs_total",
        "counter",
        "Runs of a stage (micro-batches for ingest), by outcome.",
        [({"stage": stage, "outcome": k}, v) for k, v in sorted(totals["runs"].items())],
    )
    out.add(
        "medallion_stage_last_run_duration_seconds",
        "gauge",
        "Duration of the stage's last run.",
        [({"stage": stage}, record.duration_s)],
    )
    out.add(
        "medallion_stage_last_run_success",
        "gauge",
        "1 when the stage's last run succeeded (or, for ingest, was written).",
        [({"stage": stage}, 1.0 if totals["last"]["success"] else 0.0)],
    )
    _write_atomically(totals_path, json.dumps(totals))
    target = folder / f"medallion_{stage}.prom"
    _write_atomically(target, out.text())
    return target


def _write_atomically(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as out:
            out.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
