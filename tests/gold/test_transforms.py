from __future__ import annotations

import datetime as dt
from typing import Any

from medallion.gold.transforms import daily_user_activity, feature_dates, user_activity_features

D = dt.date(2026, 11, 10)
SILVER = (
    "user_id string, session_id string, event_type string, event_date date, item_id string, amount double"
)


def _events(spark: Any, rows: list[tuple[Any, ...]]) -> Any:
    return spark.createDataFrame(rows, SILVER)


def test_feature_row_uses_only_the_past_and_is_stamped_at_the_end_of_its_day(spark: Any) -> None:
    rows = [
        ("u1", "s1", "page_view", D, "i1", None),
        ("u1", "s1", "purchase", D, "i1", 30.0),
        ("u1", "s2", "page_view", D - dt.timedelta(days=3), "i2", None),
        ("u1", "s9", "purchase", D - dt.timedelta(days=7), "i9", 999.0),  # outside the 7-day window
        ("u1", "s3", "purchase", D + dt.timedelta(days=1), "i3", 500.0),  # the future of D: must not count
    ]
    daily = _events(spark, rows).transform(daily_user_activity)
    out = daily.transform(user_activity_features(feature_dates(spark, D, D))).collect()
    assert len(out) == 1
    row = out[0].asDict()
    assert row["event_timestamp"] == dt.datetime(2026, 11, 11, 0, 0)
    assert row["feature_date"] == D
    assert (row["events_1d"], row["sessions_1d"], row["purchases_1d"], row["revenue_1d"]) == (2, 1, 1, 30.0)
    assert (row["events_7d"], row["purchases_7d"], row["revenue_7d"]) == (3, 1, 30.0)
    assert (row["distinct_items_7d"], row["days_active_7d"]) == (2, 2)
    assert row["conversion_rate_7d"] == 0.5  # 1 of 2 sessions bought


def test_one_row_per_user_and_date_where_the_window_has_activity(spark: Any) -> None:
    rows = [("u1", "s1", "click", D, "i1", None), ("u2", "s2", "click", D - dt.timedelta(days=6), "i2", None)]
    daily = _events(spark, rows).transform(daily_user_activity)
    out = daily.transform(
        user_activity_features(feature_dates(spark, D - dt.timedelta(days=1), D + dt.timedelta(days=1)))
    )
    got = sorted((r.user_id, r.feature_date.isoformat(), r.events_1d) for r in out.collect())
    assert got == [
        ("u1", "2026-11-10", 1),
        ("u1", "2026-11-11", 0),
        ("u2", "2026-11-09", 0),
        ("u2", "2026-11-10", 0),
        # u2's event left the window on 11-11
    ]
