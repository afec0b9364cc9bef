"""Builder of ``statistical_features`` (declared in `medallion.features.statistical`)."""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from medallion.core.catalog import EVENT_DATE, EVENT_TYPE, FEATURE_DATE
from medallion.features.statistical import STATISTICAL_FEATURES
from medallion.gold.families.session import sessions_in_windows
from medallion.gold.registry import builds
from medallion.gold.transforms import GoldInputs, as_declared, over_window

WINDOW = STATISTICAL_FEATURES.window_days


def describe(values: DataFrame, value: str, prefix: str) -> DataFrame:
    """Per user and feature date: mean, sample std, min, max, exact p50 and p90 of ``value``."""
    v = F.col(value)
    return values.groupBy("user_id", FEATURE_DATE).agg(
        F.avg(v).alias(STATISTICAL_FEATURES.column(f"{prefix}_mean", 30)),
        F.stddev_samp(v).alias(STATISTICAL_FEATURES.column(f"{prefix}_std", 30)),
        F.min(v).alias(STATISTICAL_FEATURES.column(f"{prefix}_min", 30)),
        F.max(v).alias(STATISTICAL_FEATURES.column(f"{prefix}_max", 30)),
        F.percentile(v, 0.5).alias(STATISTICAL_FEATURES.column(f"{prefix}_p50", 30)),
        F.percentile(v, 0.9).alias(STATISTICAL_FEATURES.column(f"{prefix}_p90", 30)),
    )


@builds(STATISTICAL_FEATURES)
def build(inputs: GoldInputs) -> DataFrame:
    """Order values and session durations → one row per (user, feature date) for users active in 30 days."""
    orders = inputs.silver.where((F.col(EVENT_TYPE) == "purchase") & F.col("amount_usd").isNotNull()).select(
        "user_id", EVENT_DATE, F.col("amount_usd").cast("double").alias("value")
    )
    sessions = inputs.once("sessions_in_windows", sessions_in_windows).where(F.col(f"events_{WINDOW}") > 0)
    users = sessions.select("user_id", FEATURE_DATE).distinct()  # a user with an event has a session
    order_stats = describe(over_window(orders, inputs.dates, WINDOW), "value", "order_value")
    session_stats = describe(sessions, f"duration_{WINDOW}", "session_duration")
    return (
        users.join(order_stats, ["user_id", FEATURE_DATE], "left")
        .join(session_stats, ["user_id", FEATURE_DATE], "left")
        .transform(as_declared(STATISTICAL_FEATURES))
    )
