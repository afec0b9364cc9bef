"""Gold → online store with real Feast, into real SQLite and real Redis, read back with online_features."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from medallion import serving
from medallion.config import Config
from tests.serving.conftest import FEATURES, end_of, gold_rows, latest_rows, today, write_gold

pytestmark = pytest.mark.usefixtures("feast_imported")

STORES = ["sqlite", pytest.param("redis", marks=pytest.mark.integration)]


@pytest.fixture(scope="module")
def gold(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict[str, Any]]]:
    """Gold for the last six days and today (partial: its event_timestamp is tonight's midnight) for 60
    users, each present on ~70% of days, INT96 and micros files mixed."""
    lake = tmp_path_factory.mktemp("lake")
    rows = gold_rows([today() - dt.timedelta(days=k) for k in range(6, -1, -1)], users=60)
    write_gold(lake, rows, encoding="mixed")
    return lake, rows


@pytest.fixture
def store_config(
    request: pytest.FixtureRequest, tmp_path: Path, serving_config: Callable[..., Config]
) -> Callable[[Path, str], Config]:
    """``store_config(lake, "sqlite"|"redis")``: a config with this test's own registry and online store."""

    def make(lake: Path, online_store: str) -> Config:
        overrides: dict[str, Any] = {
            "serving.registry_path": str(tmp_path / "registry.db"),
            "serving.sqlite_path": str(tmp_path / "online.db"),
            "serving.online_store": online_store,
        }
        if online_store == "redis":
            server = request.getfixturevalue("redis_server")
            overrides["serving.redis_url"] = server.url(request.getfixturevalue("redis_db"))
        return serving_config(lake, **overrides)

    return make


def expected(row: dict[str, Any]) -> dict[str, Any]:
    return {name: row[name] for name in FEATURES}


@pytest.mark.parametrize("online_store", STORES)
def test_materialize_serves_each_users_latest_gold_row(
    online_store: str,
    gold: tuple[Path, list[dict[str, Any]]],
    store_config: Callable[[Path, str], Config],
    request: pytest.FixtureRequest,
) -> None:
    lake, rows = gold
    cfg = store_config(lake, online_store)
    latest = latest_rows(rows)
    newest = max(r["event_timestamp"] for r in rows)
    # The test means something only if some users' latest row is not on the newest day.
    assert any(r["event_timestamp"] < newest for r in latest.values())

    result = serving.materialize(cfg)

    assert result.feature_views == ["user_activity"]
    assert result.rows == result.entities == len(latest)
    assert result.online_store.startswith(online_store)
    sample = sorted(latest)[::5]
    online = serving.online_features(cfg, [*sample, "user_never_seen"])
    assert {user: online[user] for user in sample} == {user: expected(latest[user]) for user in sample}
    assert online["user_never_seen"] == dict.fromkeys(FEATURES)
    some = serving.online_features(cfg, sample[:2], features=["events_7d", "user_activity:revenue_1d"])
    assert some == {
        u: {"events_7d": latest[u]["events_7d"], "revenue_1d": latest[u]["revenue_1d"]} for u in sample[:2]
    }
    if online_store == "redis":  # and it is in the test's own database
        assert request.getfixturevalue("redis_server").client(
            request.getfixturevalue("redis_db")
        ).dbsize() == len(latest)


@pytest.mark.parametrize("online_store", STORES)
def test_incremental_materialize_picks_up_new_partitions(
    online_store: str, tmp_path: Path, store_config: Callable[[Path, str], Config]
) -> None:
    lake = tmp_path / "lake"
    days = [today() - dt.timedelta(days=k) for k in range(6, 0, -1)]
    first, later = gold_rows(days[:4], users=30, seed=1), gold_rows(days[4:], users=30, seed=2)
    cfg = store_config(lake, online_store)

    write_gold(lake, first)
    one = serving.materialize(cfg, end=end_of(days[3]))
    write_gold(lake, later)
    two = serving.materialize(cfg, end=end_of(days[5]))

    assert one.rows == len(latest_rows(first))
    assert two.start == one.end  # the second window starts where the first ended
    # Only the window's rows are loaded: the new days, and the first run's last day at its closed start.
    in_window = [r for r in first + later if one.end <= r["event_timestamp"] <= two.end]
    assert two.rows == len({r["user_id"] for r in in_window}) < len(latest_rows(first + later))
    latest = latest_rows(first + later)
    assert serving.online_features(cfg, sorted(latest)) == {u: expected(r) for u, r in latest.items()}


@pytest.mark.parametrize("online_store", STORES)
def test_rerun_of_todays_gold_is_picked_up_by_the_next_incremental_run(
    online_store: str, tmp_path: Path, store_config: Callable[[Path, str], Config]
) -> None:
    lake = tmp_path / "lake"
    days = [today() - dt.timedelta(days=1), today()]
    rows = gold_rows(days, users=20, presence=1.0)
    cfg = store_config(lake, online_store)
    write_gold(lake, rows)
    serving.materialize(cfg)  # ends tonight: today's partial row is served

    rerun = [
        {
            **r,
            "events_1d": r["events_1d"] + 1,
            "created_timestamp": r["created_timestamp"] + dt.timedelta(hours=1),
        }
        for r in rows
        if r["feature_date"] == days[-1]
    ]
    write_gold(lake, rerun)  # the Gold job ran again later today
    again = serving.materialize(cfg)

    assert again.rows == len(rerun)
    online = serving.online_features(cfg, [r["user_id"] for r in rerun], features=["events_1d"])
    assert online == {r["user_id"]: {"events_1d": r["events_1d"]} for r in rerun}


@pytest.mark.parametrize("online_store", STORES)
def test_rerun_of_a_past_date_reaches_the_online_store_with_explicit_start(
    online_store: str, tmp_path: Path, store_config: Callable[[Path, str], Config]
) -> None:
    """A Gold re-run rewrites a date with the same event_timestamp: Redis must take it like SQLite does."""
    lake = tmp_path / "lake"
    days = [today() - dt.timedelta(days=k) for k in range(3, 0, -1)]
    rows = gold_rows(days, users=20, presence=1.0)
    cfg = store_config(lake, online_store)
    write_gold(lake, rows)
    serving.materialize(cfg)

    rerun = [
        {
            **r,
            "events_1d": r["events_1d"] + 1,
            "created_timestamp": r["created_timestamp"] + dt.timedelta(days=1),
        }
        for r in rows
        if r["feature_date"] == days[-1]
    ]
    write_gold(lake, rerun)
    assert serving.materialize(cfg).rows == 0  # behind the incremental window: why --start exists
    serving.materialize(cfg, start=end_of(days[-1]) - dt.timedelta(hours=1))

    online = serving.online_features(cfg, [r["user_id"] for r in rerun], features=["events_1d"])
    assert online == {r["user_id"]: {"events_1d": r["events_1d"]} for r in rerun}


def test_lookback_picks_up_gold_that_landed_after_the_last_run(
    tmp_path: Path, store_config: Callable[[Path, str], Config]
) -> None:
    lake = tmp_path / "lake"
    days = [today() - dt.timedelta(days=k) for k in range(4, 0, -1)]
    cfg = store_config(lake, "sqlite")
    write_gold(lake, gold_rows(days[:3], users=20, seed=3))
    serving.materialize(cfg)  # yesterday's Gold is not written yet
    late = gold_rows(days[3:], users=20, seed=4)
    write_gold(lake, late)

    assert serving.materialize(cfg).rows == 0  # plain incremental: its event_timestamp is behind the window
    assert serving.materialize(cfg, lookback=dt.timedelta(days=1)).rows == len(late)
    user = late[0]["user_id"]
    assert serving.online_features(cfg, [user])[user] == expected(late[0])


def test_apply_is_idempotent_and_writes_nothing_when_unchanged(
    gold: tuple[Path, list[dict[str, Any]]], store_config: Callable[[Path, str], Config], tmp_path: Path
) -> None:
    cfg = store_config(gold[0], "sqlite")
    assert serving.apply(cfg) == ["entity:user", "feature_view:user_activity"]
    registry = tmp_path / "registry.db"
    before = registry.read_bytes()
    assert serving.apply(cfg) == ["entity:user", "feature_view:user_activity"]
    assert registry.read_bytes() == before
    serving.materialize(cfg)
    intervals = serving.feature_store(cfg).get_feature_view("user_activity").materialization_intervals
    changed = store_config(gold[0], "sqlite").model_copy(
        update={"serving": cfg.serving.model_copy(update={"ttl_days": 7})}
    )
    serving.apply(changed)  # a changed definition is re-registered, its materialization history kept
    view = serving.feature_store(changed).get_feature_view("user_activity")
    assert view.ttl == dt.timedelta(days=7)
    assert view.materialization_intervals == intervals


def test_materialize_without_gold_says_what_to_run(
    tmp_path: Path, store_config: Callable[[Path, str], Config]
) -> None:
    from medallion.errors import TerminalError

    with pytest.raises(TerminalError, match=r"no Gold data: .*user_activity.*medallion gold"):
        serving.materialize(store_config(tmp_path / "empty-lake", "sqlite"))
