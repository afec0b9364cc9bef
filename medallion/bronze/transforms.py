"""Bronze transforms: raw Kafka records → validated, normalized, PII-scrubbed events (or DLQ rows).

All pure ``DataFrame -> DataFrame``. The job (``bronze/job.py``) does the streaming I/O.

Validation is deterministic for a given record: "too far in the future" is judged against the record's
own Kafka timestamp, not the wall clock, so a micro-batch replayed after a crash splits into exactly the
same valid and rejected rows as the first time (exactly-once relies on it).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from medallion import contract
from medallion.lake import require_columns
from medallion.pii.scrub import (
    hmac_sha256,
    normalize_email,
    normalize_phone,
    redact_text,
    round_coordinate,
    strip_query,
    truncate_ip,
)

RAW_COLUMNS = ("key", "value", "topic", "partition", "offset", "timestamp")
COMMERCE_REQUIRED = ("price", "quantity", "currency")


@dataclass(frozen=True)
class BronzeRules:
    """Limits a record must respect. The defaults are the contract's (``x-medallion`` in the schema)."""

    max_event_bytes: int = contract.MAX_EVENT_BYTES
    max_future_skew_s: int = int(contract.MAX_FUTURE_SKEW.total_seconds())
    min_event_time: str = contract.MIN_EVENT_TIME.isoformat()


def parse_events(df: DataFrame) -> DataFrame:
    """Decode each value and parse it once into ``e``, a struct of the contract's Spark schema.

    ``_keys`` (the top-level member names; null unless the text is one well-formed JSON object) tells a
    missing field from a present one; the JSON kind of present fields is checked by `_kind_rules`.
    """
    require_columns(df, RAW_COLUMNS, "bronze")
    text = F.col("value").cast("string")
    return df.select(
        F.col("key").cast("string").alias("_key"),
        text.alias("_raw"),
        (F.col("value").isNotNull() & F.is_valid_utf8(F.col("value"))).alias("_utf8"),
        F.octet_length(F.col("value")).alias("_bytes"),
        F.from_json(text, contract.spark_schema()).alias("e"),
        F.json_object_keys(text).alias("_keys"),
        F.col("topic").alias("_topic"),
        F.col("partition").alias("_partition"),
        F.col("offset").alias("_offset"),
        F.col("timestamp").alias("_kafka_timestamp"),
    ).withColumn("_event_time", F.try_to_timestamp(F.col("e.event_time")))


def _rule(name: str, failed: Column) -> Column:
    return F.when(failed, F.lit(name))


def _json_kinds(node: dict[str, Any], prefix: str = "") -> dict[str, tuple[str, bool]]:
    """``{field path: (JSON kind, nullable)}`` for every property of the contract, nested ones included."""
    out: dict[str, tuple[str, bool]] = {}
    for name, sub in node.get("properties", {}).items():
        kinds = sub.get("type")
        kinds = kinds if isinstance(kinds, list) else [kinds]
        kind = next(k for k in kinds if k != "null")
        out[prefix + name] = (kind, "null" in kinds)
        if kind == "object":
            out |= _json_kinds(sub, f"{prefix}{name}.")
    return out


def _kind_rules() -> Column:
    """``type:<member>`` for each member whose value is of the wrong JSON kind (an array column).

    Spark's JSON reader quietly turns a number (or an object) into text for a string field, and may read
    a quoted number as a number, so the kind is checked on the text: two scans collect the names of the
    members whose value is not a string, and of those whose value is a string, and each is intersected
    with the names that only ever have the other kind in the contract. (An object member holding a
    scalar is already caught: it reads as null.) Simple patterns and no lambdas: this runs once per
    record, and a version with a per-member lambda was three times slower.
    """
    by_name: dict[str, set[str]] = {}
    for path, (kind, _) in _json_kinds(contract.EVENT_SCHEMA).items():
        by_name.setdefault(path.rsplit(".", 1)[-1], set()).add("number" if kind == "integer" else kind)

    def only(*kinds: str) -> Column:
        return F.array(*[F.lit(n) for n, ks in sorted(by_name.items()) if len(ks) == 1 and ks <= set(kinds)])

    def members(value_starts: str) -> Column:
        return F.regexp_extract_all(F.col("_raw"), F.lit(r'"(\w+)"\s*:\s*' + value_starts), 1)

    wrong = F.array_union(
        F.array_intersect(members(r"[-0-9tf\[{]"), only("string")),
        F.array_intersect(members('"'), only("number", "object")),
    )
    return F.transform(wrong, lambda name: F.concat(F.lit("type:"), name))


def failed_rules(rules: BronzeRules) -> list[Column]:
    """One column per rule: the rule's name where the record breaks it, else null."""
    e = F.col("e")
    etype = e["event_type"]  # enums are checked as the contract spells them: "Purchase" is not an event type
    commerce = etype.isin(*contract.COMMERCE_EVENT_TYPES)
    is_object = F.col("_keys").isNotNull()
    kinds = _json_kinds(contract.EVENT_SCHEMA)

    def present(name: str) -> Column:
        return F.array_contains(F.col("_keys"), name)

    checks = [
        _rule("payload:empty", F.col("_raw").isNull() | (F.col("_bytes") == 0)),
        _rule("payload:not_utf8", ~F.col("_utf8")),
        _rule("payload:oversized", F.col("_bytes") > rules.max_event_bytes),
        # Only for what is not an object: is it JSON at all (a second parse, for bad records only)?
        _rule(
            "payload:malformed_json",
            ~is_object & (F.col("_bytes") > 0) & F.get_json_object(F.col("_raw"), "$").isNull(),
        ),
        _rule("payload:not_object", ~is_object & F.get_json_object(F.col("_raw"), "$").isNotNull()),
    ]
    checks += [_rule(f"required:{name}", is_object & ~present(name)) for name in contract.REQUIRED_FIELDS]
    # A top-level member that is present but read as null: JSON null where not allowed, or a value Spark
    # could not read as the contract's type.
    checks += [
        _rule(f"type:{name}", present(name) & e[name].isNull())
        for name, (_, nullable) in kinds.items()
        if "." not in name and not nullable
    ]
    checks += [
        _rule("type:event_time", e["event_time"].isNotNull() & F.col("_event_time").isNull()),
        _rule("enum:event_type", e["event_type"].isNotNull() & ~etype.isin(*contract.EVENT_TYPES)),
        _rule(
            "range:event_time_future",
            F.col("_event_time")
            > F.col("_kafka_timestamp") + F.make_interval(secs=F.lit(rules.max_future_skew_s)),
        ),
        _rule(
            "range:event_time_too_old", F.col("_event_time") < F.lit(rules.min_event_time).cast("timestamp")
        ),
        _rule(
            "version:schema_version",
            e["schema_version"].isNotNull() & ~e["schema_version"].isin(*contract.SUPPORTED_VERSIONS),
        ),
        _rule("required:item_id", etype.isin(*contract.ITEM_EVENT_TYPES) & e["item_id"].isNull()),
    ]
    checks += [_rule(f"required:{name}", commerce & ~present(name)) for name in COMMERCE_REQUIRED]
    checks += [
        _rule("range:price", e["price"] < 0),
        _rule("range:quantity", e["quantity"] < 1),
        _rule("enum:currency", e["currency"].isNotNull() & ~e["currency"].isin(*contract.CURRENCIES)),
    ]
    return checks


def with_validation(rules: BronzeRules) -> Callable[[DataFrame], DataFrame]:
    """Add ``failed_rules`` (array, empty when valid), ``error_class`` and ``error_message``."""

    def _(df: DataFrame) -> DataFrame:
        # No lambdas on this path: Spark interprets higher-order functions row by row, while
        # array_compact (drop the nulls) is compiled.
        # The rules go in groups of 8, each its own column: one expression holding all of them compiles
        # to a method too large for the JVM to optimize (measured: about three times slower).
        checks = failed_rules(rules)
        n_payload = sum(1 for c in checks if "payload:" in str(c))
        payload = F.array_compact(F.array(*checks[:n_payload]))
        groups = {
            f"_rules_{i}": F.array_compact(F.array(*checks[i : i + 8]))
            for i in range(n_payload, len(checks), 8)
        }
        fields = F.concat(*[F.col(name) for name in groups], _kind_rules())
        failed = F.col("failed_rules")
        first = F.try_element_at(failed, F.lit(1))
        return (
            df.withColumns({"_payload_failures": payload, **groups})
            # Payload-level failures make every field rule meaningless: report only those.
            .withColumn(
                "failed_rules",
                F.when(F.size("_payload_failures") > 0, F.col("_payload_failures")).otherwise(fields),
            )
            .drop("_payload_failures", *groups)
            .withColumns(
                {
                    "error_class": F.when(first.isNotNull(), F.split(first, ":").getItem(0)),
                    "error_message": F.when(
                        first.isNotNull(), F.concat(F.lit("record breaks: "), F.array_join(failed, ", "))
                    ),
                }
            )
        )

    return _


def valid_events(df: DataFrame) -> DataFrame:
    return df.where(F.size("failed_rules") == 0)


def rejected_events(df: DataFrame) -> DataFrame:
    return df.where(F.size("failed_rules") > 0)


def normalize_and_scrub(pii_key: bytes) -> Callable[[DataFrame], DataFrame]:
    """Valid parsed events → the Bronze row: enums lower-cased, PII scrubbed, free text and names dropped."""

    def _(df: DataFrame) -> DataFrame:
        e = F.col("e")
        email = normalize_email(e["user"]["email"])
        phone = normalize_phone(e["user"]["phone"])
        return df.select(
            e["schema_version"].cast("int").alias("schema_version"),
            F.trim(e["event_id"]).alias("event_id"),
            F.lower(F.trim(e["event_type"])).alias("event_type"),
            F.col("_event_time").alias("event_time"),
            F.trim(e["user_id"]).alias("user_id"),
            F.trim(e["session_id"]).alias("session_id"),
            F.trim(e["item_id"]).alias("item_id"),
            F.struct(
                F.lower(F.trim(e["device"]["os"])).alias("os"),
                F.lower(F.trim(e["device"]["browser"])).alias("browser"),
                F.lower(F.trim(e["device"]["type"])).alias("type"),
            ).alias("device"),
            F.struct(
                F.upper(F.trim(e["geo"]["country"])).alias("country"),
                F.trim(e["geo"]["city"]).alias("city"),
                round_coordinate(e["geo"]["lat"]).alias("lat"),
                round_coordinate(e["geo"]["lon"]).alias("lon"),
            ).alias("geo"),
            F.struct(
                truncate_ip(e["context"]["ip"]).alias("ip_prefix"),
                e["context"]["user_agent"].alias("user_agent"),
                strip_query(e["context"]["referrer"]).alias("referrer"),
                strip_query(e["context"]["page"]).alias("page"),
            ).alias("context"),
            F.struct(
                hmac_sha256(email, pii_key).alias("email_hmac"),
                hmac_sha256(phone, pii_key).alias("phone_hmac"),
            ).alias("user"),
            e["price"].cast("double").alias("price"),
            e["quantity"].cast("long").alias("quantity"),
            F.upper(F.trim(e["currency"])).alias("currency"),
            F.col("_topic").alias("_topic"),
            F.col("_partition").alias("_partition"),
            F.col("_offset").alias("_offset"),
            F.col("_kafka_timestamp").alias("_kafka_timestamp"),
        )

    return _


def with_lineage(run_id: str, batch_id: int) -> Callable[[DataFrame], DataFrame]:
    """Ingest metadata and the partition columns: ``dt``/``hr`` of the event time, and the batch."""

    def _(df: DataFrame) -> DataFrame:
        return df.withColumns(
            {
                "_ingested_at": F.current_timestamp(),
                "_run_id": F.lit(run_id),
                "dt": F.date_format("event_time", "yyyy-MM-dd"),
                "hr": F.hour("event_time"),
                "batch": F.lit(batch_id).cast("long"),
            }
        )

    return _


def as_rejected(df: DataFrame) -> DataFrame:
    """Rejected rows with the source columns the DLQ record wants, payload and key scrubbed."""
    return df.select(
        F.col("_topic").alias("source_topic"),
        F.col("_partition").alias("source_partition"),
        F.col("_offset").alias("source_offset"),
        redact_text(F.col("_key")).alias("key"),
        redact_text(F.col("_raw")).alias("payload"),
        "error_class",
        "error_message",
        "failed_rules",
    )


def drop_duplicate_events(watermark: str) -> Callable[[DataFrame], DataFrame]:
    """Drop a valid event whose ``event_id`` was already seen within ``watermark`` (streaming only).

    The watermark runs on the micro-batch's own time (``current_timestamp()`` is fixed per batch and
    recorded in the checkpoint, so a replay decides the same): nothing is ever "late" for it, however
    old the event time, which matters when a backlog of historical events is ingested. Rejected records
    are keyed by their Kafka coordinates, so they are never taken for duplicates.
    """

    def _(df: DataFrame) -> DataFrame:
        key = F.when(F.size("failed_rules") == 0, F.concat(F.lit("id:"), F.col("e.event_id"))).otherwise(
            F.concat_ws(":", F.lit("at"), "_topic", "_partition", "_offset")
        )
        return (
            df.withColumns({"_dedup_key": key, "_seen_at": F.current_timestamp()})
            .withWatermark("_seen_at", watermark)
            .dropDuplicatesWithinWatermark(["_dedup_key"])
            .drop("_dedup_key", "_seen_at")
        )

    return _
