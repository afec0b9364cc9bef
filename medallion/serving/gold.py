"""Gold as materialization reads it: each entity's newest row in a window, with pyarrow (no Spark, no dask).

Gold's row for ``feature_date = D`` carries ``event_timestamp`` = the end of D, so a window on
``event_timestamp`` prunes partitions by their directory name before any file is opened. Timestamps are
normalised to ``timestamp[us, UTC]`` whatever the file wrote (Spark's INT96 reads as naive nanoseconds,
which are UTC instants).

``partition_fingerprints`` describes what each ``feature_date`` partition holds (its files' names, sizes
and modification times) without reading them: a partition Gold rewrote since the last materialization has
a new fingerprint, which is how an incremental run finds a date re-run after its materialization.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
from pyarrow import fs

from medallion.core import lakefs
from medallion.core.catalog import CREATED_TIMESTAMP, EVENT_TIMESTAMP, FEATURE_DATE
from medallion.features import FeatureFamily

UTC_US = pa.timestamp("us", tz="UTC")


def _visible(name: str) -> bool:
    return not name.startswith(("_", "."))


def partition_fingerprints(table_path: str) -> dict[str, str]:
    """``{feature_date: fingerprint}`` of every partition of a Gold table (one listing, no reads)."""
    filesystem, inner = lakefs.filesystem_and_path(table_path)
    try:
        infos = filesystem.get_file_info(fs.FileSelector(inner, recursive=True, allow_not_found=True))
    except FileNotFoundError:
        return {}
    parts: dict[str, list[str]] = {}
    prefix = f"{FEATURE_DATE}="
    for info in infos:
        if info.type != fs.FileType.File:
            continue
        relative = info.path[len(inner.rstrip("/")) + 1 :].split("/")
        if len(relative) != 2 or not relative[0].startswith(prefix) or not _visible(relative[1]):
            continue
        mtime = info.mtime_ns if info.mtime_ns is not None else 0
        parts.setdefault(relative[0][len(prefix) :], []).append(f"{relative[1]}:{info.size}:{mtime}")
    return {
        day: hashlib.sha1("\n".join(sorted(files)).encode()).hexdigest()[:16] for day, files in parts.items()
    }


def _partition_dates(start: dt.datetime | None, end: dt.datetime) -> tuple[str | None, str]:
    """The feature_date range whose rows can have ``start <= event_timestamp <= end``."""
    last = (end - dt.timedelta(days=1)).date()  # event_timestamp = feature_date + 1 day
    first = None if start is None else (start - dt.timedelta(days=1)).date() - dt.timedelta(days=1)
    return (None if first is None else first.isoformat()), last.isoformat()


def latest_rows(
    table_path: str,
    family: FeatureFamily,
    start: dt.datetime | None,
    end: dt.datetime,
    dates: Sequence[str] | None = None,
) -> pa.Table:
    """Each entity's newest Gold row (by ``event_timestamp``, then ``created_timestamp``) with
    ``start <= event_timestamp <= end``, sorted by the join key. Columns: the join key, both timestamps
    (``timestamp[us, UTC]``), ``feature_date`` (string) and the family's features. ``dates`` limits the
    read to those partitions."""
    key = family.entity.join_key
    columns = [key, EVENT_TIMESTAMP, CREATED_TIMESTAMP, *family.feature_names]
    filesystem, inner = lakefs.filesystem_and_path(table_path)
    partitioning = ds.partitioning(pa.schema([(FEATURE_DATE, pa.string())]), flavor="hive")
    dataset = ds.dataset(
        inner,
        filesystem=filesystem,
        format="parquet",
        partitioning=partitioning,
        ignore_prefixes=["_", "."],
    )
    first, last = _partition_dates(start, end)
    where = pc.field(FEATURE_DATE) <= last
    if first is not None:
        where = where & (pc.field(FEATURE_DATE) >= first)
    if dates is not None:
        where = where & pc.field(FEATURE_DATE).isin(pa.array(list(dates), pa.string()))
    table = dataset.to_table(columns=[*columns, FEATURE_DATE], filter=where)
    table = _normalised(table)

    events = table[EVENT_TIMESTAMP]
    keep = pc.and_kleene(pc.is_valid(table[key]), pc.less_equal(events, pa.scalar(end, UTC_US)))
    if start is not None:
        keep = pc.and_kleene(keep, pc.greater_equal(events, pa.scalar(start, UTC_US)))
    table = table.filter(pc.fill_null(keep, False))
    if table.num_rows == 0:
        return table
    # Sorted on the three columns alone, then each entity's first row taken once: the wide feature
    # columns are gathered once, for the rows kept, rather than sorted whole and then filtered.
    order = pc.sort_indices(
        table.select([key, EVENT_TIMESTAMP, CREATED_TIMESTAMP]),
        sort_keys=[(key, "ascending"), (EVENT_TIMESTAMP, "descending"), (CREATED_TIMESTAMP, "descending")],
    )
    keys = table[key].take(order).combine_chunks()
    first_of_key = np.ones(len(keys), dtype=bool)
    if len(keys) > 1:
        first_of_key[1:] = pc.not_equal(keys[1:], keys[:-1]).to_numpy(zero_copy_only=False)
    return table.take(order.filter(pa.array(first_of_key)))


def _normalised(table: pa.Table) -> pa.Table:
    """Both timestamps as ``timestamp[us, UTC]`` (naive values are UTC instants, as Spark writes them)."""
    for name in (EVENT_TIMESTAMP, CREATED_TIMESTAMP):
        column = table[name]
        if column.type != UTC_US:
            column = column.cast(UTC_US, safe=False)  # naive -> UTC, ns -> us (Spark writes micros)
            table = table.set_column(table.schema.get_field_index(name), name, column)
    return table


def micros(column: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """Microseconds since the epoch of a ``timestamp[us, UTC]`` column (nulls as 0)."""
    return np.asarray(column.cast(pa.int64()).fill_null(0).to_numpy(zero_copy_only=False), dtype=np.int64)
