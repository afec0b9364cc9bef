"""Builder of ``session_features`` (declared in `medallion.features.session`), and the per-session rows
that `statistical_features` reuses."""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from medallion.core.catalog import EVENT_DATE, EVENT_TYPE, FEATURE_DATE
from medallion.features.session import BROWSE_TYPES, SESSION_FEATURES, WINDOWS
from medallion.gold.registry import builds
from medallion.gold.transforms import (
    GoldInputs,
    as_declared,
    count_if,
    over_window,
    ratio,
    seconds_between,
    within,
)


def daily_sessions(silver: DataFrame) -> DataFrame:
    """Per session and event date: events, first and last event time, whether it browsed or bought."""
    browse = F.col(EVENT_TYPE).isin(*BROWSE_TYPES)
    return silver.groupBy("user_id", "session_id", EVENT_DATE).agg(
        F.count(F.lit(1)).alias("events"),
        F.min("event_time").alias("first"),
        F.max("event_time").alias("last"),
        F.max(browse.cast("int")).alias("browse"),
        F.max((~browse).cast("int")).alias("commerce"),
    )


def sessions_in_windows(inputs: GoldInputs) -> DataFrame:
    """Per user, session and feature date: for each window, the session's events inside it, its
    duration clipped to it (seconds) and its kind flags; a window without the session's events has
    ``events_<w> = 0``."""
    joined = over_window(inputs.silver.transform(daily_sessions), inputs.dates, SESSION_FEATURES.window_days)
    aggs = []
    for w in WINDOWS:
        inside = within(w)
        aggs += [
            F.coalesce(F.sum(F.when(inside, F.col("events"))), F.lit(0)).alias(f"events_{w}"),
            F.min(F.when(inside, F.col("first"))).alias(f"first_{w}"),
            F.max(F.when(inside, F.col("last"))).alias(f"last_{w}"),
            F.max(F.when(inside, F.col("browse"))).alias(f"browse_{w}"),
            F.max(F.when(inside, F.col("commerce"))).alias(f"commerce_{w}"),
        ]
    per_session = joined.groupBy("user_id", "session_id", FEATURE_DATE).agg(*aggs)
    return per_session.withColumns(
        {f"duration_{w}": seconds_between(F.col(f"first_{w}"), F.col(f"last_{w}")) for w in WINDOWS}
    )


@builds(SESSION_FEATURES)
def build(inputs: GoldInputs) -> DataFrame:
    """Per-session rows → one row per (user, feature date) for users active in the 30 days ending D."""
    sessions = inputs.once("sessions_in_windows", sessions_in_windows)
    aggs = []
    derived: dict[str, F.Column] = {}
    for w in WINDOWS:
        present = F.col(f"events_{w}") > 0
        browse, commerce = F.col(f"browse_{w}") == 1, F.col(f"commerce_{w}") == 1
        aggs += [
            count_if(present).alias(SESSION_FEATURES.column("sessions", w)),
            F.sum(F.when(present, F.col(f"duration_{w}"))).alias(f"_duration_{w}"),
            F.sum(F.col(f"events_{w}")).alias(f"_events_{w}"),
            count_if(F.col(f"events_{w}") == 1).alias(f"_bounces_{w}"),
            F.sum(F.when(present, F.col(f"events_{w}") - 1)).alias(f"_gaps_{w}"),
            count_if(present & browse & ~commerce).alias(f"_browsing_{w}"),
            count_if(present & commerce & ~browse).alias(f"_buying_{w}"),
            count_if(present & browse & commerce).alias(f"_mixed_{w}"),
        ]
        n = F.col(SESSION_FEATURES.column("sessions", w))
        derived |= {
            SESSION_FEATURES.column("avg_session_duration", w): ratio(F.col(f"_duration_{w}"), n),
            SESSION_FEATURES.column("events_per_session", w): ratio(F.col(f"_events_{w}"), n),
            SESSION_FEATURES.column("bounce_rate", w): ratio(F.col(f"_bounces_{w}"), n),
            SESSION_FEATURES.column("time_between_events_mean", w): ratio(
                F.col(f"_duration_{w}"), F.col(f"_gaps_{w}")
            ),
            **{
                SESSION_FEATURES.column(f"{k}_session_share", w): ratio(F.col(f"_{k}_{w}"), n)
                for k in ("browsing", "buying", "mixed")
            },
        }
    per_user = sessions.groupBy("user_id", FEATURE_DATE).agg(*aggs)
    return per_user.withColumns(derived).transform(as_declared(SESSION_FEATURES))
