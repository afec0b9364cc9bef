"""Gold's feature rules on the one engine, on planted faults: every derived check finds its rows, per
feature date, and `validate --layer gold.<family>` runs the same rules on what the lake holds."""

from __future__ import annotations

import datetime as dt
from typing import Any

from medallion.core import catalog
from medallion.features.temporal import TEMPORAL_FEATURES
from medallion.quality import engine
from medallion.quality.rules import rules_for
from medallion.quality.validate import validate
from tests.governance.frames import gold_frame

FAM = TEMPORAL_FEATURES
TABLE = catalog.gold_table(FAM.name)
D = dt.date(2026, 11, 20)


def _rows(n: int = 40) -> list[dict[str, Any]]:
    out = []
    for day in (D - dt.timedelta(days=1), D):
        for u in range(n):
            row: dict[str, Any] = {"user_id": f"u{u}", catalog.FEATURE_DATE: day}
            for f in FAM.features:
                row[f.name] = "morning" if f.dtype == "string" else 0.1 + (u % 7) / 10
            row["hour_entropy_30d"] = 2.0  # constant over the run
            out.append(row)
    out[0]["night_share_30d"] = float("nan")  # non-finite
    out[1]["night_share_30d"] = float("inf")
    out[2]["weekend_share_30d"] = 1.5  # outside [0, 1]
    out[3]["morning_share_30d"] = None  # never empty: no null allowed
    out[4]["events_per_active_day_7d"] = None  # declared null when empty: allowed
    out.append(dict(out[5]))  # a duplicate user on the date
    return out


def test_every_derived_check_finds_its_planted_rows_in_one_pass_per_date(spark: Any) -> None:
    rows = _rows()
    active = {D - dt.timedelta(days=1): 40, D: 80}  # the second date has half its active users
    now = dt.datetime.combine(D + dt.timedelta(days=2), dt.time(), dt.UTC)
    report = engine.evaluate(
        gold_frame(spark, FAM, rows), rules_for(TABLE), {}, run_id="r", stage="gold", dates=[],
        by=catalog.FEATURE_DATE, active=active, now=now,
    )  # fmt: skip
    by = {r.name: r for r in report.results}
    assert (by["non_finite:night_share_30d"].failed, by["non_finite:night_share_30d"].status) == (2, "FAIL")
    assert by["range:weekend_share_30d"].failed == 1
    assert by["range:night_share_30d"].failed == 0  # NaN and ∞ are the finite rule's, not the range's
    assert by["null_rate:morning_share_30d"].status == "FAIL"
    nulls = by["null_rate:events_per_active_day_7d"]
    assert nulls.passed and nulls.failed == 1  # counted, and allowed by the declaration
    assert by["constant:hour_entropy_30d"].status == "warn" and by["constant:night_share_30d"].passed
    assert by["unique_key"].failed == 1 and by["unique_key"].status == "FAIL"
    # D-1: the duplicate makes 41 rows for 40 active users (above 1.0); D: 40 rows for 80 (below 0.95)
    assert by["row_count"].failed == 2 and by["row_count"].status == "warn"
    assert (
        "41 rows for 40 active" in by["row_count"].detail
        and "40 rows for 80 active" in by["row_count"].detail
    )
    assert by["freshness"].passed  # D ended 24 h before `now`: within 48 h
    assert report.rows == len(rows)
    # rows failing a fail rule by themselves: the NaN, the ∞, the 1.5 and the null share
    assert report.rows_passing == len(rows) - 4
    assert report.table == TABLE.name


def test_validate_gold_checks_what_the_lake_holds(spark: Any, make_config: Any) -> None:
    cfg = make_config()
    gold_frame(spark, FAM, _rows()).write.partitionBy(catalog.FEATURE_DATE).parquet(TABLE.path(cfg))
    (report,) = validate(spark, cfg, [TABLE.name], D, D, run_id="v1")
    assert report.stage == "validate" and report.table == TABLE.name
    by = {r.name: r for r in report.results}
    assert by["unique_key"].failed == 0  # the duplicate is on the other date
    assert by["range:weekend_share_30d"].failed == 0 and report.rows == 40
    assert "row_count" not in by  # no Silver in the lake: no active entities to compare with


def test_active_entities_are_the_distinct_entities_of_each_window(spark: Any) -> None:
    """`active_entities` counts each (entity, feature date) once, by the entity's latest active day in the
    window; checked against the definition on random activity: gaps shorter and longer than the window,
    days repeated, events before the first feature date, null entities, dates with no one active."""
    import dataclasses
    import random

    from medallion.gold.transforms import calendar
    from medallion.quality.coverage import active_counts

    rng = random.Random(7)
    first = dt.date(2026, 3, 1)
    events = [
        (rng.choice([None, *(f"u{i}" for i in range(30))]), first + dt.timedelta(days=rng.randrange(0, 60)))
        for _ in range(400)
    ]
    events = [
        e for e in events if not (first + dt.timedelta(days=40) <= e[1] < first + dt.timedelta(days=44))
    ]
    silver = spark.createDataFrame(events, f"user_id string, {catalog.EVENT_DATE} date")
    feature_dates = [first + dt.timedelta(days=d) for d in range(10, 62, 3)]
    for window in (1, 3, 7, 30):
        fam = dataclasses.replace(FAM, window_days=window)
        got = active_counts(silver, calendar(spark, feature_dates), fam)
        expected = {
            day: n
            for day in feature_dates
            if (
                n := len(
                    {u for u, d in events if u is not None and day - dt.timedelta(days=window) < d <= day}
                )
            )
        }
        assert got == expected, window
