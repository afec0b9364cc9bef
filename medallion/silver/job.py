"""Bronze → Silver for a date range: read, flatten, mark duplicates, enrich, normalize, judge, write.

The run computes every candidate row once (cached) with its rule columns, counts everything in one
aggregation (input, duplicates, every row rule, per date and event type), then one for the table rules.
Only when no ``fail`` rule failed does it write: Silver's rows with dynamic partition overwrite, the rows
a ``drop`` rule rejected to Silver's DLQ through the one DLQ writer, and it removes the partitions of
those dates that no longer have rows. A failed run writes no data, only its rule results.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Mapping
from typing import Any

from loguru import logger
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from medallion.core import catalog, lakefs, stages
from medallion.core.catalog import BRONZE, EVENT_DATE, EVENT_TYPE, SILVER, SILVER_DLQ
from medallion.core.config import Config
from medallion.core.dlq import as_dlq_records, write_dlq
from medallion.core.errors import TerminalError
from medallion.core.lake import (
    StageResult,
    read_dates,
    remove_partitions,
    spark_schema,
    spark_type,
)
from medallion.core.rejections import BY_DATE
from medallion.core.stages import StageRun
from medallion.quality import engine, results
from medallion.quality.rules import RuleSet, rules_for
from medallion.silver.lookups import JOINS, RATES, joined, read_lookups
from medallion.silver.normalize import user_agent_families, with_normalized_columns, with_user_agent_families
from medallion.silver.plan import MARK
from medallion.silver.transforms import (
    BRONZE_FILE,
    DUPLICATE,
    flatten_event,
    mark_duplicates,
    rates_in_force,
    repeated_ids,
    with_amounts,
    with_usd_amount,
)

STAGE = stages.SILVER.name
OUTPUT_COLUMNS = SILVER.columns + catalog.columns(f"{EVENT_DATE} date, {EVENT_TYPE} string")
"""What Silver writes: the catalogue's columns, then its partition columns."""


class QualityFailed(TerminalError):
    """A ``fail`` rule failed: the run wrote nothing (exit 1)."""


def silver_rules(cfg: Config) -> RuleSet:
    return rules_for(SILVER, cfg.quality.rules_dir)


def silver_schema() -> Any:
    return spark_schema(OUTPUT_COLUMNS)


def candidates(
    bronze: DataFrame, lookups: Mapping[str, DataFrame], ruleset: RuleSet, start: dt.date, end: dt.date
) -> DataFrame:
    """Every Bronze row of the dates as a Silver row, with ``_duplicate`` and the rule columns. Finds the
    repeated event ids first (`repeated_ids`, two Spark jobs on narrow rows), so the rows are not sorted
    to mark duplicates."""
    flat = bronze.transform(flatten_event)
    df = flat.transform(mark_duplicates(repeated_copies(flat))).transform(with_amounts)
    for join in JOINS:
        df = df.transform(joined(join, lookups[join.table.name]))
    df = df.transform(with_usd_amount(rates_in_force(lookups[RATES.name], start, end)))
    df = df.transform(with_user_agent_families(user_agent_families(flat))).transform(with_normalized_columns)
    typed = [F.col(c.name).cast(spark_type(c.type)).alias(c.name) for c in OUTPUT_COLUMNS]
    df = df.select(*typed, DUPLICATE, BRONZE_FILE)
    return df.transform(engine.annotate(ruleset, lookups))


HELD_ROWS = 100_000
"""`repeated_copies`: at most this many repeated ids are brought to the driver and broadcast (a few MB)."""


def repeated_copies(flat: DataFrame, limit: int = HELD_ROWS) -> DataFrame | None:
    """`repeated_ids` of ``flat``, computed now: None when no event id repeats (the usual case: nothing
    to join); the ids held on the driver and broadcast when there are at most ``limit``; beyond that the
    frame itself, which Spark joins the way it judges best (a Bronze replayed whole, say)."""
    found = repeated_ids(flat)
    rows = found.limit(limit + 1).collect()
    if not rows:
        return None
    if len(rows) > limit:
        return found
    return F.broadcast(flat.sparkSession.createDataFrame(rows, found.schema))


def run(
    spark: SparkSession,
    cfg: Config,
    dates: list[dt.date],
    *,
    run: StageRun,
    max_bronze_batch: int = -1,
    rules: RuleSet | None = None,
) -> StageResult:
    """Silver for ``dates`` (each replaced whole), inside the stage envelope ``run``; ``max_bronze_batch``
    is the mark the ledger keeps for ``--incremental`` (the caller decides how far this run covers
    Bronze)."""
    ruleset = rules if rules is not None else silver_rules(cfg)
    result = StageResult(STAGE, run.run_id, dates=[d.isoformat() for d in dates])
    rec = run.record
    rec.inputs.update(dates=",".join(result.dates), rules=ruleset.source)
    engine.check_sql(spark, ruleset, silver_schema())  # a bad rule is a config error before any data is read
    start = time.perf_counter()
    rec.metrics[MARK] = max_bronze_batch
    if dates:
        _build(spark, cfg, dates, ruleset, result, rec)
    result.seconds = time.perf_counter() - start
    rec.count(input=result.input, output=result.output, dlq=result.dlq, dropped=result.dropped)
    logger.info(
        "silver: {n} events for {d} dates, {q} to the DLQ", n=result.output, d=len(dates), q=result.dlq
    )
    return result


def _build(
    spark: SparkSession, cfg: Config, dates: list[dt.date], ruleset: RuleSet, result: StageResult, rec: Any
) -> None:
    lookups = read_lookups(spark, cfg)
    column = BRONZE.date_column or ""
    bronze = read_dates(spark, BRONZE.path(cfg), column, min(dates), max(dates), "Bronze", BRONZE.columns)
    bronze = bronze.where(F.col(column).isin(dates))
    rows = candidates(bronze, lookups, ruleset, min(dates), max(dates)).persist()
    t0 = time.perf_counter()
    try:
        groups = rows.groupBy(EVENT_DATE, EVENT_TYPE, DUPLICATE, engine.DROP).agg(
            *engine.row_aggregates(ruleset)
        )
        counts = engine.RowCounts()
        kept: dict[str, set[str]] = {}  # event date -> event types with Silver rows
        dlq_dates: set[str] = set()
        by_date: dict[str, dict[str, int]] = {}  # what each date holds now: its counts replace earlier runs'
        for g in groups.collect():
            n = int(g[engine.ROWS])
            day = g[EVENT_DATE].isoformat()
            tally = by_date.setdefault(day, dict.fromkeys(("input", "output", "dlq", "dropped"), 0))
            result.input += n
            tally["input"] += n
            if g[DUPLICATE]:
                result.dropped += n
                tally["dropped"] += n
                continue
            counts.add(ruleset, g)
            if g[engine.DROP]:
                result.dlq += n
                tally["dlq"] += n
                dlq_dates.add(day)
            else:
                result.output += n
                tally["output"] += n
                kept.setdefault(day, set()).add(g[EVENT_TYPE])
        silver = rows.where(~F.col(DUPLICATE) & ~F.col(engine.DROP))
        table: list[results.RuleResult] = []
        if ruleset.table_rules:
            table = engine.table_results(ruleset, silver.agg(*engine.table_aggregates(ruleset)).first())
        report = engine.report(ruleset, counts, table, run_id=result.run_id, stage=STAGE, dates=result.dates)
        results.write(cfg, report)
        rec.metrics["quality"] = report.summary()
        if report.failed_fail_rules:
            rec.count(input=result.input, output=0, dlq=0, dropped=result.dropped)
            failed = ", ".join(
                f"{r.name} ({r.failed:,} of {r.checked:,} rows)" for r in report.failed_fail_rules
            )
            raise QualityFailed(
                f"Silver wrote nothing: fail rule(s) {failed} in {ruleset.source}. Silver's data for "
                f"{result.dates[0]}..{result.dates[-1]} is as it was; see `medallion validate` and the "
                "quality results for the rows."
            )
        t1 = time.perf_counter()
        rec.metrics[BY_DATE] = by_date
        _write(cfg, rows, silver, dates, kept, dlq_dates, result.run_id, spark)
        rec.metrics["seconds"] = {
            "compute_and_count": round(t1 - t0, 2),
            "write": round(time.perf_counter() - t1, 2),
        }
    finally:
        rows.unpersist()


def _write(
    cfg: Config,
    rows: DataFrame,
    silver: DataFrame,
    dates: list[dt.date],
    kept: dict[str, set[str]],
    dlq_dates: set[str],
    run_id: str,
    spark: SparkSession,
) -> None:
    out = silver.select(*[c.name for c in OUTPUT_COLUMNS])
    spread = cfg.silver.files_per_partition
    by = [F.col(EVENT_DATE), F.col(EVENT_TYPE)]
    if spread > 1:
        by.append(F.pmod(F.xxhash64("event_id"), F.lit(spread)))
    if kept:
        (
            out.repartition(*by)
            .write.mode("overwrite")
            .option("maxRecordsPerFile", cfg.silver.max_records_per_file)
            .partitionBy(*SILVER.partitions)
            .parquet(SILVER.path(cfg))
        )
    if dlq_dates:
        rejected = rows.where(~F.col(DUPLICATE) & F.col(engine.DROP)).transform(_dlq_shape(run_id))
        write_dlq(rejected.repartition(EVENT_DATE), SILVER_DLQ.path(cfg), SILVER_DLQ.partitions)
    for day in (d.isoformat() for d in dates):
        date_dir = SILVER.partition_path(cfg, **{EVENT_DATE: day})
        if day not in kept:
            remove_partitions(SILVER.path(cfg), EVENT_DATE, [day])
        else:
            stale = [t for t in lakefs.list_partitions(date_dir, EVENT_TYPE) if t not in kept[day]]
            if remove_partitions(date_dir, EVENT_TYPE, stale):
                logger.info("silver {d}: removed event types with no rows now: {s}", d=day, s=stale)
        if day not in dlq_dates:
            remove_partitions(SILVER_DLQ.path(cfg), EVENT_DATE, [day])


def _dlq_shape(run_id: str) -> Any:
    payload_columns = [F.col(c.name) for c in OUTPUT_COLUMNS]

    def _(df: DataFrame) -> DataFrame:
        shaped = df.select(
            F.col("source_topic"),
            F.col("source_partition"),
            F.col("source_offset"),
            F.col(BRONZE_FILE).alias("source_file"),
            F.col("event_id").alias("key"),
            F.to_json(F.struct(*payload_columns)).alias("payload"),
            F.lit("silver_rule").alias("error_class"),
            F.concat(F.lit("failed rules: "), F.array_join(F.col(engine.FAILED), ", ")).alias(
                "error_message"
            ),
            F.col(engine.FAILED).alias("failed_rules"),
            F.col(EVENT_DATE),
        )
        return shaped.transform(as_dlq_records(STAGE, run_id, keep=(EVENT_DATE,)))

    return _
