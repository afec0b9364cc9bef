"""Point-in-time training sets from Gold through real Feast (file offline store), per timestamp encoding.

Gold's row for feature_date D carries event_timestamp = end of D (D+1 00:00 UTC), so an entity row at a
time inside D must get D-1's row and never D's (no leak), and one at exactly the end of D gets D's.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable
from typing import Any

import pandas as pd
import pytest

from medallion import serving
from medallion.config import Config
from medallion.errors import ConfigError
from tests.serving.conftest import FEATURES, end_of, gold_rows, write_gold

pytestmark = pytest.mark.usefixtures("feast_imported")

DAYS = [dt.date(2025, 3, 1) + dt.timedelta(days=k) for k in range(10)]
TTL_DAYS = 3
US = dt.timedelta(microseconds=1)


@pytest.fixture(scope="module", params=["micros", "int96", "mixed"])
def gold(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    serving_config: Callable[..., Config],
) -> tuple[Config, list[dict[str, Any]]]:
    """Ten days of Gold for 80 users (~70% present each day), written with one timestamp encoding."""
    lake = tmp_path_factory.mktemp(f"lake-{request.param}")
    rows = gold_rows(DAYS, users=80, seed=11)
    write_gold(lake, rows, encoding=request.param)
    cfg = serving_config(lake, **{"serving.ttl_days": TTL_DAYS})
    serving.apply(cfg)
    return cfg, rows


def reference(rows: list[dict[str, Any]], user: str, at: dt.datetime) -> dict[str, Any] | None:
    """The row a point-in-time join must pick: latest event_timestamp <= at, within the TTL."""
    candidates = [
        r
        for r in rows
        if r["user_id"] == user and at - dt.timedelta(days=TTL_DAYS) <= r["event_timestamp"] <= at
    ]
    return max(candidates, key=lambda r: (r["event_timestamp"], r["created_timestamp"]), default=None)


def test_inside_a_day_gets_the_previous_days_row_and_its_end_gets_its_own(
    gold: tuple[Config, list[dict[str, Any]]],
) -> None:
    cfg, rows = gold
    present = {(r["user_id"], r["feature_date"]): r for r in rows}
    day = DAYS[5]
    user = next(u for (u, d) in present if d == day and (u, day - dt.timedelta(days=1)) in present)
    before, own = present[(user, day - dt.timedelta(days=1))], present[(user, day)]
    start_of_day = end_of(day - dt.timedelta(days=1))
    times = [start_of_day, start_of_day + dt.timedelta(hours=12), end_of(day) - US, end_of(day)]

    frame = serving.historical_features(cfg, pd.DataFrame({"user_id": [user] * 4, "event_timestamp": times}))

    assert frame["events_1d"].tolist() == [before["events_1d"]] * 3 + [own["events_1d"]]
    assert frame["revenue_7d"].tolist() == [before["revenue_7d"]] * 3 + [own["revenue_7d"]]


def test_training_set_matches_a_reference_point_in_time_join(
    gold: tuple[Config, list[dict[str, Any]]],
) -> None:
    cfg, rows = gold
    rnd = random.Random(5)
    users = sorted({r["user_id"] for r in rows}) + ["user_never_seen"]
    span = int((end_of(DAYS[-1]) - end_of(DAYS[0]) + dt.timedelta(days=2)).total_seconds())
    times = [
        end_of(DAYS[0]) - dt.timedelta(days=1) + dt.timedelta(seconds=rnd.randrange(span)) for _ in range(300)
    ]
    times += [end_of(d) for d in DAYS[:20]]  # exact boundaries
    entity = pd.DataFrame({"user_id": [rnd.choice(users) for _ in times], "event_timestamp": times})
    entity = pd.concat([entity, entity.iloc[:5]], ignore_index=True)  # duplicate keys stay duplicate rows
    entity["label"] = range(len(entity))
    entity.index = entity.index * 10  # the caller's index is kept

    frame = serving.historical_features(cfg, entity)

    assert frame.index.tolist() == entity.index.tolist()
    assert frame["label"].tolist() == entity["label"].tolist()
    assert frame["user_id"].tolist() == entity["user_id"].tolist()
    assert str(frame["events_1d"].dtype) == "Int64" and str(frame["revenue_1d"].dtype) == "float64"
    got, nulls = 0, 0
    for row in frame.itertuples():
        want = reference(rows, row.user_id, row.event_timestamp.to_pydatetime())
        values = {name: getattr(row, name) for name in FEATURES}
        if want is None:
            nulls += 1
            assert all(pd.isna(v) for v in values.values()), row
        else:
            got += 1
            assert values == {name: want[name] for name in FEATURES}, row
    assert got > 150 and nulls > 20  # both kinds are exercised: rows found, and rows with none in the window


def test_naive_entity_timestamps_are_utc_and_columns_are_checked(
    gold: tuple[Config, list[dict[str, Any]]],
) -> None:
    cfg, rows = gold
    row = rows[-1]
    naive = row["event_timestamp"].replace(tzinfo=None)
    frame = serving.historical_features(
        cfg, pd.DataFrame({"user_id": [row["user_id"]], "event_timestamp": [naive]}), features=["events_1d"]
    )
    assert frame["event_timestamp"].tolist() == [pd.Timestamp(row["event_timestamp"])]
    assert frame["events_1d"].tolist() == [row["events_1d"]]
    with pytest.raises(ConfigError, match="lacks event_timestamp; it has user_id, ts"):
        serving.historical_features(cfg, pd.DataFrame({"user_id": ["u"], "ts": [naive]}))
