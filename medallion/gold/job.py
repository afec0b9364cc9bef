"""Silver → Gold: user features per feature_date for a date range (also the backfill path)."""

from __future__ import annotations

import datetime as dt
import time

from pyspark.sql import SparkSession

from medallion.config import Config
from medallion.gold.transforms import WINDOW_DAYS, daily_user_activity, feature_dates, user_activity_features
from medallion.lake import StageResult, read_dates, write_partitions
from medallion.ledger import Ledger

FEATURE_TABLES = ("user_activity",)


def run(
    spark: SparkSession, cfg: Config, start: dt.date, end: dt.date, *, run_id: str, ledger: Ledger
) -> StageResult:
    """Compute ``user_activity`` for every feature_date in [start, end] from the 7 days of Silver before it."""
    result = StageResult("gold", run_id)
    with ledger.run("gold", run_id=run_id, start_date=start, end_date=end) as rec:
        t0 = time.perf_counter()
        window_start = start - dt.timedelta(days=WINDOW_DAYS - 1)
        silver = read_dates(spark, cfg.lake.silver, "event_date", window_start, end, "Silver")
        daily = silver.transform(daily_user_activity).persist()
        try:
            result.input = int(daily.groupBy().sum("events").collect()[0][0] or 0)
            features = daily.transform(user_activity_features(feature_dates(spark, start, end))).persist()
            result.output = features.count()
            result.dates = sorted(
                r[0].isoformat() for r in features.select("feature_date").distinct().collect()
            )
            write_partitions(features, cfg.lake.path("gold", "user_activity"), ("feature_date",))
            features.unpersist()
        finally:
            daily.unpersist()
        result.seconds = time.perf_counter() - t0
        # Gold aggregates: its input is Silver events in the window, its output feature rows; they do not
        # reconcile one to one, so the ledger records both without a DLQ.
        rec.count(input=result.input, output=result.output)
        rec.metrics = {"feature_dates": result.dates, "window_start": window_start.isoformat()}
    return result
