"""The rule engine on Spark: every row rule of a table as one column, all counted in one aggregation.

`annotate(ruleset, lookups)` adds, per row rule, a small integer column ``_dq_<i>``: null where the rule
does not apply (its ``where`` is false, or its column is null), 0 where the row passes, 1 where it
fails; and summary columns: ``_dq_failed`` (the names of every rule the row failed), ``_dq_drop`` (the row
failed a ``drop`` rule) and ``_dq_block`` (it failed a drop rule, or a fail rule that allows no failures).
`row_aggregates` counts every rule (``count(_dq_i)`` rows checked, ``sum(_dq_i)`` rows failed) and
`table_aggregates` every table rule's figures; `evaluate` computes both in one aggregation, grouped by
the table's date when the table rules need it (Gold: `coverage` per feature date), so N rules cost one
Spark job, not N (and one more for `unique` rules' distinct counts, which beside the rest would make Spark
aggregate everything per distinct key first). Silver and Gold run the same code: Silver in its own
write pass, Gold and `validate` through `evaluate`.

Referential rules left-join the lookup's keys, broadcast. `check_sql` checks, before any data is read,
what only Spark can: the SQL, the regular expressions (compiled by the JVM's ``java.util.regex.Pattern``,
which `rlike` uses) and ``in_set`` values cast to their column's type.

Why one module: the rule columns `annotate` adds, the aggregates over them and the results read back
from those aggregates share one naming contract (``_dq_<i>``, ``_dq_t<i>_checked`` ...); split, each part
would have to spell the others' names.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from pyspark.errors import PySparkException
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from medallion.core.errors import ConfigError
from medallion.quality import dialect
from medallion.quality.dialect import ident, number, text
from medallion.quality.results import QualityReport, RuleResult
from medallion.quality.rules import Rule, RuleSet

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

FAILED = "_dq_failed"
DROP = "_dq_drop"
BLOCK = "_dq_block"  # failed a drop or fail rule: the row does not pass
ROWS = "_dq_rows"


def rule_column(index: int) -> str:
    return f"_dq_{index}"


def _ref_column(index: int) -> str:
    return f"_dq_ref_{index}"


def check_sql(spark: SparkSession, ruleset: RuleSet, schema: T.StructType) -> None:
    """Analyse every ``where`` and ``expression`` against ``schema`` on an empty frame (no data read):
    a syntax error, an unknown column or a non-boolean is a ConfigError naming file and rule. Patterns
    and ``in_set`` values are checked in the dialect they run in (`medallion.quality.dialect`)."""
    dialect.check_patterns(spark, ruleset)
    dialect.check_values(spark, ruleset, schema)
    empty = spark.createDataFrame([], schema)
    for rule in ruleset.rules:
        for key in ("where", "expression"):
            text = getattr(rule, key)
            if text is None:
                continue
            try:
                kind = empty.select(F.expr(text).alias("x")).schema["x"].dataType
            except PySparkException as exc:
                first = str(exc).strip().splitlines()[0]
                raise ConfigError(
                    f"Invalid rule file {ruleset.source}: rule {rule.name!r}: `{key}` {text!r} is not valid "
                    f"Spark SQL on the table's columns: {first}. Fix the expression."
                ) from None
            if not isinstance(kind, T.BooleanType):
                raise ConfigError(
                    f"Invalid rule file {ruleset.source}: rule {rule.name!r}: `{key}` {text!r} is "
                    f"{kind.simpleString()}, not a boolean. Write a condition (e.g. `x > 0`)."
                )


def _finite(x: str, allow_nan: bool) -> str:
    infinite = f"abs({x}) = CAST('inf' AS DOUBLE)"
    return f"NOT ({infinite})" if allow_nan else f"NOT (isnan({x}) OR {infinite})"


def _passes(rule: Rule, index: int, schema: T.StructType) -> str:
    """SQL that is true where the row passes, for rows where the rule applies."""
    cols = [ident(c) for c in rule.columns]
    if rule.type == "not_null":
        return _all(f"{c} IS NOT NULL" for c in cols)
    if rule.type == "between":  # finite values only: NaN and ±∞ are the `finite` rule's
        checks = []
        for c in cols:
            value = f"CAST({c} AS DOUBLE)"
            for bound, op in ((rule.min, ">="), (rule.max, "<=")):
                if bound is not None:
                    checks.append(f"NOT ({_finite(value, False)}) OR {value} {op} {number(bound)}")
        return _all(f"coalesce({x}, true)" for x in checks)
    if rule.type == "finite":
        checks = []
        for name, c in zip(rule.columns, cols, strict=True):
            if isinstance(schema[name].dataType, T.ArrayType):
                bad = (
                    f"exists({c}, e -> coalesce(NOT ({_finite('CAST(e AS DOUBLE)', rule.allow_nan)}), false))"
                )
                checks.append(f"NOT coalesce({bad}, false)")
            else:
                checks.append(f"coalesce({_finite(f'CAST({c} AS DOUBLE)', rule.allow_nan)}, true)")
        return _all(checks)
    if rule.type == "in_set":  # compared in the column's own type (a boolean column with true/false)
        return _all(
            f"coalesce({c} IN ({', '.join(_cast(text(v), schema[name].dataType) for v in rule.values)}), true)"
            for name, c in zip(rule.columns, cols, strict=True)
        )
    if rule.type == "regex":
        return _all(f"coalesce(CAST({c} AS STRING) RLIKE {text(rule.pattern or '')}, true)" for c in cols)
    if rule.type == "referential":
        return f"{cols[0]} IS NULL OR {ident(_ref_column(index))} IS NOT NULL"
    if rule.type == "expression":
        return f"coalesce({_user_sql(rule.expression or 'true')}, false)"
    raise ValueError(f"{rule.type} is not a row rule")


def _user_sql(sql: str) -> str:
    """A rule file's SQL inside the generated SQL, on lines of its own: a ``--`` comment ending it stays
    a comment of its own line."""
    return f"(\n{sql}\n)"


def _cast(value: str, kind: T.DataType) -> str:
    return f"CAST({value} AS {kind.simpleString()})"


def _all(checks: Iterable[str]) -> str:
    return " AND ".join(f"({c})" for c in checks) or "true"


def _any(flags: Sequence[str]) -> str:
    return f"greatest({', '.join(flags)}, 0, 0) = 1" if flags else "false"


def annotate(ruleset: RuleSet, lookups: Mapping[str, DataFrame]) -> Callable[[DataFrame], DataFrame]:
    """Add the rule columns (see the module's docstring) for every row rule of ``ruleset``.

    ``lookups`` maps a catalogue name to its DataFrame, for referential rules; a missing one is an error.
    The rules are SQL text, added in two selects: built as PySpark columns, each function call is a few
    round trips to the JVM, and 111 rules of a Gold family took 3 s to state (23,000 calls).
    """

    def _(df: DataFrame) -> DataFrame:
        rules = ruleset.row_rules
        for i, rule in enumerate(rules):
            if rule.type != "referential":
                continue
            if rule.lookup not in lookups:
                raise ConfigError(
                    f"Rule {rule.name!r} ({ruleset.source}) checks against {rule.lookup}, which is not in "
                    "the lake. Write that table first, or remove the rule."
                )
            keys = lookups[rule.lookup or ""].select(F.col(rule.key or "").alias(_ref_column(i))).distinct()
            df = df.join(F.broadcast(keys), F.col(rule.columns[0]) == F.col(_ref_column(i)), "left")
        flags = []
        for i, rule in enumerate(rules):
            flag = f"CASE WHEN {_passes(rule, i, df.schema)} THEN 0 ELSE 1 END"
            flags.append(f"CAST(CASE WHEN {_applies(rule)} THEN {flag} END AS TINYINT) AS {rule_column(i)}")
        df = df.selectExpr("*", *flags).drop(*[_ref_column(i) for i in range(len(rules))])
        names = [f"CASE WHEN {rule_column(i)} = 1 THEN {text(r.name)} END" for i, r in enumerate(rules)]
        blocking = [  # a row fails a drop or fail rule by itself, unless the rule allows some failures
            f"coalesce({rule_column(i)}, 0)"
            for i, r in enumerate(rules)
            if r.action != "warn" and not r.max_failure_rate
        ]
        dropping = [f"coalesce({rule_column(i)}, 0)" for i, r in enumerate(rules) if r.action == "drop"]
        failed = f"array_compact(array({', '.join(names)}))" if names else "CAST(array() AS ARRAY<STRING>)"
        return df.selectExpr(
            "*",
            f"{failed} AS {FAILED}",
            f"{_any(dropping)} AS {DROP}",
            f"{_any(blocking)} AS {BLOCK}",
        )

    return _


def _applies(rule: Rule) -> str:
    """SQL that is true where ``rule`` judges the row: its ``where`` holds, and (but for `not_null` and
    `expression`) one of its columns is set."""
    applies = [_user_sql(rule.where) if rule.where else "true"]
    if rule.type not in ("not_null", "expression"):
        applies.append(" OR ".join(f"{ident(c)} IS NOT NULL" for c in rule.columns) or "true")
    return f"coalesce({_all(applies)}, false)"


def row_aggregates(ruleset: RuleSet) -> list[Column]:
    """One aggregation's columns over annotated rows: rows, rows not passing, and per rule checked/failed."""
    out = [f"count(1) AS {ROWS}", f"sum(CAST({BLOCK} AS BIGINT)) AS {BLOCK}"]
    for i, _rule in enumerate(ruleset.row_rules):
        c = rule_column(i)
        out += [f"count({c}) AS {c}_checked", f"sum(CAST({c} AS BIGINT)) AS {c}_failed"]
    return [F.expr(x) for x in out]


@dataclass
class RowCounts:
    """Row-rule counts summed over the groups of one aggregation."""

    rows: int = 0
    not_passing: int = 0
    checked: dict[str, int] | None = None
    failed: dict[str, int] | None = None

    def add(self, ruleset: RuleSet, row: Any) -> None:
        self.checked = self.checked or {}
        self.failed = self.failed or {}
        self.rows += int(row[ROWS] or 0)
        self.not_passing += int(row[BLOCK] or 0)
        for i, rule in enumerate(ruleset.row_rules):
            self.checked[rule.name] = self.checked.get(rule.name, 0) + int(
                row[f"{rule_column(i)}_checked"] or 0
            )
            self.failed[rule.name] = self.failed.get(rule.name, 0) + int(row[f"{rule_column(i)}_failed"] or 0)


def table_aggregates(ruleset: RuleSet, *, distinct: bool | None = None) -> list[Column]:
    """The columns of every table rule's figures (nothing for a rule set without any). Each can be
    summed (or min/max-ed) over groups; a `unique` rule's only over groups of one of its columns.
    ``distinct``: only the distinct counts (True), only the others (False), or all (None)."""
    out = []
    for i, rule in enumerate(ruleset.table_rules):
        name = f"_dq_t{i}"
        cols = [ident(c) for c in rule.columns]
        if rule.type == "unique":
            # rows with every key column set, and their distinct keys: the difference is duplicate rows
            if distinct is not True:
                out.append(f"sum(CAST({_all(f'{c} IS NOT NULL' for c in cols)} AS BIGINT)) AS {name}_checked")
            if distinct is not False:
                out.append(f"count(DISTINCT {', '.join(cols)}) AS {name}_distinct")
            continue
        if distinct is True:
            continue
        if rule.type in ("row_count_between", "coverage"):
            out.append(f"count(1) AS {name}_checked")
        elif rule.type == "freshness":
            out += [
                f"count({cols[0]}) AS {name}_checked",
                # Microseconds since the epoch, not a timestamp: PySpark collects a timestamp as a naive
                # datetime in the DRIVER's host zone, which then read as UTC was off by the zone's offset.
                f"unix_micros(max(CAST({cols[0]} AS TIMESTAMP))) AS {name}_newest",
            ]
        elif rule.type == "not_constant":
            out += [f"count({cols[0]}) AS {name}_checked", f"min({cols[0]}) AS {name}_low"]
            out.append(f"max({cols[0]}) AS {name}_high")
    return [F.expr(x) for x in out]


def table_results(
    ruleset: RuleSet,
    rows: Any,
    now: datetime | None = None,
    *,
    by: str | None = None,
    active: Mapping[date, int] | None = None,
) -> list[RuleResult]:
    """The table rules' results from `table_aggregates`: one row (None: no rows at all), or a list of
    rows grouped by ``by``. `coverage` needs both ``by`` (the date) and ``active`` (entities per date);
    without them it gives no result."""
    now = now or datetime.now(UTC)
    groups: list[Any] = [] if rows is None else list(rows) if isinstance(rows, list) else [rows]

    def total(column: str) -> int:
        return sum(int(g[column] or 0) for g in groups)

    out = []
    for i, rule in enumerate(ruleset.table_rules):
        name = f"_dq_t{i}"
        checked = total(f"{name}_checked")
        detail = ""
        if rule.type == "unique":
            failed = checked - total(f"{name}_distinct")
            detail = f"{failed:,} rows repeat a {'/'.join(rule.columns)} of another"
        elif rule.type == "row_count_between":
            ok = (rule.min is None or checked >= rule.min) and (rule.max is None or checked <= rule.max)
            failed = 0 if ok else 1
            detail = f"{checked:,} rows; expected {_range(rule)}"
        elif rule.type == "freshness":
            found = [int(g[f"{name}_newest"]) for g in groups if g[f"{name}_newest"] is not None]
            newest = EPOCH + timedelta(microseconds=max(found)) if found else None
            age = (now - newest).total_seconds() if newest is not None else None
            failed = 0 if age is not None and age <= (rule.max_age_s or 0) else 1
            detail = f"newest {rule.columns[0]} {newest.isoformat() if newest else 'none'}" + (
                f", {age / 3600:.0f} h ago" if age is not None else ""
            )
        elif rule.type == "not_constant":
            lows = [g[f"{name}_low"] for g in groups if g[f"{name}_low"] is not None]
            highs = [g[f"{name}_high"] for g in groups if g[f"{name}_high"] is not None]
            constant = checked >= 2 and bool(lows) and min(lows) == max(highs)
            failed = 1 if constant else 0
            detail = f"one value ({min(lows)!r}) in {checked:,} rows" if constant else ""
        else:  # coverage
            if by is None or active is None:
                continue
            failed, detail, checked = _coverage(
                rule, {g[by]: int(g[f"{name}_checked"]) for g in groups}, active
            )
        out.append(RuleResult.of(rule, checked=checked, failed=failed, detail=detail))
    return out


def _coverage(rule: Rule, rows: Mapping[Any, int], active: Mapping[date, int]) -> tuple[int, str, int]:
    """Dates whose rows / active entities fall outside [min, max]: (dates off, detail, dates checked)."""
    lo, hi = rule.min if rule.min is not None else 0.0, rule.max if rule.max is not None else float("inf")
    off = []
    days = sorted(set(rows) | set(active))
    for day in days:
        n, entities = rows.get(day, 0), active.get(day, 0)
        if n == 0 and entities == 0:
            continue
        ratio = n / entities if entities else float("inf")
        if not lo <= ratio <= hi:
            off.append(f"{day}: {n:,} rows for {entities:,} active")
    return len(off), "; ".join(off[:5]) + (" …" if len(off) > 5 else ""), len(days)


def _range(rule: Rule) -> str:
    lo = "" if rule.min is None else f"≥ {rule.min:g}"
    hi = "" if rule.max is None else f"≤ {rule.max:g}"
    return " and ".join(x for x in (lo, hi) if x)


def report(
    ruleset: RuleSet, counts: RowCounts, table: list[RuleResult], *, run_id: str, stage: str, dates: list[str]
) -> QualityReport:
    """The run's results: every rule, and the score (share of rows passing every drop/fail rule)."""
    results = [
        RuleResult.of(
            rule,
            checked=(counts.checked or {}).get(rule.name, 0),
            failed=(counts.failed or {}).get(rule.name, 0),
        )
        for rule in ruleset.row_rules
    ]
    return QualityReport.build(
        table=ruleset.table,
        stage=stage,
        run_id=run_id,
        rules_file=ruleset.source,
        dates=dates,
        rows=counts.rows,
        rows_passing=counts.rows - counts.not_passing,
        results=results + table,
    )


def aggregate(annotated: DataFrame, ruleset: RuleSet, by: str | None = None) -> list[dict[str, Any]]:
    """Every rule's figures over ``annotated`` rows (see `annotate`), one row per value of ``by`` (one
    row when None): one aggregation, and one more for the distinct counts of `unique` rules."""
    if by is not None:
        split = [r.name for r in ruleset.table_rules if r.type == "unique" and by not in r.columns]
        if split:
            raise ConfigError(
                f"Invalid rule file {ruleset.source}: unique rule(s) {', '.join(split)} must include {by}: "
                f"the table is checked per {by}. Add {by} to their columns."
            )
    grouped = annotated.groupBy(by) if by is not None else annotated.groupBy()
    rows = [
        r.asDict()
        for r in grouped.agg(*row_aggregates(ruleset), *table_aggregates(ruleset, distinct=False)).collect()
    ]
    distinct = table_aggregates(ruleset, distinct=True)
    if distinct:
        # A distinct count beside the others makes Spark aggregate every other figure per distinct key
        # first: its own small aggregation costs a fraction of that.
        keys = {r[by] if by is not None else None: r for r in grouped.agg(*distinct).collect()}
        for row in rows:
            row.update(keys[row[by] if by is not None else None].asDict())
    return rows


def from_aggregates(
    ruleset: RuleSet,
    rows: list[Any],
    *,
    run_id: str,
    stage: str,
    dates: list[str],
    by: str | None = None,
    active: Mapping[date, int] | None = None,
    now: datetime | None = None,
) -> QualityReport:
    """The report of the rows `aggregate` gave (``by``: what they are grouped by; ``active``: entities per
    date, for `coverage`)."""
    counts = RowCounts()
    for row in rows:
        counts.add(ruleset, row)
    table = table_results(ruleset, [r for r in rows if int(r[ROWS] or 0)], now, by=by, active=active)
    return report(ruleset, counts, table, run_id=run_id, stage=stage, dates=dates)


def evaluate(
    df: DataFrame, ruleset: RuleSet, lookups: Mapping[str, DataFrame], *, by: str | None = None, **report: Any
) -> QualityReport:
    """Every rule of ``ruleset`` over ``df`` in one aggregation (grouped by ``by`` when given); ``report``:
    the keywords of `from_aggregates`."""
    rows = aggregate(df.transform(annotate(ruleset, lookups)), ruleset, by)
    return from_aggregates(ruleset, rows, by=by, **report)
