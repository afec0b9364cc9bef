"""The `freshness` rule means the same in every host time zone and Spark session zone.

PySpark hands a collected timestamp to Python as a naive datetime in the driver's host zone; read as UTC,
a 30-minute-old event failed a 1-hour rule under America/New_York, and a 9-hour-old one passed under
Asia/Tokyo. The zone is changed in this process (``TZ`` and ``time.tzset``, what a host's zone is to
Python) and in the session, one at a time.
"""

from __future__ import annotations

import datetime as dt
import os
import time
from collections.abc import Iterator
from typing import Any

import pytest
from pyspark.sql import functions as F

from medallion.quality import engine
from tests.quality.test_engine import rules

ZONES = ("UTC", "America/New_York", "Asia/Tokyo", "Asia/Kolkata")


@pytest.fixture
def host_zone() -> Iterator[Any]:
    before = os.environ.get("TZ")

    def use(zone: str) -> None:
        os.environ["TZ"] = zone
        time.tzset()

    yield use
    if before is None:
        os.environ.pop("TZ", None)
    else:
        os.environ["TZ"] = before
    time.tzset()


@pytest.mark.parametrize("zone", ZONES)
def test_a_fresh_event_passes_and_a_stale_one_fails_in_every_zone(
    spark: Any, host_zone: Any, zone: str
) -> None:
    ruleset = rules(
        {
            "name": "fresh",
            "type": "freshness",
            "column": "event_time",
            "max_age": "1 hour",
            "action": "warn",
        }
    )
    now = dt.datetime.now(dt.UTC)
    host_zone(zone)
    session_zone = spark.conf.get("spark.sql.session.timeZone")
    spark.conf.set("spark.sql.session.timeZone", zone)
    try:
        for age, fails in ((dt.timedelta(minutes=30), 0), (dt.timedelta(minutes=90), 1)):
            newest = now - age
            # Written as epoch microseconds, so the value is the same instant whatever the zones.
            df = spark.range(1).select(F.timestamp_micros(F.lit(_micros(newest))).alias("event_time"))
            row = df.agg(*engine.table_aggregates(ruleset)).first()
            (result,) = engine.table_results(ruleset, row, now=now)
            assert (result.checked, result.failed) == (1, fails), (zone, age, result.detail)
            assert newest.isoformat(timespec="seconds")[:19] in result.detail  # the instant, in UTC
    finally:
        spark.conf.set("spark.sql.session.timeZone", session_zone)


def _micros(t: dt.datetime) -> int:
    return (t - engine.EPOCH) // dt.timedelta(microseconds=1)
