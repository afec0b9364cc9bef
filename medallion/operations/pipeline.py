"""The stages as library calls: each builds what it needs from the config, runs one job, returns its result.

The CLI commands are thin wrappers over these; ``run_all`` chains them for ``medallion run``. Each runs
inside the stage envelope (`medallion.core.stages.run`). Each function imports its stage's modules itself:
they import pyspark (seconds) or feast (about 3 s), and one command should pay only for its own stage.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from loguru import logger

from medallion.core import catalog, lakefs, stages
from medallion.core.config import Config
from medallion.core.errors import UsageError
from medallion.core.lake import date_range
from medallion.features import FAMILIES, USER, family

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from medallion.bronze.job import BatchMetrics, IngestResult
    from medallion.core.lake import StageResult


def _spark(cfg: Config) -> SparkSession:
    # lazy: a stage's job (Spark, Kafka, Feast) loads only when that stage runs
    from medallion.engines.spark import get_spark

    return get_spark(cfg)


def ingest(
    cfg: Config, *, once: bool = True, on_batch: Callable[[BatchMetrics], None] | None = None
) -> IngestResult:
    # lazy: a stage's job (Spark, Kafka, Feast) loads only when that stage runs
    from medallion.bronze import job
    from medallion.engines.services import ensure_kafka
    from medallion.pii.keys import pii_key

    key = pii_key(cfg)  # before Spark starts: a missing key is a config error, found in a second
    with stages.run(cfg, stages.INGEST, topic=cfg.kafka.topic, once=once) as run:
        ensure_kafka(cfg)
        return job.run(
            _spark(cfg), cfg, pii_key=key, run_id=run.run_id, ledger=run.ledger, once=once, on_batch=on_batch
        )


def silver(
    cfg: Config, start: dt.date | None = None, end: dt.date | None = None, *, incremental: bool = False
) -> StageResult:
    # lazy: a stage's job (Spark, Kafka, Feast) loads only when that stage runs
    from medallion.silver import job
    from medallion.silver.plan import CHECKPOINT, plan

    # Usage first, before the lake is read or Spark starts.
    if start is not None and end is not None:
        date_range(start, end)  # validates the order
    elif not incremental:
        raise UsageError("silver needs both --start-date and --end-date, or --incremental.")
    with stages.run(cfg, stages.SILVER, start_date=start, end_date=end, incremental=incremental) as run:
        todo = plan(cfg, run.ledger)
        if incremental:
            dates = [d for d in todo.dates if (start is None or d >= start) and (end is None or d <= end)]
        else:
            assert start is not None and end is not None  # checked above
            dates = date_range(start, end)
        # The mark `--incremental` starts from moves to the newest finished batch only when this run rebuilt
        # every date changed since the last mark; a run of some dates keeps it, so the others are still to do.
        mark = todo.finished if set(todo.dates) <= set(dates) else todo.seen
        run.metrics[CHECKPOINT] = todo.checkpoint
        return job.run(_spark(cfg), cfg, dates, run=run, max_bronze_batch=mark)


def gold(
    cfg: Config,
    start: dt.date | None = None,
    end: dt.date | None = None,
    families: Sequence[str] | None = None,
    *,
    incremental: bool = False,
    only: Sequence[dt.date] | None = None,
    allow_breaking: bool = False,
    progress: Callable[[str, int, int], None] | None = None,
) -> StageResult:
    """Gold for feature dates [start, end]: every declared family, or the ``families`` named.

    ``incremental``: only the feature dates whose windows cover the Silver dates that Silver runs wrote
    since the last incremental Gold run of each family (within [start, end] when given; explicit runs
    are backfills and consume nothing). ``only``: just these
    feature dates of the range (`gold_dates_to_rebuild` gives them for changed Silver dates).
    ``allow_breaking``: record a breaking feature schema version instead of failing the run.
    """
    # lazy: a stage's job (Spark, Kafka, Feast) loads only when that stage runs
    from medallion.gold import job

    if not incremental and (start is None or end is None):
        raise UsageError("gold needs both --start-date and --end-date, or --incremental.")
    if start is not None and end is not None:
        date_range(start, end)  # validates the order before Spark starts
    chosen = FAMILIES
    if families:
        try:
            chosen = tuple(family(name) for name in families)
        except KeyError as exc:
            raise UsageError(f"--feature-type: {exc.args[0]}.") from None
    options: dict[str, Any] = {"start_date": start, "end_date": end, "incremental": incremental}
    with stages.run(cfg, stages.GOLD, allow_breaking=allow_breaking, **options) as run:
        consumed = None
        if incremental:  # planned under the lock: no Silver run can land between the plan and the run
            changes = job.silver_changes(cfg, run.ledger, chosen)
            needed = gold_dates_to_rebuild(changes.dates, job.read_window_days(cfg, chosen))
            only = [d for d in needed if (start is None or d >= start) and (end is None or d <= end)]
            # The families' mark moves past the Silver runs read only when this run rebuilds every feature
            # date they feed; a run cut by --start-date/--end-date keeps the old mark: the rest is still to do.
            consumed = changes.through if len(only) == len(needed) else changes.since
            if not only:
                logger.info("gold --incremental: no Silver date changed since the last incremental Gold run")
                today = dt.datetime.now(dt.UTC).date()
                start, end = start or today, end or today
            else:
                start, end = start or only[0], end or only[-1]
        assert start is not None and end is not None  # checked or derived above
        return job.run(
            _spark(cfg),
            cfg,
            start,
            end,
            run=run,
            families=chosen,
            only=only,
            allow_breaking=allow_breaking,
            progress=progress,
            consumed=consumed,
        )


def materialize(
    cfg: Config,
    end: dt.datetime | None = None,
    start: dt.datetime | None = None,
    *,
    full: bool = False,
    feature_views: list[str] | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> Any:
    # lazy: a stage's job (Spark, Kafka, Feast) loads only when that stage runs
    from medallion import serving

    inputs: dict[str, Any] = {"start": start, "end": end, "full": full, "feature_views": feature_views}
    with stages.run(cfg, stages.MATERIALIZE, **inputs) as rec:
        result = serving.materialize(
            cfg, end=end, start=start, full=full, feature_views=feature_views, progress=progress
        )  # applies the definitions first
        rec.count(output=result.rows, entities=result.entities)
        rec.metrics.update(
            online_store=result.online_store,
            mode=result.mode,
            window=f"{result.start} → {result.end}",
            rows_per_s=round(result.rows / result.seconds) if result.seconds else 0,
        )
    return result


@dataclass
class PipelineSummary:
    stages: list[dict[str, Any]] = field(default_factory=list)
    sample_user: str | None = None
    online_features: dict[str, Any] = field(default_factory=dict)

    def add(self, stage: str, seconds: float, **counts: Any) -> None:
        self.stages.append({"stage": stage, "seconds": round(seconds, 2), **counts})


def produce(cfg: Config, **options: Any) -> Any:
    """Send synthetic events (and write the lookup tables they refer to), starting the broker if allowed."""
    # lazy: a stage's job (Spark, Kafka, Feast) loads only when that stage runs
    from medallion.engines.services import ensure_kafka
    from medallion.produce.producer import produce_events

    ensure_kafka(cfg)
    options = {k: v for k, v in options.items() if v is not None}
    options.setdefault("seed", cfg.produce.seed)
    options.setdefault("days", cfg.produce.days)
    with stages.run(cfg, stages.PRODUCE, **{k: v for k, v in options.items() if k != "progress"}) as rec:
        result = produce_events(cfg, **options)
        rec.count(sent=result.sent, delivered=result.delivered, failed=result.failed)
    return result


def run_all(
    cfg: Config,
    *,
    count: int | None = None,
    seed: int | None = None,
    bad_ratio: float = 0.0,
    report: Callable[[str], None] = lambda _: None,
    summary: PipelineSummary | None = None,
) -> PipelineSummary:
    """Every stage in order on what the topic holds, for the embedded demo and the end-to-end test.

    Re-running is safe: ingestion resumes from its checkpoint and the batch layers overwrite the dates
    they touch. The first stage that fails stops the run; ``summary`` (when given) then holds the stages
    that finished, for the caller to show. The next run resumes from the first stage that has not
    succeeded for the data it covers (`resume_plan`): a Gold or materialize run that failed is run
    again even when Silver finds nothing new.
    """

    summary = PipelineSummary() if summary is None else summary
    days = cfg.produce.days
    first_day = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=days - 1)

    n_events = cfg.produce.count if count is None else count
    if n_events > 0:
        t = time.perf_counter()
        report("produce")
        produced = produce(
            cfg, count=n_events, seed=seed, start_date=first_day, days=days, bad_ratio=bad_ratio
        )
        summary.add("produce", time.perf_counter() - t, rows=produced.delivered, dlq=produced.failed)

    t = time.perf_counter()
    report("ingest → bronze")
    ingested = ingest(cfg, once=True)
    summary.add("bronze", time.perf_counter() - t, rows=ingested.total("bronze"), dlq=ingested.total("dlq"))

    t = time.perf_counter()
    report("silver")
    silvered = silver(cfg, incremental=True)
    summary.add("silver", time.perf_counter() - t, rows=silvered.output, dlq=silvered.dlq)

    todo = resume_plan(cfg)
    if stages.GOLD in todo:
        t = time.perf_counter()
        report("gold")
        golden = gold(cfg, incremental=True)  # the dates this Silver run and any failed Gold run left
        summary.add("gold", time.perf_counter() - t, rows=golden.output, dlq=0)
        todo = resume_plan(cfg)
    if stages.MATERIALIZE not in todo:
        return summary

    t = time.perf_counter()
    report("materialize → online store")
    loaded = materialize(cfg)
    summary.add("materialize", time.perf_counter() - t, rows=loaded.rows, dlq=0)

    # lazy: a stage's job (Spark, Kafka, Feast) loads only when that stage runs
    from medallion import serving

    t = time.perf_counter()
    user = latest_gold_user(cfg)
    if user is not None:
        summary.sample_user = user
        summary.online_features = serving.online_features(cfg, [user])[user]
    summary.add("online read", time.perf_counter() - t, rows=1 if user else 0, dlq=0)
    return summary


def resume_plan(cfg: Config) -> list[stages.Stage]:
    """The stages after Silver that have not succeeded for the data they cover, read from the ledger.

    Gold: a Silver date was written since the last incremental Gold run of some family (by this run, or
    by earlier ones whose Gold run failed or never came). Materialize: there is a successful Gold run,
    and the last materialize run failed or started before it finished (or Gold is to run). Silver and ingest resume by
    themselves (the incremental mark and the checkpoint move only on success).
    """
    # lazy: a stage's job (Spark, Kafka, Feast) loads only when that stage runs
    from medallion.gold import job

    runs = stages.lake_ledger(cfg)
    todo = []
    if job.silver_changes(cfg, runs).dates:
        todo.append(stages.GOLD)
    golden = runs.last(stages.GOLD.name)
    loaded = runs.last(stages.MATERIALIZE.name, outcome=None)
    if stages.GOLD in todo or (
        golden is not None
        and (
            loaded is None
            or loaded.outcome != "succeeded"
            or loaded.started_at < (golden.finished_at or golden.started_at)
        )
    ):
        todo.append(stages.MATERIALIZE)
    return todo


def gold_dates_to_rebuild(changed: Sequence[dt.date], window_days: int | None = None) -> list[dt.date]:
    """The feature dates whose windows cover changed Silver dates, in order: a Silver date D feeds every
    feature date from D to D + (window_days - 1), up to today (UTC); D itself always. ``window_days``:
    how far back the families read (`gold.job.read_window_days`, the embeddings' configured window
    included); default the longest declared window."""
    longest = window_days or max(f.window_days for f in FAMILIES)
    today = dt.datetime.now(dt.UTC).date()
    dates: set[dt.date] = set()
    for day in changed:
        last = max(min(day + dt.timedelta(days=longest - 1), today), day)
        dates.update(day + dt.timedelta(days=i) for i in range((last - day).days + 1))
    return sorted(dates)


def latest_gold_user(cfg: Config) -> str | None:
    """A user from the newest partition of the first user-keyed Gold table (pyarrow: no Spark for one row)."""
    # lazy: pyarrow.dataset (about a second) only for this one-row read
    import pyarrow.dataset as ds

    fam = next((f for f in FAMILIES if f.entity == USER), None)
    if fam is None:
        return None
    table = catalog.gold_table(fam.name)
    dates = lakefs.list_partitions(table.path(cfg), catalog.FEATURE_DATE)
    if not dates:
        return None
    newest = table.partition_path(cfg, **{catalog.FEATURE_DATE: dates[-1]})
    filesystem, inner = lakefs.filesystem_and_path(newest)
    rows = ds.dataset(
        inner, filesystem=filesystem, format="parquet", ignore_prefixes=list(catalog.HIDDEN_PREFIXES)
    ).head(1, [USER.join_key])
    return str(rows.column(USER.join_key)[0]) if rows.num_rows else None
