"""Drift of one Gold table over a range of feature dates, in one pass over its rows (see `drift` for the
definitions).

1. Every row becomes one (feature, value) pair per numeric or categorical feature (an ``explode`` of an
   array of structs), and one aggregation counts each (feature_date, feature, value): the only pass over
   the table's data, for every feature and date at once.
2. A small table maps each feature date d to the target dates D it is the current date of, or in the
   reference of; joining it to the counts and summing gives, per (D, feature, value), its reference and
   current counts. Persisted: the next steps read it, not the table.
3. Numeric features: one window per (D, feature) ordered by value gives both cumulative distributions;
   one aggregation takes the exact KS (their largest gap) and the B-1 quantile cut points (the smallest
   value whose reference share reaches k/B). A second aggregation sums the counts per bin.
4. Categorical features: the counts per category are collected as they are.

What is collected is per (date, feature, bin or category): small, whatever the table's size.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Sequence

from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from medallion.core.catalog import FEATURE_DATE, gold_table
from medallion.core.config import DriftConfig
from medallion.features import FeatureFamily
from medallion.governance.drift import (
    CATEGORICAL_DTYPES,
    NUMERIC_DTYPES,
    FeatureDrift,
    TableDrift,
    categorical_psi,
    psi,
)

REFERENCE, CURRENT = "reference", "current"
Stats = tuple[int, int, "float | None", int]  # reference rows, current rows, KS, bins


def reference_dates(settings: DriftConfig, day: dt.date) -> list[dt.date]:
    """The feature dates ``day`` is compared with."""
    if settings.reference == "baseline":
        start, end = settings.baseline_start, settings.baseline_end
        assert start is not None and end is not None  # the config requires both
        return [start + dt.timedelta(days=i) for i in range((end - start).days + 1)]
    return [day - dt.timedelta(days=i) for i in range(settings.reference_days, 0, -1)]


def dates_read(settings: DriftConfig, dates: Sequence[dt.date]) -> list[dt.date]:
    """Every feature date the drift of ``dates`` reads."""
    return sorted({d for day in dates for d in [day, *reference_dates(settings, day)]})


def complete(day: dt.date, complete_through: dt.datetime | None) -> bool:
    """A feature date is complete when its end (the next midnight, UTC) is not after ``complete_through``
    (the newest event time of the input, or now when that is earlier): no later event can change it."""
    end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), dt.UTC)
    return complete_through is None or end <= complete_through


def judgeable(
    settings: DriftConfig,
    dates: Sequence[dt.date],
    complete_through: dt.datetime | None,
    available: Collection[dt.date] | None,
) -> tuple[dict[dt.date, list[dt.date]], dict[dt.date, str]]:
    """Which of ``dates`` drift can be judged on: ``({date: its reference dates}, {date: why not})``.

    A date is judged only when it is complete, and its reference holds at least
    ``drift.min_reference_days`` complete dates with rows (``available``: the dates the table has; None:
    all) — or all of the configured reference, when that is shorter."""
    judged: dict[dt.date, list[dt.date]] = {}
    not_judged: dict[dt.date, str] = {}
    for day in dates:
        if not complete(day, complete_through):
            newest = f"{complete_through:%Y-%m-%d %H:%M} UTC" if complete_through else ""
            not_judged[day] = f"not judged: incomplete (the date ends after the newest event time, {newest})"
            continue
        configured = reference_dates(settings, day)
        refs = [
            r for r in configured if complete(r, complete_through) and (available is None or r in available)
        ]
        needed = min(settings.min_reference_days, len(configured))
        if len(refs) < needed:
            not_judged[day] = (
                f"not judged: the reference has {len(refs)} complete day(s) with rows; "
                f"drift.min_reference_days is {settings.min_reference_days}"
            )
            continue
        judged[day] = refs
    return judged, not_judged


def compute(
    spark: SparkSession,
    rows: DataFrame,
    fam: FeatureFamily,
    dates: Sequence[dt.date],
    settings: DriftConfig,
    *,
    run_id: str = "",
    complete_through: dt.datetime | None = None,
    available: Collection[dt.date] | None = None,
) -> list[TableDrift]:
    """Drift of ``fam``'s features for each of ``dates`` that can be judged (`judgeable`; the others get
    a result that says why not, with no numbers and no alert); ``rows`` holds the table's rows (at least
    the feature dates `dates_read` names)."""
    numeric = [f.name for f in fam.features if f.dtype in NUMERIC_DTYPES]
    categorical = [f.name for f in fam.features if f.dtype in CATEGORICAL_DTYPES]
    if not dates or not (numeric or categorical):
        return []
    judged, not_judged = judgeable(settings, dates, complete_through, available)
    skipped = [_unjudged(fam, day, settings, why, run_id) for day, why in not_judged.items()]
    if not judged:
        return skipped
    roles = [(day, day, CURRENT) for day in judged] + [
        (day, ref, REFERENCE) for day, refs in judged.items() for ref in refs
    ]
    mapping = spark.createDataFrame(roles, "target date, d date, role string")
    pairs = [
        F.struct(
            F.lit(n).alias("feature"),
            F.col(n).cast("double").alias("x"),
            F.lit(None).cast("string").alias("c"),
        )
        for n in numeric
    ] + [
        F.struct(
            F.lit(n).alias("feature"),
            F.lit(None).cast("double").alias("x"),
            F.col(n).cast("string").alias("c"),
        )
        for n in categorical
    ]
    x, c = F.col("x"), F.col("c")
    finite = x.isNotNull() & ~F.isnan(x) & (F.abs(x) != F.lit(float("inf")))
    counts = (
        rows.where(F.col(FEATURE_DATE).isin(sorted({d for _, d, _ in roles})))
        .select(F.col(FEATURE_DATE).alias("d"), F.explode(F.array(*pairs)).alias("v"))
        .select("d", "v.*")
        .where(finite | c.isNotNull())
        .groupBy("d", "feature", "x", "c")
        .agg(F.count(F.lit(1)).alias("n"))
    )
    per = (
        counts.join(F.broadcast(mapping), "d")
        .groupBy("target", "feature", "x", "c")
        .agg(
            F.sum(F.when(F.col("role") == REFERENCE, F.col("n")).otherwise(0)).alias("r"),
            F.sum(F.when(F.col("role") == CURRENT, F.col("n")).otherwise(0)).alias("q"),
        )
        .persist()
    )
    try:
        stats, bins = _numeric(per.where(x.isNotNull()), settings.bins)
        cats = per.where(c.isNotNull()).select("target", "feature", "c", "r", "q").collect()
    finally:
        per.unpersist()

    by_category: dict[tuple[dt.date, str], dict[str, tuple[int, int]]] = {}
    for row in cats:
        by_category.setdefault((row["target"], row["feature"]), {})[row["c"]] = (int(row["r"]), int(row["q"]))
    table = gold_table(fam.name).name
    out = []
    for day, refs in judged.items():
        result = TableDrift(
            table=table,
            feature_date=day.isoformat(),
            reference={"kind": settings.reference, "start": refs[0].isoformat(), "end": refs[-1].isoformat()},
            run_id=run_id,
            computed_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        )
        for name in numeric:
            result.features.append(
                _numeric_result(name, stats.get((day, name)), bins.get((day, name), {}), settings)
            )
        for name in categorical:
            result.features.append(_categorical_result(name, by_category.get((day, name), {}), settings))
        out.append(result)
    return sorted(out + skipped, key=lambda r: r.feature_date)


def _unjudged(fam: FeatureFamily, day: dt.date, settings: DriftConfig, why: str, run_id: str) -> TableDrift:
    refs = reference_dates(settings, day)
    return TableDrift(
        table=gold_table(fam.name).name,
        feature_date=day.isoformat(),
        reference={"kind": settings.reference, "start": refs[0].isoformat(), "end": refs[-1].isoformat()},
        run_id=run_id,
        computed_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        judged=False,
        note=why,
    )


def _numeric(
    per: DataFrame, n_bins: int
) -> tuple[dict[tuple[dt.date, str], Stats], dict[tuple[dt.date, str], dict[int, tuple[int, int]]]]:
    """Per (date, feature): (reference rows, current rows, KS), and the counts per bin."""
    key = ["target", "feature"]
    ordered = Window.partitionBy(*key).orderBy("x").rowsBetween(Window.unboundedPreceding, Window.currentRow)
    whole = Window.partitionBy(*key)
    cum = per.select(
        *key,
        "x",
        "r",
        "q",
        F.sum("r").over(ordered).alias("cr"),
        F.sum("q").over(ordered).alias("cq"),
        F.sum("r").over(whole).alias("tr"),
        F.sum("q").over(whole).alias("tq"),
    )
    gap = F.abs(F.col("cr") / F.col("tr") - F.col("cq") / F.col("tq"))
    cut_points = [
        F.min(F.when(F.col("cr") * n_bins >= F.col("tr") * k, F.col("x"))) for k in range(1, n_bins)
    ]
    summary = (
        cum.groupBy(*key)
        .agg(
            F.max("tr").alias("tr"),
            F.max("tq").alias("tq"),
            F.max(F.when((F.col("tr") > 0) & (F.col("tq") > 0), gap)).alias("ks"),
            F.array_sort(F.array_distinct(F.array_compact(F.array(*cut_points)))).alias("cuts"),
        )
        .persist()
    )
    try:
        stats = {
            (row["target"], row["feature"]): (int(row["tr"]), int(row["tq"]), row["ks"], len(row["cuts"]) + 1)
            for row in summary.collect()
        }
        binned = (
            per.join(summary.select(*key, "cuts"), key)
            .select(*key, F.size(F.filter("cuts", lambda cut: cut < F.col("x"))).alias("bin"), "r", "q")
            .groupBy(*key, "bin")
            .agg(F.sum("r").alias("r"), F.sum("q").alias("q"))
            .collect()
        )
    finally:
        summary.unpersist()
    bins: dict[tuple[dt.date, str], dict[int, tuple[int, int]]] = {}
    for row in binned:
        bins.setdefault((row["target"], row["feature"]), {})[int(row["bin"])] = (int(row["r"]), int(row["q"]))
    return stats, bins


def _not_judged(
    name: str, kind: str, ref_rows: int, cur_rows: int, threshold: float, settings: DriftConfig
) -> FeatureDrift:
    """Too few rows on one side to judge drift: no PSI, no alert, and a note saying why."""
    return FeatureDrift(
        name,
        kind,
        None,
        None,
        ref_rows,
        cur_rows,
        0,
        threshold,
        False,
        _too_few(ref_rows, cur_rows, settings),
    )


def _numeric_result(
    name: str,
    stats: Stats | None,
    bins: dict[int, tuple[int, int]],
    settings: DriftConfig,
) -> FeatureDrift:
    ref_rows, cur_rows, ks, n = stats if stats is not None else (0, 0, None, 1)
    threshold = settings.threshold(name)
    if min(ref_rows, cur_rows) < settings.min_rows:
        return _not_judged(name, "numeric", ref_rows, cur_rows, threshold, settings)
    ref = [bins.get(i, (0, 0))[0] for i in range(n)]
    cur = [bins.get(i, (0, 0))[1] for i in range(n)]
    value = psi(ref, cur, settings.epsilon)
    return FeatureDrift(name, "numeric", value, ks, ref_rows, cur_rows, n, threshold, value > threshold)


def _categorical_result(name: str, counts: dict[str, tuple[int, int]], settings: DriftConfig) -> FeatureDrift:
    ref_rows = sum(r for r, _ in counts.values())
    cur_rows = sum(q for _, q in counts.values())
    threshold = settings.threshold(name)
    if min(ref_rows, cur_rows) < settings.min_rows:
        return _not_judged(name, "categorical", ref_rows, cur_rows, threshold, settings)
    value = categorical_psi(
        {k: r for k, (r, _) in counts.items()}, {k: q for k, (_, q) in counts.items()}, settings.epsilon
    )
    return FeatureDrift(
        name, "categorical", value, None, ref_rows, cur_rows, len(counts), threshold, value > threshold
    )


def _too_few(ref_rows: int, cur_rows: int, settings: DriftConfig) -> str:
    return (
        f"too few values ({ref_rows:,} in the reference, {cur_rows:,} on the date; "
        f"drift.min_rows {settings.min_rows:,})"
    )
