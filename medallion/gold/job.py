"""Silver → Gold: every declared feature family for a range of feature dates (also the backfill path).

One read of Silver covers the range and the longest window before it; each family's builder turns it
into rows per entity and feature date, written with dynamic partition overwrite: however many dates, a
run is one Spark job per family over all of them, never one per date. A feature date the run computed
that has no rows any more (its activity was removed upstream) loses its old partition, so a re-run
leaves exactly what the current Silver gives.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from loguru import logger
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from medallion.core import lakefs, stages
from medallion.core.catalog import FEATURE_DATE, SILVER, gold_table
from medallion.core.config import Config
from medallion.core.lake import StageResult, date_range, read_dates, remove_partitions, write_partitions
from medallion.core.ledger import Ledger, timed
from medallion.core.stages import StageRun
from medallion.features import FAMILIES, FeatureFamily
from medallion.gold.families import BUILDERS, DATES_WRITTEN
from medallion.gold.transforms import SILVER_COLUMNS, GoldInputs, calendar
from medallion.governance.gold import FeatureGuard
from medallion.quality.coverage import active_entities


def read_window_days(cfg: Config, families: Sequence[FeatureFamily]) -> int:
    """How many days back from a feature date the chosen families read (the embeddings' training window
    is configured)."""
    longest = max(f.window_days for f in families)
    if any(f.name in DATES_WRITTEN for f in families):
        longest = max(longest, cfg.gold.embedding_window_days)
    return longest


def run(
    spark: SparkSession,
    cfg: Config,
    start: dt.date,
    end: dt.date,
    *,
    run: StageRun,
    families: Sequence[FeatureFamily] = FAMILIES,
    only: Sequence[dt.date] | None = None,
    allow_breaking: bool = False,
    progress: Callable[[str, int, int], None] | None = None,
    consumed: str | None = None,
) -> StageResult:
    """Compute ``families`` for every feature date in [start, end] (or the dates ``only`` names in it).

    Feature governance (`medallion.governance.gold`): a breaking schema change fails the run before
    anything is read or written unless ``allow_breaking``; each table's quality checks run before it is
    written; its new schema version and its drift are recorded after. ``consumed``: the Silver mark an
    incremental run records for these families (see `silver_changes`)."""
    dates = [d for d in date_range(start, end) if only is None or d in set(only)]
    result = StageResult(stages.GOLD.name, run.run_id, dates=[d.isoformat() for d in dates])
    rec = run.record
    rec.inputs.update(
        start_date=start.isoformat(), end_date=end.isoformat(), families=",".join(f.name for f in families)
    )
    if consumed is not None:
        rec.metrics[CONSUMED] = consumed  # kept only if the run succeeds
    if not dates:
        return result
    guard = FeatureGuard.start(
        cfg, families, run_id=run.run_id, metrics=rec.metrics, allow_breaking=allow_breaking
    )
    t0 = time.perf_counter()
    window_start = dates[0] - dt.timedelta(days=read_window_days(cfg, families) - 1)
    date_column = SILVER.date_column or ""
    # only the columns the builders read: the cache holds every row of the window, not every column
    columns = [c for c in SILVER.columns if c.name in SILVER_COLUMNS]
    silver = read_dates(spark, SILVER.path(cfg), date_column, window_start, dates[-1], "Silver", columns)
    inputs = GoldInputs(silver.persist(), calendar(spark, dates), cfg.gold)
    rows: dict[str, int] = {}
    try:
        # the newest event time as epoch microseconds: PySpark collects a timestamp in the driver's zone
        with timed(rec.metrics, PHASE_SECONDS, "read"):  # reading Silver into the cache
            totals = inputs.silver.agg(F.count(F.lit(1)), F.unix_micros(F.max("event_time"))).first()
        result.input = int(totals[0]) if totals else 0
        guard.complete_through = _complete_through(
            totals[1] if totals else None, _newer_silver(cfg, dates[-1])
        )
        for i, fam in enumerate(families, 1):
            rows[fam.name] = _write_family(cfg, fam, inputs, dates, guard, rec.metrics)
            logger.info(
                "gold: {f} written ({i}/{n}), {r} rows",
                f=fam.name,
                i=i,
                n=len(families),
                r=rows[fam.name],
            )
            if progress is not None:
                progress(fam.name, i, len(families))
    finally:
        inputs.release()
        inputs.silver.unpersist()
    result.output = sum(rows.values())
    result.seconds = time.perf_counter() - t0
    # Gold aggregates: its input is Silver events in the window, its output feature rows; they do not
    # reconcile one to one, so the ledger records both without a DLQ.
    rec.count(input=result.input, output=result.output)
    rec.metrics |= {
        "rows_by_family": rows,
        "window_start": window_start.isoformat(),
        "feature_dates": result.dates,
    }
    return result


def _complete_through(newest_micros: int | None, later: dt.date | None = None) -> dt.datetime:
    """The newest event time Silver is known to hold: the input's newest, or the start of a later Silver
    date (``later``: Silver holds events of that date, so every date before it is over), whichever is
    newer; now when that is earlier."""
    now = dt.datetime.now(dt.UTC)
    known = [dt.datetime.combine(later, dt.time(), dt.UTC)] if later is not None else []
    if newest_micros is not None:
        known.append(dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(microseconds=int(newest_micros)))
    return min(max(known), now) if known else now


def _newer_silver(cfg: Config, last: dt.date) -> dt.date | None:
    """The newest Silver date after ``last``, from the partitions' names (no data read)."""
    newer = [
        day
        for day in (
            dt.date.fromisoformat(d)
            for d in lakefs.list_partitions(SILVER.path(cfg), SILVER.date_column or "")
        )
        if day > last
    ]
    return max(newer, default=None)


def _write_family(
    cfg: Config,
    fam: FeatureFamily,
    inputs: GoldInputs,
    dates: list[dt.date],
    guard: FeatureGuard,
    metrics: dict[str, Any],
) -> int:
    table = gold_table(fam.name)
    with timed(metrics, PHASE_SECONDS, "build"):
        features = BUILDERS[fam.name](inputs).persist()
    try:
        with timed(metrics, PHASE_SECONDS, "build"):
            # built once, here: the checks, the write and the drift profiles read the cached rows (and the
            # time of each is its own, not the builder's)
            written = DATES_WRITTEN[fam.name](inputs) if fam.name in DATES_WRITTEN else dates
            features.count()
        # the quality rules' one aggregation also counts the rows per feature date
        active = active_entities(inputs.silver, inputs.dates, fam)
        per_date = guard.before_write(fam, features, written, active)
        if per_date:
            with timed(metrics, PHASE_SECONDS, "write"):
                write_partitions(features, table.path(cfg), table.partitions)
        stale = [d.isoformat() for d in written if d not in per_date]
        removed = remove_partitions(table.path(cfg), FEATURE_DATE, stale)
        if removed:
            logger.info("gold {t}: removed {n} feature date(s) with no rows", t=fam.name, n=len(removed))
        guard.after_write(fam, features, {d: per_date[d] for d in written if d in per_date})
    finally:
        features.unpersist()
    return sum(per_date.values())


PHASE_SECONDS = "seconds_by_phase"
"""The ledger metric: seconds of reading Silver, building the families' rows and writing them (the
guards' are in ``governance_seconds``)."""

CONSUMED = "silver_consumed_through"
"""The metric of an incremental Gold run's ledger record: the start of the newest Silver run it consumed
(every Silver run started then or earlier is in its families' Gold)."""


@dataclass(frozen=True)
class SilverChanges:
    """What `gold --incremental` has to consume for some families."""

    dates: list[dt.date]  # Silver dates written since the oldest of the families' marks
    through: str | None  # the start of the newest Silver run seen: the mark a run covering ``dates`` sets
    since: str | None  # the oldest of the families' marks (None: one of them was never consumed)


def silver_changes(
    cfg: Config, ledger: Ledger, families: Sequence[FeatureFamily] = FAMILIES
) -> SilverChanges:
    """Silver dates written by Silver runs since the last INCREMENTAL Gold run of each of ``families``.

    Each family has its own mark (a per-consumer offset): an operator's explicit backfill of some dates
    is not a consumption of what Silver changed, so it moves no mark. A family never consumed: every date
    Silver holds. Read from the ledger newest first, stopping at the marks, and Silver's partition names:
    no data is read, and the cost follows the runs since the mark.
    """

    wanted = {f.name for f in families}
    marks: dict[str, str] = {}
    for record in ledger.newest_first(stages.GOLD.name):
        if record.outcome != "succeeded" or not record.metrics.get(CONSUMED):
            continue
        for name in str(record.inputs.get("families") or "").split(","):
            if name in wanted:
                marks.setdefault(name, str(record.metrics[CONSUMED]))
        if len(marks) == len(wanted):
            break
    since = min(marks.values(), key=_when) if len(marks) == len(wanted) else None
    changed: set[dt.date] = set()
    through: str | None = None
    for record in ledger.newest_first(stages.SILVER.name):
        if since is not None and _when(record.started_at) <= _when(since):
            break
        if record.outcome != "succeeded":
            continue
        through = through or record.started_at
        changed.update(
            dt.date.fromisoformat(d) for d in str(record.inputs.get("dates") or "").split(",") if d
        )
    if since is None:
        changed = {
            dt.date.fromisoformat(d)
            for d in lakefs.list_partitions(SILVER.path(cfg), SILVER.date_column or "")
        }
    return SilverChanges(sorted(changed), through or since, since)


def _when(iso: str) -> dt.datetime:
    t = dt.datetime.fromisoformat(iso)
    return t.replace(tzinfo=dt.UTC) if t.tzinfo is None else t
