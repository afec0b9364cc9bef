"""What `medallion status` reports, gathered without Spark: broker, layers, lag, DLQ, last runs, alerts."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from medallion import catalog, lakefs
from medallion.config import Config
from medallion.ledger import Ledger

STAGES = ("ingest", "silver", "gold", "materialize")


@dataclass
class Status:
    broker: dict[str, Any] = field(default_factory=dict)
    layers: list[dict[str, Any]] = field(default_factory=list)
    lag: dict[str, int] = field(default_factory=dict)
    runs: list[dict[str, Any]] = field(default_factory=list)
    alerts: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def table_stats(path: str, partition: str) -> dict[str, Any]:
    """Rows (from Parquet footers, no data read), partition count and newest partition of one table."""
    import pyarrow.dataset as ds

    partitions = lakefs.list_partitions(path, partition)
    if not partitions:
        return {"rows": 0, "partitions": 0, "latest": None}
    filesystem, inner = lakefs.filesystem_and_path(path)
    dataset = ds.dataset(
        inner,
        filesystem=filesystem,
        format="parquet",
        partitioning="hive",
        exclude_invalid_files=True,
        ignore_prefixes=list(catalog.HIDDEN_PREFIXES),
    )
    return {"rows": dataset.count_rows(), "partitions": len(partitions), "latest": partitions[-1]}


def collect(cfg: Config, kafka_timeout_s: float = 2.0) -> Status:
    from medallion import embedded
    from medallion.kafka import admin
    from medallion.services import embedded_address

    status = Status()
    reachable = embedded.is_kafka_reachable(cfg.kafka.bootstrap_servers, timeout_s=kafka_timeout_s)
    status.broker = {"address": cfg.kafka.bootstrap_servers, "reachable": reachable}
    if embedded_address(cfg) is not None and cfg.lake.is_local:
        running = embedded.broker_status(lakefs.local_path(catalog.STATE.path(cfg)))
        status.broker["embedded_pid"] = getattr(running, "pid", None) if running else None

    for table in catalog.CATALOG.tables():
        if table.layer == "lookup":
            continue
        partition = table.date_column or table.partitions[0]
        status.layers.append({"table": table.name, **table_stats(table.path(cfg), partition)})

    committed = admin.checkpoint_offsets(catalog.INGEST_CHECKPOINT.path(cfg)).get(cfg.kafka.topic, {})
    if reachable:
        ends = admin.end_offsets(cfg.kafka.bootstrap_servers, cfg.kafka.topic)
        status.lag = {str(p): end - committed.get(p, 0) for p, end in sorted(ends.items())}

    ledger = Ledger(cfg.lake.root)
    for stage in STAGES:
        last = ledger.last(stage, outcome=None)
        if last is None:
            continue
        status.runs.append(
            {
                "stage": stage,
                "outcome": last.outcome,
                "finished": (last.finished_at or "")[:19].replace("T", " "),
                "seconds": last.duration_s,
                **{k: last.counts.get(k, 0) for k in ("input", "output", "dlq", "dropped")},
            }
        )
        # "written": an ingest batch is in the lake and Spark has not reported it yet (or the process was
        # killed in between, and the batch's input count stays unknown). Not a failure.
        if last.outcome not in ("succeeded", "written"):
            status.alerts.append(
                f"last {stage} run {last.run_id} {last.outcome}: {last.error or last.counts}"
            )
    if not reachable and not embedded_address(cfg):
        status.alerts.append(f"Kafka unreachable at {cfg.kafka.bootstrap_servers}")
    return status
