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


def delete_file(path: str) -> None:
    """Delete a data file and its checksum file."""
    filesystem, inner = lakefs.filesystem_and_path(path)
    parent, _, name = inner.rpartition("/")
    for victim in (inner, f"{parent}/.{name}.crc"):
        with contextlib.suppress(FileNotFoundError):
            filesystem.delete_file(victim)
