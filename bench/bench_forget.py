"""What `forget` costs on a lake of a few million events, against rewriting every partition.

Builds a Bronze- and Silver-shaped lake with pyarrow (no Spark: the cost measured is forget's own),
``--days`` days of ``--events`` events each in Bronze (hour × batch files) and Silver (event date ×
type files), from ``--users`` users; one user is active on a few days only, as people are. Then:

- ``forget``: `resolve` + `find_and_remove` (read the key columns of every file, rewrite the files
  that hold the person), exactly what `medallion forget` runs;
- ``rewrite all``: the baseline, what an erasure without the key-column pass costs: every file read
  whole, filtered, and written back.

Prints seconds for both and their ratio, with the machine's load (this machine is shared: the ratio
is the figure to compare). Example: ``python bench/bench_forget.py --events 3000000``.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import string
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from medallion.core import catalog
from medallion.core.config import load_config
from medallion.maintenance import files
from medallion.maintenance.forget import find_and_remove, resolve, seeds
from medallion.pii.scrub import Hmac

KEY = b"bench-forget-key-0123456789abcdef"
TYPES = ("page_view", "click", "search", "add_to_cart", "purchase", "remove_from_cart")


def _hex(rng: random.Random) -> str:
    return "".join(rng.choices("0123456789abcdef", k=64))


def build(root: Path, events: int, days: int, users: int, seed: int = 1) -> str:
    """The lake; returns the one person's user id (active on three of the days)."""
    rng = random.Random(seed)
    ids = [f"u_{i:06d}" for i in range(users)]
    emails = [_hex(rng) for _ in ids]
    phones = [_hex(rng) for _ in ids]
    target = ids[7]
    target_days = set(rng.sample(range(days), 3))
    per_day = events // days
    page = "/" + "".join(rng.choices(string.ascii_lowercase, k=40))
    for day in range(days):
        date = f"2026-10-{day + 1:02d}"
        pool = ids if day in target_days else ids[:7] + ids[8:]
        chosen = [rng.randrange(len(pool)) for _ in range(per_day)]
        user = pa.array([pool[c] for c in chosen])
        index = {u: i for i, u in enumerate(ids)}
        email = pa.array([emails[index[pool[c]]] for c in chosen])
        phone = pa.array([phones[index[pool[c]]] for c in chosen])
        kinds = pa.array([TYPES[rng.randrange(len(TYPES))] for _ in chosen])
        common = {
            "event_id": pa.array([f"{date}-{i}" for i in range(per_day)]),
            "user_id": user,
            "session_id": pa.array([f"s{c % 997}" for c in chosen]),
            "page": pa.array([page] * per_day),
            "price": pa.array([rng.random() * 100 for _ in chosen]),
        }
        bronze = pa.table(
            common | {"user": pa.StructArray.from_arrays([email, phone], ["email_hmac", "phone_hmac"])}
        )
        hours = pa.array([i % 24 for i in range(per_day)])
        for hour in range(24):
            folder = root / "bronze" / "user_events" / f"dt={date}" / f"hr={hour}" / f"batch={day}"
            folder.mkdir(parents=True)
            pq.write_table(bronze.filter(pc.equal(hours, hour)), folder / "part-0.snappy.parquet")
        silver = pa.table(common | {"email_hmac": email, "phone_hmac": phone})
        for kind in TYPES:
            folder = root / "silver" / "user_events" / f"event_date={date}" / f"event_type={kind}"
            folder.mkdir(parents=True)
            pq.write_table(silver.filter(pc.equal(kinds, kind)), folder / "part-0.snappy.parquet")
    return target


def rewrite_all(root: str, user_id: str) -> int:
    """The baseline: every data file read whole and written back without the person."""
    removed = 0
    for table in (catalog.BRONZE, catalog.SILVER):
        for data_file in files.data_files(f"{root}/{'/'.join(table.location)}"):
            whole = files.read_file(data_file.path)
            keep = pc.invert(pc.fill_null(pc.equal(whole["user_id"], user_id), False))
            kept = whole.filter(keep)
            removed += whole.num_rows - kept.num_rows
            files.replace_file(data_file.path, kept)
    return removed


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=3_000_000, help="Events in Bronze (and in Silver).")
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--users", type=int, default=20_000)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-forget-"))
    try:
        t = time.perf_counter()
        target = build(work / "a", args.events, args.days, args.users)
        print(f"built {args.events:,} events x 2 layers in {time.perf_counter() - t:.1f}s")
        shutil.copytree(work / "a", work / "b")
        cfg = load_config(
            "local", Path(__file__).parents[1] / "config", {"lake.root": str(work / "a")}, environ={}
        )

        t = time.perf_counter()
        person = resolve(cfg, seeds(Hmac(KEY), user_id=target, email=None, phone=None))
        result = find_and_remove(cfg, person, KEY, dry_run=False)
        forget_s = time.perf_counter() - t
        touched = sum(f.files for f in result.found)

        t = time.perf_counter()
        baseline_rows = rewrite_all(str(work / "b"), target)
        baseline_s = time.perf_counter() - t
        total_files = sum(len(files.data_files(str(work / "b" / d))) for d in ("bronze", "silver"))
        assert result.rows == baseline_rows, (result.rows, baseline_rows)
        print(f"forget: {result.rows:,} rows in {touched} of {total_files} files, {forget_s:.2f}s")
        print(f"rewrite every partition: {baseline_s:.2f}s")
        print(f"ratio forget / rewrite-all: {forget_s / baseline_s:.3f}   (load average {os.getloadavg()})")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
