"""`medallion compact`: closed partitions rewritten into files near ``maintenance.compact_target_mb``
(≈ OPTIMIZE), the same multiset of rows, with pyarrow (no Spark).

A partition is rewritten into ``ceil(bytes / target)`` snappy Parquet files, row groups of up to
`ROW_GROUP_BYTES` (by the partition's bytes per row), rows in the order of the old files; the schema,
the column types (nested structs included) and the footer's key-value metadata of the old files are
kept (Spark's ``org.apache.spark.sql.parquet.row.metadata``, so Spark reads the same types); written as
Spark writes the lake (timestamps in microseconds, decimals of up to 18 digits as integers). A partition
with no more files than that already, or whose files disagree on their schema (written by different
versions: rebuild it with its stage), is left alone; so a second `compact` finds nothing to do.

The units: Bronze's hour folder ``dt=D/hr=H`` (its ``batch=`` folders merged into one), Silver's
``event_date=D/event_type=T``, Gold's ``feature_date=D``, the Silver DLQ's ``event_date=D`` and the
Bronze DLQ's ``batch=N`` (its files merged within the batch: merging batches would need to swap the
table's top folder, where Spark stages the running ingest's writes). How each unit is swapped, journaled
and recovered after a crash: `medallion.maintenance.swap`.

**Bronze beside a running ingest.** Only batches the ingest's checkpoint has committed
(``commits/N``) and only hours that ended ``maintenance.compact_grace_hours`` ago (UTC) are taken; an
hour folder holding any batch not committed yet is left for a later run. The batches of one hour become
one folder named after the *largest* batch id among them, ``batch=<max>``, so:

- exactly-once still holds when the ingest replays. Spark replays only batches it has not committed,
  each with its own id N, greater than every committed id; its write (`files.write_partitions`) replaces
  only ``batch=N`` folders. A merged folder is named after a committed id (≤ the newest commit < N) and
  holds only committed batches' rows, so a replay can neither overwrite nor duplicate it, and a batch
  `compact` merged can never be written again. (A batch the ingest adds to an hour while it is swapped is moved
  back into the live folder, see `swap`.)
- Silver's incremental planning sees the same dates. It takes the dates of the batches committed since
  its mark from each batch's ledger record, which compaction does not change; where it lists folders
  instead, an hour's merged folder is listed under its largest batch id, which is one of the hour's own
  ids, so a date is planned exactly when one of its original batches would have made it planned.
- Retention still expires Bronze by committed batch folders: a merged folder is a committed batch.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterator
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.parquet as pq

from medallion.core import catalog, lake, lakefs
from medallion.core.catalog import BATCH, BRONZE, BRONZE_DLQ, Dataset
from medallion.core.config import Config
from medallion.core.errors import UsageError
from medallion.maintenance import files, swap
from medallion.maintenance.files import DataFile
from medallion.maintenance.retention import committed_batch

LAYERS: dict[str, tuple[Dataset, ...]] = {
    "bronze": (catalog.BRONZE,),
    "dlq": (catalog.BRONZE_DLQ, catalog.SILVER_DLQ),
    "silver": (catalog.SILVER,),
    "gold": catalog.GOLD_TABLES,
}
MB = 1024 * 1024
ROW_GROUP_BYTES = 32 * MB
SPARK_ROW_METADATA = lake.SPARK_ROW_METADATA.encode()
_ARROW_SCHEMA = b"ARROW:schema"  # pyarrow writes its own


@dataclass(frozen=True)
class Unit:
    """One partition to compact: the folder swapped whole, and the folder below it the merged files go to."""

    dataset: Dataset
    live: str
    label: str  # "dt=2026-11-01/hr=3"
    files: list[DataFile]
    into: str = ""  # Bronze: "batch=<max>"

    @property
    def bytes(self) -> int:
        return sum(f.size for f in self.files)

    def relative(self, f: DataFile) -> str:
        return f.path[len(self.live) :].strip("/")


@dataclass
class Compacted:
    dataset: str
    partition: str
    files_before: int
    files_after: int
    rows: int
    bytes_before: int
    bytes_after: int  # a dry run: the bytes before (what it would write is about the same)


@dataclass
class CompactResult:
    layer: str
    dry_run: bool
    mode: str
    compacted: list[Compacted] = field(default_factory=list)
    already: int = 0  # partitions left alone: at their target file count already
    skipped: dict[str, int] = field(default_factory=dict)  # reason → partitions not taken
    recovered: list[str] = field(default_factory=list)  # journals of crashed runs settled first

    def total(self, name: str) -> int:
        return sum(int(getattr(c, name)) for c in self.compacted)


def layer_datasets(layer: str) -> tuple[Dataset, ...]:
    if layer not in LAYERS:
        raise UsageError(f"Unknown layer {layer!r} for compact: one of {', '.join(LAYERS)}.")
    return LAYERS[layer]


def swap_mode(cfg: Config, *, exclusive: bool) -> str:
    """Exchange on a local lake that supports it; the file-by-file move only when the user said no outside
    reader runs (``--exclusive``); else a usage error (exit 2) saying why."""
    scheme = cfg.lake.root.split("://", 1)[0] if "://" in cfg.lake.root else "a local disk"
    reason = f"the lake is on {scheme}, where a folder cannot be swapped for another in one step"
    if cfg.lake.is_local:
        probe_dir = str(lakefs.local_path(catalog.COMPACTION_JOURNAL.path(cfg)))
        lakefs.local_path(probe_dir).mkdir(parents=True, exist_ok=True)
        if swap.exchange_works(probe_dir):
            return swap.EXCHANGE
        reason = "this filesystem (or kernel) cannot exchange two folders atomically (renameat2)"
    if exclusive:
        return swap.MOVE
    raise UsageError(
        f"compact cannot swap a partition's files in one atomic step here: {reason}. It would move the "
        "merged files in and delete the old ones one by one, and a reader outside medallion's locks (a "
        "notebook, DuckDB, a BI tool) reading meanwhile could count a row twice or miss it; medallion's "
        "own stages are kept out by the lake's locks either way. Stop such readers for the run and give "
        "--exclusive to say so."
    )


def _in_dates(value: str, start: dt.date | None, end: dt.date | None) -> bool:
    if start is None or end is None:
        return True
    try:
        day = dt.date.fromisoformat(value)
    except ValueError:
        return False
    return start <= day <= end


def _folders(path: str, column: str) -> Iterator[tuple[str, str]]:
    for value in lakefs.list_partitions(path, column):
        yield value, lakefs.join(path, f"{column}={value}")


def _leaves(
    dataset: Dataset, cfg: Config, start: dt.date | None, end: dt.date | None
) -> Iterator[tuple[str, str, dict[str, str]]]:
    """``(folder, label, values)`` of each unit folder (for Bronze: the hour, above its batch folders)."""
    levels = dataset.partitions[:-1] if dataset is BRONZE else dataset.partitions

    def walk(
        path: str, depth: int, label: str, values: dict[str, str]
    ) -> Iterator[tuple[str, str, dict[str, str]]]:
        if depth == len(levels):
            yield path, label, values
            return
        column = levels[depth]
        for value, folder in _folders(path, column):
            if column == dataset.date_column and not _in_dates(value, start, end):
                continue
            part = f"{column}={value}"
            yield from walk(
                folder, depth + 1, f"{label}/{part}" if label else part, {**values, column: value}
            )

    yield from walk(dataset.path(cfg), 0, "", {})


def plan(
    cfg: Config,
    dataset: Dataset,
    *,
    start: dt.date | None = None,
    end: dt.date | None = None,
    now: dt.datetime | None = None,
    result: CompactResult,
) -> list[Unit]:
    """The partitions of ``dataset`` to compact; those left alone are counted in ``result``."""
    now = now or dt.datetime.now(dt.UTC)
    target = cfg.maintenance.compact_target_mb * MB
    committed = committed_batch(cfg) if BATCH in dataset.partitions else -1
    grace = dt.timedelta(hours=cfg.maintenance.compact_grace_hours)
    units = []
    for folder, label, values in _leaves(dataset, cfg, start, end):
        into = ""
        if dataset is BRONZE:
            names = [b for b in lakefs.list_partitions(folder, BATCH) if b.isdigit()]
            batches = [int(b) for b in names]
            hour = dt.datetime.fromisoformat(values[catalog.DT]).replace(tzinfo=dt.UTC)
            ended = hour + dt.timedelta(hours=int(values[catalog.HR]) + 1)
            if not batches:
                continue
            if len(batches) == 1:  # one batch wrote it (Spark: one file per hour and batch), or compact did
                result.already += 1
                continue
            if max(batches) > committed:
                _skip(result, "a batch the ingest has not committed")
                continue
            if ended + grace > now:
                _skip(result, "an hour within maintenance.compact_grace_hours")
                continue
            into = f"{BATCH}={max(names, key=int)}"
        elif dataset is BRONZE_DLQ and int(values[BATCH]) > committed:
            _skip(result, "a batch the ingest has not committed")
            continue
        found = files.data_files(folder)
        if dataset is BRONZE:  # only the batch folders judged above: one the ingest adds meanwhile stays out
            taken = {f"{BATCH}={b}" for b in names}
            found = [f for f in found if f.path[len(folder) :].strip("/").split("/")[0] in taken]
        if not found:
            continue
        if len(found) <= max(1, math.ceil(sum(f.size for f in found) / target)):
            result.already += 1
            continue
        units.append(Unit(dataset, folder, f"{dataset.name}/{label}", found, into))
    return units


def _skip(result: CompactResult, reason: str) -> None:
    result.skipped[reason] = result.skipped.get(reason, 0) + 1


def _schema(unit: Unit) -> pa.Schema | None:
    """The one schema of the unit's files (with the first file's footer metadata); None if they differ."""
    schemas = [files.parquet_file(f.path).schema_arrow for f in unit.files]
    first = schemas[0]
    spark = (first.metadata or {}).get(SPARK_ROW_METADATA)
    for other in schemas[1:]:
        if (
            not other.equals(first, check_metadata=False)
            or (other.metadata or {}).get(SPARK_ROW_METADATA) != spark
        ):
            return None
    metadata = {k: v for k, v in (first.metadata or {}).items() if k != _ARROW_SCHEMA}
    return first.with_metadata(metadata)


class _Output:
    """The merged files of one unit, written one after another: ``per_file`` rows each, in row groups."""

    def __init__(self, unit: Unit, staging: str, run_id: str, schema: pa.Schema, per_file: int) -> None:
        self.unit, self.staging, self.run_id, self.schema, self.per_file = (
            unit,
            staging,
            run_id,
            schema,
            per_file,
        )
        self.filesystem = lakefs.filesystem_and_path(staging)[0]
        self.written: list[str] = []
        self.writer: pq.ParquetWriter | None = None
        self.in_file = 0

    def room(self) -> int:
        """Rows the current file still takes (a full or no file: a new one's)."""
        return (
            self.per_file - self.in_file
            if self.writer is not None and self.in_file < self.per_file
            else self.per_file
        )

    def write(self, table: pa.Table) -> None:
        if self.writer is None or self.in_file >= self.per_file:
            self.close()
            name = f"part-{len(self.written):05d}-{self.run_id}.c000.snappy.parquet"
            rel = f"{self.unit.into}/{name}" if self.unit.into else name
            target = lakefs.filesystem_and_path(lakefs.join(self.staging, rel))[1]
            self.filesystem.create_dir(target.rpartition("/")[0], recursive=True)
            self.writer = pq.ParquetWriter(
                self.filesystem.open_output_stream(target),
                self.schema,
                compression="snappy",
                coerce_timestamps="us",
                store_decimal_as_integer=True,
            )
            self.written.append(rel)
            self.in_file = 0
        self.writer.write_table(table, row_group_size=max(1, table.num_rows))
        self.in_file += table.num_rows

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


def merge(
    unit: Unit, staging: str, target_bytes: int, run_id: str, schema: pa.Schema
) -> tuple[list[str], int]:
    """Write the unit's rows, in order, into ``staging/<into>/part-NNNNN-<run_id>.c000.snappy.parquet`` files
    of about ``target_bytes`` each; their paths relative to the unit's folder, and the rows written.

    Reads one input batch at a time and buffers at most a row group (`ROW_GROUP_BYTES` on disk)."""
    rows = sum(files.row_count(f.path) for f in unit.files)
    per_file = max(1, math.ceil(rows / max(1, math.ceil(unit.bytes / target_bytes))))
    per_group = max(1, min(per_file, int(ROW_GROUP_BYTES * rows / max(unit.bytes, 1))))
    out = _Output(unit, staging, run_id, schema, per_file)
    pending: list[pa.RecordBatch] = []
    buffered = 0
    try:
        for f in unit.files:
            for batch in files.parquet_file(f.path).iter_batches(batch_size=65536):
                pending.append(batch.replace_schema_metadata(None))
                buffered += batch.num_rows
                while buffered and buffered >= min(per_group, out.room()):
                    table = pa.Table.from_batches(pending)
                    take = min(per_group, out.room())
                    out.write(table.slice(0, take))
                    rest = table.slice(take)
                    pending, buffered = rest.to_batches(), rest.num_rows
        if buffered or not out.written:
            out.write(pa.Table.from_batches(pending) if pending else schema.remove_metadata().empty_table())
    finally:
        out.close()
    return out.written, rows


def compact(
    cfg: Config,
    layer: str,
    *,
    run_id: str,
    start: dt.date | None = None,
    end: dt.date | None = None,
    dry_run: bool = False,
    mode: str = swap.EXCHANGE,
    now: dt.datetime | None = None,
) -> CompactResult:
    """Compact ``layer``'s closed partitions (all, or those of dates ``start``..``end``). The caller holds
    the locks (`jobs.compact`); journals a crashed run left on these tables are settled first."""
    datasets = layer_datasets(layer)
    result = CompactResult(layer, dry_run, mode)
    if not dry_run:
        result.recovered = swap.recover(cfg, {d.name for d in datasets})
    target = cfg.maintenance.compact_target_mb * MB
    for dataset in datasets:
        for unit in plan(cfg, dataset, start=start, end=end, now=now, result=result):
            schema = _schema(unit)
            if schema is None:
                _skip(result, "files of different schemas (rebuild the partition with its stage)")
                continue
            before = Compacted(dataset.name, unit.label, len(unit.files), 0, 0, unit.bytes, unit.bytes)
            if dry_run:
                before.files_after = max(1, math.ceil(unit.bytes / target))
                before.rows = sum(files.row_count(f.path) for f in unit.files)
            else:
                n = len(result.compacted)
                done = _rewrite(cfg, unit, schema, run_id, swap.staging_for(cfg, run_id, n), mode)
                before.files_after, before.rows, before.bytes_after = done
            result.compacted.append(before)
    return result


def _rewrite(
    cfg: Config, unit: Unit, schema: pa.Schema, run_id: str, staging: str, mode: str
) -> tuple[int, int, int]:
    """One partition through the journaled steps; its files, rows and bytes after."""
    entries = sorted({unit.relative(f).split("/")[0] for f in unit.files})  # what the new folder replaces
    journal = swap.Journal(
        run_id, unit.dataset.name, mode, unit.live, staging, [unit.relative(f) for f in unit.files], entries
    )
    journal.save(cfg)
    swap.after_step("intent")
    filesystem, inner = lakefs.filesystem_and_path(staging)
    filesystem.create_dir(inner, recursive=True)
    suffix = staging.rsplit("/", 1)[-1]  # the run id and the partition's number: new names are unique
    new, rows = merge(unit, staging, cfg.maintenance.compact_target_mb * MB, suffix, schema)
    journal.new = new
    journal.save(cfg)
    swap.after_step("staged")
    size = sum(files.file_size(lakefs.join(staging, rel)) for rel in new)
    swap.swap(cfg, journal)
    return len(new), rows, size
