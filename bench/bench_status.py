"""Benchmark: `medallion status` and `silver --incremental`'s planning against the ledger's age.

Builds two lakes in a temporary directory that differ only in the ledger's ingest records: 1,000
(under three hours of continuous ingest at the default 10-second trigger) and 100,000 (11.6 days).
Both hold the same Bronze table (one small Parquet file per hour for 12 days: 288 `dt/hr/batch`
partitions) and the same records of the other stages `status` shows (one of each per hour). Ingest records
are written the way Bronze's job writes them: through `Ledger.write` under the key
`<topic>-<checkpoint id>-b<batch:08d>`, with the same JSON shape (the second write of a batch replaces
the first in place, so each is written once, with its final outcome).

Then `--rounds` rounds, each measuring both lakes in turn (so outside load hits both alike); medians of:
- `medallion status` as a subprocess (the real command: Python start-up, imports, the broker probe,
  Parquet footers, the ledger), with no broker (`kafka.embedded=false`, a closed port);
- `plan(cfg, Ledger(root))`, the planning step of `silver --incremental`, in-process;
- `Ledger.last` of every stage `status` reads, in-process: the ledger's share of `status`.

    python bench/bench_status.py [--records 100000] [--baseline 1000] [--rounds 5] [--keep DIR]

Target: status under 2 s with a 100k-record ledger, and a cost that does not grow with the
ledger's age (ratio 100k / 1k near 1).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from medallion.core.catalog import BRONZE
from medallion.core.config import Config, load_config
from medallion.core.ledger import Ledger, RunRecord
from medallion.operations.status import STAGES
from medallion.silver.plan import plan

REPO = Path(__file__).resolve().parents[1]
TOPIC = "user_events"
CHECKPOINT_ID = "3f2a9c1e"
TRIGGER_S = 10
BRONZE_DAYS = 12
NO_BROKER = "127.0.0.1:1"


def config(root: Path) -> Config:
    overrides = {"lake.root": str(root), "kafka.embedded": False, "kafka.bootstrap_servers": NO_BROKER}
    return load_config("local", REPO / "config", overrides, environ={})


def iso(t: dt.datetime) -> str:
    return t.isoformat(timespec="milliseconds")


def ingest_record(batch: int, started: dt.datetime) -> RunRecord:
    """One micro-batch's record, shaped as `bronze.accounting.BatchLedger._write` shapes it."""
    bronze, dlq, dropped = 1960 + batch % 37, 20 + batch % 5, 20
    record = RunRecord(
        stage="ingest",
        run_id=f"20260105T000000-1a2b3c4d-b{batch}",
        started_at=iso(started),
        inputs={"topic": TOPIC, "batch_id": batch},
    )
    record.count(input=bronze + dlq + dropped, output=bronze, dlq=dlq, dropped=dropped)
    record.metrics = {
        "dlq_by_reason": {"required:event_id": dlq // 2, "enum:event_type": dlq - dlq // 2},
        "pii_scrubbed": {"email": bronze // 3, "phone": bronze // 5, "ip": bronze},
        "rows_per_s": 4200.0,
        "seconds_by_phase": {"read": 0.31, "bronze": 0.18, "dlq": 0.09},
        "lag": 0,
    }
    record.outcome = "succeeded"
    record.duration_s = 0.48
    record.finished_at = iso(started + dt.timedelta(seconds=0.48))
    return record


def stage_record(stage: str, started: dt.datetime, batch: int) -> RunRecord:
    record = RunRecord(
        stage=stage,
        run_id=started.strftime("%Y%m%dT%H%M%S") + f"-{stage[:4]}0000",
        started_at=iso(started),
        inputs={"dates": started.date().isoformat()},
    )
    record.count(input=80_000, output=79_900, dlq=0, dropped=100)
    record.metrics = {"max_bronze_batch": batch, "duplicates_dropped": 100}
    record.outcome = "succeeded"
    record.duration_s = 12.5
    record.finished_at = iso(started + dt.timedelta(seconds=12.5))
    return record


def write_bronze(cfg: Config, now: dt.datetime, last_batch: int) -> None:
    """One small Parquet file per hour: ``dt=/hr=/batch=`` like Bronze's writer, batch ids rising."""
    start = (now - dt.timedelta(days=BRONZE_DAYS)).replace(minute=0, second=0, microsecond=0)
    hours = BRONZE_DAYS * 24
    table = pa.table({"event_id": [f"e{i}" for i in range(200)], "event_type": ["page_view"] * 200})
    for h in range(hours):
        t = start + dt.timedelta(hours=h)
        batch = last_batch * (h + 1) // hours
        part = Path(BRONZE.partition_path(cfg, dt=f"{t:%Y-%m-%d}", hr=f"{t:%H}", batch=batch))
        part.mkdir(parents=True)
        pq.write_table(table, part / "part-00000.snappy.parquet")


def write_other_stages(ledger: Ledger, now: dt.datetime, ingest_records: int) -> None:
    """The other stages `status` shows run hourly over the last 12 days, whatever the ingest's age."""
    hourly = now.replace(minute=5, second=0, microsecond=0) - dt.timedelta(days=BRONZE_DAYS)
    hours = BRONZE_DAYS * 24
    for h in range(hours):
        started = hourly + dt.timedelta(hours=h)
        for offset, stage in enumerate(s for s in STAGES if s != "ingest"):
            seen = (ingest_records - 1) * h // hours
            ledger.write(stage_record(stage, started + dt.timedelta(minutes=offset), seen))


def build_lake(root: Path, ingest_records: int, now: dt.datetime) -> Config:
    cfg = config(root)
    ledger = Ledger(cfg.lake.root)
    first = now - dt.timedelta(seconds=TRIGGER_S * ingest_records)
    built = time.perf_counter()
    for batch in range(ingest_records):
        started = first + dt.timedelta(seconds=TRIGGER_S * batch)
        ledger.write(ingest_record(batch, started), key=f"{TOPIC}-{CHECKPOINT_ID}-b{batch:08d}")
        if batch and not batch % 20_000:
            rate = batch / (time.perf_counter() - built)
            print(f"  {batch:,} ingest records ({rate:,.0f}/s)", flush=True)
    write_other_stages(ledger, now, ingest_records)
    write_bronze(cfg, now, ingest_records - 1)
    print(f"  built in {time.perf_counter() - built:.1f}s", flush=True)
    return cfg


def status_command(root: Path) -> float:
    env = {
        **os.environ,
        "MEDALLION__LAKE__ROOT": str(root),
        "MEDALLION__KAFKA__EMBEDDED": "false",
        "MEDALLION__KAFKA__BOOTSTRAP_SERVERS": NO_BROKER,
    }
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "medallion.cli.main", "--config-dir", str(REPO / "config"), "status"],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    seconds = time.perf_counter() - started
    if done.returncode != 0 or "last runs" not in done.stdout:
        raise SystemExit(f"medallion status failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return seconds


def timed(fn: Callable[[], object]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def measure_round(root: Path, cfg: Config) -> dict[str, float]:
    def last_runs() -> None:
        ledger = Ledger(cfg.lake.root)
        for stage in STAGES:
            assert ledger.last(stage, outcome=None) is not None, stage

    return {
        "status": status_command(root),
        "planning": timed(lambda: plan(cfg, Ledger(cfg.lake.root))),
        "last": timed(last_runs),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000, help="ingest records in the big ledger")
    parser.add_argument("--baseline", type=int, default=1_000, help="ingest records in the small ledger")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--keep", type=Path, help="build the lakes here and keep them (reused if present)")
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.2f}", flush=True)

    base = args.keep or Path(tempfile.mkdtemp(prefix="bench_status_"))
    now = dt.datetime.now(dt.UTC)
    lakes: dict[int, tuple[Path, Config]] = {}
    rounds: dict[int, list[dict[str, float]]] = {}
    try:
        for n in (args.baseline, args.records):
            root = base / f"lake_{n}"
            if root.exists() and args.keep:
                print(f"reusing {root}", flush=True)
                cfg = config(root)
                # The same names as at the build (a stage `status` shows may have been added since).
                start = dt.datetime.fromisoformat(Ledger(cfg.lake.root).records("silver")[-1].started_at)
                write_other_stages(Ledger(cfg.lake.root), start.replace(minute=0) + dt.timedelta(hours=1), n)
            else:
                print(f"building {root} with {n:,} ingest records", flush=True)
                cfg = build_lake(root, n, now)
            # Planning sees the lake as built: the newest Bronze batch, and the last hour's dates as new.
            planned = plan(cfg, Ledger(cfg.lake.root))
            dates, newest = planned.dates, planned.finished
            assert newest == n - 1 and dates, (newest, n, dates)
            lakes[n] = (root, cfg)
        # Rounds alternate the two lakes, so that load from other programs hits both alike.
        for _ in range(args.rounds):
            for n, (root, cfg) in lakes.items():
                rounds.setdefault(n, []).append(measure_round(root, cfg))
    finally:
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)
    results = {n: {k: statistics.median(r[k] for r in rs) for k in rs[0]} for n, rs in rounds.items()}

    small, big = results[args.baseline], results[args.records]
    print(f"\n{'':24}{args.baseline:>12,}{args.records:>12,}   ratio")
    for name, label in (
        ("status", "medallion status"),
        ("planning", "silver planning"),
        ("last", f"Ledger.last x{len(STAGES)} stages"),
    ):
        print(f"{label:24}{small[name]:>11.3f}s{big[name]:>11.3f}s{big[name] / small[name]:>8.2f}")
    verdict = "under" if big["status"] < 2.0 else "OVER"
    print(
        f"\nmedallion status with a {args.records:,}-record ledger: {big['status']:.2f}s ({verdict} the 2 s "
        f"target); {big['status'] / small['status']:.2f} x the {args.baseline:,}-record ledger's"
    )


if __name__ == "__main__":
    main()
