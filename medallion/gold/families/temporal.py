"""Builder of ``temporal_features`` (declared in `medallion.features.temporal`)."""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from medallion.core.catalog import EVENT_DATE, FEATURE_DATE
from medallion.features.temporal import PERIOD_ORDER, PERIODS, TEMPORAL_FEATURES, WEEKDAYS
from medallion.gold.registry import builds
from medallion.gold.transforms import (
    GoldInputs,
    as_declared,
    count_if,
    days_before_end,
    over_window,
    ratio,
    within,
)

WINDOW = TEMPORAL_FEATURES.window_days


def iso_weekday(date: Column) -> Column:
    """0 = Monday .. 6 = Sunday (Spark's dayofweek is 1 = Sunday .. 7 = Saturday)."""
    return (F.dayofweek(date) + 5) % 7


def argmax(counts: dict[str, Column]) -> Column:
    """The name of the largest count; a tie goes to the name listed first."""
    ranked = [
        F.struct((-c).alias("neg"), F.lit(i).alias("order"), F.lit(n).alias("name"))
        for i, (n, c) in enumerate(counts.items())
    ]
    return F.array_min(F.array(*ranked))["name"]


@builds(TEMPORAL_FEATURES)
def build(inputs: GoldInputs) -> DataFrame:
    """Silver events → one row per (user, feature date) for users active in the 30 days ending D."""
    hourly = inputs.silver.groupBy("user_id", EVENT_DATE, F.hour("event_time").alias("hour")).agg(
        F.count(F.lit(1)).alias("events"), F.min("event_time").alias("first")
    )
    joined = over_window(hourly, inputs.dates, WINDOW)
    per_hour = joined.groupBy("user_id", FEATURE_DATE, "hour").agg(F.sum("events").alias("events"))
    hours = per_hour.groupBy("user_id", FEATURE_DATE).agg(
        F.collect_list("events").alias("_hour_counts"),
        *(
            F.sum(F.when(F.col("hour").between(lo, hi), F.col("events")).otherwise(0)).alias(f"_{p}")
            for p, (lo, hi) in PERIODS.items()
        ),
    )
    weekday = iso_weekday(F.col(EVENT_DATE))
    days = (
        joined.groupBy("user_id", FEATURE_DATE, EVENT_DATE)
        .agg(F.sum("events").alias("events"), F.min("first").alias("first"))
        .groupBy("user_id", FEATURE_DATE)
        .agg(
            F.sum("events").alias("_events_30"),
            F.coalesce(F.sum(F.when(within(7), F.col("events"))), F.lit(0)).alias("_events_7"),
            F.count(F.lit(1)).alias("_days_30"),
            count_if(within(7)).alias("_days_7"),
            F.min("first").alias("_first"),
            F.sum(F.when(weekday >= 5, F.col("events")).otherwise(0)).alias("_weekend"),
            *(
                F.sum(F.when(weekday == i, F.col("events")).otherwise(0)).alias(f"_{d}")
                for i, d in enumerate(WEEKDAYS)
            ),
        )
    )
    total = F.col("_events_30")
    entropy = F.aggregate(
        "_hour_counts",
        F.lit(0.0),
        lambda acc, n: acc - (n / total) * F.log2(n / total),
    )
    derived: dict[str, Column] = {
        TEMPORAL_FEATURES.column(f"{p}_share", 30): ratio(F.col(f"_{p}"), total) for p in PERIODS
    }
    derived |= {
        TEMPORAL_FEATURES.column("weekend_share", 30): ratio(F.col("_weekend"), total),
        TEMPORAL_FEATURES.column("preferred_period", 30): argmax({p: F.col(f"_{p}") for p in PERIOD_ORDER}),
        TEMPORAL_FEATURES.column("preferred_weekday", 30): argmax({d: F.col(f"_{d}") for d in WEEKDAYS}),
        TEMPORAL_FEATURES.column("hour_entropy", 30): entropy,
        TEMPORAL_FEATURES.column("days_since_first_seen", 30): days_before_end(F.col("_first")),
        TEMPORAL_FEATURES.column("events_per_active_day", 7): ratio(F.col("_events_7"), F.col("_days_7")),
        TEMPORAL_FEATURES.column("events_per_active_day", 30): ratio(total, F.col("_days_30")),
    }
    return (
        days.join(hours, ["user_id", FEATURE_DATE])
        .withColumns(derived)
        .transform(as_declared(TEMPORAL_FEATURES))
    )
