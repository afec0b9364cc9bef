"""The dedup index (`medallion.bronze.dedup`) against a plain oracle: which copies each batch drops, across
merges of its runs, expiry, restarts and replays; and its Spark side on real DataFrames."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from medallion.bronze import dedup
from medallion.bronze.dedup import BATCH_TIME, DedupIndex, with_id_hash

WINDOW_MS = 60_000


def batch_table(rows: list[tuple[int, int, int]], batch_ms: int, topic: str = "t") -> pa.Table:
    """Valid events as `DedupIndex.decide_table` takes them: ``(id, partition, offset)``; the id's two
    hash halves are derived from it (the low half shares the high half's value for some ids, so ties in
    the first 64 bits occur)."""
    ids = np.array([r[0] for r in rows], dtype=np.int64)
    return pa.table(
        {
            "hi": pa.array(ids // 3, pa.int64()),  # three ids share each high half: the tie path runs
            "lo": pa.array(ids * 7919, pa.int64()),
            "_topic": pa.array([topic] * len(rows), pa.string()),
            "_partition": pa.array([r[1] for r in rows], pa.int32()),
            "_offset": pa.array([r[2] for r in rows], pa.int64()),
            BATCH_TIME: pa.array([batch_ms] * len(rows), pa.int64()),
        }
    )


def dropped(decision: dedup.Decision) -> set[tuple[int, int]]:
    d = decision.dropped
    return set(zip(d.column("_partition").to_pylist(), d.column("_offset").to_pylist(), strict=True))


class Oracle:
    """The rule, plainly: a copy is dropped when an earlier copy in its batch (lowest partition, offset)
    has its id, or when a batch before it first saw the id less than the window ago (the time counted
    in whole seconds, rounded up: an id is held at least the whole window)."""

    def __init__(self, window_ms: int) -> None:
        self.window_ms, self.first_seen = window_ms, {}

    def drops(self, rows: list[tuple[int, int, int]], batch_ms: int) -> set[tuple[int, int]]:
        out, here = set(), set()
        for event_id, partition, offset in sorted(rows, key=lambda r: (r[1], r[2])):
            seen = self.first_seen.get(event_id)
            if event_id in here or (seen is not None and -(-seen // 1000) * 1000 > batch_ms - self.window_ms):
                out.add((partition, offset))
                continue
            here.add(event_id)
        for event_id in here:
            self.first_seen[event_id] = batch_ms
        return out


def random_batches(seed: int, n: int) -> list[tuple[int, list[tuple[int, int, int]]]]:
    """``n`` batches 0.5–9 s apart (slices of 7.5 s: runs merge), ids from a small pool (many repeats,
    within and across batches, inside and past the 60-s window), occasionally an idle gap past it."""
    rng = random.Random(seed)
    out, now, offsets = [], 1_796_000_000_123, [0, 0, 0]
    for _ in range(n):
        now += rng.randint(500, 9_000) if rng.random() > 0.05 else WINDOW_MS + rng.randint(0, 3_000)
        rows = []
        for _ in range(rng.randint(0, 40)):
            partition = rng.randrange(3)
            offsets[partition] += 1
            rows.append((rng.randrange(120), partition, offsets[partition]))
        out.append((now, rows))
    return out


@pytest.mark.parametrize("seed", range(5))
def test_each_batch_drops_what_the_oracle_drops_through_merges_and_expiry(tmp_path: Path, seed: int) -> None:
    index, oracle = DedupIndex(str(tmp_path / "dedup"), WINDOW_MS), Oracle(WINDOW_MS)
    total = 0
    for batch_id, (now, rows) in enumerate(random_batches(seed, 150)):
        decision = index.decide_table(batch_table(rows, now), batch_id)
        assert dropped(decision) == oracle.drops(rows, now), batch_id
        index.commit(decision)
        total += decision.duplicates
        assert len(index.runs) <= dedup.SLICES + 1 + dedup.OPEN_RUNS + 1
    assert total > 100  # the sequence did exercise duplicates


def test_a_restart_and_a_replay_decide_as_the_first_attempt_did(tmp_path: Path) -> None:
    folder = str(tmp_path / "dedup")
    batches = random_batches(7, 60)
    index, oracle = DedupIndex(folder, WINDOW_MS), Oracle(WINDOW_MS)
    for batch_id, (now, rows) in enumerate(batches):
        if batch_id % 9 == 4:  # a new process: the index is read back from its files
            index = DedupIndex(folder, WINDOW_MS)
        if batch_id % 7 == 3 and rows:
            # An attempt that wrote its file, then died before Spark committed the batch: the replay
            # (in this process or the next) deletes the attempt's file and decides the same.
            attempt = index.decide_table(batch_table(rows, now), batch_id)
            index.commit(attempt)
            if batch_id % 2:
                index = DedupIndex(folder, WINDOW_MS)
        decision = index.decide_table(batch_table(rows, now), batch_id)
        assert dropped(decision) == oracle.drops(rows, now), batch_id
        index.commit(decision)


def test_files_past_the_window_are_deleted_and_a_later_attempt_s_are_never_read(tmp_path: Path) -> None:
    folder = tmp_path / "dedup"
    index = DedupIndex(str(folder), WINDOW_MS)
    t0 = 1_796_000_000_000
    for batch_id in range(3):
        index.commit(
            index.decide_table(batch_table([(batch_id, 0, batch_id)], t0 + batch_id * 1000), batch_id)
        )
    assert len(list(folder.glob("*.npy"))) == 3
    # An attempt of batch 3 left its file, and a kill a half-written one; a new process runs batch 3 a
    # window later.
    index.commit(index.decide_table(batch_table([(9, 0, 9)], t0 + 3000), 3))
    (folder / ".b000000000004-s0001796000004.npy.0123abcd.tmp").write_bytes(b"\x93NUMPY")
    later = DedupIndex(str(folder), WINDOW_MS)
    decision = later.decide_table(batch_table([(0, 0, 10), (9, 0, 11)], t0 + 1500 + WINDOW_MS), 3)
    assert dropped(decision) == set()  # id 0 is past the window; id 9 was never committed
    assert sorted(p.name[:13] for p in folder.iterdir()) == ["b000000000002"]  # only batch 2 is held
    later.commit(decision)
    assert later.held == 1 + 2  # batch 2's id, and the two this batch saw first


def test_spark_side_drops_later_copies_and_never_a_rejected_record(spark: Any, tmp_path: Path) -> None:
    from pyspark.sql import functions as F

    rows = [
        # (dedup key, error class, partition, offset)
        ("id:a", None, 1, 10),
        ("id:a", None, 0, 20),  # the lowest partition wins: this one stays
        ("id:b", None, 0, 21),
        ("id:B", None, 0, 22),  # ids are exact strings: not a copy of b
        ("at:t:0:23", "payload:malformed", 0, 23),
        ("at:t:0:23", "payload:malformed", 0, 23),  # rejected records are never dropped
    ]
    batch = spark.createDataFrame(
        rows, "_dedup_key string, error_class string, _partition int, _offset long"
    ).withColumns({"_topic": F.lit("t"), BATCH_TIME: F.lit(1_796_000_000_000).cast("long")})
    index = DedupIndex(str(tmp_path / "dedup"), WINDOW_MS)
    first = index.decide(with_id_hash(batch).toArrow(), 0)
    assert dropped(first) == {(1, 10)}
    hashed = with_id_hash(batch).toArrow()
    assert "_dedup_key" not in hashed.column_names and hashed.column("hi").null_count == 2
    kept = first.kept.select(["hi", "error_class", "_partition", "_offset"]).to_pylist()
    hash_of = {r["_offset"]: r["hi"] for r in hashed.to_pylist()}
    assert sorted((r["_partition"], r["_offset"]) for r in kept) == [
        (0, 20),
        (0, 21),
        (0, 22),
        (0, 23),
        (0, 23),
    ]
    assert [r["hi"] for r in kept] == [hash_of[r["_offset"]] for r in kept]  # the rows' own columns travel
    index.commit(first)

    again = batch.withColumns(
        {"_offset": F.col("_offset") + 100, BATCH_TIME: F.lit(1_796_000_030_000).cast("long")}
    )
    second = index.decide(with_id_hash(again).toArrow(), 1)
    assert dropped(second) == {(1, 110), (0, 120), (0, 121), (0, 122)}
    assert second.kept.column("error_class").to_pylist() == ["payload:malformed"] * 2


def test_a_batch_s_counts_leave_out_the_dropped_copies(tmp_path: Path) -> None:
    """What the ledger records for a batch comes from the rows `decide` brought, less its dropped copies:
    rejected records by class (erased people's apart), valid rows and their dates, PII values scrubbed."""
    from medallion.bronze.records import PII_BITS
    from medallion.bronze.writes import _counts
    from medallion.maintenance.register import ERASED_CLASS

    email, phone = PII_BITS["emails"], PII_BITS["phones"]
    counted = ["error_class", "dt", "_scrubbed"]
    valid = batch_table([(1, 0, 1), (1, 0, 2), (2, 0, 3)], 1_796_000_000_000)
    for name, values in zip(
        counted,
        [
            pa.nulls(3, pa.string()),
            pa.array(["2026-12-01", "2026-12-02", "2026-12-03"]),
            pa.array([email | phone, email, None], pa.int32()),
        ],
        strict=True,
    ):
        valid = valid.append_column(name, values)
    decision = DedupIndex(str(tmp_path / "dedup"), WINDOW_MS).decide_table(valid, 0)
    assert dropped(decision) == {(0, 2)}  # the second copy of id 1, dated 2026-12-02
    rejected = pa.table(
        {
            "error_class": ["type:price", "type:price", ERASED_CLASS, "payload:malformed"],
            "dt": pa.nulls(4, pa.string()),
            "_scrubbed": pa.array([phone, 0, email, None], pa.int32()),
        }
    )
    reasons, n_valid, dates, pii = _counts(pa.concat_tables([decision.kept.select(counted), rejected]))
    assert reasons == {"type:price": 2, ERASED_CLASS: 1, "payload:malformed": 1}
    assert (n_valid, dates) == (2, ["2026-12-01", "2026-12-03"])
    assert (pii["emails"], pii["phones"], pii["ips"]) == (2, 2, 0)
