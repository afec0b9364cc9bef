"""`compact` with pyarrow on small lakes: the exact multiset of rows (by a digest of every row with its
partition values), the schema and Spark's footer metadata kept, fewer files near the target; Bronze only
for committed batches of hours past the grace, merged into ``batch=<max>``; a crash after any step
settled by the next run; a second run does nothing; readers racing it never see a wrong count."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import os
import threading
from collections import Counter
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from medallion.core import catalog
from medallion.core.errors import LockHeld, UsageError
from medallion.core.ledger import Ledger
from medallion.maintenance import compact, jobs, swap
from medallion.maintenance.files import data_files, partition_values
from medallion.maintenance.report import maintenance_status

NOW = dt.datetime.now(dt.UTC)
OLD = (NOW - dt.timedelta(days=2)).date().isoformat()
SPARK_META = {b"org.apache.spark.sql.parquet.row.metadata": b'{"type":"struct","fields":[]}', b"k": b"v"}
SCHEMA = pa.schema(
    [
        ("event_id", pa.string()),
        ("event_time", pa.timestamp("us", tz="UTC")),
        ("user", pa.struct([("email_hmac", pa.string()), ("phone_hmac", pa.string())])),
        ("tags", pa.list_(pa.string())),
        ("price", pa.decimal128(18, 4)),
        ("quantity", pa.int64()),
        ("payload", pa.string()),
    ],
    metadata=SPARK_META,
)
_ids = iter(range(10**9))
_LAST_HOUR = NOW - dt.timedelta(hours=1)


def RECENT(root: Path) -> Path:  # noqa: N802
    return root / f"dt={_LAST_HOUR.date().isoformat()}" / f"hr={_LAST_HOUR.hour}"


def rows(n: int, payload: int = 8) -> pa.Table:
    ids = [next(_ids) for _ in range(n)]
    return pa.table(
        {
            "event_id": [f"e{i}" for i in ids],
            "event_time": [NOW - dt.timedelta(seconds=i) for i in ids],
            "user": [{"email_hmac": f"h{i % 7}", "phone_hmac": None} for i in ids],
            "tags": [[f"t{i % 3}"] * (i % 3) for i in ids],
            "price": [None if i % 5 == 0 else Decimal(i) / 4 for i in ids],
            "quantity": ids,
            "payload": [os.urandom(payload).hex() for _ in ids],
        },
        schema=SCHEMA,
    )


def part(folder: Path, n: int, payload: int = 8) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    name = f"part-{len(list(folder.glob('*.parquet'))):05d}-x.c000.snappy.parquet"
    pq.write_table(rows(n, payload), folder / name, compression="snappy")


def commit(cfg: Any, *batches: int) -> None:
    commits = Path(catalog.INGEST_CHECKPOINT.path(cfg)) / "commits"
    commits.mkdir(parents=True, exist_ok=True)
    for b in batches:
        (commits / str(b)).write_text("v1\n{}")


def multiset(table_path: str, drop: tuple[str, ...] = ()) -> Counter[str]:
    """Every row with its partition values (``drop``: those left out) as a digest, counted."""
    out: Counter[str] = Counter()
    for f in data_files(table_path):
        values = {k: v for k, v in partition_values(table_path, f.path).items() if k not in drop}
        for row in pq.read_table(f.path).to_pylist():
            text = json.dumps({**row, **values}, default=str, sort_keys=True)
            out[hashlib.sha256(text.encode()).hexdigest()] += 1
    return out


def leftovers(cfg: Any) -> list[str]:
    """What a finished compact must not leave: journals, staging folders."""
    folder = Path(catalog.COMPACTION_JOURNAL.path(cfg))
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def bronze_lake(cfg: Any) -> Path:
    root = Path(catalog.BRONZE.path(cfg))
    for batch in (0, 1, 2):
        part(root / f"dt={OLD}" / "hr=3" / f"batch={batch}", 5 + batch)
    part(root / f"dt={OLD}" / "hr=3" / "batch=2", 4)  # two files in one batch
    part(root / f"dt={OLD}" / "hr=4" / "batch=1", 6)  # one batch, one file: already compact
    part(root / f"dt={OLD}" / "hr=5" / "batch=2", 3)
    part(root / f"dt={OLD}" / "hr=5" / "batch=9", 3)  # not committed: the hour waits
    part(RECENT(root) / "batch=1", 2)  # the hour that just ended: within the grace
    part(RECENT(root) / "batch=2", 2)
    commit(cfg, 0, 1, 2)
    return root


def test_bronze_merges_each_closed_hour_into_its_largest_committed_batch(
    make_config: Callable[..., Any],
) -> None:
    cfg = make_config()
    root = bronze_lake(cfg)
    before = multiset(str(root), drop=(catalog.BATCH,))
    listing = sorted(str(p.relative_to(root)) for p in root.rglob("*"))

    dry = jobs.compact(cfg, "bronze", dry_run=True)
    assert sorted(str(p.relative_to(root)) for p in root.rglob("*")) == listing  # a dry run changes nothing
    assert [(c.partition, c.files_before, c.files_after, c.rows) for c in dry.compacted] == [
        (f"{catalog.BRONZE.name}/dt={OLD}/hr=3", 4, 1, 5 + 6 + 7 + 4)
    ]

    done = jobs.compact(cfg, "bronze")
    assert [(c.partition, c.files_after, c.rows) for c in done.compacted] == [
        (f"{catalog.BRONZE.name}/dt={OLD}/hr=3", 1, 22)
    ]
    assert done.skipped == {
        "a batch the ingest has not committed": 1,
        "an hour within maintenance.compact_grace_hours": 1,
    }
    hour = root / f"dt={OLD}" / "hr=3"
    assert sorted(p.name for p in hour.iterdir()) == ["batch=2"]  # the largest batch id of the hour
    (merged,) = list((hour / "batch=2").glob("*.parquet"))
    meta = pq.ParquetFile(merged)
    assert meta.schema_arrow.remove_metadata() == SCHEMA.remove_metadata()
    assert {k: v for k, v in (meta.schema_arrow.metadata or {}).items() if k in SPARK_META} == SPARK_META
    assert meta.metadata.row_group(0).column(0).compression == "SNAPPY"
    # Same rows with the same dt and hr; the hours left alone are as they were.
    assert multiset(str(root), drop=(catalog.BATCH,)) == before
    assert (root / f"dt={OLD}" / "hr=5" / "batch=9").exists()
    assert len(list(RECENT(root).rglob("*.parquet"))) == 2
    assert leftovers(cfg) == []

    # The ledger and status say what it did; a second run finds nothing and says so.
    record = Ledger(cfg.lake.root).last("compact")
    assert record is not None and record.counts["files_before"] == 4 and record.counts["files_after"] == 1
    assert maintenance_status(cfg)["compact"]["counts"]["partitions"] == 1
    again = jobs.compact(cfg, "bronze")
    assert again.compacted == [] and again.already == 2
    assert multiset(str(root), drop=(catalog.BATCH,)) == before

    # With no grace, the hour that ended goes too; the uncommitted one still waits.
    jobs.compact(make_config(**{"maintenance.compact_grace_hours": 0}), "bronze")
    assert len(list(RECENT(root).rglob("*.parquet"))) == 1
    assert len(list((root / f"dt={OLD}" / "hr=5").rglob("*.parquet"))) == 2


def test_silver_planning_by_folders_sees_the_same_dates_after_compaction(
    make_config: Callable[..., Any],
) -> None:
    from medallion.core.lake import bronze_batches
    from medallion.silver.plan import _dates_of

    cfg = make_config(**{"maintenance.compact_grace_hours": 0})
    root = Path(catalog.BRONZE.path(cfg))
    layout = {
        ("2026-11-01", 1): (0, 3, 5),
        ("2026-11-01", 2): (1,),
        ("2026-11-02", 0): (2, 4),
        ("2026-11-03", 0): (6, 7),
    }
    for (day, hour), batches in layout.items():
        for b in batches:
            part(root / f"dt={day}" / f"hr={hour}" / f"batch={b}", 2)
    commit(cfg, *range(8))
    before = bronze_batches(str(root))
    jobs.compact(cfg, "bronze")
    after = bronze_batches(str(root))
    assert after != before  # merged folders
    # A plan made after the compaction has ``finished`` >= 7 (the checkpoint's commits only grow), and
    # any mark ``seen`` a Silver run left.
    for seen in range(-1, 8):
        for finished in (7, 8):
            assert _dates_of(after, seen, finished) == _dates_of(before, seen, finished), (seen, finished)


def test_other_layers_compact_their_leaves_by_date_and_near_the_target_size(
    make_config: Callable[..., Any],
) -> None:
    cfg = make_config(**{"maintenance.compact_target_mb": 1})
    silver = Path(catalog.SILVER.path(cfg))
    for day in ("2026-11-01", "2026-11-02"):
        for _ in range(6):
            part(silver / f"event_date={day}" / "event_type=click", 2000, payload=60)  # ~0.25 MB each
    gold = Path(catalog.GOLD_TABLES[0].path(cfg))
    for _ in range(3):
        part(gold / "feature_date=2026-11-01", 4)
    dlq_silver, dlq_bronze = Path(catalog.SILVER_DLQ.path(cfg)), Path(catalog.BRONZE_DLQ.path(cfg))
    for _ in range(2):
        part(dlq_silver / "event_date=2026-11-01", 3)
        part(dlq_bronze / "batch=0", 3)
        part(dlq_bronze / "batch=4", 3)  # not committed
    commit(cfg, 0)
    tables = [catalog.SILVER, catalog.GOLD_TABLES[0], catalog.SILVER_DLQ, catalog.BRONZE_DLQ]
    before = {t.name: multiset(t.path(cfg)) for t in tables}

    first = jobs.compact(cfg, "silver", start=dt.date(2026, 11, 2), end=dt.date(2026, 11, 2))
    assert [c.partition.split("/", 1)[1] for c in first.compacted] == [
        "event_date=2026-11-02/event_type=click"
    ]
    leaf = silver / "event_date=2026-11-02" / "event_type=click"
    sizes = [p.stat().st_size for p in leaf.glob("*.parquet")]
    total = first.compacted[0].bytes_before
    assert len(sizes) == math.ceil(total / 2**20) >= 2 and max(sizes) < 1.5 * 2**20
    assert len(list((silver / "event_date=2026-11-01" / "event_type=click").glob("*.parquet"))) == 6
    jobs.compact(cfg, "silver")
    jobs.compact(cfg, "gold")
    dlq = jobs.compact(cfg, "dlq")
    assert {c.dataset for c in dlq.compacted} == {catalog.SILVER_DLQ.name, catalog.BRONZE_DLQ.name}
    assert dlq.skipped == {"a batch the ingest has not committed": 1}
    assert len(list((dlq_bronze / "batch=4").glob("*.parquet"))) == 2
    for t in tables:
        assert multiset(t.path(cfg)) == before[t.name], t.name
    assert len(list((gold / "feature_date=2026-11-01").glob("*.parquet"))) == 1
    assert leftovers(cfg) == []


@pytest.mark.parametrize("mode", [swap.EXCHANGE, swap.MOVE])
@pytest.mark.parametrize("step", swap.STEPS)
def test_a_crash_after_any_step_is_settled_by_the_next_run(
    step: str, mode: str, make_config: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = make_config()
    root = bronze_lake(cfg)
    gold = Path(catalog.GOLD_TABLES[0].path(cfg))
    for _ in range(3):
        part(gold / "feature_date=2026-11-01", 4)
    before = multiset(str(root), drop=(catalog.BATCH,))
    gold_before = multiset(str(gold))

    def crash(at: str) -> None:
        if at == step:
            raise RuntimeError(f"killed after {at}")

    monkeypatch.setattr(swap, "after_step", crash)
    with pytest.raises(RuntimeError, match="killed"):
        compact.compact(cfg, "bronze", run_id="crashed", mode=mode)
    if mode == swap.EXCHANGE:  # one atomic step: readers see every row once even before recovery
        assert multiset(str(root), drop=(catalog.BATCH,)) == before
    assert swap.pending(cfg)  # the journal is there
    monkeypatch.setattr(swap, "after_step", lambda at: None)

    # A run of another layer leaves Bronze's journal alone (it holds no lock on Bronze).
    jobs.compact(cfg, "gold")
    assert [j.dataset for j in swap.pending(cfg)] == [catalog.BRONZE.name]
    assert multiset(str(gold)) == gold_before

    settled = jobs.compact(cfg, "bronze")
    assert settled.recovered and "crashed" in settled.recovered[0]
    assert multiset(str(root), drop=(catalog.BATCH,)) == before
    assert leftovers(cfg) == []
    assert sorted(p.name for p in (root / f"dt={OLD}" / "hr=3").iterdir()) == ["batch=2"]
    assert jobs.compact(cfg, "bronze").compacted == []


def test_a_batch_the_ingest_adds_to_an_hour_being_swapped_stays(
    make_config: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = make_config()
    root = bronze_lake(cfg)
    hour = root / f"dt={OLD}" / "hr=3"

    def ingest_adds_a_late_batch(at: str) -> None:
        if at == "staged":  # after the listing, before the exchange
            part(hour / "batch=12", 5)

    before = multiset(str(root), drop=(catalog.BATCH,))
    monkeypatch.setattr(swap, "after_step", ingest_adds_a_late_batch)
    jobs.compact(cfg, "bronze")
    assert sorted(p.name for p in hour.iterdir()) == ["batch=12", "batch=2"]
    after = multiset(str(root), drop=(catalog.BATCH,))
    assert sum(after.values()) == sum(before.values()) + 5 and not before - after


def test_usage_errors_and_locks(make_config: Callable[..., Any], monkeypatch: pytest.MonkeyPatch) -> None:
    from medallion.core import stages

    cfg = make_config()
    with pytest.raises(UsageError, match="Unknown layer 'platinum'"):
        jobs.compact(cfg, "platinum")
    with pytest.raises(UsageError, match="both --start-date and --end-date"):
        jobs.compact(cfg, "silver", start=dt.date(2026, 1, 1))
    remote = make_config(**{"lake.root": "s3a://bucket/lake"})
    with pytest.raises(UsageError, match="--exclusive"):
        compact.swap_mode(remote, exclusive=False)
    assert compact.swap_mode(remote, exclusive=True) == swap.MOVE
    assert compact.swap_mode(cfg, exclusive=False) == swap.EXCHANGE  # this machine's kernel and disk
    monkeypatch.setattr(swap, "exchange_works", lambda folder: False)  # as on a filesystem without it
    with pytest.raises(UsageError, match=r"cannot exchange two folders atomically \(renameat2\)"):
        compact.swap_mode(cfg, exclusive=False)
    monkeypatch.undo()
    # Compacting Bronze keeps Silver (a reader) out and lets the ingest (an appender) run beside it.
    bronze = stages.compact_stage((catalog.BRONZE.name,))
    with stages.run(cfg, bronze):
        with pytest.raises(LockHeld, match="being rewritten by compact"), stages.run(cfg, stages.SILVER):
            pass
        with pytest.raises(LockHeld), stages.run(cfg, stages.RETENTION):
            pass
        with stages.run(cfg, stages.INGEST), stages.run(cfg, stages.GOLD):
            pass
    with stages.run(cfg, stages.SILVER), pytest.raises(LockHeld, match="in use by silver"):
        jobs.compact(cfg, "bronze")
    with (
        stages.run(cfg, stages.compact_stage((catalog.SILVER.name,))),
        pytest.raises(LockHeld, match="being replaced by compact"),
        stages.run(cfg, stages.GOLD),
    ):
        pass


def test_readers_racing_compaction_see_every_row_once_or_a_missing_file(
    make_config: Callable[..., Any],
) -> None:
    """pyarrow (and DuckDB when installed) read the Silver table in a loop while `compact` swaps its leaves.

    Every read that succeeds must count exactly the rows and give exactly the row multiset. A read whose
    listing came before a swap and whose open came after it fails with a missing file (the old files moved
    to the staging folder): that is allowed, and counted, never a wrong answer. How many reads hit a swap is
    timing: the assertion is on every read that succeeded, and that some reads ran meanwhile."""
    cfg = make_config()
    silver = Path(catalog.SILVER.path(cfg))
    for d in range(1, 13):
        for t in ("click", "search"):
            for _ in range(8):
                part(silver / f"event_date=2026-11-{d:02d}" / f"event_type={t}", 30)
    expected = pq.read_table(silver).num_rows
    digest = ds.dataset(silver, partitioning="hive").to_table(columns=["event_id"]).column(0)
    ids = sorted(digest.to_pylist())
    stop = threading.Event()
    seen: dict[str, Counter[str]] = {"pyarrow": Counter(), "duckdb": Counter()}

    def pyarrow_reader() -> None:
        while not stop.is_set():
            try:
                got = ds.dataset(silver, partitioning="hive").to_table(columns=["event_id"]).column(0)
            except (FileNotFoundError, OSError):
                seen["pyarrow"]["missing file"] += 1
                continue
            seen["pyarrow"]["ok" if sorted(got.to_pylist()) == ids else "WRONG"] += 1

    def duckdb_reader() -> None:
        import duckdb

        con = duckdb.connect()
        glob = f"{silver}/**/*.parquet"  # hidden names included: the staging folder is outside the table
        while not stop.is_set():
            try:
                got = con.sql(
                    f"select event_id from read_parquet('{glob}', hive_partitioning=true)"
                ).fetchall()
            except duckdb.Error:
                seen["duckdb"]["missing file"] += 1
                continue
            seen["duckdb"]["ok" if sorted(r[0] for r in got) == ids else "WRONG"] += 1

    readers = [threading.Thread(target=pyarrow_reader)]
    try:
        import duckdb  # noqa: F401

        readers.append(threading.Thread(target=duckdb_reader))
    except ImportError:
        pass
    for r in readers:
        r.start()
    try:
        result = jobs.compact(cfg, "silver")
    finally:
        stop.set()
        for r in readers:
            r.join()
    assert len(result.compacted) == 24
    print(f"reads while compacting: {dict(seen)}")
    for name in ("pyarrow", "duckdb")[: len(readers)]:
        assert seen[name]["WRONG"] == 0, seen
        assert seen[name]["ok"] + seen[name]["missing file"] > 0, seen
    assert pq.read_table(silver).num_rows == expected


def test_the_command_lists_a_dry_run_then_compacts_then_says_there_is_nothing_left(lake: Path) -> None:
    from tests.cli.test_cli import medallion

    env = {"MEDALLION__LAKE__ROOT": str(lake)}
    gold = lake / "gold" / catalog.GOLD_TABLES[0].short_name
    for _ in range(3):
        part(gold / "feature_date=2026-11-01", 4)
    dry = medallion("compact", "--layer", "gold", "--dry-run", env=env)
    assert dry.returncode == 0, dry.stderr
    assert "dry run: nothing rewritten" in dry.stdout and "3 → 1" in dry.stdout
    assert len(list(gold.rglob("*.parquet"))) == 3
    done = medallion("compact", "--layer", "gold", env=env)
    assert done.returncode == 0 and "files 3 → 1, 12 rows" in " ".join(done.stdout.split()), done.stdout
    again = medallion("compact", "--layer", "gold", env=env)
    assert "nothing to compact (1 partition(s) already compact)" in " ".join(again.stdout.split()), (
        again.stdout
    )


@pytest.mark.integration
def test_an_object_store_lake_is_compacted_only_with_exclusive_and_recovers_the_same(
    s3_endpoint: Any, make_config: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """On ``s3a://`` (a local S3 endpoint) no folder can be exchanged: refused without --exclusive; with it,
    files are moved one by one, and a crash between the moves and the deletes (both sets visible, which
    is why it needs --exclusive) is settled by the next run."""
    from medallion.core import lakefs
    from medallion.maintenance import files

    for name, value in s3_endpoint.environ.items():
        monkeypatch.setenv(name, value)
    cfg = make_config(**{"lake.root": f"s3a://{s3_endpoint.make_bucket()}/lake"})
    table = catalog.GOLD_TABLES[0]
    partition = table.partition_path(cfg, feature_date="2026-11-01")
    filesystem, inner = lakefs.filesystem_and_path(partition)
    for n in range(3):
        pq.write_table(rows(4), f"{inner}/part-{n:05d}.snappy.parquet", filesystem=filesystem)

    def content() -> Counter[str]:
        return Counter(
            json.dumps(r, default=str, sort_keys=True)
            for f in data_files(table.path(cfg))
            for r in files.read_file(f.path).to_pylist()
        )

    before = content()
    with pytest.raises(UsageError, match="the lake is on s3a"):
        jobs.compact(cfg, "gold")

    def crash(at: str) -> None:
        if at == "swapped":
            raise RuntimeError("killed")

    monkeypatch.setattr(swap, "after_step", crash)
    with pytest.raises(RuntimeError):
        compact.compact(cfg, "gold", run_id="crashed", mode=swap.MOVE)
    assert sum(content().values()) == 2 * sum(before.values())  # both sets visible until settled
    monkeypatch.setattr(swap, "after_step", lambda at: None)
    settled = jobs.compact(cfg, "gold", exclusive=True)
    assert settled.recovered and settled.compacted == []  # completed: already one file
    assert content() == before and len(data_files(table.path(cfg))) == 1
    assert swap.pending(cfg) == []
