"""Benchmark: Gold's user family over 30 feature dates against DuckDB computing the same features on the
same Silver Parquet files, and every family together.

Writes a Silver table of ``--events`` events over 30 days directly as Parquet (hive-partitioned by
event_date / event_type, the way Silver lays it out; users, sessions, items and amounts drawn with a
seeded NumPy generator), then, in one run:

1. ``gold.job.run`` for ``user_features`` over the 30 feature dates (one read, one Spark job per family,
   Parquet written with dynamic partition overwrite), wall time, the time of each phase (the ledger's
   ``seconds_by_phase``: reading Silver into the cache, building the rows, writing them) and of each
   governance piece (``governance_seconds``: registry, schema check, active entities, quality rules,
   drift);
2. the same 37 features in one DuckDB query over the same files, written as Parquet partitioned by
   feature_date, wall time; the two outputs are compared (rows, and the sums of every numeric column);
3. ``gold.job.run`` for every family together (embeddings: one Word2Vec model for the last date).

    python bench/bench_gold.py [--events 1000000] [--users 20000] [--items 5000] [--cores 2] [--keep DIR]

Target: Gold within 3 x DuckDB for the user family, while staying a Spark job that scales out.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.dataset as ds

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from medallion.core import catalog, stages
from medallion.core.config import load_config
from medallion.core.contract import EVENT_TYPES
from medallion.features import FAMILIES
from medallion.features.user import USER_FEATURES
from tests.stage_runs import run_job

REPO = Path(__file__).resolve().parents[1]
FIRST = dt.date(2026, 1, 1)
DAYS = 30
WEIGHTS = np.array([0.35, 0.10, 0.25, 0.14, 0.04, 0.12])


def write_silver(path: str, events: int, users: int, items: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    sessions = events // 8
    session = np.sort(rng.integers(0, sessions, events))
    session_user = (rng.zipf(1.3, sessions) % users).astype(np.int64)
    start = rng.uniform(0, DAYS * 86_400 - 7_200, sessions)
    seconds = start[session] + rng.uniform(0, 3_600, events)
    base = np.datetime64(FIRST.isoformat(), "us")
    event_time = base + (seconds * 1e6).astype("timedelta64[us]")
    types = np.array(EVENT_TYPES)[rng.choice(len(EVENT_TYPES), events, p=WEIGHTS)]
    item_ids = np.array([f"i{n:05d}" for n in range(items)], dtype=object)
    item = item_ids[(rng.zipf(1.2, events) % items)]
    has_item = (types != "search") & ~((types == "page_view") & (rng.random(events) < 0.4))
    item = np.where(has_item, item, np.full(events, None, dtype=object))
    categories = np.array([f"c{n % 40}" for n in range(items)], dtype=object)
    category = np.where(
        has_item,
        categories[np.char.lstrip(np.where(has_item, item, "i0").astype(str), "i").astype(int)],
        None,
    )
    cents = rng.integers(100, 50_000, events)
    priced = (types == "purchase") & (rng.random(events) < 0.95)
    amount = [Decimal(int(c)) / 100 if p else None for c, p in zip(cents, priced, strict=True)]
    dates = event_time.astype("datetime64[D]")
    table = pa.table(
        {
            "event_id": pa.array([f"e{n:08d}" for n in range(events)]),
            "event_time": pa.array(event_time, pa.timestamp("us", tz="UTC")),
            "user_id": pa.array([f"u{n:06d}" for n in session_user[session]]),
            "session_id": pa.array([f"s{n:07d}" for n in session]),
            "item_id": pa.array(item, pa.string()),
            "item_category": pa.array(category, pa.string()),
            "amount_usd": pa.array(amount, pa.decimal128(18, 4)),
            "device_type": pa.array(np.where(rng.random(events) < 0.6, "mobile", "desktop")),
            catalog.EVENT_DATE: pa.array(dates, pa.date32()),
            catalog.EVENT_TYPE: pa.array(types),
        }
    )
    ds.write_dataset(
        table,
        path,
        format="parquet",
        partitioning=ds.partitioning(
            table.select([catalog.EVENT_DATE, catalog.EVENT_TYPE]).schema, flavor="hive"
        ),
        existing_data_behavior="overwrite_or_ignore",
        max_rows_per_file=2_000_000,
    )


def duckdb_user_features(silver: str, out: str, first: dt.date, last: dt.date) -> int:
    """The user family in DuckDB SQL, from its declarations' descriptions; Parquet by feature_date."""
    import duckdb

    def per_window(w: int) -> list[str]:
        inside = f"event_date > feature_date - {w}"
        cols = [f"coalesce(sum(events) FILTER ({inside}), 0) AS events_{w}d"]
        cols += [f"coalesce(sum(n_{t}) FILTER ({inside}), 0) AS {t}_events_{w}d" for t in EVENT_TYPES]
        cols += [
            f"coalesce(sum(amount) FILTER ({inside}), 0)::DOUBLE AS revenue_{w}d",
            f"(sum(amount) FILTER ({inside}))::DOUBLE / nullif(sum(priced) FILTER ({inside}), 0) "
            f"AS avg_order_value_{w}d",
        ]
        return cols

    def recent(w: int) -> list[str]:
        inside = f"event_date > feature_date - {w}"
        return [
            f"count(DISTINCT item_id) FILTER ({inside}) AS distinct_items_{w}d",
            f"count(DISTINCT item_category) FILTER ({inside}) AS distinct_categories_{w}d",
            f"count(DISTINCT event_date) FILTER ({inside}) AS active_days_{w}d",
        ]

    counts = ",\n".join(f"count(*) FILTER (event_type = '{t}') AS n_{t}" for t in EVENT_TYPES)
    sql = f"""
    CREATE TEMP TABLE ev AS SELECT user_id, event_time, event_date, event_type, item_id, item_category, amount_usd
        FROM read_parquet('{silver}/**/*.parquet', hive_partitioning = true)
        WHERE event_date BETWEEN DATE '{first - dt.timedelta(days=29)}' AND DATE '{last}';
    CREATE TEMP TABLE dates AS SELECT CAST(range AS DATE) AS feature_date
        FROM range(DATE '{first}', DATE '{last + dt.timedelta(days=1)}', INTERVAL 1 DAY);
    CREATE TEMP TABLE daily AS SELECT user_id, event_date, count(*) AS events, {counts},
        sum(amount_usd) FILTER (event_type = 'purchase') AS amount,
        count(*) FILTER (event_type = 'purchase' AND amount_usd IS NOT NULL) AS priced,
        max(event_time) AS last_time, max(event_time) FILTER (event_type = 'purchase') AS last_purchase
        FROM ev GROUP BY ALL;
    CREATE TEMP TABLE counts AS SELECT user_id, feature_date,
        {", ".join(c for w in (1, 7, 30) for c in per_window(w))},
        max(last_time) AS last_time, max(last_purchase) AS last_purchase
        FROM daily JOIN dates ON event_date <= feature_date AND event_date > feature_date - 30 GROUP BY ALL;
    CREATE TEMP TABLE breadth AS SELECT user_id, feature_date, {", ".join(c for w in (7, 30) for c in recent(w))}
        FROM (SELECT DISTINCT user_id, event_date, item_id, item_category FROM ev) AS x
        JOIN dates ON event_date <= feature_date AND event_date > feature_date - 30 GROUP BY ALL;
    CREATE TEMP TABLE seen AS SELECT user_id, feature_date, item_id,
        bool_or(viewed AND event_date > feature_date - 7) AS v7,
        bool_or(bought AND event_date > feature_date - 7) AS b7,
        bool_or(viewed) AS v30, bool_or(bought) AS b30
        FROM (SELECT user_id, event_date, item_id, bool_or(event_type = 'page_view') AS viewed,
                     bool_or(event_type = 'purchase') AS bought
              FROM ev WHERE item_id IS NOT NULL GROUP BY ALL) AS y
        JOIN dates ON event_date <= feature_date AND event_date > feature_date - 30 GROUP BY ALL;
    CREATE TEMP TABLE conversion AS SELECT user_id, feature_date,
        count(*) FILTER (v7 AND b7)::DOUBLE / nullif(count(*) FILTER (v7), 0) AS view_to_purchase_rate_7d,
        count(*) FILTER (v30 AND b30)::DOUBLE / nullif(count(*) FILTER (v30), 0) AS view_to_purchase_rate_30d
        FROM seen GROUP BY ALL;
    COPY (
        SELECT c.*, b.* EXCLUDE (user_id, feature_date), v.* EXCLUDE (user_id, feature_date),
            (epoch_us((feature_date + 1)::TIMESTAMP) - epoch_us(last_time::TIMESTAMP)) / 86400000000.0
                AS days_since_last_event,
            (epoch_us((feature_date + 1)::TIMESTAMP) - epoch_us(last_purchase::TIMESTAMP)) / 86400000000.0
                AS days_since_last_purchase
        FROM counts c JOIN breadth b USING (user_id, feature_date)
        LEFT JOIN conversion v USING (user_id, feature_date)
    ) TO '{out}' (FORMAT PARQUET, PARTITION_BY (feature_date));
    """
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute(sql)
    return int(con.execute(f"SELECT count(*) FROM read_parquet('{out}/**/*.parquet')").fetchone()[0])  # type: ignore[index]


def column_sums(path: str) -> dict[str, float]:
    import duckdb

    names = [f.name for f in USER_FEATURES.features]
    sums = ", ".join(f"sum({n})::DOUBLE" for n in names)
    row = (
        duckdb.connect()
        .execute(f"SELECT count(*), {sums} FROM read_parquet('{path}/**/*.parquet')")
        .fetchone()
    )
    assert row is not None
    return {"rows": float(row[0]), **{n: float(v or 0.0) for n, v in zip(names, row[1:], strict=True)}}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--users", type=int, default=20_000)
    parser.add_argument("--items", type=int, default=5_000)
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--keep", type=Path, default=None, help="Keep the lake in this directory.")
    args = parser.parse_args()

    root = Path(args.keep or tempfile.mkdtemp(prefix="bench_gold_"))
    lake = root / "lake"
    cfg = load_config(
        "local",
        REPO / "config",
        {
            "lake.root": str(lake),
            "spark.master": f"local[{args.cores}]",
            "spark.shuffle_partitions": args.cores,
        },
        environ={},
    )
    silver = catalog.SILVER.path(cfg)
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    if not Path(silver).exists():
        t = time.perf_counter()
        write_silver(silver, args.events, args.users, args.items, args.seed)
        print(f"Silver: {args.events:,} events over {DAYS} days written in {time.perf_counter() - t:.1f} s")

    from medallion.core.ledger import Ledger
    from medallion.engines.spark import get_spark
    from medallion.gold import job

    spark = get_spark(cfg)
    spark.range(1).count()  # the session's start is not Gold's time
    first, last = FIRST, FIRST + dt.timedelta(days=DAYS - 1)
    ledger = Ledger(str(lake))

    t = time.perf_counter()
    gold = run_job(
        stages.GOLD,
        job.run,
        spark,
        cfg,
        first,
        last,
        run_id="bench-user",
        ledger=ledger,
        families=[USER_FEATURES],
    )
    gold_s = time.perf_counter() - t
    print(f"Gold user_features: {gold.output:,} rows for {DAYS} feature dates in {gold_s:.1f} s")
    record = ledger.last("gold")
    phases = (record.metrics.get("seconds_by_phase") if record else None) or {}
    for phase, seconds in phases.items():
        print(f"  {phase}: {seconds:.1f} s ({seconds / gold_s:.0%} of the run)")
    pieces = (record.metrics.get("governance_seconds") if record else None) or {}
    governance_s = sum(pieces.values())
    for piece, seconds in sorted(pieces.items(), key=lambda kv: -kv[1]):
        print(f"  governance {piece}: {seconds:.1f} s ({seconds / gold_s:.0%} of the run)")
    print(
        f"  governance in all: {governance_s:.1f} s ({governance_s / gold_s:.0%} of the run; target <= 25 %)"
    )

    # The same features without the run's governance (quality checks, schema registry, drift): Silver read,
    # the builder, the Parquet write.
    from medallion.core.lake import read_dates, write_partitions
    from medallion.gold.families import BUILDERS
    from medallion.gold.transforms import GoldInputs, feature_dates

    t = time.perf_counter()
    window = read_dates(spark, silver, catalog.EVENT_DATE, first - dt.timedelta(days=29), last, "Silver")
    inputs = GoldInputs(window, feature_dates(spark, first, last), cfg.gold)
    write_partitions(
        BUILDERS[USER_FEATURES.name](inputs), str(root / "bare_user_features"), [catalog.FEATURE_DATE]
    )
    bare_s = time.perf_counter() - t
    print(f"Gold user_features without governance (read, build, write): {bare_s:.1f} s")

    duck_out = str(root / "duckdb_user_features")
    shutil.rmtree(duck_out, ignore_errors=True)
    t = time.perf_counter()
    duck_rows = duckdb_user_features(silver, duck_out, first, last)
    duck_s = time.perf_counter() - t
    print(f"DuckDB user features: {duck_rows:,} rows in {duck_s:.1f} s")

    ours, theirs = column_sums(catalog.gold_table(USER_FEATURES.name).path(cfg)), column_sums(duck_out)
    differ = [k for k in ours if not np.isclose(ours[k], theirs[k], rtol=1e-9, atol=1e-9)]
    print("outputs agree (rows and every column's sum)" if not differ else f"outputs DIFFER in {differ}")

    t = time.perf_counter()
    every = run_job(
        stages.GOLD, job.run, spark, cfg, first, last, run_id="bench-all", ledger=ledger, families=FAMILIES
    )
    all_s = time.perf_counter() - t
    print(f"Gold, all {len(FAMILIES)} families: {every.output:,} rows in {all_s:.1f} s")
    print(f"load average {os.getloadavg()[0]:.1f} (1 min), {os.getloadavg()[1]:.1f} (5 min)")
    print(
        f"user family: Gold {gold_s:.1f} s, DuckDB {duck_s:.1f} s; ratio {gold_s / duck_s:.2f} (target <= 3)"
    )
    if args.keep is None:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
