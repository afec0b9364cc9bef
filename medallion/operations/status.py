"""What `medallion status` reports, gathered without Spark: tables, Kafka lag, DLQs, last runs, alerts.

Everything comes from what the lake already holds: the catalogue's tables (partition names and Parquet
footers: row counts, the newest event time from column statistics, no data read), the ingest
checkpoint's committed offsets and the brokers' log ends, and the run ledger (newest first, so its age
does not matter). It fills a `Status` (typed records, `medallion.core.status_model`), whose ``as_dict()`` is
the documented, stable ``--json`` output (``docs/architecture.md``, "status"); `medallion.operations.alerts` turns
it into alerts.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING

import pyarrow.parquet as pq

from medallion.core import catalog, lakefs, rejections, stages
from medallion.core.ledger import Ledger, RunRecord
from medallion.core.status_model import (
    STATUS_VERSION,
    UNRECONCILED,
    Broker,
    FeatureDrift,
    Kafka,
    Materialization,
    PartitionOffsets,
    RunSummary,
    Status,
    TableStatus,
)
from medallion.engines import embedded
from medallion.engines.kafka import admin
from medallion.engines.services import embedded_address
from medallion.governance import drift
from medallion.maintenance.report import maintenance_status
from medallion.operations import alerts

if TYPE_CHECKING:
    from medallion.core.config import Config

STAGES = tuple(
    s.name for s in (stages.INGEST, stages.SILVER, stages.GOLD, stages.MATERIALIZE, stages.VALIDATE)
)
"""The stages whose last run `status` shows (produce, the demo's generator, is left out)."""
__all__ = ["STATUS_VERSION", "Status", "collect", "run_summary", "table_status"]
RECENT_BATCHES = 10  # ingest batches kept for throughput and lag trends
DLQ_STAGES = (stages.INGEST.name, stages.SILVER.name)
"""The stages with a DLQ, whose reasons `status` and the report count."""


def collect(cfg: Config, kafka_timeout_s: float = 2.0, now: datetime | None = None) -> Status:
    now = now or datetime.now(UTC)
    status = Status(generated_at=now.isoformat(timespec="seconds"))
    _broker_and_lag(cfg, status, kafka_timeout_s)
    status.tables = [table_status(cfg, t, now) for t in catalog.CATALOG.tables() if t.layer != "lookup"]
    _runs(cfg, status, now)
    status.drift = drift_status(cfg)

    status.maintenance = maintenance_status(cfg)
    status.alerts = alerts.evaluate(status, cfg.alerts, embedded=_embedded(cfg), drift=cfg.drift)
    return status


def _embedded(cfg: Config) -> bool:
    return embedded_address(cfg) is not None


def _broker_and_lag(cfg: Config, status: Status, timeout_s: float) -> None:
    reachable = embedded.is_kafka_reachable(cfg.kafka.bootstrap_servers, timeout_s=timeout_s)
    status.broker = Broker(cfg.kafka.bootstrap_servers, reachable)
    if _embedded(cfg) and cfg.lake.is_local:
        running = embedded.broker_status(lakefs.local_path(catalog.STATE.path(cfg)))
        status.broker.embedded = True
        status.broker.embedded_pid = getattr(running, "pid", None) if running else None
    committed = admin.checkpoint_offsets(catalog.INGEST_CHECKPOINT.path(cfg)).get(cfg.kafka.topic, {})
    partitions = []
    if reachable:
        ends = admin.end_offsets(cfg.kafka.bootstrap_servers, cfg.kafka.topic)
        for p, end in sorted(ends.items()):
            done = committed.get(p, 0)
            partitions.append(PartitionOffsets(p, end, done, max(0, end - done)))
    status.kafka = Kafka(cfg.kafka.topic, partitions, sum(p.lag for p in partitions) if reachable else None)


# --- tables ---------------------------------------------------------------------------------------


def table_status(cfg: Config, table: catalog.Dataset, now: datetime) -> TableStatus:
    """Rows (Parquet footers), partitions, the newest partition and its freshness, without reading data.

    Freshness is the age of the newest event (Bronze, Silver: the newest ``event_time`` in the newest date
    partition's column statistics) or of the newest feature date's end (Gold); None where the table has
    no notion of it (the DLQs) or no data.
    """
    path = table.path(cfg)
    column = table.date_column or (table.partitions[0] if table.partitions else None)
    partitions = lakefs.list_partitions(path, column) if column else []
    out = TableStatus(table.name, table.layer, partitions=len(partitions))
    if not partitions:
        return out
    newest = max(partitions, key=lambda v: (len(v), v)) if column == catalog.BATCH else partitions[-1]
    out.newest_partition = f"{column}={newest}"
    out.rows = _row_count(path)
    newest_time: datetime | None = None
    if column == catalog.FEATURE_DATE:
        newest_time = datetime.combine(
            date.fromisoformat(newest) + timedelta(days=1), datetime.min.time(), UTC
        )
    elif table.layer in ("bronze", "silver") and column is not None:
        newest_time = _newest_event_time(lakefs.join(path, f"{column}={newest}"))
    if newest_time is not None:
        out.newest = newest_time.isoformat(timespec="seconds")
        out.freshness_s = max(0.0, round((now - newest_time).total_seconds(), 1))
    return out


def data_files(path: str) -> list[str]:
    """The Parquet files of a table, skipping hidden names (``_SUCCESS``, ``.crc``, Spark's staging)."""
    return [
        f
        for f in lakefs.list_files(path, suffix=".parquet")
        if not any(part.startswith(catalog.HIDDEN_PREFIXES) for part in f[len(path) :].split("/") if part)
    ]


def _row_count(path: str) -> int:
    """Rows from the footers alone. Plain ``pyarrow.parquet``, not ``pyarrow.dataset``, whose import pulls
    in pandas: most of `status`'s time once the ledger is read newest first."""

    filesystem, _ = lakefs.filesystem_and_path(path)
    total = 0
    for file in data_files(path):
        with filesystem.open_input_file(lakefs.filesystem_and_path(file)[1]) as f:
            total += pq.ParquetFile(f).metadata.num_rows
    return total


def _newest_event_time(partition: str, column: str = "event_time") -> datetime | None:
    """The largest ``column`` value in the footers' statistics of the files below one partition."""

    filesystem, _ = lakefs.filesystem_and_path(partition)
    newest: datetime | None = None
    for path in data_files(partition):
        _, inner = lakefs.filesystem_and_path(path)
        with filesystem.open_input_file(inner) as f:
            meta = pq.ParquetFile(f).metadata
        names = meta.schema.names
        if column not in names:
            return None
        index = names.index(column)
        for g in range(meta.num_row_groups):
            stats = meta.row_group(g).column(index).statistics
            if stats is None or not stats.has_min_max:
                continue
            value = stats.max
            if isinstance(value, datetime):
                value = value.replace(tzinfo=UTC) if value.tzinfo is None else value
                newest = value if newest is None or value > newest else newest
    return newest


# --- drift ------------------------------------------------------------------------------------------


def drift_status(cfg: Config) -> list[FeatureDrift]:
    """Per Gold feature, its drift on the newest feature date the Gold runs computed drift for (the
    stored results of `medallion.governance.drift`, no Spark)."""
    out = []
    for table in catalog.GOLD_TABLES:
        latest = drift.latest(cfg, table.name)
        if latest is None:
            continue
        for f in latest.features:
            out.append(
                FeatureDrift(
                    table=table.name,
                    feature=f.feature,
                    feature_date=latest.feature_date,
                    kind=f.kind,
                    psi=None if f.psi is None else round(f.psi, 6),
                    ks=None if f.ks is None else round(f.ks, 6),
                    reference=f"{latest.reference['start']}..{latest.reference['end']}",
                    note=f.note,
                )
            )
    return out


# --- runs -------------------------------------------------------------------------------------------


def _runs(cfg: Config, status: Status, now: datetime) -> None:
    ledger = Ledger(cfg.lake.root)
    for stage in STAGES:
        last = ledger.last(stage, outcome=None)
        if last is not None:
            status.runs.append(run_summary(last))
    batches = []
    for record in ledger.newest_first(stages.INGEST.name):
        batches.append(run_summary(record))
        if len(batches) == RECENT_BATCHES:
            break
    status.recent_batches = list(reversed(batches))
    since = now - timedelta(hours=24)
    for name in DLQ_STAGES:
        records = ledger.records(name, since=since)
        units = rejections.counted_once(records)
        by_reason: dict[str, int] = {}
        for unit in units:
            for reason, n in unit.by_reason.items():
                by_reason[reason] = by_reason.get(reason, 0) + n
        status.dlq_24h[name] = by_reason
        status.input_24h[name] = sum(unit.input for unit in units)
        if name == stages.INGEST.name:
            status.unreconciled_24h = [r.run_id for r in records if r.outcome == UNRECONCILED]
            status.data_loss_24h = [s for r in records for s in r.metrics.get("skipped_offsets") or []]
    materialized = status.run(stages.MATERIALIZE.name)
    if materialized is not None:
        status.materialization = Materialization(
            finished_at=materialized.finished_at,
            outcome=materialized.outcome,
            rows=materialized.output,
            online_store=materialized.metrics.get("online_store"),
        )


def run_summary(record: RunRecord) -> RunSummary:
    counts = record.counts
    return RunSummary(
        stage=record.stage,
        run_id=record.run_id,
        outcome=record.outcome,
        started_at=record.started_at,
        finished_at=record.finished_at,
        duration_s=record.duration_s,
        input=int(counts.get("input", 0)),
        output=int(counts.get("output", 0)),
        dlq=int(counts.get("dlq", 0)),
        dropped=int(counts.get("dropped", 0)),
        dq_score=(record.metrics.get("quality") or {}).get("score", record.metrics.get("dq_score")),
        error=record.error,
        metrics={
            k: record.metrics[k]
            for k in ("lag", "rows_per_s", "online_store", "failure_rate")
            if k in record.metrics
        },
    )
