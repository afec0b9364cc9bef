"""File operations on a catalogue dataset's Parquet files: the one module a table format could replace.

`forget` and `retention` see a dataset as its data files (`data_files`) in hive partition folders; they
read only the columns they need from a file (`read_columns`) and replace a file whole or not at all
(`replace_file`). Spark, pyarrow and DuckDB read these files as they are: nothing here adds a log or a
manifest that a plain reader would have to know.

Replacing a file: the new content is written to a hidden temporary file in the same folder (readers
skip names starting with ``.`` or ``_``), then renamed over the old one, an atomic step on a local disk
and HDFS; on an object store one PUT replaces the object whole. A reader sees the old file or the new
one, never part of either; a crash leaves at most a hidden temporary file. Hadoop's local checksum file
beside a data file (``.<name>.crc``) is removed with it, or Spark would refuse the new content.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pyarrow import fs

from medallion.core import lakefs
from medallion.core.catalog import HIDDEN_PREFIXES

PARQUET = ".parquet"


@dataclass(frozen=True)
class DataFile:
    path: str  # usable with lakefs and the functions here
    size: int
    mtime_ns: int


def data_files(table_path: str) -> list[DataFile]:
    """The visible Parquet files of a table (staging folders and hidden files skipped), sorted by path."""
    filesystem, inner = lakefs.filesystem_and_path(table_path)
    if filesystem.get_file_info(inner).type != fs.FileType.Directory:
        return []
    prefix = table_path[: len(table_path) - len(inner)] if "://" in table_path else ""
    out = []
    for info in filesystem.get_file_info(fs.FileSelector(inner, recursive=True)):
        if info.type != fs.FileType.File or not info.path.endswith(PARQUET):
            continue
        relative = info.path[len(inner) :].strip("/").split("/")
        if any(part.startswith(HIDDEN_PREFIXES) for part in relative):
            continue
        out.append(DataFile(prefix + info.path, info.size or 0, info.mtime_ns or 0))
    return sorted(out, key=lambda f: f.path)


def partition_values(table_path: str, file_path: str) -> dict[str, str]:
    """The hive partition values in a data file's folders: ``{"dt": "2026-11-01", "hr": "3"}``."""
    relative = file_path[len(table_path) :].strip("/").split("/")[:-1]
    return dict(part.split("=", 1) for part in relative if "=" in part)


def _open(path: str) -> pq.ParquetFile:
    filesystem, inner = lakefs.filesystem_and_path(path)
    return pq.ParquetFile(filesystem.open_input_file(inner))


def parquet_file(path: str) -> pq.ParquetFile:
    """One data file, opened (footer read; data read on demand)."""
    return _open(path)


def file_size(path: str) -> int:
    filesystem, inner = lakefs.filesystem_and_path(path)
    return int(filesystem.get_file_info(inner).size or 0)


def read_columns(path: str, columns: list[str]) -> pa.Table:
    """Only ``columns`` of one data file (those it has), without its partition columns."""
    parquet = _open(path)
    present = [c for c in columns if c in parquet.schema_arrow.names]
    return parquet.read(columns=present)


def row_count(path: str) -> int:
    """Rows of one data file, from its footer."""
    return int(_open(path).metadata.num_rows)


def column_max(path: str, column: str) -> Any:
    """The largest value of a top-level column of one data file, from its footer's statistics (the
    column read when a row group has none); None for an empty file."""
    parquet = _open(path)
    meta = parquet.metadata
    index = parquet.schema_arrow.get_field_index(column)
    if index < 0 or meta.num_rows == 0:
        return None
    found = []
    for group in range(meta.num_row_groups):
        stats = meta.row_group(group).column(index).statistics
        if stats is None or not stats.has_min_max:
            values = parquet.read(columns=[column]).column(0)
            return pc.max(values).as_py()
        found.append(stats.max)
    return max(found)


def read_file(path: str) -> pa.Table:
    """One data file whole (schema and its metadata as written)."""
    return _open(path).read()


def replace_file(path: str, table: pa.Table) -> None:
    """Write ``table`` over the data file at ``path``, whole or not at all (see the module's text).

    Written as Spark writes the lake (snappy, timestamps in microseconds, decimals of up to 18 digits
    as integers), with the file's schema and its metadata kept.
    """
    filesystem, inner = lakefs.filesystem_and_path(path)
    parent, _, name = inner.rpartition("/")
    atomic_rename = filesystem.type_name in ("local", "hdfs")
    target = f"{parent}/.{name}.{uuid.uuid4().hex}.tmp" if atomic_rename else inner
    try:
        with filesystem.open_output_stream(target) as out:
            pq.write_table(
                table,
                out,
                compression="snappy",
                coerce_timestamps="us",
                store_decimal_as_integer=True,
            )
        if atomic_rename:
            if filesystem.type_name == "hdfs":
                filesystem.delete_file(inner)
            filesystem.move(target, inner)
    except BaseException:
        if atomic_rename:
            with contextlib.suppress(OSError):
                filesystem.delete_file(target)
        raise
    with contextlib.suppress(OSError):
        filesystem.delete_file(f"{parent}/.{name}.crc")


def write_partitions(table: pa.Table, table_path: str, partition_by: Sequence[str], name: str) -> list[str]:
    """Dynamic partition overwrite from this process, without Spark: ``table``'s rows of each partition
    (each combination of the ``partition_by`` columns' values) become one data file ``name`` in the
    partition's folder (`partition_folder`), written whole or not at all (`replace_file`); then every
    other file the folder held is deleted. Partitions ``table`` has no rows for are left alone. So the
    same rows written again leave the same files: a replayed micro-batch, whose partitions are its own,
    replaces what its first attempt wrote. The files take ``table``'s schema less the partition columns,
    and its metadata (`medallion.core.lake.arrow_schema` gives Spark's, so Spark reads the types it
    declares). The folders written, relative to ``table_path``."""
    columns = [c for c in table.column_names if c not in partition_by]
    groups = table.group_by(list(partition_by), use_threads=False).aggregate([]).to_pylist()

    def write(values: dict[str, Any]) -> str:
        rows = table
        for column in partition_by:
            value = values[column]
            cell = rows.column(column)
            rows = rows.filter(pc.is_null(cell) if value is None else pc.equal(cell, value))
        folder = "/".join(partition_folder(c, values[c]) for c in partition_by)
        filesystem, inner = lakefs.filesystem_and_path(lakefs.join(table_path, folder))
        filesystem.create_dir(inner, recursive=True)
        replace_file(lakefs.join(table_path, folder, name), rows.select(columns))
        _, others = lakefs.list_children(lakefs.join(table_path, folder))
        for other in others:  # an earlier attempt's files, a killed one's temporary file, their checksums
            if other != name:
                delete_file(lakefs.join(table_path, folder, other))
        return folder

    # Partitions are written side by side: pyarrow encodes and writes without the GIL.
    with ThreadPoolExecutor(max_workers=PARTITION_WRITERS, thread_name_prefix="write-partitions") as pool:
        return list(pool.map(write, groups))


PARTITION_WRITERS = 2
"""Partitions `write_partitions` writes at once (a backlog's batch spans dozens of hours)."""


# What Spark escapes in a partition folder's value (`ExternalCatalogUtils.escapePathName`), and the value
# it writes for null.
_ESCAPED = frozenset([*map(chr, range(0x01, 0x20)), *"\"#%'*/:=?\\\x7f{[]^"])
HIVE_NULL = "__HIVE_DEFAULT_PARTITION__"


def partition_folder(column: str, value: Any) -> str:
    """``column=value`` as Spark names a partition's folder: characters a path cannot hold as they are
    written ``%XX``, null as `HIVE_NULL`. The value's text is Python's ``str``, which is Spark's for the
    strings, integers and dates tables are partitioned by here (not for booleans or floats)."""
    if value is None:
        return f"{column}={HIVE_NULL}"
    text = str(value)
    return f"{column}=" + "".join(f"%{ord(ch):02X}" if ch in _ESCAPED else ch for ch in text)


def delete_file(path: str) -> None:
    """Delete a data file and its checksum file."""
    filesystem, inner = lakefs.filesystem_and_path(path)
    parent, _, name = inner.rpartition("/")
    for victim in (inner, f"{parent}/.{name}.crc"):
        with contextlib.suppress(FileNotFoundError):
            filesystem.delete_file(victim)
