"""Builder of ``item_features`` (declared in `medallion.features.item`)."""

from __future__ import annotations

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from medallion.core.catalog import EVENT_DATE, EVENT_TYPE, FEATURE_DATE
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
        count_if(F.col("days_7") > 0).alias(ITEM_FEATURES.column("item_unique_users", 7)),
        F.count(F.lit(1)).alias(ITEM_FEATURES.column("item_unique_users", 30)),
        (count_if(F.col("days_30") >= 2) / F.count(F.lit(1))).alias(
            ITEM_FEATURES.column("item_returning_user_rate", 30)
        ),
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
        aggs.append(in_w(w, "events").alias(ITEM_FEATURES.column("item_events", w)))
        aggs += [in_w(w, kind).alias(ITEM_FEATURES.column(f"item_{kind}", w)) for kind in KINDS]
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
        for feature, t in (
            (ITEM_FEATURES.column("item_ctr", w), "click"),
            (ITEM_FEATURES.column("item_conversion_rate", w), "purchase"),
        ):
            derived[feature] = ratio(F.size(F.array_intersect(viewers, F.col(f"_{t}_{w}"))), F.size(viewers))
        derived[ITEM_FEATURES.column("item_revenue", w)] = F.coalesce(
            F.col(f"_amount_{w}d").cast("double"), F.lit(0.0)
        )
    previous = F.col("_previous_week")
    derived[ITEM_FEATURES.column("item_growth", 7)] = ratio(
        F.col(ITEM_FEATURES.column("item_events", 7)) - previous, previous
    )
    derived[ITEM_FEATURES.column("item_trend_7d_vs", 30)] = (
        F.col(ITEM_FEATURES.column("item_events", 7)) / F.lit(7.0)
    ) / (F.col(ITEM_FEATURES.column("item_events", 30)) / F.lit(30.0))
    by_date = Window.partitionBy(FEATURE_DATE).orderBy(F.col(ITEM_FEATURES.column("item_events", 1)).desc())
    derived[ITEM_FEATURES.column("item_popularity_rank", 1)] = F.rank().over(by_date)
    audience = item_audience(inputs.silver, inputs.dates)
    return (
        counts.withColumns(derived)
        .join(audience, ["item_id", FEATURE_DATE], "left")
        .transform(as_declared(ITEM_FEATURES))
    )
