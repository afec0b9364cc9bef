"""Bronze → Silver for a date range: read the dates, flatten, dedupe, enrich, overwrite those dates."""

from __future__ import annotations

import datetime as dt
import time

from loguru import logger
from pyspark.sql import DataFrame, SparkSession

from medallion import lakefs
from medallion.config import Config
from medallion.lake import StageResult, bronze_batches, read_dates, write_partitions
from medallion.ledger import Ledger
from medallion.silver.transforms import (
    dedupe_events,
    flatten_event,
    with_amounts,
    with_item_attributes,
    with_usd_amount,
    with_user_attributes,
)

SILVER_PARTITIONS = ("event_date", "event_type")


def changed_dates(cfg: Config, ledger: Ledger) -> tuple[list[dt.date], int]:
    """Event dates that Bronze batches newer than the last successful Silver run touched, and the newest batch."""
    batches = bronze_batches(cfg.lake.bronze)
    last = ledger.last("silver")
    seen = int(last.metrics.get("max_bronze_batch", -1)) if last else -1
    newest = max((b for bs in batches.values() for b in bs), default=-1)
    dates = sorted(dt.date.fromisoformat(d) for d, bs in batches.items() if any(b > seen for b in bs))
    return dates, newest


def enrich(spark: SparkSession, cfg: Config, df: DataFrame) -> DataFrame:
    """Join the lookup tables that exist (written by `produce`, or by the user for real data)."""
    df = df.transform(with_amounts)
    for name, transform in (
        ("items", with_item_attributes),
        ("users", with_user_attributes),
        ("currency_rates", with_usd_amount),
    ):
        path = cfg.lake.path("lookups", name)
        if lakefs.exists(path):
            df = df.transform(transform(spark.read.parquet(path)))
    return df


def run(
    spark: SparkSession,
    cfg: Config,
    dates: list[dt.date],
    *,
    run_id: str,
    ledger: Ledger,
    max_bronze_batch: int = -1,
) -> StageResult:
    result = StageResult("silver", run_id, dates=[d.isoformat() for d in dates])
    with ledger.run("silver", run_id=run_id, dates=",".join(result.dates)) as rec:
        start = time.perf_counter()
        if dates:
            bronze = read_dates(spark, cfg.lake.bronze, "dt", min(dates), max(dates), "Bronze")
            bronze = bronze.where(bronze["dt"].isin(dates))
            flat = bronze.transform(flatten_event).persist()
            try:
                result.input = flat.count()
                silver = enrich(spark, cfg, flat.transform(dedupe_events)).persist()
                result.output = silver.count()
                result.dropped = result.input - result.output
                write_partitions(silver, cfg.lake.silver, SILVER_PARTITIONS)
                silver.unpersist()
            finally:
                flat.unpersist()
        result.seconds = time.perf_counter() - start
        rec.count(input=result.input, output=result.output, dlq=result.dlq, dropped=result.dropped)
        rec.metrics = {"max_bronze_batch": max_bronze_batch, "duplicates_dropped": result.dropped}
        logger.info("silver: {n} events for {d} dates", n=result.output, d=len(dates))
    return result
