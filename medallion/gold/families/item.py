"""Builder of ``item_features`` (declared in `medallion.features.item`)."""

from __future__ import annotations

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from medallion.catalog import EVENT_DATE, EVENT_TYPE, FEATURE_DATE
from medallion.features.item import ITEM_FEATURES, KINDS, RATE_WINDOWS, WINDOWS
from medallion.gold.registry import builds
from medallion.gold.transforms import GoldInputs, as_declared, count_if, over_window, ratio, union_in, within


def daily_item_activity(silver: DataFrame) -> DataFrame:
    """Per item and event date: events by kind and the purchases' exact USD amount."""
    purchase = F.col(EVENT_TYPE) == "purchase"
    return (
        silver.where(F.col("item_id").isNotNull())
        .groupBy("item_id", EVENT_DATE)
        .agg(
            F.count(F.lit(1)).alias("events"),
            *(count_if(F.col(EVENT_TYPE) == t).alias(kind) for kind, t in KINDS.items()),
            F.sum(F.when(purchase, F.col("amount_usd"))).alias("amount"),
            *(
                F.collect_set(F.when(F.col(EVENT_TYPE) == t, F.col("user_id"))).alias(f"{t}_users")
                for t in ("page_view", "click", "purchase")
            ),
        )
    )


def item_audience(silver: DataFrame, dates: DataFrame) -> DataFrame:
    """Per item and feature date: distinct users over 7 and 30 days, and the share who came back."""
    days = silver.where(F.col("item_id").isNotNull()).select("item_id", "user_id", EVENT_DATE).distinct()
    per_user = (
        over_window(days, dates, ITEM_FEATURES.window_days)
        .groupBy("item_id", FEATURE_DATE, "user_id")
        .agg(F.count(F.lit(1)).alias("days_30"), count_if(within(7)).alias("days_7"))
    )
    return per_user.groupBy("item_id", FEATURE_DATE).agg(
        count_if(F.col("days_7") > 0).alias("item_unique_users_7d"),
        F.count(F.lit(1)).alias("item_unique_users_30d"),
        (count_if(F.col("days_30") >= 2) / F.count(F.lit(1))).alias("item_returning_user_rate_30d"),
    )


@builds(ITEM_FEATURES)
def build(inputs: GoldInputs) -> DataFrame:
    """Silver events → one row per (item, feature date) for items with events in the 30 days ending D."""
    joined = over_window(
        inputs.silver.transform(daily_item_activity), inputs.dates, ITEM_FEATURES.window_days
    )

    def in_w(w: int, col: str) -> F.Column:
        return F.coalesce(F.sum(F.when(within(w), F.col(col))), F.lit(0))

    previous_week = (F.col(EVENT_DATE) <= F.date_sub(F.col(FEATURE_DATE), 7)) & within(14)
    aggs = []
    for w in WINDOWS:
        aggs.append(in_w(w, "events").alias(f"item_events_{w}d"))
        aggs += [in_w(w, kind).alias(f"item_{kind}_{w}d") for kind in KINDS]
    for w in RATE_WINDOWS:
        aggs.append(F.sum(F.when(within(w), F.col("amount"))).alias(f"_amount_{w}d"))
        aggs += [
            union_in(F.when(within(w), F.col(f"{t}_users"))).alias(f"_{t}_{w}")
            for t in ("page_view", "click", "purchase")
        ]
    aggs.append(F.coalesce(F.sum(F.when(previous_week, F.col("events"))), F.lit(0)).alias("_previous_week"))
    counts = joined.groupBy("item_id", FEATURE_DATE).agg(*aggs)

    derived: dict[str, F.Column] = {}
    for w in RATE_WINDOWS:
        viewers = F.col(f"_page_view_{w}")
        for feature, t in ((f"item_ctr_{w}d", "click"), (f"item_conversion_rate_{w}d", "purchase")):
            derived[feature] = ratio(F.size(F.array_intersect(viewers, F.col(f"_{t}_{w}"))), F.size(viewers))
        derived[f"item_revenue_{w}d"] = F.coalesce(F.col(f"_amount_{w}d").cast("double"), F.lit(0.0))
    previous = F.col("_previous_week")
    derived["item_growth_7d"] = ratio(F.col("item_events_7d") - previous, previous)
    derived["item_trend_7d_vs_30d"] = (F.col("item_events_7d") / F.lit(7.0)) / (
        F.col("item_events_30d") / F.lit(30.0)
    )
    by_date = Window.partitionBy(FEATURE_DATE).orderBy(F.col("item_events_1d").desc())
    derived["item_popularity_rank_1d"] = F.rank().over(by_date)
    audience = item_audience(inputs.silver, inputs.dates)
    return (
        counts.withColumns(derived)
        .join(audience, ["item_id", FEATURE_DATE], "left")
        .transform(as_declared(ITEM_FEATURES))
    )
