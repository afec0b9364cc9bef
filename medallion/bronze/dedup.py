"""Duplicate events across micro-batches: an index of the event ids seen within the dedup window, whose
cost per batch follows the batch, not the ids held.

Spark's ``dropDuplicatesWithinWatermark`` keeps the ids in its state store and, on every micro-batch,
evicts by iterating over *every* id it holds: measured 0.3–0.45 µs per held id per batch, so a stream
at 12,500 events/s with the 1-hour window would spend about 14 s of each 10-second trigger on eviction
once the window is full. This index does the same job with a lookup per event and a deletion per
expiring file:

- **What is held.** For each micro-batch, the ids it was the first to see (128 bits: two ``xxhash64``
  of ``_dedup_key`` computed by Spark), with the batch's time (Spark's batch timestamp, recorded in
  the checkpoint's offset log, so a replay sees the same). One file per batch under the checkpoint
  (`INGEST_DEDUP`), and in the driver's memory as sorted runs: the open time slice's runs one per batch
  (merged beyond `OPEN_RUNS`), each closed slice (a `SLICES`-th of the window) one run.
- **A batch.** It comes to the driver whole, with its valid events' hashes (`with_id_hash`).
  Within the batch, the copy at the lowest (topic, partition, offset) of each id is the candidate; it
  is a duplicate when a batch before this one saw the id less than a window before this batch's time.
  Every other copy is dropped, on the driver, where the whole batch is (`medallion.bronze.writes`).
- **Expiry.** A run whose newest id is a window old is dropped whole, its files deleted: the cost is
  the expiring ids'. An id in a run not yet dropped counts only while it is within the window, so what
  a batch keeps never depends on how the runs happen to be merged.
- **Exactly-once.** Batch N's decision depends only on the files of batches before N (a file is written
  after both outputs, before Spark commits the batch). A replayed batch deletes what its failed attempt
  left (files of N and later) and decides again from the same files: the same rows are dropped, and
  Bronze's overwrite of the batch's partitions replaces the first attempt's.

Memory: 20 bytes per id held (two hashes and the second it was seen, rounded up), 0.9 GB for an hour at
12,500 events/s. A restart reads the window's files once.
"""

from __future__ import annotations

import io
import re
import time
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from loguru import logger
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StructType

from medallion.core import lakefs
from medallion.core.config import duration_s

SLICES = 8  # the window is held as this many closed slices (one sorted run each) plus the open one
OPEN_RUNS = 6  # the open slice's per-batch runs are merged into one beyond this many


def id_hash() -> tuple[Column, Column]:
    """The two 64-bit halves of an id's 128-bit hash (a second xxhash64, over a prefix and the key). With
    64 bits alone, an hour of ids held at 25,000 events/s would take a distinct event for a duplicate
    about once in three months of running; with 128, never in practice."""
    return F.xxhash64("_dedup_key"), F.xxhash64(F.lit("medallion:dedup"), "_dedup_key")


BATCH_TIME = "_batch_ms"
"""The decoded stream's column of the micro-batch's time (ms), `batch_time()`."""

COORDINATES = ("_topic", "_partition", "_offset")

_FILE = re.compile(r"^b(\d{12})-s(\d{10})\.npy$")  # the batch, and the newest id's second (`seconds`)


def with_id_hash(batch: DataFrame) -> DataFrame:
    """A decoded batch with its valid events' id hashes (`id_hash`: ``hi``, ``lo``; null for a rejected
    record), in place of ``_dedup_key``: what `DedupIndex.decide` takes, once brought to the driver."""
    hi, lo = id_hash()
    valid = F.col("error_class").isNull()
    return batch.select(
        *(c for c in batch.columns if c != "_dedup_key"),
        F.when(valid, hi).alias("hi"),
        F.when(valid, lo).alias("lo"),
    )


def batch_time() -> Column:
    """The micro-batch's time in ms: ``current_timestamp()`` in the streaming plan is the batch timestamp
    Spark records in the checkpoint's offset log, the same on a replay (after the plan, it is the clock)."""
    return F.unix_millis(F.current_timestamp())


def window_ms(text: str) -> int:
    """``1 hour``, ``30 minutes``, ``1 day 12 hours`` (`medallion.core.config.duration_s`) in ms."""
    return int(duration_s(text) * 1000)


@dataclass
class Run:
    """Ids sorted by their first hash half: one batch's, or those of several batches of one time slice."""

    hi: np.ndarray  # int64, sorted
    lo: np.ndarray  # int64
    seen_s: np.ndarray  # uint32: the time of the batch that first saw the id (`seconds`)
    files: list[str]
    slice: int
    newest_s: int

    @classmethod
    def of(
        cls, hi: np.ndarray, lo: np.ndarray, seen_s: np.ndarray, files: list[str], slice_: int, newest_s: int
    ) -> Run:
        """A run of unsorted ids."""
        order = np.argsort(hi, kind="stable")
        return cls(hi[order], lo[order], seen_s[order], files, slice_, newest_s)

    def seen(self, hi: np.ndarray, lo: np.ndarray) -> np.ndarray:
        """The second each id (``hi``, ``lo``) was seen in this run, -1 where it was not."""
        found = np.full(len(hi), -1, dtype=np.int64)
        if not len(self.hi) or not len(hi):
            return found
        pos = np.searchsorted(self.hi, hi)
        at = np.minimum(pos, len(self.hi) - 1)
        first = self.hi[at] == hi
        exact = first & (self.lo[at] == lo)
        found[exact] = self.seen_s[at[exact]]
        # Two ids sharing the first 64 bits (about one pair per 4·10^9 ids held): scan the tie.
        for i in np.flatnonzero(first & ~exact):
            j = int(pos[i])
            while j < len(self.hi) and self.hi[j] == hi[i]:
                if self.lo[j] == lo[i]:
                    found[i] = max(found[i], int(self.seen_s[j]))
                j += 1
        return found

    def __len__(self) -> int:
        return len(self.hi)


def merge(runs: list[Run], slice_: int) -> Run:
    return Run.of(
        np.concatenate([r.hi for r in runs]),
        np.concatenate([r.lo for r in runs]),
        np.concatenate([r.seen_s for r in runs]),
        [f for r in runs for f in r.files],
        slice_,
        max(r.newest_s for r in runs),
    )


@dataclass
class Decision:
    """What one micro-batch drops, and the ids it is the first to see (held once it is committed)."""

    batch_id: int
    batch_ms: int
    dropped: pa.Table  # the coordinates (`COORDINATES`) of the copies to drop
    new_hi: np.ndarray
    new_lo: np.ndarray
    kept: pa.Table  # the batch's rows that are not dropped
    seconds: float = 0.0  # the driver's share: reading the index when needed, expiry, lookups

    @property
    def duplicates(self) -> int:
        return self.dropped.num_rows


class DedupIndex:
    """The ids seen within the window (``window_ms``) by the batches of one checkpoint, kept in ``folder``."""

    def __init__(self, folder: str, window_ms: int) -> None:
        self.folder, self.window_ms = folder, window_ms
        self.slice_ms = max(1, window_ms // SLICES)
        self.runs: list[Run] = []
        self.below: int | None = None  # memory holds exactly the files of the batches before this one

    @property
    def held(self) -> int:
        """Ids in memory (some of them past the window until their run expires whole)."""
        return sum(len(r) for r in self.runs)

    def decide(self, table: pa.Table, batch_id: int) -> Decision:
        """Which copies of a batch to drop: ``table`` is the whole batch (`with_id_hash`), rejected records
        included, which are never dropped; ``Decision.kept`` is the table less the dropped copies."""
        is_valid = pc.is_null(table.column("error_class"))
        decision = self.decide_table(table.filter(is_valid), batch_id)
        decision.kept = pa.concat_tables([decision.kept, table.filter(pc.invert(is_valid))])
        return decision

    def decide_table(self, table: pa.Table, batch_id: int) -> Decision:
        """`decide` on the batch's valid events as columns ``hi``, ``lo``, `COORDINATES` and `BATCH_TIME`."""
        if not table.num_rows:
            return Decision(batch_id, 0, table.select(list(COORDINATES)), _EMPTY, _EMPTY, table)
        start = time.perf_counter()
        batch_ms = int(table.column(BATCH_TIME)[0].as_py())
        self._prepare(batch_id, batch_ms)
        hi = table.column("hi").to_numpy()
        lo = table.column("lo").to_numpy()
        topic = _codes(table.column("_topic"))
        partition = table.column("_partition").to_numpy()
        offset = table.column("_offset").to_numpy()
        # Each id's first copy in the batch: lowest topic, partition, offset.
        order = np.lexsort((offset, partition, topic, lo, hi))
        first = np.ones(len(order), dtype=bool)
        first[1:] = (hi[order][1:] != hi[order][:-1]) | (lo[order][1:] != lo[order][:-1])
        candidates = order[first]
        seen = np.full(len(candidates), -1, dtype=np.int64)
        for run in self.runs:
            seen = np.maximum(seen, run.seen(hi[candidates], lo[candidates]))
        keep = candidates[~self._held(seen, batch_ms)]
        drop = np.ones(len(hi), dtype=bool)
        drop[keep] = False
        dropped = table.select(list(COORDINATES)).filter(pa.array(drop))
        kept = table.filter(pa.array(~drop))
        return Decision(batch_id, batch_ms, dropped, hi[keep], lo[keep], kept, time.perf_counter() - start)

    def _held(self, seen_s: np.ndarray | int, batch_ms: int) -> np.ndarray:
        """Whether ids first seen at ``seen_s`` (-1: never) still count as seen by a batch at ``batch_ms``:
        the one rule for lookups, runs and files, so what a batch drops never depends on how runs merged."""
        seen = np.asarray(seen_s, dtype=np.int64)
        return (seen >= 0) & (seen * 1000 > batch_ms - self.window_ms)

    def commit(self, decision: Decision) -> None:
        """Hold the ids ``decision``'s batch was first to see: its file, then memory. Call once the batch's
        outputs are written, before Spark commits it."""
        if len(decision.new_hi):
            second = seconds(decision.batch_ms)
            seen_s = np.full(len(decision.new_hi), second, dtype=np.uint32)
            name = write_file(self.folder, decision.batch_id, decision.new_hi, decision.new_lo, seen_s)
            slice_ = self._slice(decision.batch_ms)
            self.runs.append(Run.of(decision.new_hi, decision.new_lo, seen_s, [name], slice_, second))
            self._consolidate(slice_)
        if self.below == decision.batch_id:
            self.below += 1

    def _slice(self, ms: int) -> int:
        return ms // self.slice_ms

    def _prepare(self, batch_id: int, batch_ms: int) -> None:
        """Hold exactly the ids of the batches before ``batch_id``, less the runs past the window."""
        if self.below != batch_id:
            self._load(batch_id, batch_ms)
        expired = [r for r in self.runs if not self._held(r.newest_s, batch_ms)]
        if expired:
            self.runs = [r for r in self.runs if self._held(r.newest_s, batch_ms)]
            for name in (f for r in expired for f in r.files):
                lakefs.delete_file(lakefs.join(self.folder, name))

    def _load(self, batch_id: int, batch_ms: int) -> None:
        """Read the index from its files: those of ``batch_id`` and later are a failed attempt's (deleted),
        those past the window are deleted too."""
        by_slice: dict[int, list[Run]] = {}
        _, names = lakefs.list_children(self.folder)
        for name in names:
            match = _FILE.match(name)
            if not match:
                if name.startswith(".") and name.endswith(".tmp"):  # a write a kill interrupted
                    lakefs.delete_file(lakefs.join(self.folder, name))
                continue
            batch, newest_s = int(match[1]), int(match[2])
            if batch >= batch_id or not self._held(newest_s, batch_ms):
                lakefs.delete_file(lakefs.join(self.folder, name))
                continue
            ids = np.load(io.BytesIO(lakefs.read_bytes(lakefs.join(self.folder, name))), allow_pickle=False)
            slice_ = self._slice(newest_s * 1000)
            by_slice.setdefault(slice_, []).append(
                Run(ids[0], ids[1], ids[2].astype(np.uint32), [name], slice_, newest_s)
            )
        self.runs = [merge(runs, s) for s, runs in sorted(by_slice.items())]
        self.below = batch_id
        logger.info(
            "dedup index: {n:,} ids of {f} batch(es) within the window, read from {d}",
            n=self.held,
            f=sum(len(r.files) for r in self.runs),
            d=self.folder,
        )

    def _consolidate(self, open_slice: int) -> None:
        """Merge each closed slice into one run, and the open slice's runs beyond `OPEN_RUNS`."""
        by_slice: dict[int, list[Run]] = {}
        for run in self.runs:
            by_slice.setdefault(run.slice, []).append(run)
        merged = []
        for s, runs in sorted(by_slice.items()):
            if len(runs) > 1 and (s != open_slice or len(runs) > OPEN_RUNS):
                merged.append(merge(runs, s))
            else:
                merged.extend(runs)
        self.runs = merged


_EMPTY = np.empty(0, dtype=np.int64)


def write_file(folder: str, batch_id: int, hi: np.ndarray, lo: np.ndarray, seen_s: np.ndarray) -> str:
    """One batch's ids as a file of ``folder`` (an int64 array: hash halves and second seen); its name."""
    name = f"b{batch_id:012d}-s{int(seen_s.max()):010d}.npy"
    buffer = io.BytesIO()
    np.save(buffer, np.stack([hi, lo, seen_s.astype(np.int64)]), allow_pickle=False)
    lakefs.write_bytes(lakefs.join(folder, name), buffer.getvalue())
    return name


def adopt_spark_state(spark: SparkSession, checkpoint: str, folder: str, window_ms: int) -> int:
    """Move the ids a checkpoint begun by an earlier version holds in Spark's state store (the plan was
    ``dropDuplicatesWithinWatermark``) into the index, then delete that state: Spark refuses to restart a
    checkpoint whose state belongs to an operator the plan no longer has. Returns the ids moved.

    The ids become one file of the last committed batch, each with the second it was seen (its
    ``expiresAtMicros`` less the window). A crash before the state is deleted repeats the move."""
    state = lakefs.join(checkpoint, "state")
    if not lakefs.exists(state):
        return 0
    commits = [int(n) for n in lakefs.list_children(lakefs.join(checkpoint, "commits"))[1] if n.isdigit()]
    moved = 0
    if commits and "_dedup_key" in _state_keys(spark, checkpoint):
        hi, lo = id_hash()
        ids = (
            spark.read.format("statestore")
            .load(checkpoint)
            .select("key._dedup_key", "value.expiresAtMicros")
            .select(
                hi.alias("hi"),
                lo.alias("lo"),
                F.ceil(F.col("expiresAtMicros") / 1e6 - window_ms / 1000).cast("long").alias("seen"),
            )
            .toArrow()
        )
        if ids.num_rows:
            write_file(folder, max(commits), *(ids.column(c).to_numpy() for c in ("hi", "lo", "seen")))
            moved = ids.num_rows
    lakefs.remove_dirs(checkpoint, "state")
    logger.info(
        "dedup: {n:,} ids moved from Spark's state store of {c} into the index", n=moved, c=checkpoint
    )
    return moved


def _state_keys(spark: SparkSession, checkpoint: str) -> list[str]:
    """The key columns of the checkpoint's first stateful operator (none: not a dedup's state)."""
    try:
        schema = spark.read.format("statestore").load(checkpoint).schema
    except Exception:  # noqa: BLE001 - no readable state (no operator committed): nothing to move
        return []
    key = schema["key"].dataType if "key" in schema.names else None
    return key.fieldNames() if isinstance(key, StructType) else []


def seconds(ms: int) -> int:
    """A batch time as the index holds it: whole seconds, rounded up, so an id is held at least the whole
    window (at most a second longer)."""
    return -(-ms // 1000)


def _codes(topics: pa.ChunkedArray) -> np.ndarray:
    """Topic names as integers in name order (one topic, the usual case: all zeros)."""
    distinct = sorted(topics.unique().to_pylist())
    if len(distinct) == 1:
        return np.zeros(len(topics), dtype=np.int64)
    return np.searchsorted(np.array(distinct, dtype=object), topics.to_numpy(zero_copy_only=False))
