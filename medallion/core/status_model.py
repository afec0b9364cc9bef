"""What `status` hands to its consumers, as typed records: the CLI table, ``--json``, Prometheus, the
alerts and the report all read these fields, never string keys.

``Status.as_dict()`` is the documented, stable ``--json`` output, version 1 (``docs/architecture.md``,
"status"): the same keys and nesting as before these types existed. Plain data, no imports of our own
beyond the catalogue's column name, so `alerts` (which reads a `Status`) and `status` (which fills one
and asks `alerts`) no longer import each other.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

STATUS_VERSION = 1

SUCCEEDED, WRITTEN, UNRECONCILED, FAILED = "succeeded", "written", "unreconciled", "failed"
"""Run outcomes as the ledger writes them (``written``: an ingest batch is in the lake, Spark has not
reported it yet)."""


@dataclass
class Broker:
    address: str = ""
    reachable: bool = False
    embedded: bool = False  # not in --json: it says whether ``embedded_pid`` is
    embedded_pid: int | None = None  # the embedded broker's pid (None: not running)


@dataclass
class PartitionOffsets:
    partition: int
    log_end: int
    committed: int
    lag: int


@dataclass
class Kafka:
    topic: str = ""
    partitions: list[PartitionOffsets] = field(default_factory=list)
    lag: int | None = None  # None: the brokers did not answer


@dataclass
class TableStatus:
    table: str
    layer: str
    rows: int = 0
    partitions: int = 0
    newest_partition: str | None = None  # ``<column>=<value>``
    newest: str | None = None  # ISO time of the newest event, or of the newest feature date's end
    freshness_s: float | None = None  # its age; None where the table has no notion of it, or no data


@dataclass
class RunSummary:
    """One ledger record as `status` shows it: the stage's last run, or one recent ingest batch."""

    stage: str
    run_id: str
    outcome: str
    started_at: str = ""
    finished_at: str | None = None
    duration_s: float = 0.0
    input: int = 0
    output: int = 0
    dlq: int = 0
    dropped: int = 0
    dq_score: float | None = None
    error: str | None = None
    metrics: dict[str, Any] = field(default_factory=dict)  # lag, rows_per_s, online_store, failure_rate

    @property
    def ok(self) -> bool:
        """Succeeded, or (an ingest batch) written and not reported yet: not a failure."""
        return self.outcome in (SUCCEEDED, WRITTEN)


@dataclass
class Materialization:
    finished_at: str | None
    outcome: str
    rows: int
    online_store: str | None


@dataclass
class FeatureDrift:
    """The latest drift of one Gold feature (``feature_date``: the date it was computed for)."""

    table: str
    feature: str
    feature_date: str
    kind: str
    psi: float | None
    ks: float | None
    reference: str  # ``<start>..<end>``
    note: str | None = None


@dataclass(frozen=True)
class Alert:
    """One active alert: its rule, severity, the value against the threshold, and where it comes from."""

    name: str
    severity: str
    message: str
    value: float | str | None = None
    threshold: float | str | None = None
    source: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Status:
    version: int = STATUS_VERSION
    generated_at: str = ""
    broker: Broker = field(default_factory=Broker)
    kafka: Kafka = field(default_factory=Kafka)
    tables: list[TableStatus] = field(default_factory=list)
    dlq_24h: dict[str, dict[str, int]] = field(default_factory=dict)  # stage -> reason -> records
    input_24h: dict[str, int] = field(default_factory=dict)  # stage -> input records
    unreconciled_24h: list[str] = field(default_factory=list)  # ingest batches whose counts did not add up
    data_loss_24h: list[dict[str, Any]] = field(default_factory=list)  # offset ranges skipped (retention)
    runs: list[RunSummary] = field(default_factory=list)  # the last run of each stage
    recent_batches: list[RunSummary] = field(default_factory=list)  # ingest's, oldest first
    materialization: Materialization | None = None
    drift: list[FeatureDrift] = field(default_factory=list)  # the latest drift per Gold feature
    alerts: list[Alert] = field(default_factory=list)
    # The last compact, retention and forget that changed the lake (`maintenance.report`).
    maintenance: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """The ``--json`` document, version 1."""
        out = asdict(self)
        broker = out["broker"]
        if not broker.pop("embedded"):
            broker.pop("embedded_pid")
        out["materialization"] = out["materialization"] or {}
        return out

    def table(self, name: str) -> TableStatus:
        return next(t for t in self.tables if t.table == name)

    def run(self, stage: str) -> RunSummary | None:
        """The last run of ``stage``, if it ran."""
        return next((r for r in self.runs if r.stage == stage), None)
