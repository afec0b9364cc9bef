"""Gold → online store for every family, into real SQLite and real Redis, read back through Feast's SDK.

Our Redis writer must leave exactly what Feast's writer leaves (byte for byte), Feast's SDK must read
each entity's newest Gold row back (every family, every feature, arrays included), and our reader must
answer what Feast's SDK answers for the same keys.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from medallion import serving
from medallion.core.config import Config
from medallion.core.errors import MedallionError, UsageError
from medallion.features import FAMILIES
from medallion.serving import codec, redis_writer
from tests.serving.families_gold import (
    Row,
    entity_id,
    family_rows,
    latest,
    served,
    write_all,
    write_family,
)

pytestmark = pytest.mark.usefixtures("feast_imported")

STORES = ["sqlite", pytest.param("redis", marks=pytest.mark.integration)]
ENTITIES = 40


def today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


def days(first: int, last: int) -> list[dt.date]:
    """today - first .. today - last, oldest first."""
    return [today() - dt.timedelta(days=k) for k in range(first, last - 1, -1)]


def feast_online(cfg: Config, view: str, key: str, ids: list[str]) -> dict[str, dict[str, Any]]:
    """Feast's SDK answer for one view: ``{entity: {feature: value}}``."""
    fam = next(f for f in FAMILIES if f.name == view)
    store = serving.feature_store(cfg)
    columns = store.get_online_features(
        features=[f"{view}:{n}" for n in fam.feature_names], entity_rows=[{key: i} for i in ids]
    ).to_dict()
    return {i: {n: columns[n][k] for n in fam.feature_names} for k, i in enumerate(ids)}


def expected(row: Row | None, names: tuple[str, ...]) -> dict[str, Any]:
    return {n: None if row is None else served(row[n]) for n in names}


def assert_serves_latest(cfg: Config, rows: dict[str, list[Row]], sample_every: int = 3) -> None:
    for fam in FAMILIES:
        key = fam.entity.join_key
        newest = latest(rows[fam.name], key)
        ids = sorted(newest)[::sample_every] + [entity_id(fam, 99_999)]
        got = feast_online(cfg, fam.name, key, ids)
        assert got == {i: expected(newest.get(i), fam.feature_names) for i in ids}, fam.name
        for i in ids[:-1]:  # types too: Feast's SDK gives ints for int64, lists of floats for arrays
            for feature in fam.features:
                value = got[i][feature.name]
                if value is not None:
                    kind = {"int64": int, "float64": float, "string": str, "bool": bool, "float_array": list}
                    assert type(value) is kind[feature.dtype], (fam.name, feature.name, value)


@pytest.fixture(scope="module")
def gold(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, list[Row]]]:
    """Gold of every family for the last six days and today (partial, stamped tonight) for 40 entities
    each, present on ~70% of the days: some entities' newest row is days old."""
    lake = tmp_path_factory.mktemp("lake")
    return lake, write_all(lake, days(6, 0), ENTITIES)


@pytest.mark.integration
def test_a_write_redis_refuses_is_named_and_the_other_rows_land(
    gold: tuple[Path, dict[str, list[Row]]],
    store_config: Callable[..., Config],
    redis_db: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from medallion.features.user import USER_FEATURES

    monkeypatch.setattr(redis_writer, "BATCH_ROWS", 7)
    lake, rows = gold
    cfg = store_config(lake, "redis")
    client = redis_db.server.client(redis_db)
    users = sorted({r["user_id"] for r in rows[USER_FEATURES.name]})
    blocked = codec.entity_key("user_id", users[3], cfg.serving.project)
    client.set(blocked, b"not a hash")  # HSET on it: WRONGTYPE

    # The first batch: 7 rows, an HSET and an EXPIRE each; Redis runs every command but the one.
    with pytest.raises(MedallionError, match=r"refused 1 of 14 writes \(first: WRONGTYPE"):
        serving.materialize(cfg, feature_views=[USER_FEATURES.name], attempts=1)
    batch = [codec.entity_key("user_id", u, cfg.serving.project) for u in users[:7] if u != users[3]]
    assert [client.type(k) for k in batch] == [b"hash"] * 6
    assert client.get(blocked) == b"not a hash"


@pytest.mark.parametrize("online_store", STORES)
def test_materialize_serves_each_entitys_newest_row_of_every_family(
    online_store: str, gold: tuple[Path, dict[str, list[Row]]], store_config: Callable[..., Config]
) -> None:
    lake, rows = gold
    cfg = store_config(lake, online_store)
    newest_day = max(r["event_timestamp"] for r in rows["user_features"])
    assert any(r["event_timestamp"] < newest_day for r in latest(rows["user_features"], "user_id").values())

    result = serving.materialize(cfg)

    assert result.feature_views == [f.name for f in FAMILIES]
    assert result.mode == "incremental" and result.online_store.startswith(online_store)
    assert result.rows == sum(len(latest(rows[f.name], f.entity.join_key)) for f in FAMILIES)
    assert_serves_latest(cfg, rows)


@pytest.mark.parametrize("online_store", STORES)
def test_our_reader_answers_what_feasts_sdk_answers(
    online_store: str, gold: tuple[Path, dict[str, list[Row]]], store_config: Callable[..., Config]
) -> None:
    lake, _ = gold
    cfg = store_config(lake, online_store)
    serving.materialize(cfg)
    store = serving.feature_store(cfg)
    reader = serving.OnlineReader(cfg)
    users = [f"u_{n:06d}" for n in range(0, ENTITIES + 5, 2)] + ["u_000000"]  # unknown and repeated too
    items = [f"i_{n:06d}" for n in range(len(users))]
    try:
        for service in ("ranking", "user_profile", "embeddings"):
            rows = [{"user_id": u, "item_id": i} for u, i in zip(users, items, strict=True)]
            theirs = store.get_online_features(
                features=store.get_feature_service(service), entity_rows=rows
            ).to_dict()
            ours = reader.online_dict({"user_id": users, "item_id": items}, feature_service=service)
            assert ours == theirs, service
        refs = ["item_features:item_ctr_7d", "user_features:events_7d", "user_embeddings:user_vector"]
        theirs = store.get_online_features(
            features=refs,
            entity_rows=[{"user_id": u, "item_id": i} for u, i in zip(users, items, strict=True)],
        ).to_dict()
        assert reader.online_dict({"user_id": users, "item_id": items}, refs) == theirs
    finally:
        reader.close()


@pytest.mark.integration
def test_the_reader_answers_alike_from_sqlite_and_redis(
    gold: tuple[Path, dict[str, list[Row]]], store_config: Callable[..., Config]
) -> None:
    """Event times included: SQLite keeps them as Feast's writer does (whole seconds, local-time epoch)."""
    lake, _ = gold
    answers = []
    for online_store in ("sqlite", "redis"):
        cfg = store_config(lake, online_store)
        serving.materialize(cfg)
        reader = serving.OnlineReader(cfg)
        try:
            users = ["u_000001", "u_000003", "u_nope", "u_000001"]
            answers.append(
                [
                    reader.get_online_features(
                        {"user_id": users, "item_id": [f"i_{n:06d}" for n in range(4)]},
                        feature_service=service,
                        full_feature_names=True,
                    )
                    for service in ("ranking", "user_profile", "embeddings")
                ]
            )
        finally:
            reader.close()
    assert answers[0] == answers[1]
    stamps = answers[0][0]["results"][-1]["event_timestamps"]
    assert stamps[2] == "1970-01-01T00:00:00Z" and stamps[0].endswith("T00:00:00Z")


@pytest.mark.integration
@pytest.mark.parametrize("batch_rows", [redis_writer.BATCH_ROWS, 7])  # one batch a view, or many
def test_our_redis_writer_leaves_the_bytes_feasts_writer_leaves(
    gold: tuple[Path, dict[str, list[Row]]],
    store_config: Callable[..., Config],
    redis_db: Any,
    batch_rows: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(redis_writer, "BATCH_ROWS", batch_rows)
    lake, _ = gold
    cfg = store_config(lake, "redis", **{"serving.redis_key_ttl_days": 3})
    client = redis_db.server.client(redis_db)

    def dump() -> dict[bytes, tuple[dict[bytes, bytes], int]]:
        return {k: (client.hgetall(k), client.ttl(k)) for k in client.scan_iter(count=1000)}

    ours = serving.materialize(cfg)
    written = dump()
    client.flushdb()
    with serving.store.quiet_feast():
        serving.feature_store(cfg).materialize(start_date=ours.start, end_date=ours.end)
    by_feast = dump()

    assert len(written) == ours.entities > 0
    assert {k: h for k, (h, _) in written.items()} == {k: h for k, (h, _) in by_feast.items()}
    assert {ttl for _, ttl in written.values()} <= set(range(3 * 86_400 - 5, 3 * 86_400 + 1))
    assert {ttl for _, ttl in by_feast.values()} <= set(range(3 * 86_400 - 30, 3 * 86_400 + 1))


@pytest.mark.parametrize("online_store", STORES)
def test_incremental_runs_write_what_changed_including_a_rerun_of_a_past_date(
    online_store: str, tmp_path: Path, store_config: Callable[..., Config]
) -> None:
    lake = tmp_path / "lake"
    cfg = store_config(lake, online_store)
    rows = write_all(lake, days(4, 1), 30, presence=0.6)
    first = serving.materialize(cfg)
    assert first.rows == sum(len(latest(rows[f.name], f.entity.join_key)) for f in FAMILIES)

    again = serving.materialize(cfg)  # nothing changed in Gold: nothing to write
    assert (again.rows, again.mode, again.start) == (0, "incremental", first.end)

    # Late events: the Gold job re-runs D-3 for user_features (new values, a newer created_timestamp),
    # and today's partition of item_features lands.
    users = next(f for f in FAMILIES if f.name == "user_features")
    items = next(f for f in FAMILIES if f.name == "item_features")
    rerun_day = today() - dt.timedelta(days=3)
    rerun = family_rows(users, [rerun_day], 30, seed=99, presence=0.8, version=1)
    write_family(lake, users, rerun)
    rows["user_features"] = [r for r in rows["user_features"] if r["feature_date"] != rerun_day] + rerun
    new_day = family_rows(items, [today()], 30, seed=5, presence=0.5)
    write_family(lake, items, new_day)
    rows["item_features"] += new_day

    third = serving.materialize(cfg)

    newest_users = latest(rows["user_features"], "user_id")
    changed = sum(1 for r in newest_users.values() if r["feature_date"] == rerun_day)
    assert 0 < changed < len(newest_users)  # the re-run date is the newest row of some users only
    assert third.rows == changed + len(new_day)
    assert_serves_latest(cfg, rows, sample_every=1)
    view = serving.feature_store(cfg).get_feature_view("user_features")
    assert view.materialization_intervals[-1][1] == third.end  # Feast's registry knows the window


@pytest.mark.parametrize("online_store", STORES)
def test_an_entity_that_leaves_a_rewritten_partition_gets_its_older_row_back(
    online_store: str, tmp_path: Path, store_config: Callable[..., Config]
) -> None:
    lake = tmp_path / "lake"
    cfg = store_config(lake, online_store)
    rows = write_all(lake, days(2, 1), 12, presence=1.0)
    serving.materialize(cfg)

    # Gold re-runs yesterday without five users (their events were late-corrected away): their newest
    # row is now the day before, and the online store must say so, not keep yesterday's.
    users = next(f for f in FAMILIES if f.name == "user_features")
    yesterday = today() - dt.timedelta(days=1)
    leavers = {entity_id(users, n) for n in range(5)}
    kept = [
        r for r in rows["user_features"] if r["feature_date"] == yesterday and r["user_id"] not in leavers
    ]
    write_family(lake, users, kept)
    rows["user_features"] = [r for r in rows["user_features"] if r["feature_date"] != yesterday] + kept

    again = serving.materialize(cfg)

    assert again.rows == len(kept) + len(leavers)
    newest = latest(rows["user_features"], "user_id")
    assert {u for u, r in newest.items() if r["feature_date"] != yesterday} == leavers
    assert_serves_latest(cfg, rows, sample_every=1)
    assert serving.materialize(cfg).rows == 0  # and then nothing is left to write


@pytest.mark.parametrize("online_store", STORES)
def test_full_rebuild_and_a_chosen_feature_view(
    online_store: str, tmp_path: Path, store_config: Callable[..., Config]
) -> None:
    lake = tmp_path / "lake"
    cfg = store_config(lake, online_store)
    rows = write_all(lake, days(2, 1), 12, presence=1.0)

    one = serving.materialize(cfg, feature_views=["item_features"])
    assert one.feature_views == ["item_features"] and one.rows == 12
    rest = serving.materialize(cfg)
    assert rest.rows == 12 * (len(FAMILIES) - 1)  # item_features was already done
    full = serving.materialize(cfg, full=True, feature_views=["user_features", "item_features"])
    assert (full.mode, full.rows) == ("full", 24)
    assert_serves_latest(cfg, rows, sample_every=1)
    with pytest.raises(UsageError, match="Unknown feature view nope; the feature views are: user_features"):
        serving.materialize(cfg, feature_views=["nope"])


def test_apply_registers_views_and_services_once(
    gold: tuple[Path, dict[str, list[Row]]], store_config: Callable[..., Config], tmp_path: Path
) -> None:
    cfg = store_config(gold[0], "sqlite")
    names = serving.apply(cfg)
    assert names == [
        "entity:user",
        "entity:item",
        *(f"feature_view:{f.name}" for f in FAMILIES),
        "feature_service:ranking",
        "feature_service:user_profile",
        "feature_service:embeddings",
    ]
    registry = tmp_path / "registry.db"
    before = registry.read_bytes()
    assert serving.apply(cfg) == names
    assert registry.read_bytes() == before
    store = serving.feature_store(cfg)
    ranking = store.get_feature_service("ranking")
    assert [p.name for p in ranking.feature_view_projections] == [
        "user_features",
        "item_features",
        "session_features",
    ]
    view = store.get_feature_view("user_features")
    declared = FAMILIES[0]
    assert (view.owner, view.tags["entity"], view.description) == (
        declared.owner,
        "user",
        declared.description,
    )
    assert [f.name for f in view.features] == list(declared.feature_names)
    embeddings = store.get_feature_view("item_embeddings")
    assert str(embeddings.features[0].dtype) == "Array(Float64)"


def test_materialize_without_gold_says_what_to_run(
    tmp_path: Path, store_config: Callable[..., Config]
) -> None:
    from medallion.core.errors import TerminalError

    with pytest.raises(TerminalError, match=r"no Gold data: .*user_features.*medallion gold"):
        serving.materialize(store_config(tmp_path / "empty-lake", "sqlite"))
