"""The entities each Gold feature date should have a row for: those active in the family's window.

Gold's `coverage` rule (``row_count``, derived in `medallion.quality.feature_rules`) holds each feature
date's rows to these counts; the Gold job and `medallion validate --layer gold` both compute them here.
"""

from __future__ import annotations

import datetime as dt

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from medallion.core import catalog
from medallion.features import FeatureFamily


def active_entities(silver: DataFrame, dates: DataFrame, fam: FeatureFamily) -> DataFrame:
    """Per feature date (``dates``: one ``feature_date`` column), the entities with a Silver event in the
    family's window ending with it: ``feature_date, active``."""
    key = fam.entity.join_key
    daily = silver.where(F.col(key).isNotNull()).select(key, catalog.EVENT_DATE).distinct()
    window = (F.col(catalog.EVENT_DATE) <= F.col(catalog.FEATURE_DATE)) & (
        F.col(catalog.EVENT_DATE) > F.date_sub(F.col(catalog.FEATURE_DATE), fam.window_days)
    )
    return (
        dates.join(daily, window, "left")
        .groupBy(catalog.FEATURE_DATE)
        .agg(F.count_distinct(F.col(key)).alias("active"))
    )


def active_counts(silver: DataFrame, dates: DataFrame, fam: FeatureFamily) -> dict[dt.date, int]:
    """`active_entities`, collected: ``{feature_date: entities}``."""
    return {r[catalog.FEATURE_DATE]: int(r["active"]) for r in active_entities(silver, dates, fam).collect()}
