"""The catalogue: every dataset of the lake, declared once, and where each one lives.

A dataset's name, layer, location below the lake root, partition columns, the stage that writes it,
its key and (where they are fixed) its columns are written here and nowhere else. Readers and writers
ask for ``catalog.BRONZE.path(cfg)``, ``catalog.gold_table("user_activity")``, ``BRONZE.partitions``;
`status`, `validate`, the ledger and serving walk `DATASETS`. A test walks the package's source and
fails on a table name, a path fragment or a partition column spelled anywhere else.

Gold's tables are not listed by hand: there is one per feature family declared in
`medallion.features`, so a new family is a new Gold table, a new Feast feature view and a new line in
`status` without touching this file.

Imports no pyspark, pandas or feast: `status` and the CLI read it without starting anything. Column
types are Spark SQL type strings (``long``, ``array<string>``, ``struct<a:string>``), which
``pyspark.sql.types.StructType.fromDDL`` and pyarrow readers both understand.

Why one module: the catalogue is the one place every dataset is declared; split, it would be two.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from medallion.features import FAMILIES, FeatureFamily, family

if TYPE_CHECKING:
    from medallion.core.config import Config

# Partition and key columns that several stages share.
DT, HR, BATCH = "dt", "hr", "batch"
EVENT_DATE, EVENT_TYPE = "event_date", "event_type"
FEATURE_DATE = "feature_date"
EVENT_TIMESTAMP, CREATED_TIMESTAMP = "event_timestamp", "created_timestamp"

# What a hive-partitioned table keeps beside its data files: names a reader must skip.
HIDDEN_PREFIXES = ("_", ".")


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # a Spark SQL type string
    description: str = ""


def split_top_level(text: str) -> list[str]:
    """``"a int, b struct<x:int, y:int>"`` → ``["a int", " b struct<x:int, y:int>"]``: commas inside
    ``<>`` or ``()`` do not split."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text + ","):
        if ch in "<(":
            depth += 1
        elif ch in ">)":
            depth -= 1
        elif ch == "," and depth == 0:
            if text[start:i].strip():
                parts.append(text[start:i])
            start = i + 1
    return parts


def columns(spec: str) -> tuple[Column, ...]:
    """``"a long, b struct<x:string, y:double>"`` → Columns."""
    out = []
    for part in split_top_level(spec):
        name, _, type_ = part.strip().partition(" ")
        out.append(Column(name, type_.strip()))
    return tuple(out)


@dataclass(frozen=True)
class Dataset:
    """One dataset of the lake: a table, a folder of records, a checkpoint or a single file."""

    name: str
    layer: str  # bronze | silver | gold | dlq | lookup | quality | ops | feast
    location: tuple[str, ...]  # path parts below the lake root; "{topic}" is the configured topic
    writer: str  # the stage that writes it
    description: str
    format: str = "parquet"  # parquet | json | checkpoint | sqlite | files | npy
    partitions: tuple[str, ...] = ()
    date_column: str | None = None  # the partition column holding a date (None: not date-partitioned)
    key: tuple[str, ...] = ()  # columns that identify a row
    columns: tuple[Column, ...] = ()  # fixed columns (partition columns excluded); () when not fixed
    override: str | None = None  # a config key (``serving.registry_path``) that, when set, is the path

    def path(self, cfg: Config) -> str:
        """The dataset's path for ``cfg``: a local path or a URI, as the lake root is."""
        if self.override:
            section, key = self.override.split(".")
            value = getattr(getattr(cfg, section), key)
            if value:
                return str(value)
        parts = [p.format(topic=cfg.kafka.topic) for p in self.location]
        return join(cfg.lake.root, *parts)

    def partition_path(self, cfg: Config, **values: Any) -> str:
        """The directory of one partition: ``partition_path(cfg, feature_date="2026-11-01")``."""
        unknown = set(values) - set(self.partitions)
        if unknown:
            raise ValueError(f"{self.name} has no partition column {sorted(unknown)}: {self.partitions}")
        parts = [f"{c}={values[c]}" for c in self.partitions if c in values]
        return join(self.path(cfg), *parts)

    @property
    def short_name(self) -> str:
        """The name within its layer: ``items`` for ``lookup.items``."""
        return self.name.split(".", 1)[-1]

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    @property
    def ddl(self) -> str:
        """The fixed columns as a Spark DDL string (``StructType.fromDDL``)."""
        return ddl(self.columns)


def ddl(cols: tuple[Column, ...]) -> str:
    """Columns as a Spark DDL string: ``StructType.fromDDL(ddl(cols))``."""
    return ", ".join(f"`{c.name}` {c.type}" for c in cols)


def join(root: str, *parts: str) -> str:
    """A path below ``root``, for local paths and URIs alike (``s3a://b/lake`` + ``gold`` → ``s3a://b/lake/gold``)."""
    return "/".join([root.rstrip("/"), *(p.strip("/") for p in parts if p)])


# --- Bronze ----------------------------------------------------------------------------------------

_BRONZE_EVENT = (
    "schema_version int, event_id string, event_type string, event_time timestamp, user_id string, "
    "session_id string, item_id string, device struct<os:string, browser:string, type:string>, "
    "geo struct<country:string, city:string, lat:double, lon:double>, "
    "context struct<ip_prefix:string, user_agent:string, referrer:string, page:string>, "
    "user struct<email_hmac:string, phone_hmac:string>, price double, quantity long, currency string"
)
_KAFKA_COORDINATES = "_topic string, _partition int, _offset long, _kafka_timestamp timestamp"

BRONZE_EVENT_COLUMNS = columns(_BRONZE_EVENT + ", " + _KAFKA_COORDINATES)
"""A Bronze row as the decoder makes it: the contract's members, normalized and scrubbed, and the
record's Kafka coordinates."""

BRONZE = Dataset(
    name="bronze.user_events",
    layer="bronze",
    location=("bronze", "user_events"),
    writer="ingest",
    description="Valid events, PII scrubbed, one file per event hour and micro-batch (exactly-once by "
    "batch id). Partitioned by event time, so a replayed batch lands where its first attempt did.",
    partitions=(DT, HR, BATCH),
    date_column=DT,
    key=("event_id",),
    columns=BRONZE_EVENT_COLUMNS + columns("_ingested_at timestamp, _run_id string"),
)

INGEST_DATA_LOSS = Dataset(
    name="checkpoint.ingest_data_loss",
    layer="ops",
    location=("_checkpoints", "bronze_data_loss", "{topic}"),
    writer="ingest",
    description="Offset ranges deleted from Kafka before the ingest read them (ingest.fail_on_data_loss "
    "false): one JSON file each, read into the ledger record of the batch that skipped them.",
    format="json",
)

BRONZE_OWNER = Dataset(
    name="bronze.owner",
    layer="ops",
    location=(*BRONZE.location, "_owner.json"),
    writer="ingest",
    description="Which topic and checkpoint own Bronze's batch ids (a second checkpoint would reuse them).",
    format="json",
)

INGEST_CHECKPOINT = Dataset(
    name="checkpoint.ingest",
    layer="ops",
    location=("_checkpoints", "bronze", "{topic}"),
    writer="ingest",
    description="Spark's streaming checkpoint of the ingest: offsets per batch, commits.",
    format="checkpoint",
)

INGEST_DEDUP = Dataset(
    name="checkpoint.ingest_dedup",
    layer="ops",
    location=(*INGEST_CHECKPOINT.location, "dedup"),
    writer="ingest",
    description="The event ids each micro-batch was first to see within the dedup window (two 64-bit "
    "hashes each, one .npy file per batch, `medallion.bronze.dedup`), inside the checkpoint it belongs to; "
    "a batch's file is deleted once the window has passed it.",
    format="npy",
)

# --- dead letters ----------------------------------------------------------------------------------

DLQ_COLUMNS = columns(
    "source_topic string, source_partition int, source_offset long, source_file string, key string, "
    "payload string, stage string, run_id string, error_class string, error_message string, "
    "failed_rules array<string>, failed_at timestamp"
)
"""Every DLQ record: where it came from (Kafka coordinates or input file), what it was (key and payload,
PII redacted), which stage and run rejected it, and why (class, message, every failed rule)."""

BRONZE_DLQ = Dataset(
    name="dlq.bronze",
    layer="dlq",
    location=("dlq", "bronze"),
    writer="ingest",
    description="Kafka records that broke the contract (payload redacted), per micro-batch.",
    partitions=(BATCH,),
    columns=DLQ_COLUMNS,
)

SILVER_DLQ = Dataset(
    name="dlq.silver",
    layer="dlq",
    location=("dlq", "silver"),
    writer="silver",
    description="Bronze events that failed one of Silver's drop rules, with their Bronze coordinates.",
    partitions=(EVENT_DATE,),
    date_column=EVENT_DATE,
    columns=DLQ_COLUMNS,
)

PRODUCE_DLQ = Dataset(
    name="dlq.produce",
    layer="dlq",
    location=("_state", "produce_dlq"),
    writer="produce",
    description="Records the producer could not deliver (one JSON-lines file per run).",
    format="files",
)

# --- Silver ----------------------------------------------------------------------------------------

SILVER = Dataset(
    name="silver.user_events",
    layer="silver",
    location=("silver", "user_events"),
    writer="silver",
    description="One flat, typed, enriched row per event (duplicates across batches removed).",
    partitions=(EVENT_DATE, EVENT_TYPE),
    date_column=EVENT_DATE,
    key=("event_id",),
    columns=columns(
        "event_id string, event_time timestamp, user_id string, session_id string, item_id string, "
        "device_os string, device_browser string, device_type string, geo_country string, "
        "geo_city string, geo_lat double, geo_lon double, ip_prefix string, user_agent string, "
        "referrer string, page string, email_hmac string, phone_hmac string, price decimal(18,4), "
        "quantity long, currency string, source_topic string, source_partition int, "
        "source_offset long, ingested_at timestamp, amount decimal(18,4), item_category string, "
        "item_brand string, user_segment string, user_signup_date date, amount_usd decimal(18,4), "
        "ua_browser_family string, ua_os_family string, ua_device_family string, referrer_domain string, "
        "geo_country_name string, event_hour int, event_weekday int, is_weekend boolean"
    ),
)
"""Silver's columns, in the order it writes them (``event_date`` and ``event_type`` are the partitions).
``quantity`` is a long, as in Bronze, so every quantity the contract lets in fits; a price or an amount
beyond ``decimal(18,4)`` (exact money; Gold's sums of it stay within ``decimal(28,4)``) is stored as
null by Silver and the ``amounts_fit`` rule sends its event to Silver's DLQ. ``amount_usd`` uses the
rate in force on the event's date; ``ua_*`` are parsed from ``user_agent``
(ua-parser), ``event_hour`` is UTC and ``event_weekday`` ISO (1 = Monday)."""

# --- lookups ---------------------------------------------------------------------------------------

ITEMS = Dataset(
    name="lookup.items",
    layer="lookup",
    location=("lookups", "items"),
    writer="lookups load, produce",
    description="The item catalogue.",
    key=("item_id",),
    columns=columns(
        "item_id string, category string, brand string, base_price_usd double, popularity_rank int"
    ),
)
USERS = Dataset(
    name="lookup.users",
    layer="lookup",
    location=("lookups", "users"),
    writer="lookups load, produce",
    description="Users: sign-up date, home country and city, segment, currency.",
    key=("user_id",),
    columns=columns(
        "user_id string, signup_date date, country string, city string, segment string, currency string"
    ),
)
CURRENCY_RATES = Dataset(
    name="lookup.currency_rates",
    layer="lookup",
    location=("lookups", "currency_rates"),
    writer="lookups load, produce",
    description="USD for one unit of each currency (price * rate_to_usd), from as_of_date on; loads add dates, "
    "keeping the earlier ones.",
    key=("currency", "as_of_date"),
    columns=columns("currency string, rate_to_usd double, as_of_date date"),
)
LOOKUPS = (ITEMS, USERS, CURRENCY_RATES)

# --- Gold: one table per declared feature family -----------------------------------------------------


def _gold_dataset(fam: FeatureFamily) -> Dataset:
    return Dataset(
        name=f"gold.{fam.name}",
        layer="gold",
        location=("gold", fam.name),
        writer="gold",
        description=fam.description,
        partitions=(FEATURE_DATE,),
        date_column=FEATURE_DATE,
        key=(fam.entity.join_key, FEATURE_DATE),
        columns=(
            Column(fam.entity.join_key, "string", fam.entity.description),
            Column(
                EVENT_TIMESTAMP, "timestamp", "The end of feature_date (exclusive): when the row is valid."
            ),
            Column(CREATED_TIMESTAMP, "timestamp", "When the Gold run wrote the row."),
            *(Column(f.name, f.type.spark, f.description) for f in fam.features),
        ),
    )


GOLD_TABLES = tuple(_gold_dataset(f) for f in FAMILIES)


def gold_table(name: str) -> Dataset:
    """The Gold table of the feature family ``name``."""
    family(name)  # a clear error for an unknown family
    return next(t for t in GOLD_TABLES if t.name == f"gold.{name}")


# --- quality, operations, serving ----------------------------------------------------------------------

QUALITY_RESULTS = Dataset(
    name="quality.results",
    layer="quality",
    location=("_quality", "rule_results"),
    writer="silver, validate",
    description="One JSON file per run and table (`<table>/<time>-<run_id>.json`): per rule the rows checked and "
    "failed, failure rate, action and outcome; the run's data-quality score. Read without Spark.",
    format="json",
)

FEATURE_SCHEMAS = Dataset(
    name="features.schemas",
    layer="quality",
    location=("_features", "schemas"),
    writer="gold",
    description="The feature schema registry: one JSON file per family and version (`<family>/v<N>.json`): "
    "the features with their types and descriptions, the entity, the code version that wrote it, and "
    "what changed from the version before. Read without Spark.",
    format="json",
)

FEATURE_DRIFT = Dataset(
    name="quality.drift",
    layer="quality",
    location=("_quality", "drift"),
    writer="gold",
    description="Feature drift per Gold table and feature date (`<table>/<feature_date>.json`): per feature "
    "the PSI against the reference window, the KS statistic (numeric features), row counts and the alert. "
    "Read without Spark.",
    format="json",
)

FEATURE_PROFILES = Dataset(
    name="quality.drift_profiles",
    layer="quality",
    location=("_quality", "profiles"),
    writer="gold",
    description="What drift compares, per Gold table and feature date (`<table>/<feature_date>.json`): per "
    "numeric feature its values' distribution as at most 512 steps (exact up to 512 values), per "
    "categorical feature the count of each category. A later date's reference reads these, not the table. "
    "Read without Spark.",
    format="json",
)

LEDGER = Dataset(
    name="ops.ledger",
    layer="ops",
    location=("_ledger",),
    writer="every stage",
    description="The run ledger: one JSON record per stage run (per micro-batch for ingest), a folder per "
    "stage, then <day>/<hour>/ by run start; _keys/ maps a key to its record.",
    format="json",
)

ERASURE_REGISTER = Dataset(
    name="ops.erasure_register",
    layer="ops",
    location=("_state", "erasure_register.json"),
    writer="forget",
    description="The keyed hashes (never a clear value) of every person `forget` erased, and one entry per "
    "request: Bronze drops a record that matches one, so a replay of Kafka cannot bring them back.",
    format="json",
)

COMPACTION_JOURNAL = Dataset(
    name="ops.compaction_journal",
    layer="ops",
    location=("_state", "compaction"),
    writer="compact",
    description="One JSON file per unfinished `compact` run (`<run_id>.json`): the partition being rewritten, "
    "its old files, the staged new ones; the next `compact` completes or rolls back what a crash left.",
    format="json",
)

PII_DEV_KEY = Dataset(
    name="ops.pii_dev_key",
    layer="ops",
    location=("_state", "pii_dev.key"),
    writer="ingest",
    description="The development HMAC key the local setting generates when MEDALLION_PII_KEY is unset.",
    format="files",
)

METRICS = Dataset(
    name="ops.metrics",
    layer="ops",
    location=("_state", "metrics"),
    writer="every stage",
    description="Prometheus textfiles (node-exporter's textfile collector), one per stage, and their running totals.",
    format="files",
    override="metrics.textfile_dir",
)

LOCKS = Dataset(
    name="ops.locks",
    layer="ops",
    location=("_state", "locks"),
    writer="every stage",
    description="One lock file per stage, so an overlapping cron run of the same stage stops at once.",
    format="files",
)

STATE = Dataset(
    name="ops.state",
    layer="ops",
    location=("_state",),
    writer="up / ingest",
    description="Local state of the embedded setting: the broker's pid file and log, the development PII key.",
    format="files",
)

FEAST_REGISTRY = Dataset(
    name="feast.registry",
    layer="feast",
    location=("_feast", "registry.db"),
    writer="materialize",
    description="Feast's registry of entities and feature views.",
    format="feast-registry",
    override="serving.registry_path",
)

FEAST_ONLINE_SQLITE = Dataset(
    name="feast.online_sqlite",
    layer="feast",
    location=("_feast", "online.db"),
    writer="materialize",
    description="Feast's SQLite online store (when serving.online_store is sqlite).",
    format="sqlite",
    override="serving.sqlite_path",
)


@dataclass(frozen=True)
class Catalog:
    datasets: tuple[Dataset, ...] = field(default_factory=tuple)

    def __iter__(self) -> Iterator[Dataset]:
        return iter(self.datasets)

    def get(self, name: str) -> Dataset:
        for d in self.datasets:
            if d.name == name:
                return d
        known = ", ".join(d.name for d in self.datasets)
        raise KeyError(f"no dataset {name!r} in the catalogue; known: {known}")

    def tables(self) -> list[Dataset]:
        """The Parquet tables, in pipeline order (what `status` lists)."""
        return [d for d in self.datasets if d.format == "parquet"]


CATALOG = Catalog(
    (
        BRONZE,
        BRONZE_DLQ,
        SILVER,
        SILVER_DLQ,
        *GOLD_TABLES,
        *LOOKUPS,
        PRODUCE_DLQ,
        QUALITY_RESULTS,
        FEATURE_SCHEMAS,
        FEATURE_DRIFT,
        FEATURE_PROFILES,
        LEDGER,
        INGEST_CHECKPOINT,
        INGEST_DEDUP,
        INGEST_DATA_LOSS,
        BRONZE_OWNER,
        STATE,
        ERASURE_REGISTER,
        COMPACTION_JOURNAL,
        PII_DEV_KEY,
        METRICS,
        LOCKS,
        FEAST_REGISTRY,
        FEAST_ONLINE_SQLITE,
    )
)
