"""Drift in Spark on generated Gold rows: the same numbers as the definitions (and scipy's KS), an alert for
a shifted feature and none for the unshifted ones; stored, read back by `status`, raised by `alerts`."""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

import pytest
from scipy import stats

from medallion.core import catalog
from medallion.core.config import DriftConfig
from medallion.features.temporal import TEMPORAL_FEATURES
from medallion.governance import drift, drift_spark
from medallion.operations import alerts
from medallion.operations.status import Status, drift_status
from tests.governance.frames import gold_frame

D = dt.date(2026, 11, 20)
FAM = TEMPORAL_FEATURES
SHIFTED, CATEGORY_SHIFTED = "hour_entropy_30d", "preferred_period_30d"
PERIODS = ("night", "morning", "afternoon", "evening")


def _rows(seed: int, *, shift: bool) -> list[dict[str, Any]]:
    rnd = random.Random(seed)
    out = []
    for back in range(8):  # D-7 .. D
        day = D - dt.timedelta(days=back)
        moved = shift and back == 0
        for u in range(300):
            row: dict[str, Any] = {"user_id": f"u{u}", catalog.FEATURE_DATE: day}
            for f in FAM.features:
                if f.dtype == "float64":
                    row[f.name] = round(rnd.gauss(3, 1), 2)  # rounded: ties, as real features have
                else:
                    row[f.name] = rnd.choice(PERIODS)
            if moved:
                row[SHIFTED] = round(rnd.gauss(4, 1), 2)
                row[CATEGORY_SHIFTED] = rnd.choice(PERIODS[:1] * 3 + PERIODS)
            if u % 50 == 0:  # nulls and NaN are left out of both distributions
                row["weekend_share_30d"] = None
                row["night_share_30d"] = float("nan")
            out.append(row)
    return out


def _frame(spark: Any, rows: list[dict[str, Any]]) -> Any:
    return gold_frame(spark, FAM, rows)


def _sample(rows: list[dict[str, Any]], feature: str, days: list[dt.date]) -> list[Any]:
    return [
        r[feature]
        for r in rows
        if r[catalog.FEATURE_DATE] in days and r[feature] is not None and r[feature] == r[feature]
    ]


def test_spark_drift_matches_the_definitions_and_alerts_only_the_shifted_features(spark: Any) -> None:
    settings = DriftConfig.model_validate({"reference_days": 7, "bins": 10, "min_rows": 50})
    rows = _rows(1, shift=True)
    (result,) = drift_spark.compute(spark, _frame(spark, rows), FAM, [D], settings, run_id="r1")
    by_name = {f.feature: f for f in result.features}
    assert set(by_name) == set(FAM.feature_names)
    reference = [D - dt.timedelta(days=i) for i in range(1, 8)]
    assert result.reference == {
        "kind": "previous_days",
        "start": (D - dt.timedelta(days=7)).isoformat(),
        "end": (D - dt.timedelta(days=1)).isoformat(),
    }
    for f in FAM.features:
        got = by_name[f.name]
        ref, cur = _sample(rows, f.name, reference), _sample(rows, f.name, [D])
        assert (got.reference_rows, got.current_rows) == (len(ref), len(cur))
        if f.dtype == "float64":
            psi, ks = drift.numeric_drift(ref, cur, bins=10, epsilon=settings.epsilon)
            assert got.psi == pytest.approx(psi, rel=1e-9, abs=1e-12)
            assert got.ks == pytest.approx(ks, abs=1e-12)
            assert got.ks == pytest.approx(stats.ks_2samp(ref, cur).statistic, abs=1e-12)
        else:
            assert got.psi == pytest.approx(
                drift.categorical_psi(drift.value_counts(ref), drift.value_counts(cur), settings.epsilon),
                rel=1e-9,
            )
            assert got.ks is None
    assert {f.feature for f in result.alerts} == {SHIFTED, CATEGORY_SHIFTED}
    assert by_name["weekend_share_30d"].current_rows == 300 - 6  # the 6 nulls are not counted


def test_unshifted_data_raises_no_alert_and_a_baseline_reference_is_used(spark: Any) -> None:
    rows = _rows(2, shift=False)
    settings = DriftConfig.model_validate({"min_rows": 50})
    (result,) = drift_spark.compute(spark, _frame(spark, rows), FAM, [D], settings)
    assert result.alerts == []
    assert max(f.psi or 0 for f in result.features) < 0.2
    baseline = DriftConfig.model_validate(
        {
            "reference": "baseline",
            "baseline_start": D - dt.timedelta(days=7),
            "baseline_end": D - dt.timedelta(days=6),
            "min_rows": 50,
        }
    )
    (fixed,) = drift_spark.compute(spark, _frame(spark, rows), FAM, [D], baseline)
    first = {f.feature: f for f in fixed.features}[SHIFTED]
    ref = _sample(rows, SHIFTED, [D - dt.timedelta(days=7), D - dt.timedelta(days=6)])
    assert first.reference_rows == len(ref) == 600
    assert first.psi == pytest.approx(drift.numeric_drift(ref, _sample(rows, SHIFTED, [D]))[0], rel=1e-9)


def test_too_few_rows_give_no_number_and_no_alert(spark: Any) -> None:
    rows = _rows(3, shift=True)
    settings = DriftConfig.model_validate({"min_rows": 1_000})  # 300 rows on the date
    (result,) = drift_spark.compute(spark, _frame(spark, rows), FAM, [D], settings)
    assert all(f.psi is None and not f.alert and "too few" in f.note for f in result.features)


def test_several_dates_in_one_pass_each_against_its_own_window(spark: Any) -> None:
    rows = _rows(4, shift=True)
    settings = DriftConfig.model_validate({"reference_days": 3, "min_rows": 50})
    day_before = D - dt.timedelta(days=1)
    results = drift_spark.compute(spark, _frame(spark, rows), FAM, [day_before, D], settings)
    assert [r.feature_date for r in results] == [day_before.isoformat(), D.isoformat()]
    earlier = {f.feature: f for f in results[0].features}[SHIFTED]
    ref = _sample(rows, SHIFTED, [day_before - dt.timedelta(days=i) for i in (1, 2, 3)])
    psi, ks = drift.numeric_drift(ref, _sample(rows, SHIFTED, [day_before]))
    assert (earlier.psi, earlier.ks) == (pytest.approx(psi, rel=1e-9), pytest.approx(ks, abs=1e-12))
    assert not earlier.alert and {f.feature for f in results[1].alerts} == {SHIFTED, CATEGORY_SHIFTED}


def test_stored_drift_reaches_status_and_the_feature_drift_alert(spark: Any, make_config: Any) -> None:
    cfg = make_config(**{"drift.min_rows": 50, "drift.feature_thresholds": {CATEGORY_SHIFTED: 5.0}})
    rows = _rows(5, shift=True)
    older = drift_spark.compute(
        spark, _frame(spark, _rows(6, shift=False)), FAM, [D - dt.timedelta(days=1)], cfg.drift
    )
    newest = drift_spark.compute(spark, _frame(spark, rows), FAM, [D], cfg.drift)
    for result in older + newest:
        drift.write(cfg, result)
    table = catalog.gold_table(FAM.name).name
    assert [h.feature_date for h in drift.history(cfg, table)] == [
        (D - dt.timedelta(days=1)).isoformat(),
        D.isoformat(),
    ]
    status = Status(drift=drift_status(cfg))
    assert {r.feature_date for r in status.drift} == {D.isoformat()}  # the latest date only
    assert len(status.drift) == len(FAM.features)
    raised = [
        a
        for a in alerts.evaluate(status, cfg.alerts, embedded=True, drift=cfg.drift)
        if a.name == "feature_drift"
    ]
    # the shifted category's own threshold (5.0) is above its PSI: only the numeric feature alerts
    assert [a.source for a in raised] == [f"{table}.{SHIFTED}"]
    assert raised[0].threshold == 0.2 and isinstance(raised[0].value, float) and raised[0].value > 0.2


def test_drift_is_judged_only_on_complete_dates_with_a_long_enough_reference(spark: Any) -> None:
    rows = _rows(7, shift=True)
    settings = DriftConfig.model_validate({"reference_days": 7, "min_reference_days": 3, "min_rows": 50})
    frame = _frame(spark, rows)
    # The newest event is in the middle of D: D is incomplete, so not judged (no numbers, no alert).
    midday = dt.datetime.combine(D, dt.time(12), dt.UTC)
    (open_day,) = drift_spark.compute(spark, frame, FAM, [D], settings, complete_through=midday)
    assert not open_day.judged and open_day.features == [] and open_day.alerts == []
    assert open_day.note.startswith("not judged: incomplete")
    # D complete, but its reference holds 2 dates with rows (min 3): not judged either.
    end_of_d = dt.datetime.combine(D + dt.timedelta(days=1), dt.time(), dt.UTC)
    two = {D, D - dt.timedelta(days=1), D - dt.timedelta(days=2)}
    (short,) = drift_spark.compute(spark, frame, FAM, [D], settings, complete_through=end_of_d, available=two)
    assert not short.judged and "2 complete day(s)" in short.note and short.alerts == []
    # With the whole week there, the real shift still alerts.
    (judged,) = drift_spark.compute(spark, frame, FAM, [D], settings, complete_through=end_of_d)
    assert judged.judged and {f.feature for f in judged.alerts} == {SHIFTED, CATEGORY_SHIFTED}


def test_the_latest_drift_is_the_newest_judged_date(make_config: Any) -> None:
    cfg = make_config()
    table = catalog.gold_table(FAM.name).name
    judged = drift.TableDrift(table, (D - dt.timedelta(days=1)).isoformat(), {"start": "", "end": ""})
    drift.write(cfg, judged)
    drift.write(cfg, drift.TableDrift(table, D.isoformat(), {}, judged=False, note="not judged: incomplete"))
    latest = drift.latest(cfg, table)
    assert latest is not None and latest.feature_date == judged.feature_date
    assert [h.judged for h in drift.history(cfg, table)] == [True, False]


def _steps_of(sample: list[float]) -> drift.Steps:
    """The exact step function of ``sample``: each distinct value with the count of values ≤ it."""
    counts = drift.value_counts(sample)
    values, cumulative, held = sorted(counts), [], 0
    for v in values:
        held += counts[v]
        cumulative.append(held)
    return drift.Steps(values, cumulative)


def test_profiles_are_exact_up_to_the_knots_and_within_a_step_above(spark: Any) -> None:
    """A feature with at most `KNOTS` distinct values on a date is profiled exactly (6,000 rows of one
    decimal: a few dozen values), one with more keeps exact order statistics, each step within n / KNOTS
    of the true count, and KS against scipy's within 2 / KNOTS; the rows spread over several
    partitions."""
    rnd = random.Random(11)
    few, many = D, D - dt.timedelta(days=1)
    rows = []
    for day, digits in ((few, 1), (many, 6)):
        for u in range(6_000):
            row: dict[str, Any] = {"user_id": f"u{u}", catalog.FEATURE_DATE: day}
            for f in FAM.features:
                row[f.name] = round(rnd.gauss(3, 1), digits) if f.dtype == "float64" else rnd.choice(PERIODS)
            rows.append(row)
    profiled = drift_spark.profiles(_frame(spark, rows).repartition(4), FAM, [few, many])
    numeric = [f.name for f in FAM.features if f.dtype == "float64"]
    for name in numeric:
        assert profiled[few].numeric[name] == _steps_of(_sample(rows, name, [few]))
        exact, got = _steps_of(_sample(rows, name, [many])), profiled[many].numeric[name]
        assert len(exact.values) > drift.KNOTS and got.total == 6_000
        worst = max(abs(a - b) for a, b in zip(got.at(exact.values), exact.cumulative, strict=True))
        assert worst <= 6_000 / drift.KNOTS
    period = next(f.name for f in FAM.features if f.dtype == "string")
    assert profiled[many].categorical[period] == drift.value_counts(_sample(rows, period, [many]))
    name = numeric[0]
    _, ks, _ = drift.compare_numeric([profiled[many].numeric[name]], profiled[few].numeric[name], 10, 1e-6)
    scipy_ks = stats.ks_2samp(_sample(rows, name, [many]), _sample(rows, name, [few])).statistic
    assert abs(ks - scipy_ks) <= 2 / drift.KNOTS


def test_profiles_are_the_same_however_much_the_driver_takes_at_once(
    spark: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What is brought to the driver at once (`PROFILE_VALUES`) changes no profile: all eight dates
    together, three at a time, or each date in two halves of its features give the same steps and counts, with
    the rows counted or given; every split (down to one feature of one date) collects each date's feature
    exactly once."""
    rows = _rows(5, shift=True)
    frame = _frame(spark, rows).repartition(3)
    days = sorted({r[catalog.FEATURE_DATE] for r in rows})
    names = [f.name for f in FAM.features]
    width = len(names)
    whole = drift_spark.profiles(frame, FAM, days)
    assert sorted(whole) == days
    half = -(-width // 2)
    for values, blocks, profiled in (
        (3 * 300 * width, 3, True),  # three dates at a time (the rows counted)
        (300 * width, 8, False),  # each date alone, every feature
        (300 * half, 16, True),  # each date in two halves of its features (the rows given)
        (1, 8 * width, False),  # each feature of each date alone
    ):
        monkeypatch.setattr(drift_spark, "PROFILE_VALUES", values)
        planned = drift_spark._blocks(days, dict.fromkeys(days, 300), names)
        assert len(planned) == blocks
        assert sorted((d, f) for ds, fs in planned for d in ds for f in fs) == [
            (d, f) for d in days for f in sorted(names)
        ]
        if profiled:  # a Spark job a block: two of the splits are profiled, the others only planned
            counts = dict.fromkeys(days, 300) if blocks == 16 else None
            assert drift_spark.profiles(frame, FAM, days, counts=counts) == whole
