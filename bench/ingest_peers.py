"""Ingest peers on Spark's own Kafka source (``format("kafka")``, `IngestConfig.source` ``native``).

    python bench/ingest_peers.py [--count 200000] [--partitions 4] [--cores 2] [--bootstrap HOST:PORT]

Each peer is a function ``(spark, cfg, topic, count) -> events/s`` (for `bench_ingest.py` to call in its
own run), timing one ``availableNow`` query from the topic's start into Spark's ``noop`` sink, with the
configuration's ``maxOffsetsPerTrigger`` and dedup; events/s are ``count`` over the query's wall time:

- `native_decoder`: Spark's kafka source, then Bronze's own decoder over Arrow (``mapInArrow``) and the
  job's dedup: exactly the job's plan with ``ingest.source: native`` (`medallion.bronze.stream`).
- `native_expressions`: Spark's kafka source, then the usual Spark-expression approach: ``from_json``
  with a read schema derived from the contract, and the contract's rules as columns (JSON Schema's
  type by what ``from_json`` can tell, ``required``, ``enum``, ``const``, ``pattern``, lengths, ranges;
  payload size and emptiness; the event-time window against the record's Kafka timestamp), PII
  scrubbed with expressions (HMAC-SHA256 built from ``sha2``, IPv4 /24, coordinates rounded, names and
  search text dropped), valid rows deduplicated as the job does. What expressions cannot do as the
  decoder does: tell a JSON kind apart when ``from_json`` coerces it (``"12"`` for a number is null, a
  float for an integer is null: both become a type failure without the member's name), IPv6 /48.

``__main__`` produces ``--count`` events (the generator's 1% bad records) into one topic of an embedded
broker (or ``--bootstrap``), then runs the bare consume → Parquet loop of `bench_ingest.baseline`, the
job's default plan (`python_decoder`, for reference) and both peers on it, and prints events/s and each
one's ratio to the bare loop. Needs the connector's
jars: ``bash tests/jvm/resolve.sh``.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

BENCH_PII_KEY = b"bench-ingest-peers-key-0123456789"
_BLOCK = 64  # SHA-256's block size, for HMAC's pads


def _run_noop(spark: Any, df: Any, checkpoint: str) -> float:
    """Seconds of one availableNow query of ``df`` into the noop sink."""
    started = time.monotonic()
    query = (
        df.writeStream.format("noop")
        .option("checkpointLocation", checkpoint)
        .trigger(availableNow=True)
        .start()
    )
    query.awaitTermination()
    return time.monotonic() - started


def _native_cfg(cfg: Any, topic: str) -> Any:
    return cfg.model_copy(
        update={
            "kafka": cfg.kafka.model_copy(update={"topic": topic}),
            "ingest": cfg.ingest.model_copy(update={"source": "native", "starting_offsets": "earliest"}),
        }
    )


def native_decoder(spark: Any, cfg: Any, topic: str, count: int) -> float:
    """Events/s of Spark's kafka source + Bronze's decoder (mapInArrow) + dedup, into noop."""
    from medallion.bronze.stream import checked_stream

    df = checked_stream(spark, _native_cfg(cfg, topic), BENCH_PII_KEY)
    with tempfile.TemporaryDirectory(prefix="peer-native-decoder-") as ck:
        return count / _run_noop(spark, df, ck)


def python_decoder(spark: Any, cfg: Any, topic: str, count: int) -> float:
    """Events/s of the job's default plan (medallion's Python source with the decoder in its reader +
    dedup) into noop: the reference the two native peers are read against."""
    from medallion.bronze.stream import checked_stream

    python = _native_cfg(cfg, topic)
    python = python.model_copy(update={"ingest": python.ingest.model_copy(update={"source": "python"})})
    df = checked_stream(spark, python, BENCH_PII_KEY)
    with tempfile.TemporaryDirectory(prefix="peer-python-decoder-") as ck:
        return count / _run_noop(spark, df, ck)


def native_expressions(spark: Any, cfg: Any, topic: str, count: int) -> float:
    """Events/s of Spark's kafka source + from_json and the contract's rules as Spark expressions."""
    from pyspark.sql import functions as F

    from medallion.bronze.stream import native_options

    raw = spark.readStream.format("kafka").options(**native_options(_native_cfg(cfg, topic))).load()
    df = raw.transform(expression_rules()).transform(scrub_with_expressions(BENCH_PII_KEY))
    valid = (
        df.where(F.size("failed_rules") == 0)
        .withColumn("_seen_at", F.current_timestamp())
        .withWatermark("_seen_at", cfg.ingest.dedup_watermark)
        .dropDuplicatesWithinWatermark(["event_id"])
    )
    with tempfile.TemporaryDirectory(prefix="peer-native-expr-") as ck:
        # The DLQ side (failed_rules not empty) is a filter of the same rows: the valid side does the work.
        return count / _run_noop(spark, valid, ck)


# --- the contract as Spark expressions ---------------------------------------------------------------------


def read_schema(node: dict[str, Any]) -> Any:
    """The Spark type ``from_json`` reads a JSON Schema node as."""
    from pyspark.sql import types as T

    kinds = node.get("type", "string")
    kind = next((k for k in ([kinds] if isinstance(kinds, str) else kinds) if k != "null"), "string")
    if kind == "object":
        return T.StructType(
            [T.StructField(name, read_schema(child)) for name, child in node.get("properties", {}).items()]
        )
    return {"integer": T.LongType(), "number": T.DoubleType(), "boolean": T.BooleanType()}.get(
        kind, T.StringType()
    )


def _member_rules(col: Any, name: str, node: dict[str, Any]) -> list[tuple[str, Any]]:
    """(rule, failed?) columns for one member already present (not null)."""
    from pyspark.sql import functions as F

    rules: list[tuple[str, Any]] = []
    if "enum" in node:
        rules.append((f"enum:{name}", ~col.isin(*node["enum"])))
    if "const" in node:
        rules.append((f"const:{name}", col != F.lit(node["const"])))
    if "pattern" in node:
        rules.append((f"pattern:{name}", ~col.rlike(node["pattern"])))
    if "maxLength" in node:
        rules.append((f"length:{name}", F.char_length(col) > node["maxLength"]))
    if "minLength" in node:
        rules.append((f"length:{name}", F.char_length(col) < node["minLength"]))
    if "minimum" in node:
        rules.append((f"range:{name}", col < node["minimum"]))
    if "maximum" in node:
        rules.append((f"range:{name}", col > node["maximum"]))
    for child, child_node in node.get("properties", {}).items():
        rules += _member_rules(col[child], f"{name}.{child}", child_node)
    for child in node.get("required", []):
        rules.append((f"required:{name}.{child}", col[child].isNull()))
    return [(rule, F.when(col.isNotNull(), failed).otherwise(F.lit(False))) for rule, failed in rules]


def expression_rules() -> Any:
    """Kafka rows → parsed event columns + ``failed_rules`` (array of rule names), by expressions only."""
    from pyspark.sql import DataFrame
    from pyspark.sql import functions as F

    from medallion.core import contract

    schema = contract.EVENT_SCHEMA
    spark_schema = read_schema(schema)
    max_future_s = int(contract.MAX_FUTURE_SKEW.total_seconds())
    min_time = contract.MIN_EVENT_TIME.strftime("%Y-%m-%d %H:%M:%S")

    def _(df: DataFrame) -> DataFrame:
        text = F.col("value").cast("string")
        parsed = df.select(
            "topic", "partition", "offset", "timestamp", text.alias("payload"),
            F.octet_length("value").alias("_bytes"), F.from_json(text, spark_schema).alias("e"),
        )  # fmt: skip
        e = F.col("e")
        event_time = F.try_to_timestamp(e["event_time"], F.lit("yyyy-MM-dd'T'HH:mm:ss.SSSX"))
        checks: list[tuple[str, Any]] = [
            ("payload:empty", F.coalesce(F.col("_bytes"), F.lit(0)) == 0),
            ("payload:oversized", F.col("_bytes") > contract.MAX_EVENT_BYTES),
            ("payload:malformed_json", e.isNull()),
        ]
        for name in schema["required"]:
            checks.append((f"required:{name}", e.isNotNull() & e[name].isNull()))
        for name, node in schema["properties"].items():
            checks += _member_rules(e[name], name, node)
        commerce = e["event_type"].isin(*contract.COMMERCE_EVENT_TYPES)
        checks += [
            ("required:price", commerce & e["price"].isNull()),
            ("required:currency", commerce & e["currency"].isNull()),
            ("range:event_time_too_old", event_time < F.to_timestamp(F.lit(min_time))),
            (
                "range:event_time_future",
                event_time > F.col("timestamp") + F.expr(f"INTERVAL {max_future_s} SECONDS"),
            ),
        ]
        failed = F.filter(F.array(*[F.when(c, F.lit(rule)) for rule, c in checks]), lambda x: x.isNotNull())
        return parsed.withColumn("failed_rules", failed).withColumn("event_time_ts", event_time)

    return _


def _hmac_sha256(message: Any, key: bytes) -> Any:
    """HMAC-SHA256 (RFC 2104) of a string column, with Spark's sha2 only: H(k^opad || H(k^ipad || m))."""
    from pyspark.sql import functions as F

    if len(key) > _BLOCK:
        key = hashlib.sha256(key).digest()
    key = key.ljust(_BLOCK, b"\0")
    ipad = bytes(b ^ 0x36 for b in key)
    opad = bytes(b ^ 0x5C for b in key)
    inner = F.unhex(F.sha2(F.concat(F.lit(ipad), message.cast("binary")), 256))
    return F.sha2(F.concat(F.lit(opad), inner), 256)


def scrub_with_expressions(key: bytes) -> Any:
    """The parsed event → Bronze-like flat columns with its PII scrubbed, by expressions only."""
    from pyspark.sql import DataFrame
    from pyspark.sql import functions as F

    def _(df: DataFrame) -> DataFrame:
        e = F.col("e")
        email = F.lower(F.trim(e["user"]["email"]))
        phone = F.regexp_replace(e["user"]["phone"], r"(?!^\+)[^0-9]", "")
        ipv4 = F.regexp_extract(e["context"]["ip"], r"^(\d{1,3}\.\d{1,3}\.\d{1,3})\.\d{1,3}$", 1)
        return df.select(
            "failed_rules", "payload", "topic", "partition", "offset", "timestamp",
            e["event_id"].alias("event_id"), e["event_type"].alias("event_type"),
            F.col("event_time_ts").alias("event_time"), e["user_id"].alias("user_id"),
            e["session_id"].alias("session_id"), e["item_id"].alias("item_id"),
            e["device"].alias("device"), e["geo"]["country"].alias("geo_country"),
            e["geo"]["city"].alias("geo_city"), F.round(e["geo"]["lat"], 2).alias("geo_lat"),
            F.round(e["geo"]["lon"], 2).alias("geo_lon"),
            F.regexp_replace(e["context"]["page"], r"\?.*$", "").alias("page"),
            e["context"]["user_agent"].alias("user_agent"),
            F.when(ipv4 != "", F.concat(ipv4, F.lit(".0/24"))).alias("ip"),
            F.when(email.isNotNull(), _hmac_sha256(email, key)).alias("email_hmac"),
            F.when(phone.isNotNull() & (phone != ""), _hmac_sha256(phone, key)).alias("phone_hmac"),
            e["price"].alias("price"), e["quantity"].alias("quantity"), e["currency"].alias("currency"),
            F.to_date("event_time_ts").alias("dt"), F.hour("event_time_ts").alias("hr"),
        )  # fmt: skip

    return _


# --- main ------------------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--count", type=int, default=200_000)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--max-offsets", type=int, default=100_000)
    parser.add_argument("--bootstrap", help="an existing broker (default: start the embedded one)")
    args = parser.parse_args()

    from bench.bench_ingest import baseline
    from medallion.core.config import load_config
    from medallion.engines.embedded import find_free_port, start_broker, stop_broker
    from medallion.engines.spark import get_spark
    from medallion.produce.producer import produce_events

    jars = sorted(str(p) for p in (REPO / "tests" / "jvm" / "lib" / "spark-kafka").glob("*.jar"))
    if not jars:
        print("Spark's Kafka connector is missing: run `bash tests/jvm/resolve.sh` first.", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="bench-peers-") as tmp:
        handle = None
        bootstrap = args.bootstrap
        if bootstrap is None:
            handle = start_broker("127.0.0.1", find_free_port(), Path(tmp) / "broker", wait_s=30)
            bootstrap = handle.bootstrap
        try:
            topic = f"bench_peers_{int(time.time())}"
            cfg = load_config(
                "local",
                REPO / "config",
                {
                    "lake.root": str(Path(tmp) / "lake"),
                    "kafka.bootstrap_servers": bootstrap,
                    "kafka.embedded": False,
                    "kafka.topic": topic,
                    "kafka.partitions": args.partitions,
                    "spark.master": f"local[{args.cores}]",
                    "ingest.source": "native",
                    "ingest.native_jars": jars,
                    "ingest.max_offsets_per_trigger": args.max_offsets,
                },
                environ={},
            )
            produced = produce_events(cfg, count=args.count, seed=42, bad_ratio=0.01, write_lookups=False)
            count = produced.delivered
            print(
                f"topic {topic} at {bootstrap}: {count:,} records in {args.partitions} partitions", flush=True
            )
            n, seconds = baseline(bootstrap, topic, Path(tmp) / "baseline", args.max_offsets)
            assert n == count, f"the bare loop read {n:,} of {count:,} records"
            bare = n / seconds
            print(f"bare consume → Parquet loop: {bare:,.0f} events/s", flush=True)
            spark = get_spark(cfg)
            peers = (
                ("python source + decoder (the job's default plan)", python_decoder),
                ("native + decoder", native_decoder),
                ("native + expressions", native_expressions),
            )
            for name, peer in peers:
                rate = peer(spark, cfg, topic, count)
                print(f"{name}: {rate:,.0f} events/s, {rate / bare:.2f} × the bare loop", flush=True)
        finally:
            if handle is not None:
                stop_broker(Path(tmp) / "broker")
    return 0


if __name__ == "__main__":
    sys.exit(main())
