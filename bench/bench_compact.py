"""What `compact --layer bronze` buys a later reader, what it costs, and that its cost follows the new
partitions, not the lake's history.

Builds a Bronze-shaped lake with pyarrow (no Spark: the cost measured is compact's own): ``--days`` days
of ``--events`` events each, every event hour written by ``--batches`` micro-batches (one small file per
hour and batch, as a continuous ingest leaves them), all committed in a checkpoint. Then:

- a Silver-like read (pyarrow.dataset over every date, all columns), before and after compaction;
- ``compact``: `jobs.compact(cfg, "bronze")`, exactly what `medallion compact --layer bronze` runs;
- one more day ingested, and ``compact`` again: the second run's time against the first's (it should be
  about one day's worth, i.e. ``1 / days`` of the first, plus listing the history's folders).

Prints the times, their ratios and the machine's load (shared machine: the ratios are the figures to
compare). Example: ``python bench/bench_compact.py --days 5 --events 200000 --batches 30``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import shutil
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from medallion.core import catalog
from medallion.core.config import Config, load_config
from medallion.maintenance import jobs
from medallion.maintenance.files import data_files

TYPES = ("page_view", "click", "search", "add_to_cart", "purchase", "remove_from_cart")
SCHEMA = pa.schema(
    [
        ("event_id", pa.string()),
        ("event_type", pa.string()),
        ("event_time", pa.timestamp("us", tz="UTC")),
        ("user_id", pa.string()),
        ("session_id", pa.string()),
        ("item_id", pa.string()),
        ("device", pa.struct([("os", pa.string()), ("browser", pa.string()), ("type", pa.string())])),
        ("user", pa.struct([("email_hmac", pa.string()), ("phone_hmac", pa.string())])),
        ("price", pa.float64()),
        ("quantity", pa.int64()),
        ("_partition", pa.int32()),
        ("_offset", pa.int64()),
    ],
    metadata={b"org.apache.spark.sql.parquet.row.metadata": b"{}"},
)


def day_table(day: dt.date, events: int, rng: random.Random, first_id: int) -> pa.Table:
    start = dt.datetime.combine(day, dt.time(), dt.UTC)
    seconds = sorted(rng.randrange(86400) for _ in range(events))
    users = [f"u_{rng.randrange(50_000):06d}" for _ in range(events)]
    hashes = [f"{rng.getrandbits(256):064x}" for _ in range(2000)]
    return pa.table(
        {
            "event_id": [f"e{first_id + i:012d}" for i in range(events)],
            "event_type": [rng.choice(TYPES) for _ in range(events)],
            "event_time": [start + dt.timedelta(seconds=s) for s in seconds],
            "user_id": users,
            "session_id": [f"{u}-{s // 1800}" for u, s in zip(users, seconds, strict=True)],
            "item_id": [f"i_{rng.randrange(5000):05d}" for _ in range(events)],
            "device": [{"os": "iOS", "browser": "Safari", "type": "mobile"}] * events,
            "user": [{"email_hmac": rng.choice(hashes), "phone_hmac": None} for _ in range(events)],
            "price": [round(rng.random() * 100, 2) for _ in range(events)],
            "quantity": [rng.randrange(1, 5) for _ in range(events)],
            "_partition": [rng.randrange(4) for _ in range(events)],
            "_offset": list(range(first_id, first_id + events)),
        },
        schema=SCHEMA,
    )


def ingest_day(cfg: Config, day: dt.date, events: int, batches: int, first_batch: int, seed: int) -> int:
    """Write one day as a continuous ingest would (each hour by ``batches`` micro-batches, one file each)
    and commit the batches; the next free batch id."""
    rng = random.Random(seed)
    table = day_table(day, events, rng, first_id=seed * events)
    hours = pc.hour(table.column("event_time")).to_pylist()
    root = Path(catalog.BRONZE.path(cfg))
    for hour in range(24):
        rows = table.filter(pa.array([h == hour for h in hours]))
        step = max(1, -(-rows.num_rows // batches))
        for b in range(batches):
            chunk = rows.slice(b * step, step)
            if chunk.num_rows == 0:
                continue
            folder = root / f"dt={day.isoformat()}" / f"hr={hour}" / f"batch={first_batch + b}"
            folder.mkdir(parents=True, exist_ok=True)
            pq.write_table(chunk, folder / "part-00000.c000.snappy.parquet", compression="snappy")
    commits = Path(catalog.INGEST_CHECKPOINT.path(cfg)) / "commits"
    commits.mkdir(parents=True, exist_ok=True)
    for b in range(first_batch, first_batch + batches):
        (commits / str(b)).write_text("v1\n{}")
    return first_batch + batches


def silver_like_read(cfg: Config) -> tuple[float, int]:
    """Bronze read as Silver reads it (every date, all columns); seconds and rows."""
    t = time.perf_counter()
    table = ds.dataset(catalog.BRONZE.path(cfg), partitioning="hive").to_table()
    return time.perf_counter() - t, table.num_rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--days", type=int, default=5, help="Days in the lake before the first compact.")
    parser.add_argument("--events", type=int, default=200_000, help="Events per day.")
    parser.add_argument("--batches", type=int, default=30, help="Micro-batches writing each hour.")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-compact-"))
    try:
        overrides = {"lake.root": str(work / "lake"), "maintenance.compact_grace_hours": 0}
        cfg = load_config("local", Path(__file__).parents[1] / "config", overrides, environ={})
        first = dt.date(2026, 10, 1)
        t = time.perf_counter()
        batch = 0
        for d in range(args.days):
            batch = ingest_day(
                cfg, first + dt.timedelta(days=d), args.events, args.batches, batch, seed=d + 1
            )
        files_before = len(data_files(catalog.BRONZE.path(cfg)))
        took = time.perf_counter() - t
        print(f"built {args.days} days x {args.events:,} events in {files_before:,} files ({took:.1f}s)")
        print(f"load average before: {os.getloadavg()}")

        read_before, rows = silver_like_read(cfg)
        t = time.perf_counter()
        first_run = jobs.compact(cfg, "bronze")
        compact_s = time.perf_counter() - t
        read_after, rows_after = silver_like_read(cfg)
        assert rows_after == rows, (rows, rows_after)
        files_after = len(data_files(catalog.BRONZE.path(cfg)))
        print(
            f"compact: {len(first_run.compacted)} hours, files {files_before:,} -> {files_after:,}, {compact_s:.2f}s"
        )
        print(
            f"silver-like read of {rows:,} rows: before {read_before:.2f}s, after {read_after:.2f}s, "
            f"ratio before/after {read_before / read_after:.1f}x"
        )

        ingest_day(cfg, first + dt.timedelta(days=args.days), args.events, args.batches, batch, seed=99)
        t = time.perf_counter()
        second_run = jobs.compact(cfg, "bronze")
        second_s = time.perf_counter() - t
        print(
            f"one more day, compact again: {len(second_run.compacted)} hours in {second_s:.2f}s; "
            f"ratio second/first {second_s / compact_s:.3f} (new work {1 / args.days:.3f} of the first)"
        )
        t = time.perf_counter()
        idle = jobs.compact(cfg, "bronze")
        idle_s = time.perf_counter() - t
        hours = idle.already + sum(idle.skipped.values())
        print(
            f"nothing left to do: {idle_s:.3f}s to list {hours} hour folders "
            f"({1000 * idle_s / max(hours, 1):.2f} ms per hour of history)"
        )
        print(f"load average after: {os.getloadavg()}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
