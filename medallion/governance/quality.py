"""Feature quality: declared thresholds per family, checked on a Gold table's rows in one aggregation.

Thresholds live in one YAML file per family, ``medallion/governance/thresholds/<family>.yaml`` (shipped),
or ``<quality.rules_dir>/gold.<family>.features.yaml`` when the user has one (it replaces the shipped
file)::

    family: user_features
    table:                    # checks of the table as a whole
      unique_key: {action: fail}                           # one row per entity and feature_date
      row_count: {min_ratio: 0.95, max_ratio: 1.0, action: warn}   # rows / active entities, per date
      freshness: {max_age: 48 hours, action: warn}         # the newest feature_date's end, against now
    defaults:                 # the action of each per-feature check, for every feature
      null_rate: {action: fail}
      non_finite: {action: fail}
      range: {action: fail}
      constant: {action: warn}
    features:                 # per feature: thresholds, or an action
      revenue_1d: {range: {min: 0}}
      view_to_purchase_rate_7d: {range: {min: 0, max: 1}, null_rate: {max: 0.9, action: warn}}

Per feature (the check's name is ``<check>:<feature>``):

- ``null_rate``: the share of null values may not exceed ``max``. The default comes from the declaration:
  0 for a feature that is never empty (``when_empty`` zero or not_applicable), 1 (no limit) for one
  declared null when its window is empty.
- ``non_finite``: no NaN or ±∞ (in a vector: no such element); NaN is allowed for ``when_empty: nan``.
- ``range``: finite values outside [``min``, ``max``]; counts (``int64``) default to ``min: 0``.
- ``constant``: the feature takes one value over every row of the run (at least 2 rows).

An "active entity" of feature date D is one with a Silver event in the family's window ending with D.
Results are the rule engine's (`RuleResult`, `QualityReport`), stored and summarized the same way.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from medallion import catalog
from medallion.errors import ConfigError
from medallion.features import Feature, FeatureFamily
from medallion.quality.results import QualityReport, RuleResult

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

FEATURE_CHECKS = ("null_rate", "non_finite", "range", "constant")
TABLE_CHECKS = ("unique_key", "row_count", "freshness")
ACTIONS = ("warn", "fail")
_AGE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(second|minute|hour|day)s?\s*$")
_AGE_UNITS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}
_KEYS: dict[str, set[str]] = {
    "null_rate": {"max", "action"},
    "non_finite": {"action"},
    "range": {"min", "max", "action"},
    "constant": {"action"},
    "unique_key": {"action"},
    "row_count": {"min_ratio", "max_ratio", "action"},
    "freshness": {"max_age", "action"},
}
_DEFAULT_ACTIONS = {"null_rate": "fail", "non_finite": "fail", "range": "fail", "constant": "warn"}
_TABLE_DEFAULTS: dict[str, dict[str, Any]] = {
    "unique_key": {"action": "fail"},
    "row_count": {"min_ratio": 0.0, "max_ratio": 1.0, "action": "warn"},
    "freshness": {"max_age": "48 hours", "action": "warn"},
}


@dataclass(frozen=True)
class FeatureThresholds:
    feature: Feature
    max_null_rate: float
    null_action: str
    allow_nan: bool
    non_finite_action: str
    min: float | None
    max: float | None
    range_action: str
    constant_action: str

    @property
    def numeric(self) -> bool:
        return self.feature.dtype in ("int64", "float64")

    @property
    def vector(self) -> bool:
        return self.feature.dtype == "float_array"


@dataclass(frozen=True)
class Thresholds:
    family: FeatureFamily
    source: str
    features: tuple[FeatureThresholds, ...]
    table: dict[str, dict[str, Any]] = field(default_factory=dict, hash=False)

    def max_age_s(self) -> float:
        match = _AGE_RE.match(str(self.table["freshness"]["max_age"]))
        assert match is not None  # checked on load
        return float(match.group(1)) * _AGE_UNITS[match.group(2)]


def shipped_file(fam: FeatureFamily) -> Path:
    return Path(str(resources.files("medallion.governance").joinpath("thresholds", f"{fam.name}.yaml")))


def thresholds_file(fam: FeatureFamily, rules_dir: str | None) -> Path | None:
    """The user's ``gold.<family>.features.yaml`` in ``rules_dir`` when present, else the shipped one."""
    if rules_dir:
        own = Path(rules_dir) / f"{catalog.gold_table(fam.name).name}.features.yaml"
        if own.is_file():
            return own
    shipped = shipped_file(fam)
    return shipped if shipped.is_file() else None


def load_thresholds(
    fam: FeatureFamily, rules_dir: str | None = None, path: str | Path | None = None
) -> Thresholds:
    """The thresholds of ``fam`` (from ``path``, the user's file or the shipped one; none: the defaults)."""
    path = path if path is not None else thresholds_file(fam, rules_dir)
    if path is None:
        return parse_thresholds(fam, {}, "(defaults)")
    try:
        data = yaml.safe_load(Path(path).read_text()) or {}
    except OSError as exc:
        raise ConfigError(f"Cannot read feature thresholds {path}: {exc.strerror}. Check the path.") from None
    except yaml.YAMLError as exc:
        raise ConfigError(
            f"Invalid YAML in feature thresholds {path}: {exc}. Fix the syntax of that file."
        ) from None
    return parse_thresholds(fam, data, str(path))


def parse_thresholds(fam: FeatureFamily, data: Any, source: str) -> Thresholds:
    def bad(problem: str) -> ConfigError:
        return ConfigError(f"Invalid feature thresholds {source}: {problem}.")

    if not isinstance(data, dict) or set(data) - {"family", "table", "defaults", "features"}:
        raise bad("the top level must be a mapping with `family`, `table`, `defaults` and `features`")
    if data.get("family", fam.name) != fam.name:
        raise bad(f"it declares family {data.get('family')!r}, but it is used for {fam.name}")
    table = {k: dict(v) for k, v in _TABLE_DEFAULTS.items()}
    for check, spec in _section(data, "table", TABLE_CHECKS, bad).items():
        table[check] |= _spec(check, spec, f"table.{check}", bad)
    if _AGE_RE.match(str(table["freshness"]["max_age"])) is None:
        raise bad(
            f"table.freshness.max_age must be like '48 hours' or '2 days', not {table['freshness']['max_age']!r}"
        )
    actions = dict(_DEFAULT_ACTIONS)
    for check, spec in _section(data, "defaults", FEATURE_CHECKS, bad).items():
        spec = _spec(check, spec, f"defaults.{check}", bad)
        if set(spec) - {"action"}:
            raise bad(
                f"defaults.{check}: only `action` can be set for every feature; thresholds go under features"
            )
        actions[check] = spec.get("action", actions[check])
    per_feature = data.get("features") or {}
    if not isinstance(per_feature, dict):
        raise bad("`features` must map feature names to their checks")
    unknown = sorted(set(per_feature) - set(fam.feature_names))
    if unknown:
        raise bad(
            f"{', '.join(unknown)} is not a feature of {fam.name}; it has {', '.join(fam.feature_names)}"
        )
    out = []
    for feature in fam.features:
        own = per_feature.get(feature.name) or {}
        if not isinstance(own, dict) or set(own) - set(FEATURE_CHECKS):
            raise bad(f"features.{feature.name}: give a mapping of {', '.join(FEATURE_CHECKS)}")
        specs = {k: _spec(k, v, f"features.{feature.name}.{k}", bad) for k, v in own.items()}
        null = specs.get("null_rate", {})
        rng = specs.get("range", {})
        lo, hi = rng.get("min"), rng.get("max")
        if lo is None and hi is None and "range" not in specs and feature.dtype == "int64":
            lo = 0.0  # counts, distinct counts, ranks
        if lo is not None and hi is not None and lo > hi:
            raise bad(f"features.{feature.name}.range: min {lo} is above max {hi}")
        out.append(
            FeatureThresholds(
                feature=feature,
                max_null_rate=float(null.get("max", 1.0 if feature.when_empty == "null" else 0.0)),
                null_action=null.get("action", actions["null_rate"]),
                allow_nan=feature.when_empty == "nan",
                non_finite_action=specs.get("non_finite", {}).get("action", actions["non_finite"]),
                min=None if lo is None else float(lo),
                max=None if hi is None else float(hi),
                range_action=rng.get("action", actions["range"]),
                constant_action=specs.get("constant", {}).get("action", actions["constant"]),
            )
        )
    return Thresholds(fam, source, tuple(out), table)


def _section(data: dict[str, Any], name: str, allowed: tuple[str, ...], bad: Any) -> dict[str, Any]:
    section = data.get(name) or {}
    if not isinstance(section, dict) or set(section) - set(allowed):
        raise bad(f"`{name}` takes {', '.join(allowed)}")
    return section


def _spec(check: str, spec: Any, where: str, bad: Any) -> dict[str, Any]:
    if not isinstance(spec, dict) or set(spec) - _KEYS[check]:
        raise bad(f"{where}: takes {', '.join(sorted(_KEYS[check]))}")
    if "action" in spec and spec["action"] not in ACTIONS:
        raise bad(f"{where}: action {spec['action']!r}; a feature check can only warn or fail")
    for key in ("max", "min", "min_ratio", "max_ratio"):
        value = spec.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise bad(f"{where}.{key} must be a number, not {value!r}")
    if check == "null_rate" and "max" in spec and not 0 <= spec["max"] <= 1:
        raise bad(f"{where}.max is a share of rows: between 0 and 1")
    return dict(spec)


# --- the checks on Spark --------------------------------------------------------------------------------


def _violations(t: FeatureThresholds) -> dict[str, Any]:
    """Per check of one feature, a Column true where a row violates it (none for `constant`)."""
    from pyspark.sql import functions as F

    col = F.col(t.feature.name)
    out: dict[str, Any] = {"null_rate": col.isNull()}
    if t.numeric or t.vector:

        def bad_value(x: Any) -> Any:
            x = x.cast("double")
            infinite = F.abs(x) == F.lit(float("inf"))
            return infinite if t.allow_nan else (F.isnan(x) | infinite)

        if t.vector:
            out["non_finite"] = F.coalesce(
                F.exists(col, lambda e: F.coalesce(bad_value(e), F.lit(False))), F.lit(False)
            )
        else:
            out["non_finite"] = F.coalesce(bad_value(col), F.lit(False))
    if t.numeric and (t.min is not None or t.max is not None):
        value = col.cast("double")
        outside = F.lit(False)
        if t.min is not None:
            outside = outside | (value < F.lit(t.min))
        if t.max is not None:
            outside = outside | (value > F.lit(t.max))
        finite = ~F.isnan(value) & (F.abs(value) != F.lit(float("inf")))  # non_finite counts the others
        out["range"] = F.coalesce(outside & finite, F.lit(False))
    return out


def _action(t: FeatureThresholds, check: str) -> str:
    return {"null_rate": t.null_action, "non_finite": t.non_finite_action, "range": t.range_action}[check]


def active_entities(silver: DataFrame, dates: DataFrame, fam: FeatureFamily) -> DataFrame:
    """Per feature date (``dates``: one ``feature_date`` column), the entities with a Silver event in the
    family's window ending with it: ``feature_date, active``."""
    from pyspark.sql import functions as F

    key = fam.entity.join_key
    daily = silver.where(F.col(key).isNotNull()).select(key, catalog.EVENT_DATE).distinct()
    window = (F.col(catalog.EVENT_DATE) <= F.col(catalog.FEATURE_DATE)) & (
        F.col(catalog.EVENT_DATE) > F.date_sub(F.col(catalog.FEATURE_DATE), fam.window_days)
    )
    return (
        dates.join(daily, window, "left")
        .groupBy(catalog.FEATURE_DATE)
        .agg(F.count_distinct(F.col(key)).alias("active"))
    )


def check(
    rows: DataFrame,
    thresholds: Thresholds,
    *,
    run_id: str,
    stage: str,
    dates: list[dt.date],
    active: dict[dt.date, int] | None = None,
    now: dt.datetime | None = None,
) -> QualityReport:
    """Every check of ``thresholds`` on a family's rows (one aggregation grouped by feature date, plus
    the active entities when given: ``{feature_date: entities}``)."""
    from pyspark.sql import functions as F

    fam = thresholds.family
    key = fam.entity.join_key
    now = now or dt.datetime.now(dt.UTC)
    aggs = [F.count(F.lit(1)).alias("_rows"), F.count_distinct(F.col(key)).alias("_keys")]
    blocking = []
    for i, t in enumerate(thresholds.features):
        for check_name, bad in _violations(t).items():
            aggs.append(F.sum(bad.cast("long")).alias(f"_{i}_{check_name}"))
            # a row fails a fail check by itself, except a null where some nulls are allowed
            if _action(t, check_name) == "fail" and (check_name != "null_rate" or t.max_null_rate == 0):
                blocking.append(bad)
        if not t.vector:
            aggs += [F.min(t.feature.name).alias(f"_{i}_min"), F.max(t.feature.name).alias(f"_{i}_max")]
            aggs.append(F.count(t.feature.name).alias(f"_{i}_n"))
    any_bad = F.lit(False)
    for b in blocking:
        any_bad = any_bad | b
    aggs.append(F.sum(any_bad.cast("long")).alias("_blocked"))
    by_date = {r[catalog.FEATURE_DATE]: r for r in rows.groupBy(catalog.FEATURE_DATE).agg(*aggs).collect()}

    def total(name: str) -> int:
        return sum(int(r[name] or 0) for r in by_date.values())

    n_rows = total("_rows")
    results: list[RuleResult] = []
    for i, t in enumerate(thresholds.features):
        name = t.feature.name
        for check_name in _violations(t):
            failed = total(f"_{i}_{check_name}")
            if check_name == "null_rate":
                rate = failed / n_rows if n_rows else 0.0
                over = rate > t.max_null_rate
                results.append(
                    RuleResult.build(
                        f"null_rate:{name}",
                        "null_rate",
                        t.null_action,
                        "row",
                        n_rows,
                        failed if over else 0,
                        f"Share of null {name} at most {t.max_null_rate:g}.",
                        ["completeness"],
                        f"{failed:,} of {n_rows:,} null ({rate:.2%}; max {t.max_null_rate:.2%})",
                    )
                )
                continue
            description = {
                "non_finite": f"No NaN or infinite {name}" + (" (NaN allowed)" if t.allow_nan else "") + ".",
                "range": f"{name} within [{_bound(t.min)}, {_bound(t.max)}].",
            }[check_name]
            results.append(
                RuleResult.build(
                    f"{check_name}:{name}",
                    check_name,
                    _action(t, check_name),
                    "row",
                    n_rows,
                    failed,
                    description,
                    ["validity"],
                    f"{failed:,} of {n_rows:,} rows",
                )
            )
        if not t.vector:
            lows = [r[f"_{i}_min"] for r in by_date.values() if r[f"_{i}_min"] is not None]
            highs = [r[f"_{i}_max"] for r in by_date.values() if r[f"_{i}_max"] is not None]
            n_values = total(f"_{i}_n")
            constant = n_values >= 2 and bool(lows) and min(lows) == max(highs)
            results.append(
                RuleResult.build(
                    f"constant:{name}",
                    "constant",
                    t.constant_action,
                    "table",
                    n_values,
                    1 if constant else 0,
                    f"{name} takes more than one value over the run's rows.",
                    ["variability"],
                    f"one value ({min(lows)!r}) in {n_values:,} rows" if constant else "",
                )
            )
    results += _table_results(thresholds, by_date, dates, active, now)
    return QualityReport.build(
        table=catalog.gold_table(fam.name).name,
        stage=stage,
        run_id=run_id,
        rules_file=thresholds.source,
        dates=[d.isoformat() for d in dates],
        rows=n_rows,
        rows_passing=n_rows - total("_blocked"),
        results=results,
    )


def _table_results(
    thresholds: Thresholds,
    by_date: dict[dt.date, Any],
    dates: list[dt.date],
    active: dict[dt.date, int] | None,
    now: dt.datetime,
) -> list[RuleResult]:
    spec = thresholds.table
    n_rows = sum(int(r["_rows"]) for r in by_date.values())
    duplicates = sum(int(r["_rows"]) - int(r["_keys"]) for r in by_date.values())
    key = thresholds.family.entity.join_key
    out = [
        RuleResult.build(
            "unique_key",
            "unique_key",
            spec["unique_key"]["action"],
            "table",
            n_rows,
            duplicates,
            f"One row per {key} and feature_date.",
            ["uniqueness"],
            f"{duplicates:,} rows repeat a {key} of their feature date",
        )
    ]
    if active is not None:
        lo, hi = float(spec["row_count"]["min_ratio"]), float(spec["row_count"]["max_ratio"])
        off = []
        for day in dates:
            rows = int(by_date[day]["_rows"]) if day in by_date else 0
            entities = active.get(day, 0)
            ratio = rows / entities if entities else (0.0 if rows == 0 else float("inf"))
            if entities == 0 and rows == 0:
                continue
            if not lo <= ratio <= hi:
                off.append(f"{day}: {rows:,} rows for {entities:,} active")
        out.append(
            RuleResult.build(
                "row_count",
                "row_count",
                spec["row_count"]["action"],
                "table",
                len(dates),
                len(off),
                f"Rows per feature date between {lo:g} and {hi:g} × the active {thresholds.family.entity.name}s.",
                ["completeness"],
                "; ".join(off[:5]) + (" …" if len(off) > 5 else ""),
            )
        )
    newest = max(by_date) if by_date else None
    age = (
        (now - dt.datetime.combine(newest + dt.timedelta(days=1), dt.time(), dt.UTC)).total_seconds()
        if newest
        else None
    )
    stale = age is None or age > thresholds.max_age_s()
    out.append(
        RuleResult.build(
            "freshness",
            "freshness",
            spec["freshness"]["action"],
            "table",
            1,
            1 if stale else 0,
            f"The newest feature_date ended at most {spec['freshness']['max_age']} ago.",
            ["timeliness"],
            f"newest feature_date {newest.isoformat() if newest else 'none'}"
            + (f", ended {age / 3600:.0f} h ago" if age is not None else ""),
        )
    )
    return out


def _bound(value: float | None) -> str:
    return "−∞" if value is None else f"{value:g}"


def summary(reports: list[QualityReport]) -> dict[str, Any]:
    """The ledger's ``quality`` field for several tables, in the shape `QualityReport.summary` gives one:
    the lowest score, and the rows failed per ``<table>:<check>`` (only the checks that failed)."""
    return {
        "score": min((r.score for r in reports), default=1.0),
        "failed": {f"{r.table}:{x.name}": x.failed for r in reports for x in r.results if x.failed},
    }


def validate_gold(
    spark: Any, cfg: Any, start: dt.date, end: dt.date, *, run_id: str, stage: str = "validate"
) -> list[QualityReport]:
    """The feature checks of every Gold table over the feature dates [start, end], as they are in the
    lake (for `medallion validate --layer gold`): one report per table holding rows there. The active
    entities come from Silver (its window back from ``start``) when Silver is in the lake."""
    from medallion import lakefs
    from medallion.features import FAMILIES
    from medallion.lake import date_range, read_dates

    dates = date_range(start, end)
    calendar = spark.createDataFrame([(d,) for d in dates], f"{catalog.FEATURE_DATE} date")
    silver_path = catalog.SILVER.path(cfg)
    reports = []
    for fam in FAMILIES:
        table = catalog.gold_table(fam.name)
        if not lakefs.exists(table.path(cfg)):
            continue
        rows = read_dates(spark, table.path(cfg), catalog.FEATURE_DATE, start, end, table.name)
        active = None
        if lakefs.exists(silver_path):
            first = start - dt.timedelta(days=fam.window_days - 1)
            silver = read_dates(spark, silver_path, catalog.SILVER.date_column or "", first, end, "Silver")
            active = {
                r[catalog.FEATURE_DATE]: int(r["active"])
                for r in active_entities(silver, calendar, fam).collect()
            }
        thresholds = load_thresholds(fam, cfg.quality.rules_dir)
        reports.append(check(rows, thresholds, run_id=run_id, stage=stage, dates=dates, active=active))
    return reports
