"""Builder of ``user_features`` (declared in `medallion.features.user`)."""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from medallion.core.catalog import EVENT_DATE, EVENT_TYPE, FEATURE_DATE
from medallion.core.contract import EVENT_TYPES
from medallion.features.user import RECENT, USER_FEATURES, WINDOWS
from medallion.gold.registry import builds
from medallion.gold.transforms import (
    GoldInputs,
    as_declared,
    count_if,
    days_before_end,
    distinct_in,
    over_window,
    ratio,
    union_in,
    within,
)


def daily_user_activity(silver: DataFrame) -> DataFrame:
    """Per user and event date: counts by type, amounts (exact decimals), latest times, item/category sets."""
    purchase = F.col(EVENT_TYPE) == "purchase"
    return silver.groupBy("user_id", EVENT_DATE).agg(
        F.count(F.lit(1)).alias("events"),
        *(count_if(F.col(EVENT_TYPE) == t).alias(f"n_{t}") for t in EVENT_TYPES),
        F.sum(F.when(purchase, F.col("amount_usd"))).alias("amount"),
        count_if(purchase & F.col("amount_usd").isNotNull()).alias("priced"),
        F.max("event_time").alias("last_time"),
        F.max(F.when(purchase, F.col("event_time"))).alias("last_purchase"),
        F.collect_set("item_id").alias("items"),
        F.collect_set("item_category").alias("categories"),
        F.collect_set(F.when(F.col(EVENT_TYPE) == "page_view", F.col("item_id"))).alias("viewed"),
        F.collect_set(F.when(purchase, F.col("item_id"))).alias("bought"),
    )


@builds(USER_FEATURES)
def build(inputs: GoldInputs) -> DataFrame:
    """Silver events → one row per (user, feature date) for users active in the 30 days ending that date."""
    joined = over_window(
        inputs.silver.transform(daily_user_activity), inputs.dates, USER_FEATURES.window_days
    )

    def in_w(w: int, col: str) -> F.Column:
        return F.sum(F.when(within(w), F.col(col)))

    aggs: list[F.Column] = []
    for w in WINDOWS:
        aggs.append(F.coalesce(in_w(w, "events"), F.lit(0)).alias(USER_FEATURES.column("events", w)))
        aggs += [
            F.coalesce(in_w(w, f"n_{t}"), F.lit(0)).alias(USER_FEATURES.column(f"{t}_events", w))
            for t in EVENT_TYPES
        ]
        aggs += [
            in_w(w, "amount").alias(f"_amount_{w}d"),
            F.coalesce(in_w(w, "priced"), F.lit(0)).alias(f"_priced_{w}d"),
        ]
    for w in RECENT:
        aggs += [
            distinct_in(F.when(within(w), F.col("items"))).alias(USER_FEATURES.column("distinct_items", w)),
            distinct_in(F.when(within(w), F.col("categories"))).alias(
                USER_FEATURES.column("distinct_categories", w)
            ),
            count_if(within(w)).alias(USER_FEATURES.column("active_days", w)),
            union_in(F.when(within(w), F.col("viewed"))).alias(f"_viewed_{w}"),
            union_in(F.when(within(w), F.col("bought"))).alias(f"_bought_{w}"),
        ]
    aggs += [F.max("last_time").alias("_last_time"), F.max("last_purchase").alias("_last_purchase")]
    features = joined.groupBy("user_id", FEATURE_DATE).agg(*aggs)

    derived: dict[str, F.Column] = {}
    for w in WINDOWS:
        amount = F.col(f"_amount_{w}d").cast("double")
        derived[USER_FEATURES.column("revenue", w)] = F.coalesce(amount, F.lit(0.0))
        derived[USER_FEATURES.column("avg_order_value", w)] = ratio(amount, F.col(f"_priced_{w}d"))
    for w in RECENT:
        viewed = F.col(f"_viewed_{w}")
        derived[USER_FEATURES.column("view_to_purchase_rate", w)] = ratio(
            F.size(F.array_intersect(viewed, F.col(f"_bought_{w}"))), F.size(viewed)
        )
    derived[USER_FEATURES.column("days_since_last_event")] = days_before_end(F.col("_last_time"))
    derived[USER_FEATURES.column("days_since_last_purchase")] = days_before_end(F.col("_last_purchase"))
    return features.withColumns(derived).transform(as_declared(USER_FEATURES))
