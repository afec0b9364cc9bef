"""Gold transforms: Silver events → ML-ready features per user and ``feature_date``.

Point-in-time rule: the row for ``feature_date = D`` uses only events whose event time is before the end
of D (``event_date <= D``), and carries that end (D + 1 day, 00:00 UTC) as ``event_timestamp``, so Feast's
point-in-time join never hands a training example a feature computed from its own future.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from medallion.lake import require_columns

SILVER_COLUMNS = ("user_id", "session_id", "event_type", "event_date", "item_id")
WINDOW_DAYS = 7

USER_ACTIVITY_FEATURES = (
    "events_1d",
    "sessions_1d",
    "purchases_1d",
    "revenue_1d",
    "events_7d",
    "purchases_7d",
    "revenue_7d",
    "distinct_items_7d",
    "conversion_rate_7d",
    "days_active_7d",
)


def feature_dates(spark: SparkSession, start: dt.date, end: dt.date) -> DataFrame:
    """One row per date in [start, end]: the calendar features are computed for."""
    return spark.sql(
        f"SELECT explode(sequence(DATE'{start.isoformat()}', DATE'{end.isoformat()}', INTERVAL 1 DAY)) AS feature_date"
    )


def daily_user_activity(df: DataFrame) -> DataFrame:
    """Per user and event_date: counts, revenue, and the sets the window needs to count distinct values."""
    require_columns(df, SILVER_COLUMNS, "gold")
    revenue = (
        F.coalesce(F.col("amount_usd"), F.col("amount")) if "amount_usd" in df.columns else F.col("amount")
    )
    purchase = F.col("event_type") == "purchase"
    return df.groupBy("user_id", "event_date").agg(
        F.count(F.lit(1)).alias("events"),
        F.collect_set("session_id").alias("sessions"),
        F.collect_set(F.when(purchase, F.col("session_id"))).alias("purchase_sessions"),
        F.sum(F.when(purchase, 1).otherwise(0)).alias("purchases"),
        F.sum(F.when(purchase, revenue).otherwise(0)).cast("double").alias("revenue"),
        F.collect_set("item_id").alias("items"),
    )


def user_activity_features(dates: DataFrame) -> Callable[[DataFrame], DataFrame]:
    """Daily activity → one row per (user, feature_date) for users active in the 7 days ending that date."""

    def _(daily: DataFrame) -> DataFrame:
        in_window = (F.col("event_date") <= F.col("feature_date")) & (
            F.col("event_date") > F.date_sub(F.col("feature_date"), WINDOW_DAYS)
        )
        today = F.col("event_date") == F.col("feature_date")
        joined = daily.join(F.broadcast(dates), in_window)
        features = joined.groupBy("user_id", "feature_date").agg(
            F.sum(F.when(today, F.col("events")).otherwise(0)).alias("events_1d"),
            F.sum(F.when(today, F.size("sessions")).otherwise(0)).alias("sessions_1d"),
            F.sum(F.when(today, F.col("purchases")).otherwise(0)).alias("purchases_1d"),
            F.sum(F.when(today, F.col("revenue")).otherwise(0.0)).alias("revenue_1d"),
            F.sum("events").alias("events_7d"),
            F.sum("purchases").alias("purchases_7d"),
            F.sum("revenue").alias("revenue_7d"),
            F.size(F.array_distinct(F.flatten(F.collect_list("items")))).alias("distinct_items_7d"),
            F.size(F.array_distinct(F.flatten(F.collect_list("sessions")))).alias("_sessions_7d"),
            F.size(F.array_distinct(F.flatten(F.collect_list("purchase_sessions")))).alias("_buying_7d"),
            F.count(F.lit(1)).alias("days_active_7d"),
        )
        return features.select(
            "user_id",
            F.to_timestamp(F.date_add("feature_date", 1)).alias("event_timestamp"),
            F.current_timestamp().alias("created_timestamp"),
            *[F.col(c).cast("long") for c in ("events_1d", "sessions_1d", "purchases_1d")],
            F.round("revenue_1d", 4).alias("revenue_1d"),
            F.col("events_7d").cast("long"),
            F.col("purchases_7d").cast("long"),
            F.round("revenue_7d", 4).alias("revenue_7d"),
            F.col("distinct_items_7d").cast("long"),
            F.round(
                F.when(F.col("_sessions_7d") > 0, F.col("_buying_7d") / F.col("_sessions_7d")).otherwise(0.0),
                4,
            ).alias("conversion_rate_7d"),
            F.col("days_active_7d").cast("long"),
            "feature_date",
        )

    return _
