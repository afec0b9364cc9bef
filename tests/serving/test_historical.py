"""Point-in-time training sets through real Feast (file offline store) against a hand-written as-of join.

Gold's row for feature_date D carries event_timestamp = end of D, so an entity row inside D gets D-1's
row (no leak), one at exactly the end of D gets D's, one before an entity's first row gets nulls, and
one more than the TTL after the entity's newest earlier row gets nulls too.
"""

from __future__ import annotations

import datetime as dt
import math
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from medallion import serving
from medallion.core.config import Config
from medallion.core.errors import ConfigError
from medallion.features import family
from medallion.features.services import service
from tests.serving.families_gold import Row, end_of, family_rows, write_family

pytestmark = pytest.mark.usefixtures("feast_imported")

DAYS = [dt.date(2025, 3, 1) + dt.timedelta(days=k) for k in range(10)]
TTL_DAYS = 2
US = dt.timedelta(microseconds=1)
RANKING = service("ranking")
PROFILE = service("user_profile")
FAMILIES = tuple(dict.fromkeys(RANKING.families + PROFILE.families))


def as_of(rows: list[Row], key: str, entity: str, at: dt.datetime) -> Row | None:
    """The reference: the entity's newest row with at - TTL <= event_timestamp <= at."""
    window = [
        r for r in rows if r[key] == entity and at - dt.timedelta(days=TTL_DAYS) <= r["event_timestamp"] <= at
    ]
    return max(window, key=lambda r: (r["event_timestamp"], r["created_timestamp"]), default=None)


def same(got: Any, want: Any) -> bool:
    if want is None or (isinstance(want, float) and math.isnan(want)):
        return got is None or got is pd.NA or (isinstance(got, float) and math.isnan(got))
    if isinstance(want, list):
        return list(got) == want
    return bool(got == want)


@pytest.fixture(scope="module")
def gold(
    tmp_path_factory: pytest.TempPathFactory, serving_config: Callable[..., Config]
) -> tuple[Config, dict[str, list[Row]]]:
    """Ten days of Gold of the ranking and user_profile services' families, 12 entities each, ~50% present
    per day, so gaps longer than the TTL exist; one family's files in INT96."""
    lake = tmp_path_factory.mktemp("lake")
    rows = {}
    for i, name in enumerate(FAMILIES):
        rows[name] = family_rows(family(name), DAYS, 12, seed=20 + i, presence=0.5)
        write_family(lake, family(name), rows[name], int96=i == 1)
    cfg = serving_config(lake, **{"serving.ttl_days": TTL_DAYS})
    serving.apply(cfg)
    return cfg, rows


def test_a_training_set_equals_the_hand_written_as_of_join(gold: tuple[Config, dict[str, list[Row]]]) -> None:
    cfg, rows = gold
    rnd = random.Random(3)
    users = [f"u_{n:06d}" for n in range(12)] + ["u_unknown"]
    items = [f"i_{n:06d}" for n in range(12)] + ["i_unknown"]
    span = int((end_of(DAYS[-1]) - end_of(DAYS[0]) + dt.timedelta(days=3)).total_seconds())
    times = [
        end_of(DAYS[0]) - dt.timedelta(days=1) + dt.timedelta(seconds=rnd.randrange(span)) for _ in range(160)
    ]
    times += [end_of(d) for d in DAYS] + [end_of(d) - US for d in DAYS]  # exactly at, and just before
    entity = pd.DataFrame(
        {
            "user_id": [rnd.choice(users) for _ in times],
            "item_id": [rnd.choice(items) for _ in times],
            "event_timestamp": times,
        }
    )
    entity = pd.concat([entity, entity.iloc[:4]], ignore_index=True)  # duplicate rows stay duplicate
    entity["label"] = range(len(entity))

    frame = serving.historical_features(cfg, entity, service="ranking")

    assert frame["label"].tolist() == entity["label"].tolist()
    kinds = {"found": 0, "before_first": 0, "expired": 0, "exact": 0}
    for name in RANKING.families:
        fam = family(name)
        key = fam.entity.join_key
        for row in frame.itertuples():
            at = row.event_timestamp.to_pydatetime()
            want = as_of(rows[name], key, getattr(row, key), at)
            for feature in fam.feature_names:
                got = getattr(row, feature)
                assert same(got, None if want is None else want[feature]), (name, feature, row)
            earlier = [r for r in rows[name] if r[key] == getattr(row, key) and r["event_timestamp"] <= at]
            if want is not None:
                kinds["found"] += 1
                kinds["exact"] += want["event_timestamp"] == at
            elif not earlier:
                kinds["before_first"] += 1
            else:
                kinds["expired"] += 1
    assert all(n > 0 for n in kinds.values()), kinds  # every case of the point-in-time join is exercised
    assert str(frame["events_1d"].dtype) == "Int64" and frame["item_ctr_7d"].dtype == "float64"


def test_inside_a_day_gets_the_previous_day_and_its_end_gets_its_own(
    gold: tuple[Config, dict[str, list[Row]]],
) -> None:
    cfg, rows = gold
    present = {(r["user_id"], r["feature_date"]): r for r in rows["user_features"]}
    day = next(
        d
        for d in DAYS[1:]
        if any((u, d) in present and (u, d - dt.timedelta(days=1)) in present for u, _ in present)
    )
    user = next(u for (u, d) in present if d == day and (u, day - dt.timedelta(days=1)) in present)
    before, own = present[(user, day - dt.timedelta(days=1))], present[(user, day)]
    times = [
        end_of(day - dt.timedelta(days=1)),
        end_of(day) - dt.timedelta(hours=12),
        end_of(day) - US,
        end_of(day),
    ]

    frame = serving.historical_features(
        cfg,
        pd.DataFrame({"user_id": [user] * 4, "event_timestamp": times}),
        features=["user_features:events_1d"],
    )

    assert frame["events_1d"].tolist() == [before["events_1d"]] * 3 + [own["events_1d"]]


def test_columns_are_checked_against_the_views_asked_for(gold: tuple[Config, dict[str, list[Row]]]) -> None:
    cfg, _ = gold
    with pytest.raises(ConfigError, match="lacks item_id; it has user_id, event_timestamp"):
        serving.historical_features(
            cfg, pd.DataFrame({"user_id": ["u"], "event_timestamp": [end_of(DAYS[0])]}), service="ranking"
        )
    with pytest.raises(ConfigError, match="Unknown feature service 'nope'"):
        serving.historical_features(
            cfg, pd.DataFrame({"user_id": ["u"], "event_timestamp": [end_of(DAYS[0])]}), service="nope"
        )


def test_the_cli_writes_the_training_set_as_parquet(
    gold: tuple[Config, dict[str, list[Row]]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from medallion.cli.main import run_app
    from tests.conftest import config_dir_of

    cfg, rows = gold
    row = next(r for r in rows["user_features"] if r["events_1d"] is not None)
    entities = tmp_path / "entities.csv"
    pd.DataFrame(
        {"user_id": [row["user_id"]], "event_timestamp": [row["event_timestamp"].isoformat()]}
    ).to_csv(entities, index=False)
    folder = config_dir_of(cfg, tmp_path / "config")
    out = tmp_path / "train.parquet"
    command = ["features", "historical", "--entities", str(entities), "--out", str(out)]
    features = ["--feature", "user_features:events_1d", "--feature", "user_features:revenue_7d"]
    code = run_app(["--config-dir", str(folder), *command, *features])
    assert code == 0
    frame = pd.read_parquet(out)
    assert frame.columns.tolist() == ["user_id", "event_timestamp", "events_1d", "revenue_7d"]
    assert frame["events_1d"].tolist() == [row["events_1d"]]


def test_the_cli_builds_a_services_training_set_point_in_time(
    gold: tuple[Config, dict[str, list[Row]]], tmp_path: Path
) -> None:
    """`features historical --entities rows.parquet --out training.parquet --service user_profile`, as the
    README writes it: every feature of the service's families, each row's values those of the user's newest
    Gold row at or before its event_timestamp (within the TTL), never a later row's."""
    from medallion.cli.main import run_app
    from tests.conftest import config_dir_of

    cfg, rows = gold
    rnd = random.Random(11)
    users = [f"u_{n:06d}" for n in range(12)] + ["u_unknown"]
    span = int((end_of(DAYS[-1]) - end_of(DAYS[0]) + dt.timedelta(days=3)).total_seconds())
    times = [
        end_of(DAYS[0]) - dt.timedelta(days=1) + dt.timedelta(seconds=rnd.randrange(span)) for _ in range(60)
    ]
    times += [end_of(d) - US for d in DAYS] + [end_of(d) for d in DAYS]  # just before a row, and at it
    entities = pd.DataFrame({"user_id": [rnd.choice(users) for _ in times], "event_timestamp": times})
    entities["label"] = range(len(entities))
    rows_file, out = tmp_path / "rows.parquet", tmp_path / "training.parquet"
    entities.to_parquet(rows_file, index=False)
    folder = config_dir_of(cfg, tmp_path / "config")

    command = ["historical", "--entities", str(rows_file), "--out", str(out), "--service", "user_profile"]
    code = run_app(["--config-dir", str(folder), "features", *command])

    assert code == 0
    frame = pd.read_parquet(out)
    features = [f for name in PROFILE.families for f in family(name).feature_names]
    assert frame.columns.tolist() == ["user_id", "event_timestamp", "label", *features]
    assert frame["label"].tolist() == entities["label"].tolist()
    kinds = {"found": 0, "none earlier": 0, "a later row exists": 0}
    assert frame["event_timestamp"].tolist() == [pd.Timestamp(t) for t in times]
    for row in frame.itertuples():
        at = times[row.label]  # the time as given, not as returned
        for name in PROFILE.families:
            want = as_of(rows[name], "user_id", row.user_id, at)
            for feature in family(name).feature_names:
                got = getattr(row, feature)
                assert same(got, None if want is None else want[feature]), (name, feature, row.label)
            kinds["found" if want is not None else "none earlier"] += 1
            later = [r for r in rows[name] if r["user_id"] == row.user_id and r["event_timestamp"] > at]
            kinds["a later row exists"] += bool(later)
    assert all(n > 0 for n in kinds.values()), kinds  # the join had a future to leak, and did not
