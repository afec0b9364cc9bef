"""Transforms every Gold family shares: the calendar of feature dates, windows, the point-in-time stamp,
the declared shape, and the inputs a run hands to every builder.

Point-in-time rule: the row for ``feature_date = D`` uses only events whose event time is before the end
of D (D + 1 day, 00:00 UTC; ``event_date <= D``, since Silver's ``event_date`` is the UTC date of
``event_time``), and carries that end as ``event_timestamp``, so Feast's point-in-time join never hands a
training example a feature computed from its own future.

Window rule: an N-day window of D holds the events with ``end of D − N days <= event_time < end of D``:
the event dates D-N+1 .. D. An event exactly N days before the end of D (D-N+1, 00:00:00) is inside; one a
microsecond earlier is not. Builders aggregate per entity and event date first and then join those small
rows to the calendar, so a backfill of many dates reads and groups the events once.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from medallion.core.catalog import (
    CREATED_TIMESTAMP,
    EVENT_DATE,
    EVENT_TIMESTAMP,
    EVENT_TYPE,
    FEATURE_DATE,
    gold_table,
)
from medallion.core.config import GoldConfig
from medallion.core.lake import require_columns
from medallion.features import FeatureFamily

# The Silver columns Gold reads (another stage may add columns; these stay).
SILVER_COLUMNS = (
    "event_id",
    "event_time",
    EVENT_DATE,
    EVENT_TYPE,
    "user_id",
    "session_id",
    "item_id",
    "item_category",
    "amount_usd",
)
MICROS_PER_DAY = 86_400_000_000.0
MICROS_PER_SECOND = 1_000_000.0


def feature_dates(spark: SparkSession, start: dt.date, end: dt.date) -> DataFrame:
    """One row per date in [start, end]: the calendar features are computed for."""
    return calendar(spark, [start + dt.timedelta(days=i) for i in range((end - start).days + 1)])


def calendar(spark: SparkSession, dates: list[dt.date]) -> DataFrame:
    """One row per given feature date."""
    return spark.createDataFrame(
        [(d,) for d in dates], T.StructType([T.StructField(FEATURE_DATE, T.DateType(), False)])
    )


def in_window(days: int) -> Column:
    """Rows whose event date lies in the ``days`` days ending with the feature date (D-days+1 .. D)."""
    return (F.col(EVENT_DATE) <= F.col(FEATURE_DATE)) & (
        F.col(EVENT_DATE) > F.date_sub(F.col(FEATURE_DATE), days)
    )


def within(days: int) -> Column:
    """For rows already joined to a longer window: those inside the ``days``-day window of the date."""
    return F.col(EVENT_DATE) > F.date_sub(F.col(FEATURE_DATE), days)


def over_window(daily: DataFrame, dates: DataFrame, days: int) -> DataFrame:
    """Per-day rows joined to every feature date whose ``days``-day window holds their day."""
    return daily.join(F.broadcast(dates), in_window(days))


def end_of_feature_date() -> Column:
    """D + 1 day, 00:00 UTC (the session's zone is UTC): the first instant the row may be used."""
    return F.to_timestamp(F.date_add(F.col(FEATURE_DATE), 1))


def days_before_end(ts: Column) -> Column:
    """(end of D − ``ts``) in days, from whole microseconds (exact up to the final division)."""
    return (F.unix_micros(end_of_feature_date()) - F.unix_micros(ts)) / F.lit(MICROS_PER_DAY)


def seconds_between(first: Column, last: Column) -> Column:
    return (F.unix_micros(last) - F.unix_micros(first)) / F.lit(MICROS_PER_SECOND)


def ratio(numerator: Column, denominator: Column) -> Column:
    """numerator / denominator as a double; null when the denominator is 0 or null."""
    return F.when(denominator > 0, numerator.cast("double") / denominator.cast("double"))


def count_if(condition: Column) -> Column:
    return F.sum(F.when(condition, 1).otherwise(0))


def union_in(sets: Column) -> Column:
    """The union of per-day sets (``collect_set`` columns) over the group's rows (nulls skipped)."""
    return F.array_distinct(F.flatten(F.collect_list(sets)))


def distinct_in(sets: Column) -> Column:
    """Size of the union of per-day sets (``collect_set`` columns) over the group's rows (nulls skipped)."""
    return F.size(F.array_distinct(F.flatten(F.collect_list(sets))))


def as_declared(family: FeatureFamily) -> Callable[[DataFrame], DataFrame]:
    """Select a family's columns in the declared order with the declared types, plus the stamps.

    The input carries the join key, ``feature_date`` and every declared feature; the catalogue's Gold
    table gives each its type (so a builder cannot hand a long where a double is declared).
    """
    table = gold_table(family.name)

    def _(df: DataFrame) -> DataFrame:
        stamps = {
            EVENT_TIMESTAMP: end_of_feature_date(),
            CREATED_TIMESTAMP: F.current_timestamp(),
        }
        cols = [
            (stamps[c.name] if c.name in stamps else F.col(c.name)).cast(c.type).alias(c.name)
            for c in table.columns
        ]
        return df.select(*cols, F.col(FEATURE_DATE))

    return _


@dataclass
class GoldInputs:
    """What a run hands every builder: Silver events of the read window, the feature dates, the settings.

    ``shared`` holds intermediate frames several families use (the per-session rows of the session and
    statistical families, the item vectors of both embedding families), each built once per run and
    persisted until the run ends (`release`).
    """

    silver: DataFrame
    dates: DataFrame
    settings: GoldConfig = field(default_factory=GoldConfig)  # type: ignore[arg-type]
    shared: dict[str, DataFrame] = field(default_factory=dict)

    def __post_init__(self) -> None:
        require_columns(self.silver, SILVER_COLUMNS, "gold")

    def once(self, key: str, make: Callable[[GoldInputs], DataFrame]) -> DataFrame:
        if key not in self.shared:
            self.shared[key] = make(self).persist()
        return self.shared[key]

    def feature_date_list(self) -> list[dt.date]:
        return sorted(r[0] for r in self.dates.collect())

    def release(self) -> None:
        for frame in self.shared.values():
            frame.unpersist()
        self.shared.clear()
