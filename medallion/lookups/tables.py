"""A user's reference tables: read from a file, checked against the catalogue, written whole or not at all.

The catalogue (`medallion.core.catalog.LOOKUPS`) is the one place a lookup's columns, types and key are
declared; everything here is derived from it. A file (CSV with a header, Parquet, or JSON lines) must
have exactly the catalogue's columns; each value is converted to the column's type, and the first value
that does not convert, a key that is missing or repeated, fails the load with an error naming the row
and the column. Nothing is written then: a lookup is one Parquet file, replaced by an atomic rename
(`lakefs.write_bytes`), so Silver reads the previous table or the new one, never a part of either.

Currency rates keep their history: a load adds the dates it brings and corrects the ones it repeats
(same currency and ``as_of_date``), and keeps every other row, unless ``replace``. Items and users are
replaced by each load (they are the current catalogue and user base).

Imports no pyspark: loading a table of reference data starts no Spark.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from medallion.core import catalog, lakefs
from medallion.core.contract import EVENT_SCHEMA
from medallion.core.errors import TerminalError, UsageError
from medallion.pii.scrub import Hmac, normalize_email, normalize_phone, scrub_identifier

FILE_NAME = "part-00000.parquet"
"""A lookup is this one file in its catalogue directory (what `medallion produce` writes too)."""

KEEPS_HISTORY = frozenset({catalog.CURRENCY_RATES.name})
"""Lookups a load adds to (by key) rather than replaces."""

_ID = re.compile(EVENT_SCHEMA["properties"]["user_id"]["pattern"].removesuffix("$") + r"\Z")
_ID_MAX = EVENT_SCHEMA["properties"]["user_id"]["maxLength"]
_CURRENCY = re.compile(r"[A-Z]{3}")
_ARROW = {"string": pa.string(), "double": pa.float64(), "int": pa.int32(), "date": pa.date32()}


class LookupFileError(TerminalError):
    """A lookup file that does not match the catalogue: the message names the row and the column."""


def by_name(name: str) -> catalog.Dataset:
    """The lookup dataset called ``name`` (``items``, ``users``, ``currency_rates``, or ``lookup.items``)."""
    for table in catalog.LOOKUPS:
        if name in (table.name, table.short_name):
            return table
    known = ", ".join(t.short_name for t in catalog.LOOKUPS)
    raise UsageError(f"No lookup table {name!r}: the lookups are {known}.")


def arrow_schema(table: catalog.Dataset) -> pa.Schema:
    """The lookup's columns as Arrow types (key columns not nullable)."""
    return pa.schema([pa.field(c.name, _ARROW[c.type], c.name not in table.key) for c in table.columns])


def expected_shape(table: catalog.Dataset) -> str:
    """One line saying what a file for ``table`` must hold (for error messages and the README)."""
    cols = ", ".join(f"{c.name} ({c.type})" for c in table.columns)
    return f"{table.short_name}: columns {cols}; one row per {' + '.join(table.key)}"


# --- reading ----------------------------------------------------------------------------------------------


def read_rows(path: str) -> tuple[list[str], Iterator[tuple[str, dict[str, Any]]]]:
    """The file's column names and its rows, each with where it is (``row 3 (line 4)``).

    The format follows the suffix: ``.csv``; ``.parquet``/``.pq``; ``.jsonl``/``.ndjson``/``.json`` (one
    object per line)."""
    suffix = Path(path).suffix.lower()
    try:
        if suffix == ".csv":
            return _csv_rows(path)
        if suffix in (".parquet", ".pq"):
            return _parquet_rows(path)
        if suffix in (".jsonl", ".ndjson", ".json"):
            return _json_rows(path)
    except OSError as exc:
        raise UsageError(f"Cannot read {path}: {exc.strerror or exc}.") from None
    except (pa.ArrowInvalid, UnicodeDecodeError, csv.Error) as exc:
        raise LookupFileError(f"{path} cannot be read as {suffix[1:]}: {exc}") from None
    raise UsageError(f"{path}: give a .csv (with a header), .parquet or .jsonl file.")


def _csv_rows(path: str) -> tuple[list[str], Iterator[tuple[str, dict[str, Any]]]]:
    text = Path(path).read_text(encoding="utf-8-sig")
    reader = csv.DictReader(io.StringIO(text, newline=""))
    names = list(reader.fieldnames or [])

    def rows() -> Iterator[tuple[str, dict[str, Any]]]:
        for n, row in enumerate(reader, 1):
            if None in row:
                raise LookupFileError(
                    f"{path} row {n} (line {reader.line_num}) has more values than the header"
                )
            yield f"row {n} (line {reader.line_num})", {k: (v if v != "" else None) for k, v in row.items()}

    return names, rows()


def _parquet_rows(path: str) -> tuple[list[str], Iterator[tuple[str, dict[str, Any]]]]:
    table = pq.read_table(path)
    return table.column_names, ((f"row {n}", row) for n, row in enumerate(table.to_pylist(), 1))


def _json_rows(path: str) -> tuple[list[str], Iterator[tuple[str, dict[str, Any]]]]:
    objects: list[tuple[str, dict[str, Any]]] = []
    for line_no, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        where = f"row {len(objects) + 1} (line {line_no})"
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise LookupFileError(f"{path} {where} is not JSON ({exc.msg})") from None
        if not isinstance(obj, dict):
            raise LookupFileError(f"{path} {where} is not a JSON object")
        objects.append((where, obj))
    names = list(dict.fromkeys(k for _, obj in objects for k in obj))
    return names, iter(objects)


# --- checking ---------------------------------------------------------------------------------------------


def _to_string(v: Any) -> str:
    if not isinstance(v, str):
        raise ValueError(f"{v!r} is not text")
    return v


def _to_double(v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float | str):
        raise ValueError(f"{v!r} is not a number")
    try:
        out = float(v)
    except ValueError:
        raise ValueError(f"{v!r} is not a number") from None
    if not math.isfinite(out):
        raise ValueError(f"{v!r} is not a finite number")
    return out


def _to_int(v: Any) -> int:
    if isinstance(v, bool):
        raise ValueError(f"{v!r} is not an integer")
    if isinstance(v, str):
        v = v.strip()
        if not re.fullmatch(r"[+-]?[0-9]+", v):
            raise ValueError(f"{v!r} is not an integer")
    elif isinstance(v, float) and not v.is_integer() or not isinstance(v, int | float):
        raise ValueError(f"{v!r} is not an integer")
    out = int(v)
    if not -(2**31) <= out < 2**31:
        raise ValueError(f"{v!r} does not fit a 32-bit integer")
    return out


def _to_date(v: Any) -> date:
    if isinstance(v, datetime):
        raise ValueError(f"{v!r} is a time, not a date")
    if isinstance(v, date):
        return v
    if isinstance(v, str):
        try:
            return date.fromisoformat(v.strip())
        except ValueError:
            pass
    raise ValueError(f"{v!r} is not a date (YYYY-MM-DD)")


_CONVERT: dict[str, Callable[[Any], Any]] = {
    "string": _to_string,
    "double": _to_double,
    "int": _to_int,
    "date": _to_date,
}


def _key_rule(table: catalog.Dataset, column: str) -> Callable[[Any], None] | None:
    """What a key value must also be: an id as the contract defines one, a currency code."""
    if column in ("user_id", "item_id"):

        def id_rule(v: str) -> None:
            if len(v) > _ID_MAX or not _ID.search(v):
                raise ValueError(
                    f"{v!r} is not an id (1-{_ID_MAX} characters, not blank, no control characters)"
                )

        return id_rule
    if column == "currency":

        def currency_rule(v: str) -> None:
            if not _CURRENCY.fullmatch(v):
                raise ValueError(f"{v!r} is not an ISO-4217 code (three capital letters)")

        return currency_rule
    return None


def _value_rule(table: catalog.Dataset, column: str) -> Callable[[Any], None] | None:
    if column == "rate_to_usd":

        def positive(v: float) -> None:
            if v <= 0:
                raise ValueError(f"{v!r} is not a positive rate")

        return positive
    return None


def checked_table(table: catalog.Dataset, path: str) -> pa.Table:
    """The file at ``path`` as ``table``'s Arrow table, every value converted and every rule checked.

    Raises `LookupFileError` naming the file, row and column of the first problem, or the columns
    missing or not declared."""
    names, rows = read_rows(path)
    declared = table.column_names
    missing = [c for c in declared if c not in names]
    extra = [c for c in names if c not in declared]
    if missing or extra:
        said = [f"lacks {', '.join(missing)}"] if missing else []
        said += [f"has columns the catalogue does not declare: {', '.join(extra)}"] if extra else []
        raise LookupFileError(f"{path} {' and '.join(said)}. Expected {expected_shape(table)}.")
    types = {c.name: c.type for c in table.columns}
    rules = {c: (_key_rule(table, c) if c in table.key else _value_rule(table, c)) for c in declared}
    columns: dict[str, list[Any]] = {c: [] for c in declared}
    seen: dict[tuple[Any, ...], str] = {}
    for where, row in rows:
        for c in declared:
            raw = row.get(c)
            if raw is None:
                if c in table.key or c == "rate_to_usd":
                    raise LookupFileError(f"{path} {where}, column {c}: a value is required")
                columns[c].append(None)
                continue
            try:
                value = _CONVERT[types[c]](raw)
                rule = rules[c]
                if rule is not None:
                    rule(value)
            except ValueError as exc:
                raise LookupFileError(f"{path} {where}, column {c}: {exc} ({types[c]} expected)") from None
            columns[c].append(value)
        key = tuple(columns[c][-1] for c in table.key)
        if key in seen:
            shown = ", ".join(f"{c}={v}" for c, v in zip(table.key, key, strict=True))
            raise LookupFileError(
                f"{path} {where} repeats the key {shown} of {seen[key]}: keep one row per {' + '.join(table.key)}."
            )
        seen[key] = where
    return pa.table(columns, schema=arrow_schema(table))


# --- writing ----------------------------------------------------------------------------------------------


def file_path(cfg_root: str, table: catalog.Dataset) -> str:
    return catalog.join(cfg_root, *table.location, FILE_NAME)


def read_current(lake_root: str, table: catalog.Dataset) -> pa.Table | None:
    """The table as stored (every Parquet file in its directory), or None when there is none."""
    files = [
        f
        for f in lakefs.list_files(catalog.join(lake_root, *table.location), ".parquet")
        if not f.rpartition("/")[2].startswith(catalog.HIDDEN_PREFIXES)
    ]
    if not files:
        return None
    filesystem, _ = lakefs.filesystem_and_path(files[0])
    parts = [pq.read_table(lakefs.filesystem_and_path(f)[1], filesystem=filesystem) for f in files]
    return pa.concat_tables([p.select(table.column_names).cast(arrow_schema(table)) for p in parts])


@dataclass(frozen=True)
class Stored:
    """What a write did: rows now in the table, rows the load brought, rows of the earlier table kept
    (currency rates) and the dates the load corrected."""

    rows: int
    loaded: int
    kept: int
    corrected: int


def merged(
    table: catalog.Dataset, new: pa.Table, current: pa.Table | None, replace: bool
) -> tuple[pa.Table, int, int]:
    """``new`` with the rows of ``current`` it does not repeat (by key), when ``table`` keeps history and
    not ``replace``; with how many earlier rows were kept and how many the load corrected."""
    if replace or current is None or table.name not in KEEPS_HISTORY:
        return new, 0, 0
    key = list(table.key)
    loaded = set(zip(*(new.column(k).to_pylist() for k in key), strict=True))
    old_keys = list(zip(*(current.column(k).to_pylist() for k in key), strict=True))
    keep = pa.array([k not in loaded for k in old_keys], pa.bool_())
    kept = current.filter(keep)
    out = pa.concat_tables([kept, new]).sort_by([(k, "ascending") for k in key])
    return out, kept.num_rows, current.num_rows - kept.num_rows


def store(lake_root: str, table: catalog.Dataset, new: pa.Table, *, replace: bool = False) -> Stored:
    """Write ``new`` as ``table`` (merged with its history where it keeps one), atomically: the table is
    one Parquet file renamed into place; other data files in its directory (an older layout) go after."""
    history = table.name in KEEPS_HISTORY and not replace
    current = read_current(lake_root, table) if history else None
    out, kept, corrected = merged(table, new.cast(arrow_schema(table)), current, replace)
    sink = pa.BufferOutputStream()
    pq.write_table(out, sink)
    target = file_path(lake_root, table)
    lakefs.write_bytes(target, sink.getvalue().to_pybytes())
    for f in lakefs.list_files(catalog.join(lake_root, *table.location), ".parquet"):
        name = f.rpartition("/")[2]
        if name != FILE_NAME and not name.startswith(catalog.HIDDEN_PREFIXES):
            lakefs.delete_file(f)
    return Stored(rows=out.num_rows, loaded=new.num_rows, kept=kept, corrected=corrected)


ID_COLUMNS = ("user_id", "item_id")
"""Lookup columns holding the event ids Silver joins on (the contract's identifiers)."""


def ids_as_bronze_stores_them(table: catalog.Dataset, new: pa.Table, pii_key: bytes) -> pa.Table:
    """``new`` with each id that is wholly an email or a phone number replaced by its keyed hash, as
    Bronze stores the same id in an event (`pii.scrub.scrub_identifier`), so that the lookup joins and
    keeps no such PII in clear. Raises `LookupFileError` when two spellings of one address collide."""

    keyed = Hmac(pii_key)

    def scrub(value: str | None) -> str | None:
        if value is None:
            return None
        return scrub_identifier(
            value, lambda v: keyed(normalize_email(v)), lambda v: keyed(normalize_phone(v))
        )

    out = new
    for name in (c for c in ID_COLUMNS if c in new.column_names):
        values = new.column(name).to_pylist()
        scrubbed = [scrub(v) for v in values]
        if scrubbed == values:
            continue
        if name in table.key:
            first: dict[str | None, int] = {}
            for row, value in enumerate(scrubbed, 1):
                if value in first:
                    raise LookupFileError(
                        f"rows {first[value]} and {row} hold the same person's {name} spelled two ways "
                        "(an email or phone number, which is stored as its keyed hash): keep one row"
                    )
                first[value] = row
        out = out.set_column(out.column_names.index(name), name, pa.array(scrubbed, pa.string()))
    return out
