"""Feature quality on planted faults: every check finds its rows, the shipped thresholds load, a user's
file replaces them and a bad one is a config error naming the file; `validate_gold` reads the lake."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from medallion import catalog
from medallion.errors import ConfigError
from medallion.features import FAMILIES
from medallion.features.temporal import TEMPORAL_FEATURES
from medallion.governance import quality
from tests.governance.frames import gold_frame

FAM = TEMPORAL_FEATURES
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


def _frame(spark: Any, rows: list[dict[str, Any]]) -> Any:
    return gold_frame(spark, FAM, rows)


def test_every_check_finds_its_planted_rows(spark: Any) -> None:
    rows = _rows()
    thresholds = quality.load_thresholds(FAM)
    active = {D - dt.timedelta(days=1): 40, D: 80}  # the second date has half its active users
    now = dt.datetime.combine(D + dt.timedelta(days=2), dt.time(), dt.UTC)
    report = quality.check(
        _frame(spark, rows), thresholds, run_id="r", stage="gold", dates=[D - dt.timedelta(days=1), D],
        active=active, now=now,
    )  # fmt: skip
    by = {r.name: r for r in report.results}
    assert (by["non_finite:night_share_30d"].failed, by["non_finite:night_share_30d"].status) == (2, "FAIL")
    assert (
        by["range:weekend_share_30d"].failed == 1 and by["range:night_share_30d"].failed == 0
    )  # NaN, ∞ not ranged
    assert by["null_rate:morning_share_30d"].status == "FAIL"
    assert by["null_rate:events_per_active_day_7d"].passed
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
    # rows failing a fail check by themselves: the NaN, the ∞, the 1.5 and the null share
    assert report.rows_passing == len(rows) - 4
    assert report.table == catalog.gold_table(FAM.name).name


def test_shipped_thresholds_load_for_every_family_and_a_user_file_replaces_them(tmp_path: Path) -> None:
    for fam in FAMILIES:
        assert quality.load_thresholds(fam).source.endswith(f"thresholds/{fam.name}.yaml")
    own = tmp_path / f"gold.{FAM.name}.features.yaml"
    own.write_text("features:\n  hour_entropy_30d: {constant: {action: fail}, range: {max: 1}}\n")
    loaded = quality.load_thresholds(FAM, str(tmp_path))
    assert loaded.source == str(own)
    entropy = next(t for t in loaded.features if t.feature.name == "hour_entropy_30d")
    assert (entropy.constant_action, entropy.max, entropy.min) == ("fail", 1.0, None)
    own.write_text("features:\n  no_such_feature: {range: {max: 1}}\n")
    with pytest.raises(ConfigError, match=rf"{own}.*no_such_feature is not a feature of {FAM.name}"):
        quality.load_thresholds(FAM, str(tmp_path))
    own.write_text("features:\n  night_share_30d: {range: {max: 1, action: drop}}\n")
    with pytest.raises(ConfigError, match="can only warn or fail"):
        quality.load_thresholds(FAM, str(tmp_path))


def test_validate_gold_checks_what_the_lake_holds(spark: Any, make_config: Any) -> None:
    cfg = make_config()
    df = _frame(spark, _rows())
    df.write.partitionBy(catalog.FEATURE_DATE).parquet(catalog.gold_table(FAM.name).path(cfg))
    (report,) = quality.validate_gold(spark, cfg, D, D, run_id="v1")
    assert report.stage == "validate" and report.dates == [D.isoformat()]
    by = {r.name: r for r in report.results}
    assert by["unique_key"].failed == 0  # the duplicate is on the other date
    assert by["range:weekend_share_30d"].failed == 0 and report.rows == 40
    assert "row_count" not in by  # no Silver in the lake: no active entities to compare with
