"""The entities each Gold feature date should have a row for: those active in the family's window.

Gold's `coverage` rule (``row_count``, derived in `medallion.quality.feature_rules`) holds each feature
date's rows to these counts; the Gold job and `medallion validate --layer gold` both compute them here.
"""

from __future__ import annotations

import datetime as dt

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from medallion.core import catalog
from medallion.features import FeatureFamily


def active_entities(silver: DataFrame, dates: DataFrame, fam: FeatureFamily) -> DataFrame:
    """Per feature date (``dates``: one ``feature_date`` column), the entities with a Silver event in the
    family's window ending with it: ``feature_date, active`` (a date with none has no row).

    Each entity's active days, in order: a day d counts the entity for the feature dates from d up to the
    day before its next active day, and at most ``window_days`` of them (d's last window). So every
    (entity, feature date) pair is counted once, by the entity's latest active day in the window, and a
    plain count replaces a distinct count over every pair of day and feature date (a family with a
    30-day window: 30 × the rows, shuffled to be counted once)."""
    key = fam.entity.join_key
    day, until = F.col(catalog.EVENT_DATE), F.col("_until")
    later = F.lead(day).over(Window.partitionBy(key).orderBy(day))
    last = F.date_add(day, fam.window_days)  # the first feature date whose window no longer holds `day`
    owned = (
        silver.where(F.col(key).isNotNull())
        .select(key, catalog.EVENT_DATE)
        .distinct()
        .select(day, F.least(F.coalesce(later, last), last).alias("_until"))
    )
    feature = F.col(catalog.FEATURE_DATE)
    return (
        owned.join(F.broadcast(dates), (feature >= day) & (feature < until))
        .groupBy(catalog.FEATURE_DATE)
        .agg(F.count(F.lit(1)).alias("active"))
    )


def active_counts(silver: DataFrame, dates: DataFrame, fam: FeatureFamily) -> dict[dt.date, int]:
    """`active_entities`, collected: ``{feature_date: entities}``."""
    return {r[catalog.FEATURE_DATE]: int(r["active"]) for r in active_entities(silver, dates, fam).collect()}
