"""The lookups stage: a user's reference tables loaded (`load`) and described (`describe`).

A load is a stage run like the others: it holds the ``lookups`` lock and leaves one ledger record (the
table, the file, the rows read, stored, kept and corrected). The checks and the write are
`medallion.lookups.tables`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from medallion.core import catalog, stages
from medallion.core.ledger import Ledger
from medallion.lookups.tables import (
    KEEPS_HISTORY,
    Stored,
    by_name,
    checked_table,
    expected_shape,
    file_path,
    ids_as_bronze_stores_them,
    read_current,
    store,
)
from medallion.pii.keys import pii_key

if TYPE_CHECKING:
    from medallion.core.config import Config

STAGE = stages.LOOKUPS.name

__all__ = ["STAGE", "LookupState", "by_name", "describe", "expected_shape", "load"]


def load(cfg: Config, name: str, path: str, *, replace: bool = False) -> Stored:
    """Check the file at ``path`` against the lookup ``name`` and store it (see `tables.store`)."""

    table = by_name(name)
    key = pii_key(cfg)  # a missing key is a config error before anything is read
    with stages.run(cfg, stages.LOOKUPS, table=table.name, file=path, replace=replace) as rec:
        new = ids_as_bronze_stores_them(table, checked_table(table, path), key)
        stored = store(cfg.lake.root, table, new, replace=replace)
        rec.count(input=stored.loaded, output=stored.loaded)
        rec.metrics.update(table=table.name, rows=stored.rows, kept=stored.kept, corrected=stored.corrected)
    return stored


@dataclass(frozen=True)
class LookupState:
    """One lookup as `medallion lookups show` prints it."""

    table: catalog.Dataset
    rows: int | None  # None: not there
    last_load: dict[str, Any] | None  # the newest ledger record of a load of it (or of produce)
    history: str | None = None  # currency rates: the dates held


def describe(cfg: Config) -> list[LookupState]:
    """Every lookup: its rows, key, and the last run that wrote it (a load, else `medallion produce`)."""

    ledger = Ledger(cfg.lake.root)
    loads = [r for r in ledger.newest_first(STAGE) if r.outcome == "succeeded"]
    produced = ledger.last(stages.PRODUCE.name)
    out = []
    for table in catalog.LOOKUPS:
        current = read_current(cfg.lake.root, table)
        record = next((r for r in loads if r.inputs.get("table") == table.name), None)
        last = None
        if record is not None:
            last = {"at": record.started_at, "by": "lookups load", "file": record.inputs.get("file")}
        elif current is not None and produced is not None:
            last = {"at": produced.started_at, "by": "produce", "file": None}
        history = None
        if current is not None and table.name in KEEPS_HISTORY and current.num_rows:
            dates = sorted(set(current.column("as_of_date").to_pylist()))
            history = f"{len(dates)} dates, {dates[0]} to {dates[-1]}"
        out.append(LookupState(table, None if current is None else current.num_rows, last, history))
    return out


def missing_message(table: catalog.Dataset, where: str) -> str:
    """What Silver says when ``table`` is not there: the command that loads it and the file it expects."""
    return (
        f"Silver joins {table.name}, but there is none at {where}. Load yours with "
        f"`medallion lookups load {table.short_name} FILE` (CSV with a header, Parquet or JSON lines; "
        f"{expected_shape(table)}), or run `medallion produce` for the synthetic world's."
    )


def location(cfg: Config, table: catalog.Dataset) -> str:
    return file_path(cfg.lake.root, table)
