"""Silver against a plain Spark job on the same Bronze, at two sizes, in one run.

    python bench/bench_silver.py                 # 1M and 4M events
    python bench/bench_silver.py --sizes 200000 800000 --keep

For each size: generate Bronze directly as Parquet with Spark (Bronze's columns and dt/hr/batch
partitions, users/items/currencies of the synthetic world's lookups, a few dozen user agents), then
time, in the same session:

- plain: read the same Bronze, flatten it to the same rows, write them partitioned by
  event_date/event_type (what any Spark job reading Bronze must at least do);
- silver: `medallion.silver.job.run` with every default rule (dedupe, lookups, rates, user agents,
  rules, DLQ, quality results, ledger).

Prints the four wall times, Silver / plain at each size, and Silver's time at 4× the data / at 1×.
Targets: Silver ≤ 2× plain; 4× the data ≤ 4.4× the time.
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from medallion.core import catalog, stages  # noqa: E402
from medallion.core.config import load_config  # noqa: E402
from medallion.core.ledger import Ledger  # noqa: E402
from tests.stage_runs import run_job

CONFIG_DIR = Path(__file__).resolve().parents[1] / "config"
FIRST_DAY = dt.date(2026, 1, 5)
DAYS = 4
USERS = 20_000
ITEMS = 2_000
_KHTML = "AppleWebKit/537.36 (KHTML, like Gecko)"
_SAFARI = "AppleWebKit/605.1.15 (KHTML, like Gecko)"
AGENTS = [
    f"Mozilla/5.0 (Windows NT 10.0; Win64; x64) {_KHTML} Chrome/1{{v}}.0.0.0 Safari/537.36",
    f"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) {_SAFARI} Version/1{{v}}.1 Safari/605.1.15",
    f"Mozilla/5.0 (iPhone; CPU iPhone OS 17_{{v}} like Mac OS X) {_SAFARI} Version/17.{{v}} Mobile/15E148 Safari/604.1",
    f"Mozilla/5.0 (Linux; Android 14; Pixel {{v}}) {_KHTML} Chrome/12{{v}}.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (X11; Linux x86_64; rv:12{v}.0) Gecko/20100101 Firefox/12{v}.0",
]


def generate_bronze(spark: Any, cfg: Any, n: int) -> None:
    """``n`` Bronze events over DAYS days, written as ingest writes them (dt/hr/batch)."""
    from pyspark.sql import functions as F

    from medallion.core.lake import spark_schema
    from medallion.produce.lookups import write_lookups

    write_lookups(cfg, seed=1, users=USERS, items=ITEMS, as_of=FIRST_DAY)
    agents = [a.format(v=v) for a in AGENTS for v in range(8)]
    r = F.rand(7)
    kind = F.when(r < 0.45, "page_view").when(r < 0.6, "search").when(r < 0.85, "click")
    kind = kind.when(r < 0.93, "add_to_cart").when(r < 0.96, "remove_from_cart").otherwise("purchase")
    commerce = F.col("event_type").isin("add_to_cart", "remove_from_cart", "purchase")
    seconds = F.floor(F.rand(11) * DAYS * 86400).cast("long")
    start = int(dt.datetime.combine(FIRST_DAY, dt.time()).replace(tzinfo=dt.UTC).timestamp())
    user_n = (F.floor(F.rand(13) * USERS) + 1).cast("int")
    currency = F.element_at(
        F.array(*[F.lit(c) for c in ("USD", "EUR", "GBP", "JPY", "INR")]), (user_n % 5) + 1
    )
    df = (
        spark.range(n)
        .withColumn("event_type", kind)
        .withColumn("event_time", F.timestamp_seconds(F.lit(start) + seconds))
        .select(
            F.lit(1).alias("schema_version"),
            F.expr("uuid()").alias("event_id"),
            "event_type",
            "event_time",
            F.format_string("u_%06d", user_n).alias("user_id"),
            F.format_string("s-%d", (F.col("id") / 20).cast("long")).alias("session_id"),
            F.when(
                F.col("event_type") != "search", F.format_string("i_%05d", (F.col("id") % ITEMS) + 1)
            ).alias("item_id"),
            F.struct(
                F.lit("Windows").alias("os"), F.lit("Chrome").alias("browser"), F.lit("desktop").alias("type")
            ).alias("device"),
            F.struct(
                F.lit("DE").alias("country"),
                F.lit("Berlin").alias("city"),
                F.lit(52.52).alias("lat"),
                F.lit(13.4).alias("lon"),
            ).alias("geo"),  # fmt: skip
            F.struct(
                F.lit("203.0.113.0/24").alias("ip_prefix"),
                F.element_at(
                    F.array(*[F.lit(a) for a in agents]), (F.col("id") % len(agents)).cast("int") + 1
                ).alias("user_agent"),
                F.lit("https://www.google.com/").alias("referrer"),
                F.format_string("/p/i_%05d", (F.col("id") % ITEMS) + 1).alias("page"),
            ).alias("context"),
            F.struct(
                F.sha2(F.col("id").cast("string"), 256).alias("email_hmac"),
                F.lit(None).cast("string").alias("phone_hmac"),
            ).alias("user"),
            F.when(commerce, F.round(F.rand(17) * 100, 2)).alias("price"),
            F.when(commerce, F.lit(1).cast("long")).alias("quantity"),
            F.when(commerce, currency).alias("currency"),
            F.lit("user_events").alias("_topic"),
            (F.col("id") % 4).cast("int").alias("_partition"),
            F.col("id").alias("_offset"),
            F.col("event_time").alias("_kafka_timestamp"),
            F.col("event_time").alias("_ingested_at"),
            F.lit("bench").alias("_run_id"),
            F.date_format("event_time", "yyyy-MM-dd").alias(catalog.DT),
            F.hour("event_time").alias(catalog.HR),
            (F.col("id") % 5).alias(catalog.BATCH),
        )
    )
    schema = spark_schema(
        catalog.BRONZE.columns
        + catalog.columns(f"{catalog.DT} string, {catalog.HR} int, {catalog.BATCH} long")
    )
    df.select(*[F.col(f.name).cast(f.dataType) for f in schema.fields]).write.mode("overwrite").partitionBy(
        *catalog.BRONZE.partitions
    ).parquet(catalog.BRONZE.path(cfg))


def plain_job(spark: Any, cfg: Any, out: str) -> float:
    from medallion.silver.transforms import flatten_event

    t = time.perf_counter()
    bronze = spark.read.parquet(catalog.BRONZE.path(cfg))
    flat = bronze.transform(flatten_event).drop("_bronze_file")
    flat.write.mode("overwrite").partitionBy(*catalog.SILVER.partitions).parquet(out)
    return time.perf_counter() - t


def silver_job(spark: Any, cfg: Any) -> tuple[float, Any]:
    from medallion.silver import job

    dates = [FIRST_DAY + dt.timedelta(days=i) for i in range(DAYS)]
    t = time.perf_counter()
    result = run_job(
        stages.SILVER,
        job.run,
        spark,
        cfg,
        dates,
        run_id=f"bench-{time.time_ns()}",
        ledger=Ledger(cfg.lake.root),
    )
    return time.perf_counter() - t, result


def files_per_partition(path: str) -> tuple[int, int, float]:
    parts = [p for p in Path(path).glob("*=*/*=*") if p.is_dir()]
    files = [f for p in parts for f in p.glob("*.parquet")]
    size = sum(f.stat().st_size for f in files)
    return len(parts), len(files), size / max(len(files), 1) / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs=2, default=[1_000_000, 4_000_000])
    parser.add_argument("--driver-memory", default="4g")
    parser.add_argument("--keep", action="store_true", help="keep the lake (its path is printed)")
    args = parser.parse_args()

    from loguru import logger

    from medallion.engines.spark import get_spark

    logger.remove()
    root = Path(tempfile.mkdtemp(prefix="bench-silver-"))
    figures: dict[int, tuple[float, float]] = {}
    spark = None
    try:
        for n in args.sizes:
            lake = root / f"lake-{n}"
            cfg = load_config(
                "local",
                CONFIG_DIR,
                {"lake.root": str(lake), "spark.driver_memory": args.driver_memory},
                environ={},
            )
            spark = spark or get_spark(cfg)
            t = time.perf_counter()
            generate_bronze(spark, cfg, n)
            print(f"{n:,} events: Bronze generated in {time.perf_counter() - t:.1f} s", flush=True)
            if not figures:  # warm up the session (JIT, Python workers) on a small copy, untimed
                warm = load_config("local", CONFIG_DIR, {"lake.root": str(root / "warm")}, environ={})
                generate_bronze(spark, warm, 20_000)
                plain_job(spark, warm, str(root / "warm-plain"))
                silver_job(spark, warm)
            plain = plain_job(spark, cfg, str(root / f"plain-{n}"))
            silver, result = silver_job(spark, cfg)
            figures[n] = (plain, silver)
            parts, files, mb = files_per_partition(catalog.SILVER.path(cfg))
            pparts, pfiles, pmb = files_per_partition(str(root / f"plain-{n}"))
            print(
                f"{n:,} events: plain {plain:.1f} s, silver {silver:.1f} s (ratio {silver / plain:.2f}); "
                f"silver rows {result.output:,}, dlq {result.dlq:,}, duplicates {result.dropped:,}; "
                f"silver {files} files in {parts} partitions ({mb:.1f} MB each), plain {pfiles} files in "
                f"{pparts} partitions ({pmb:.1f} MB each)",
                flush=True,
            )
        (small, big) = args.sizes
        (p1, s1), (p4, s4) = figures[small], figures[big]
        print()
        print(f"plain  {small:>10,}: {p1:7.1f} s   {big:>10,}: {p4:7.1f} s")
        print(f"silver {small:>10,}: {s1:7.1f} s   {big:>10,}: {s4:7.1f} s")
        print(f"silver / plain: {s1 / p1:.2f} at {small:,}, {s4 / p4:.2f} at {big:,} (target ≤ 2)")
        print(
            f"silver at {big // small}× the data: {s4 / s1:.2f}× the time (target ≤ {1.1 * big / small:.1f})"
        )
    finally:
        if spark is not None:
            spark.stop()
        if args.keep:
            print(f"lake kept at {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
