"""`medallion retention`: whole date partitions past their age deleted (≈ VACUUM / expire), and said.

Each dataset is aged by its date partition, against today (UTC) minus its configured days
(`MaintenanceConfig`): a partition of date D goes when D < today - days. What goes is listed with its
files, rows (from the Parquet footers, no data read) and bytes; ``dry_run`` only lists it.

What it never deletes:

- What a current run reads: `jobs.retention` holds the locks of the stages that read or replace these
  tables (Silver, Gold, materialize, validate) for the whole run, so none of them is running.
- What a running or restarting ingest may still write: Bronze's folders of batches the checkpoint has
  not committed (a replay would write them again), and its DLQ's likewise.
- Gold feature dates the online store or a drift reference still needs: the newest feature date's
  window of ``max(serving.ttl_days, drift.reference_days)`` days (a materialize loads rows within the
  TTL, and drift compares a date with the reference days before it), and a configured drift baseline.

Beside the data it bounds the ledger (day folders of each stage by run start; the ingest's per-batch
records by their own, shorter age), the rule and drift results, the drift profiles, and the ingest's
data-loss log. Spark bounds the streaming checkpoint itself
(``spark.sql.streaming.minBatchesToRetain`` offsets and commits, and as many state store versions),
which `status` shows.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from medallion.core import catalog, lakefs
from medallion.core.catalog import Dataset
from medallion.core.config import Config
from medallion.core.lake import bronze_batches
from medallion.maintenance import files


@dataclass
class Expired:
    """One dataset's expired partitions (or files): how many, and their rows and bytes."""

    dataset: str
    cutoff: str  # dates before this one go
    partitions: list[str] = field(default_factory=list)
    files: int = 0
    rows: int = 0
    bytes: int = 0
    kept: str = ""  # why some older partitions stay, when they do


@dataclass
class RetentionResult:
    dry_run: bool
    expired: list[Expired] = field(default_factory=list)

    @property
    def partitions(self) -> int:
        return sum(len(e.partitions) for e in self.expired)


def _cutoff(today: dt.date, days: int) -> str:
    return (today - dt.timedelta(days=days)).isoformat()


def _folders(path: str, column: str) -> Iterator[tuple[str, str]]:
    """``(value, folder)`` of each ``column=value`` folder directly below ``path``."""
    for value in lakefs.list_partitions(path, column):
        yield value, lakefs.join(path, f"{column}={value}")


def _measure(
    expired: Expired, folder: str, dry_run: bool, files_in: list[files.DataFile] | None = None
) -> None:
    found = files_in if files_in is not None else files.data_files(folder)
    expired.files += len(found)
    expired.bytes += sum(f.size for f in found)
    expired.rows += sum(files.row_count(f.path) for f in found)
    if not dry_run:
        filesystem, inner = lakefs.filesystem_and_path(folder)
        filesystem.delete_dir(inner)


def _dated_table(
    cfg: Config,
    table: Dataset,
    days: int,
    today: dt.date,
    dry_run: bool,
    keep: Callable[[str], bool] | None = None,
) -> Expired:
    """A table partitioned first by its date column: every date folder older than the cutoff."""
    assert table.date_column is not None
    cutoff = _cutoff(today, days)
    expired = Expired(table.name, cutoff)
    for value, folder in _folders(table.path(cfg), table.date_column):
        if value >= cutoff:
            continue
        if keep is not None and keep(value):
            expired.kept = "still needed by the online store or a drift reference"
            continue
        expired.partitions.append(f"{table.date_column}={value}")
        _measure(expired, folder, dry_run)
    return expired


def committed_batch(cfg: Config) -> int:
    """The newest micro-batch the ingest's checkpoint has committed (-1: none)."""
    commits = lakefs.list_children(lakefs.join(catalog.INGEST_CHECKPOINT.path(cfg), "commits"))[1]
    ids = [int(n) for n in commits if n.isdigit()]
    return max(ids, default=-1)


def _bronze(cfg: Config, today: dt.date, dry_run: bool) -> Expired:
    """Bronze's old dates, one committed batch folder at a time (a late event of an old date may be in a
    batch still being written: that folder stays until a later run)."""
    cutoff = _cutoff(today, cfg.maintenance.bronze_days)
    expired = Expired(catalog.BRONZE.name, cutoff)
    committed = committed_batch(cfg)
    root = catalog.BRONZE.path(cfg)
    for day, batches in sorted(bronze_batches(root).items()):
        if day >= cutoff:
            continue
        if any(b > committed for b in batches):
            expired.kept = "batches the checkpoint has not committed yet"
        for hour, hour_folder in _folders(lakefs.join(root, f"{catalog.DT}={day}"), catalog.HR):
            for batch, folder in _folders(hour_folder, catalog.BATCH):
                if int(batch) <= committed:
                    expired.partitions.append(
                        f"{catalog.DT}={day}/{catalog.HR}={hour}/{catalog.BATCH}={batch}"
                    )
                    _measure(expired, folder, dry_run)
    return expired


def _bronze_dlq(cfg: Config, today: dt.date, dry_run: bool) -> Expired:
    """The Bronze DLQ has no date partition: a committed batch folder goes when its newest dead letter
    failed before the cutoff (``failed_at``'s maximum, from the Parquet footers)."""
    cutoff = _cutoff(today, cfg.maintenance.dlq_days)
    expired = Expired(catalog.BRONZE_DLQ.name, cutoff)
    committed = committed_batch(cfg)
    for batch, folder in _folders(catalog.BRONZE_DLQ.path(cfg), catalog.BATCH):
        if int(batch) > committed:
            continue
        found = files.data_files(folder)
        newest = max((files.column_max(f.path, "failed_at") for f in found), default=None)
        if newest is not None and newest.date().isoformat() < cutoff:
            expired.partitions.append(f"{catalog.BATCH}={batch}")
            _measure(expired, folder, dry_run, found)
    return expired


def gold_dates_needed(cfg: Config, dates: list[str]) -> Callable[[str], bool]:
    """Whether a Gold feature date must stay: within the newest date's serving and drift window, or in
    the drift baseline."""
    if not dates:
        return lambda _: False
    newest = dt.date.fromisoformat(max(dates))
    window = max(cfg.serving.ttl_days, cfg.drift.reference_days)
    first_needed = (newest - dt.timedelta(days=window)).isoformat()
    start, end = cfg.drift.baseline_start, cfg.drift.baseline_end
    baseline = (start.isoformat(), end.isoformat()) if start and end else None

    def needed(value: str) -> bool:
        return value >= first_needed or (baseline is not None and baseline[0] <= value <= baseline[1])

    return needed


def _json_files(
    dataset: Dataset, cfg: Config, cutoff: str, date_of: Callable[[str], str], dry_run: bool
) -> Expired:
    """JSON records below a folder whose names carry their date."""
    expired = Expired(dataset.name, cutoff)
    for path in lakefs.list_files(dataset.path(cfg), suffix=".json"):
        name = path.rsplit("/", 1)[-1]
        if name.startswith(catalog.HIDDEN_PREFIXES) or date_of(name) >= cutoff:
            continue
        expired.partitions.append(path[len(dataset.path(cfg)) + 1 :])
        expired.files += 1
        if not dry_run:
            lakefs.delete_file(path)
    return expired


def _stamp_date(name: str) -> str:
    """``20261105T...`` → ``2026-11-05``."""
    return f"{name[:4]}-{name[4:6]}-{name[6:8]}"


def _ledger(cfg: Config, today: dt.date, dry_run: bool) -> Expired:
    """Day folders of each stage's ledger; the ingest's (one record per batch) by its own age. A key's
    pointer into a removed day goes with it."""
    root = catalog.LEDGER.path(cfg)
    cutoff = _cutoff(today, cfg.maintenance.ledger_days)
    expired = Expired(catalog.LEDGER.name, cutoff)
    for stage in lakefs.list_children(root)[0]:
        if stage.startswith(catalog.HIDDEN_PREFIXES):
            continue
        days = cfg.maintenance.ingest_ledger_days if stage == "ingest" else cfg.maintenance.ledger_days
        stage_cutoff = _cutoff(today, days)
        stage_dir = lakefs.join(root, stage)
        gone = [d for d in lakefs.list_children(stage_dir)[0] if not d.startswith("_") and d < stage_cutoff]
        for day in gone:
            expired.partitions.append(f"{stage}/{day}")
            found = lakefs.list_files(lakefs.join(stage_dir, day), suffix=".json")
            expired.files += len(found)
            if not dry_run:
                filesystem, inner = lakefs.filesystem_and_path(lakefs.join(stage_dir, day))
                filesystem.delete_dir(inner)
        if gone and not dry_run:
            keys = lakefs.join(stage_dir, "_keys")
            for key in lakefs.list_children(keys)[1]:
                entry = lakefs.join(keys, key)
                if lakefs.read_text(entry).split("/", 1)[0] in gone:
                    lakefs.delete_file(entry)
    return expired


def _data_loss_log(cfg: Config, today: dt.date, dry_run: bool) -> Expired:
    """The source's data-loss records, by when they were written."""
    cutoff = _cutoff(today, cfg.maintenance.ingest_ledger_days)
    expired = Expired(catalog.INGEST_DATA_LOSS.name, cutoff)
    limit = dt.datetime.fromisoformat(cutoff).replace(tzinfo=dt.UTC).timestamp() * 1e9
    filesystem, inner = lakefs.filesystem_and_path(catalog.INGEST_DATA_LOSS.path(cfg))
    for path in lakefs.list_files(catalog.INGEST_DATA_LOSS.path(cfg), suffix=".json"):
        info = filesystem.get_file_info(lakefs.filesystem_and_path(path)[1])
        if (info.mtime_ns or 0) < limit:
            expired.partitions.append(path.rsplit("/", 1)[-1])
            expired.files += 1
            if not dry_run:
                lakefs.delete_file(path)
    return expired


def expire(cfg: Config, *, dry_run: bool = False, today: dt.date | None = None) -> RetentionResult:
    """Delete (or list) every partition past its dataset's age. The caller holds the locks."""
    today = today or dt.datetime.now(dt.UTC).date()
    days = cfg.maintenance
    result = RetentionResult(dry_run)
    result.expired.append(_bronze(cfg, today, dry_run))
    result.expired.append(_bronze_dlq(cfg, today, dry_run))
    result.expired.append(_dated_table(cfg, catalog.SILVER_DLQ, days.dlq_days, today, dry_run))
    result.expired.append(_dated_table(cfg, catalog.SILVER, days.silver_days, today, dry_run))
    for table in catalog.GOLD_TABLES:
        assert table.date_column is not None
        dates = lakefs.list_partitions(table.path(cfg), table.date_column)
        keep = gold_dates_needed(cfg, dates)
        result.expired.append(_dated_table(cfg, table, days.gold_days, today, dry_run, keep))
    quality_cutoff = _cutoff(today, days.quality_days)
    result.expired.append(_json_files(catalog.QUALITY_RESULTS, cfg, quality_cutoff, _stamp_date, dry_run))
    for dataset in (catalog.FEATURE_DRIFT, catalog.FEATURE_PROFILES):
        result.expired.append(
            _json_files(dataset, cfg, quality_cutoff, lambda n: n.removesuffix(".json"), dry_run)
        )
    result.expired.append(_ledger(cfg, today, dry_run))
    result.expired.append(_data_loss_log(cfg, today, dry_run))
    return result
