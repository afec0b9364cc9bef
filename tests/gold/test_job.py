"""The Gold job on Silver files: point in time, idempotent re-runs, stale feature dates removed, one job
for a backfill, --feature-type names, incremental dates, no PII, and what `status` lists."""

from __future__ import annotations

import datetime as dt
import re
import shutil
from pathlib import Path
from typing import Any

import pyarrow.dataset as ds
import pytest

from medallion.core import catalog, lakefs, stages
from medallion.core.errors import UsageError
from medallion.core.ledger import Ledger
from medallion.features import FAMILIES, family
from medallion.features.user import USER_FEATURES
from medallion.gold import job
from medallion.operations import pipeline, status
from tests.gold import silver_data
from tests.stage_runs import run_job

D = dt.date(2026, 11, 10)
END = dt.datetime(2026, 11, 11, tzinfo=dt.UTC)


def _rows(*events: tuple[str, str, dt.datetime, str]) -> list[dict[str, Any]]:
    g = silver_data.Generator(seed=1)
    for user, session, t, etype in events:
        g.event(user, session, t, etype, "i1" if etype != "search" else None)
    return g.rows


def _dates(cfg: Any, name: str = USER_FEATURES.name) -> list[str]:
    return lakefs.list_partitions(catalog.gold_table(name).path(cfg), catalog.FEATURE_DATE)


def _gold(cfg: Any, name: str, day: dt.date) -> list[dict[str, Any]]:
    path = catalog.gold_table(name).partition_path(cfg, **{catalog.FEATURE_DATE: day.isoformat()})
    if not lakefs.exists(path):
        return []
    rows = ds.dataset(path, format="parquet").to_table().to_pylist()
    key = family(name).entity.join_key
    return sorted(
        ({k: v for k, v in r.items() if k != catalog.CREATED_TIMESTAMP} for r in rows), key=lambda r: r[key]
    )


def test_rerun_is_idempotent_and_a_date_without_activity_loses_its_old_rows(
    spark: Any, make_config: Any, lake: Path
) -> None:
    cfg = make_config()
    ledger = Ledger(str(lake))
    fams = [USER_FEATURES]
    silver_data.write_silver(
        catalog.SILVER.path(cfg), _rows(("u1", "s1", END - dt.timedelta(hours=1), "click"))
    )
    last = D + dt.timedelta(days=31)
    first = run_job(stages.GOLD, job.run, spark, cfg, D, last, run_id="g1", ledger=ledger, families=fams)
    assert _dates(cfg) == [(D + dt.timedelta(days=i)).isoformat() for i in range(30)]
    again = run_job(stages.GOLD, job.run, spark, cfg, D, last, run_id="g2", ledger=ledger, families=fams)
    assert again.output == first.output == 30

    # The event is gone from Silver (only another day's is left): its feature dates must go too.
    shutil.rmtree(catalog.SILVER.path(cfg))
    silver_data.write_silver(
        catalog.SILVER.path(cfg), _rows(("u2", "s2", END + dt.timedelta(days=30), "click"))
    )
    run_job(stages.GOLD, job.run, spark, cfg, D, last, run_id="g3", ledger=ledger, families=fams)
    assert _dates(cfg) == [last.isoformat()]


def test_events_after_the_end_of_d_never_change_ds_rows(spark: Any, make_config: Any, lake: Path) -> None:
    cfg = make_config(**{"gold.embeddings_every_date": True, "gold.embedding_dim": 4})
    ledger = Ledger(str(lake))
    before = [
        ("u1", "s1", END - dt.timedelta(days=7), "page_view"),  # exactly at the 7-day edge
        ("u1", "s1", END - dt.timedelta(days=2), "add_to_cart"),
        ("u1", "s2", END - dt.timedelta(minutes=30), "click"),
        ("u1", "s2", END - dt.timedelta(microseconds=1), "purchase"),  # the last instant of D
        ("u2", "s3", END - dt.timedelta(days=20), "search"),
    ]
    after = [
        ("u1", "s2", END, "purchase"),  # the same session, the first instant of D+1
        ("u1", "s4", END + dt.timedelta(hours=5), "page_view"),
        ("u3", "s5", END + dt.timedelta(hours=23), "click"),  # a new user the day after
        ("u2", "s6", END + dt.timedelta(days=3), "purchase"),
    ]
    silver_data.write_silver(catalog.SILVER.path(cfg), _rows(*before))
    run_job(stages.GOLD, job.run, spark, cfg, D, D, run_id="p1", ledger=ledger)
    snapshot = {f.name: _gold(cfg, f.name, D) for f in FAMILIES}
    assert all(snapshot.values()), [n for n, rows in snapshot.items() if not rows]

    # Later events arrive, some of them late (D+1's events written to Silver days afterwards).
    late = _rows(*before, *after)
    shutil.rmtree(catalog.SILVER.path(cfg))
    silver_data.write_silver(catalog.SILVER.path(cfg), late)
    run_job(stages.GOLD, job.run, spark, cfg, D, D + dt.timedelta(days=3), run_id="p2", ledger=ledger)
    assert {f.name: _gold(cfg, f.name, D) for f in FAMILIES} == snapshot
    assert _gold(cfg, USER_FEATURES.name, D + dt.timedelta(days=1))[0]["purchase_events_1d"] == 1
    edge = {r["user_id"]: r for r in snapshot[USER_FEATURES.name]}["u1"]
    assert (edge["events_7d"], edge["page_view_events_7d"], edge["events_1d"]) == (4, 1, 2)
    assert edge[catalog.EVENT_TIMESTAMP] == END


def test_a_backfill_is_one_read_and_the_same_spark_jobs_for_two_dates_or_twenty(
    spark: Any, make_config: Any, lake: Path
) -> None:
    from medallion.core.lake import read_dates, write_partitions
    from medallion.gold.families import BUILDERS
    from medallion.gold.transforms import GoldInputs, feature_dates

    rows = _rows(*[("u1", f"s{i}", END - dt.timedelta(days=i, hours=1), "click") for i in range(25)])

    def jobs(days: int, whole_run: bool) -> int:
        root = lake / f"backfill-{days}-{whole_run}"  # a lake each, so that no run sees another's Gold
        cfg = make_config(**{"lake.root": str(root)})
        silver_data.write_silver(catalog.SILVER.path(cfg), rows)
        first = D - dt.timedelta(days=days - 1)
        tracker = spark.sparkContext.statusTracker()
        group = f"backfill-{days}-{whole_run}"
        spark.sparkContext.setJobGroup(group, group)
        try:
            if whole_run:
                run_job(
                    stages.GOLD,
                    job.run,
                    spark,
                    cfg,
                    first,
                    D,
                    run_id=group,
                    ledger=Ledger(str(root)),
                    families=[USER_FEATURES],
                )
            else:  # the features themselves: one read of the window, the builder, the write
                silver = read_dates(
                    spark,
                    catalog.SILVER.path(cfg),
                    catalog.EVENT_DATE,
                    first - dt.timedelta(days=29),
                    D,
                    "Silver",
                )
                built = BUILDERS[USER_FEATURES.name](GoldInputs(silver, feature_dates(spark, first, D)))
                write_partitions(built, str(root / "out"), [catalog.FEATURE_DATE])
        finally:
            spark.sparkContext.setLocalProperty("spark.jobGroup.id", None)  # type: ignore[arg-type]
        return len(tracker.getJobIdsForGroup(group))

    assert jobs(2, whole_run=False) == jobs(20, whole_run=False)
    # The whole run adds the governance checks (quality, drift) around it; still no job per date.
    assert jobs(20, whole_run=True) - jobs(2, whole_run=True) < 18


def test_unknown_feature_type_is_a_usage_error_listing_the_known_ones(make_config: Any) -> None:
    known = ", ".join(f.name for f in FAMILIES)
    with pytest.raises(UsageError, match=re.escape(f"unknown feature family 'nope'; known: {known}")):
        pipeline.gold(make_config(), D, D, families=["nope"])
    with pytest.raises(UsageError, match="--incremental"):
        pipeline.gold(make_config(), D, None)


def test_changed_silver_dates_reach_every_feature_date_of_their_window() -> None:
    old = dt.date(2020, 1, 1)
    assert pipeline.gold_dates_to_rebuild([old]) == [old + dt.timedelta(days=i) for i in range(30)]
    two = pipeline.gold_dates_to_rebuild([old, old + dt.timedelta(days=100)])
    assert len(two) == 60 and old + dt.timedelta(days=50) not in two  # two windows, not the span between
    today = dt.datetime.now(dt.UTC).date()
    assert pipeline.gold_dates_to_rebuild([today - dt.timedelta(days=2), today]) == [
        today - dt.timedelta(days=2),
        today - dt.timedelta(days=1),
        today,
    ]


def test_incremental_gold_consumes_what_silver_changed_whatever_explicit_runs_came_between(
    spark: Any, make_config: Any, lake: Path
) -> None:
    cfg = make_config()
    ledger = Ledger(str(lake))
    fams = [USER_FEATURES.name]
    today = dt.datetime.now(dt.UTC).date()
    day = today - dt.timedelta(days=2)
    fed = [day.isoformat(), (day + dt.timedelta(days=1)).isoformat(), today.isoformat()]
    t = dt.datetime.combine(day, dt.time(10), dt.UTC)
    silver_data.write_silver(catalog.SILVER.path(cfg), _rows(("u1", "s1", t, "click")))
    assert job.silver_changes(cfg, ledger).dates == [day]  # never consumed: every date Silver holds
    with ledger.run("silver", dates=day.isoformat()):
        pass
    assert pipeline.gold(cfg, families=fams, incremental=True).dates == fed
    assert job.silver_changes(cfg, ledger, [USER_FEATURES]).dates == []  # consumed
    assert job.silver_changes(cfg, ledger).dates == [day]  # each family has its own mark

    # Silver rebuilds the date (a late event), then an operator backfills an unrelated old date: the
    # explicit runs, of one family or all, consume nothing.
    with ledger.run("silver", dates=day.isoformat()):
        pass
    old = dt.date(2026, 1, 1)
    assert pipeline.gold(cfg, old, old, families=fams).dates == [old.isoformat()]
    with ledger.run("gold", start_date=old, end_date=old, families=",".join(f.name for f in FAMILIES)):
        pass  # the record an explicit run of every family leaves
    assert pipeline.gold(cfg, families=fams, incremental=True).dates == fed

    # An incremental run cut short by --end-date keeps the mark: the rest is still to do.
    with ledger.run("silver", dates=day.isoformat()):
        pass
    assert pipeline.gold(cfg, None, day, families=fams, incremental=True).dates == [day.isoformat()]
    assert job.silver_changes(cfg, ledger, [USER_FEATURES]).dates == [day]


def test_the_dates_to_rebuild_span_the_embeddings_configured_window(make_config: Any) -> None:
    cfg = make_config(**{"gold.embedding_window_days": 60})
    old = dt.date(2020, 1, 1)
    assert len(pipeline.gold_dates_to_rebuild([old], job.read_window_days(cfg, FAMILIES))) == 60
    assert len(pipeline.gold_dates_to_rebuild([old], job.read_window_days(cfg, [USER_FEATURES]))) == 30


@pytest.fixture(scope="module")
def all_families(spark: Any, tmp_path_factory: Any) -> tuple[Any, Any]:
    from medallion.core.config import load_config
    from tests.conftest import CONFIG_DIR

    lake = tmp_path_factory.mktemp("families") / "lake"
    cfg = load_config("local", CONFIG_DIR, {"lake.root": str(lake), "gold.embedding_dim": 8}, environ={})
    silver_data.write_silver(catalog.SILVER.path(cfg), silver_data.generate(seed=3))
    last = silver_data.FIRST_DAY + dt.timedelta(days=silver_data.DAYS - 1)
    result = run_job(
        stages.GOLD,
        job.run,
        spark,
        cfg,
        last - dt.timedelta(days=2),
        last,
        run_id="all",
        ledger=Ledger(str(lake)),
    )
    return cfg, result


PII = {
    "email": re.compile(r"[\w.+-]+@[\w-]+\.[\w.]+"),
    "phone": re.compile(r"\+\d{7,15}\b|(?<![\d-])\(?\d{3}\)?[ .-]?\d{3}[ .-]?\d{4}(?![\d-])"),
    "ipv4": re.compile(r"\b\d{1,3}(?:\.\d{1,3}){3}\b"),
    "ipv6": re.compile(r"\b[0-9a-f]{1,4}(?::[0-9a-f]{0,4}){2,7}\b", re.I),
    "hex digest": re.compile(r"\b[0-9a-f]{32,}\b"),
}
PII_COLUMNS = re.compile(
    r"(^|_)(hmac|email|phone|ip|prefix|name|geo|lat|lon|city|agent|referrer|url)(_|$)|^page$", re.I
)


def test_gold_carries_no_pii_in_any_column(all_families: tuple[Any, Any]) -> None:
    cfg, _ = all_families
    for fam in FAMILIES:
        table = ds.dataset(
            catalog.gold_table(fam.name).path(cfg), format="parquet", partitioning="hive"
        ).to_table()
        assert table.num_rows > 0, fam.name
        assert [c for c in table.column_names if PII_COLUMNS.search(c)] == [], fam.name
        for name in table.column_names:
            for value in table.column(name).to_pylist():
                if isinstance(value, str):
                    assert [k for k, p in PII.items() if p.search(value)] == [], (fam.name, name, value)


def test_the_family_tables_are_what_status_lists(all_families: tuple[Any, Any]) -> None:
    cfg, result = all_families
    now = dt.datetime.now(dt.UTC)
    listed = {t.name: status.table_status(cfg, t, now) for t in catalog.CATALOG.tables() if t.layer == "gold"}
    assert set(listed) == {f"gold.{f.name}" for f in FAMILIES}
    assert sum(t.rows for t in listed.values()) == result.output > 0
    embeddings = {f.name for f in FAMILIES if f.features[0].dtype == "float_array"}
    for name, t in listed.items():
        assert t.partitions == (1 if name.removeprefix("gold.") in embeddings else 3), name
