"""`retention`: exactly the partitions past their age go, with what they held said; a dry run and a
locked run change nothing; uncommitted Bronze batches and the Gold dates serving needs stay."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from medallion.core import catalog, stages
from medallion.core.errors import LockHeld
from medallion.maintenance import jobs
from medallion.maintenance.report import maintenance_status

TODAY = dt.datetime.now(dt.UTC).date()


def day(n: int) -> str:
    return (TODAY - dt.timedelta(days=n)).isoformat()


def parquet(folder: Path, rows: int, **columns: Any) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    data = {"x": list(range(rows))} | {k: [v] * rows for k, v in columns.items()}
    pq.write_table(pa.table(data), folder / "part-00000.snappy.parquet")


def build(root: Path) -> None:
    bronze = root / "bronze" / "user_events"
    parquet(bronze / f"dt={day(40)}" / "hr=1" / "batch=0", 3)
    parquet(bronze / f"dt={day(40)}" / "hr=2" / "batch=1", 4)
    parquet(bronze / f"dt={day(40)}" / "hr=2" / "batch=3", 5)  # not committed: a replay may write it
    parquet(bronze / f"dt={day(5)}" / "hr=0" / "batch=2", 6)
    commits = root / "_checkpoints" / "bronze" / "user_events" / "commits"
    commits.mkdir(parents=True)
    for batch in ("0", "1", "2"):
        (commits / batch).write_text("v1\n{}")
    old_failure = dt.datetime.combine(TODAY - dt.timedelta(days=20), dt.time(), dt.UTC)
    parquet(root / "dlq" / "bronze" / "batch=0", 2, failed_at=old_failure)
    parquet(root / "dlq" / "bronze" / "batch=1", 2, failed_at=dt.datetime.now(dt.UTC))
    parquet(root / "dlq" / "silver" / f"event_date={day(15)}", 1)
    parquet(root / "dlq" / "silver" / f"event_date={day(13)}", 1)
    parquet(root / "silver" / "user_events" / f"event_date={day(500)}" / "event_type=click", 7)
    parquet(root / "silver" / "user_events" / f"event_date={day(10)}" / "event_type=click", 8)
    gold = root / "gold" / "user_features"
    for n in (500, 450, 420, 1):
        parquet(gold / f"feature_date={day(n)}", 2)
    ledger = root / "_ledger"
    for stage, n in (("silver", 401), ("silver", 3), ("ingest", 31), ("ingest", 2)):
        folder = ledger / stage / day(n) / "00"
        folder.mkdir(parents=True)
        (folder / "20260101T000000.000Z-r.json").write_text("{}")
    keys = ledger / "ingest" / "_keys"
    keys.mkdir()
    (keys / "old").write_text(f"{day(31)}/00/20260101T000000.000Z-r.json")
    (keys / "new").write_text(f"{day(2)}/00/20260101T000000.000Z-r.json")


def snapshot(root: Path) -> list[str]:
    """The lake's data, leaving out what every run writes (its ledger record, locks, metrics)."""
    names = (str(p.relative_to(root)) for p in root.rglob("*"))
    return sorted(n for n in names if not n.startswith(("_state", "_ledger/retention", "_ledger/gold")))


def test_retention_deletes_exactly_what_is_past_its_age(make_config: Callable[..., Any], lake: Path) -> None:
    cfg = make_config(
        **{"kafka.topic": "user_events", "drift.reference": "baseline"},
        **{"drift.baseline_start": day(455), "drift.baseline_end": day(445)},
    )
    build(lake)
    before = snapshot(lake)

    listed = jobs.retention(cfg, dry_run=True)
    assert snapshot(lake) == before  # a dry run lists, and deletes nothing
    with stages.run(cfg, stages.GOLD), pytest.raises(LockHeld):
        jobs.retention(cfg)  # a run holding a lock this one needs: nothing happens
    assert snapshot(lake) == before

    result = jobs.retention(cfg)
    by_name = {e.dataset: e for e in result.expired}
    assert {e.dataset: e.partitions for e in listed.expired} == {
        e.dataset: e.partitions for e in result.expired
    }
    bronze = by_name[catalog.BRONZE.name]
    assert sorted(bronze.partitions) == [f"dt={day(40)}/hr=1/batch=0", f"dt={day(40)}/hr=2/batch=1"]
    assert (bronze.rows, bronze.files) == (7, 2) and bronze.bytes > 0 and bronze.kept
    assert (lake / "bronze" / "user_events" / f"dt={day(40)}" / "hr=2" / "batch=3").is_dir()
    assert by_name[catalog.BRONZE_DLQ.name].partitions == ["batch=0"]
    assert by_name[catalog.SILVER_DLQ.name].partitions == [f"event_date={day(15)}"]
    assert by_name[catalog.SILVER.name].partitions == [f"event_date={day(500)}"]
    assert by_name[catalog.SILVER.name].rows == 7
    # 500 and 420 days old go; 450 is in the drift baseline, and yesterday is what serving reads.
    gold = by_name[catalog.gold_table("user_features").name]
    assert sorted(gold.partitions) == [f"feature_date={day(500)}", f"feature_date={day(420)}"]
    assert sorted(p.name for p in (lake / "gold" / "user_features").iterdir()) == [
        f"feature_date={day(450)}",
        f"feature_date={day(1)}",
    ]
    assert sorted(by_name[catalog.LEDGER.name].partitions) == [f"ingest/{day(31)}", f"silver/{day(401)}"]
    assert sorted(p.name for p in (lake / "_ledger" / "ingest" / "_keys").iterdir()) == ["new"]

    again = jobs.retention(cfg)
    assert again.partitions == 0
    # `status` shows the last retention that changed the lake (not this empty one's dry runs).
    last = maintenance_status(cfg)["retention"]
    assert last["outcome"] == "succeeded" and last["counts"]["partitions"] == 0
