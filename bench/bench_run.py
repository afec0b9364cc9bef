"""The whole embedded pipeline at a given size, split by stage and by each stage's phases.

Runs ``medallion run --count N`` (the README's first command, with more events) in a fresh directory,
as a user would: a new process, a new embedded broker (stopped afterwards; the script refuses to start
when one already answers, since the run would add to its topic), a new lake. Then reads the lake's ledger and prints
each stage's wall time, its rows, and the phases its ledger record times (the ingest's per batch summed:
read and decode, Bronze, DLQ, dedup; Silver's computing and counting, and writing; Gold's reading,
building and writing, and each of its guards). With the machine's load before and after.

    python bench/bench_run.py [--count 1000000] [--seed 7] [--keep DIR]

No target: the figures are a baseline, so that the next regression in any stage shows.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from medallion.core.config import load_config  # noqa: E402
from medallion.core.ledger import Ledger  # noqa: E402
from medallion.engines.embedded import is_kafka_reachable  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
ORDER = ("produce", "ingest", "silver", "gold", "materialize")
PHASES = ("seconds_by_phase", "seconds", "governance_seconds")


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"{one:.1f} (1 min), {five:.1f} (5 min)"


def phases(metrics: dict[str, Any]) -> dict[str, float]:
    out: dict[str, float] = {}
    for key in PHASES:
        for name, seconds in (metrics.get(key) or {}).items():
            label = f"governance {name}" if key == "governance_seconds" else name
            out[label] = out.get(label, 0.0) + float(seconds)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--count", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--keep", type=Path, default=None, help="Run in this (empty) directory, and keep it.")
    args = parser.parse_args()

    cfg = load_config("local", REPO / "config", environ={})
    if is_kafka_reachable(cfg.kafka.bootstrap_servers):
        raise SystemExit(
            f"A broker already answers at {cfg.kafka.bootstrap_servers}: the run would add to its topic. Stop "
            "it first (`medallion down` in the directory that started it)."
        )
    where = Path(args.keep or tempfile.mkdtemp(prefix="bench_run_"))
    where.mkdir(parents=True, exist_ok=True)
    print(f"load average {load()} on {os.cpu_count()} cores; running in {where}")
    medallion = Path(sys.executable).with_name("medallion")
    t = time.perf_counter()
    done = subprocess.run(
        [str(medallion), "run", "--count", str(args.count), "--seed", str(args.seed)],
        cwd=where,
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - t
    subprocess.run([str(medallion), "down"], cwd=where, capture_output=True, check=False)
    if done.returncode != 0:
        print(done.stdout[-3000:], done.stderr[-3000:], sep="\n")
        raise SystemExit(f"medallion run exited {done.returncode}")

    records = Ledger(str(where / "lake")).records()
    seconds: dict[str, float] = defaultdict(float)
    rows: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    split: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for record in records:
        seconds[record.stage] += record.duration_s
        for name, value in record.counts.items():
            rows[record.stage][name] += int(value)
        for name, value in phases(record.metrics).items():
            split[record.stage][name] += value

    print(f"\nmedallion run --count {args.count:,}: {wall:.1f} s wall (the process, Spark's start included)")
    print(f"{'stage':<12} {'seconds':>8}  counts / phases (seconds)")
    for stage in [s for s in ORDER if s in seconds] + sorted(set(seconds) - set(ORDER)):
        counts = ", ".join(f"{k} {v:,}" for k, v in rows[stage].items())
        print(f"{stage:<12} {seconds[stage]:>8.1f}  {counts}")
        if split[stage]:
            print(" " * 23 + ", ".join(f"{k} {v:.1f}" for k, v in split[stage].items()))
    print(f"\nload average {load()}")
    if args.keep is None:
        shutil.rmtree(where, ignore_errors=True)


if __name__ == "__main__":
    main()
