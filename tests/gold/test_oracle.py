"""Every Gold family except the embeddings, recomputed by an independent plain-Python oracle on a
generated Silver of a few thousand events over 40 days, must agree exactly (floats to 1e-9 relative)."""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import pyarrow as pa
import pyarrow.dataset as ds
import pytest

from medallion.core import catalog, stages
from medallion.core.ledger import Ledger
from medallion.features import family
from medallion.gold import job
from tests.gold import oracle, silver_data
from tests.stage_runs import run_job

FIRST = silver_data.FIRST_DAY
DATES = [FIRST + dt.timedelta(days=i) for i in range(silver_data.DAYS + 3)]  # and 3 days after the last event


def read_gold(path: str) -> list[dict[str, Any]]:
    partitioning = ds.partitioning(pa.schema([(catalog.FEATURE_DATE, pa.date32())]), flavor="hive")
    return ds.dataset(path, format="parquet", partitioning=partitioning).to_table().to_pylist()


def same(got: Any, want: Any) -> bool:
    if isinstance(want, float) and isinstance(got, float):
        return math.isclose(got, want, rel_tol=1e-9, abs_tol=0.0) or (got == 0.0 and want == 0.0)
    return bool(got == want) and type(got) is type(want)


@pytest.fixture(scope="module")
def silver_rows() -> list[dict[str, Any]]:
    return silver_data.generate(seed=7)


@pytest.fixture(scope="module")
def gold(spark: Any, silver_rows: Any, tmp_path_factory: Any) -> Any:
    from medallion.core.config import load_config
    from tests.conftest import CONFIG_DIR

    lake = tmp_path_factory.mktemp("oracle") / "lake"
    cfg = load_config("local", CONFIG_DIR, {"lake.root": str(lake)}, environ={})
    silver_data.write_silver(catalog.SILVER.path(cfg), silver_rows)
    families = [family(name) for name in oracle.FAMILIES]
    run_job(
        stages.GOLD,
        job.run,
        spark,
        cfg,
        DATES[0],
        DATES[-1],
        run_id="oracle",
        ledger=Ledger(str(lake)),
        families=families,
    )
    return cfg


def test_the_generated_silver_varies_what_the_producer_never_does(silver_rows: Any) -> None:
    days = {r["event_time"].date() for r in silver_rows}
    assert 2_000 <= len(silver_rows) <= 10_000
    assert len([d for d in DATES[:40] if d not in days]) >= 2  # empty days
    users = {r["user_id"] for r in silver_rows}
    assert any(sum(1 for r in silver_rows if r["user_id"] == u) == 1 for u in users)
    assert any(r["event_type"] == "purchase" and r["amount_usd"] is None for r in silver_rows)
    by_session: dict[str, set[dt.date]] = {}
    for r in silver_rows:
        by_session.setdefault(r["session_id"], set()).add(r["event_time"].date())
    assert any(len(d) > 1 for d in by_session.values())  # sessions crossing midnight


@pytest.mark.parametrize("name", list(oracle.FAMILIES))
def test_gold_equals_the_oracle(gold: Any, silver_rows: Any, name: str) -> None:
    fam = family(name)
    key = fam.entity.join_key
    got = {(r[key], r[catalog.FEATURE_DATE]): r for r in read_gold(catalog.gold_table(name).path(gold))}
    want = oracle.FAMILIES[name](silver_rows, DATES)
    assert set(got) == set(want)
    mismatches = [
        (k, f, got[k][f], want[k][f])
        for k in sorted(want)
        for f in fam.feature_names
        if not same(got[k][f], want[k][f])
    ]
    assert mismatches == [], mismatches[:10]
    # every feature takes more than one value somewhere: a constant column would prove nothing
    assert [f for f in fam.feature_names if len({repr(v[f]) for v in want.values()}) < 2] == []


def test_gold_is_stamped_with_the_end_of_its_feature_date(gold: Any) -> None:
    for name in oracle.FAMILIES:
        for r in read_gold(catalog.gold_table(name).path(gold)):
            assert r[catalog.EVENT_TIMESTAMP] == oracle.end_of(r[catalog.FEATURE_DATE])
