"""The engine on small DataFrames: every rule type and action, the score, SQL checks, one job for N rules."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import pytest

from medallion.core import catalog
from medallion.core.errors import ConfigError
from medallion.quality import engine
from medallion.quality.rules import parse_rules

T0 = dt.datetime(2026, 1, 5, 12, 0)
ROWS = [
    # event_id, event_type, user_id, price, quantity, currency, item_id, event_time
    ("e1", "purchase", "u1", 10.0, 1, "EUR", "i1", T0),
    ("e2", "purchase", "u2", -1.0, 0, "EUR", "i9", T0),
    ("e3", "page_view", None, None, None, None, None, T0 - dt.timedelta(days=3)),
    ("e3", "bogus", "u1", None, None, "XXX", "i1", T0),
]
SCHEMA = (
    "event_id string, event_type string, user_id string, price double, quantity int, currency string, "
    "item_id string, event_time timestamp"
)
TABLE = catalog.Dataset(
    name="test.events",
    layer="silver",
    location=("t",),
    writer="test",
    description="",
    columns=catalog.columns(SCHEMA),
)


def rules(*items: dict[str, Any]) -> Any:
    return parse_rules(TABLE, {"table": TABLE.name, "rules": list(items)}, "test.yaml")


def run(
    spark: Any, ruleset: Any, rows: list[tuple[Any, ...]] = ROWS, lookups: dict[str, Any] | None = None
) -> Any:
    df = spark.createDataFrame(rows, SCHEMA)
    return engine.evaluate(df, ruleset, lookups or {}, run_id="r", stage="test", dates=[])


def by_name(report: Any) -> dict[str, tuple[int, int, str]]:
    return {r.name: (r.checked, r.failed, r.status) for r in report.results}


def test_every_rule_type_counts_rows_checked_and_failed(spark: Any) -> None:
    items = spark.createDataFrame([("i1",), ("i2",)], "item_id string")
    ruleset = rules(
        {"name": "ids", "type": "not_null", "columns": ["event_id", "user_id"], "action": "warn"},
        {"name": "price", "type": "between", "column": "price", "min": 0, "action": "warn"},
        {
            "name": "qty",
            "type": "between",
            "column": "quantity",
            "min": 1,
            "max": 9,
            "where": "event_type = 'purchase'",
            "action": "warn",
        },
        {
            "name": "types",
            "type": "in_set",
            "column": "event_type",
            "values_from": "event_types",
            "action": "warn",
        },
        {"name": "cur", "type": "regex", "column": "currency", "pattern": "^(EUR|USD)$", "action": "warn"},
        {
            "name": "item",
            "type": "referential",
            "column": "item_id",
            "lookup": "lookup.items",
            "action": "warn",
        },
        {"name": "expr", "type": "expression", "expression": "price IS NULL OR price < 5", "action": "warn"},
        {"name": "uniq", "type": "unique", "columns": ["event_id"], "action": "warn"},
        {"name": "count", "type": "row_count_between", "min": 1, "max": 3, "action": "warn"},
        {"name": "fresh", "type": "freshness", "column": "event_time", "max_age": "1 day", "action": "warn"},
    )
    got = by_name(run(spark, ruleset, lookups={catalog.ITEMS.name: items}))
    assert got == {
        "ids": (4, 1, "warn"),  # e3 has no user
        "price": (2, 1, "warn"),  # nulls are not checked
        "qty": (2, 1, "warn"),  # only purchases
        "types": (4, 1, "warn"),
        "cur": (3, 1, "warn"),
        "item": (3, 1, "warn"),  # i9 is not in the lookup; a null item is not checked
        "expr": (4, 1, "warn"),
        "uniq": (4, 1, "warn"),  # e3 twice: one row repeats another
        "count": (4, 1, "warn"),  # 4 rows, at most 3 expected
        "fresh": (4, 1, "warn"),  # the newest event is old by now
    }


def test_actions_and_the_score(spark: Any) -> None:
    ruleset = rules(
        {"name": "price", "type": "between", "column": "price", "min": 0, "action": "drop"},
        {"name": "user", "type": "not_null", "column": "user_id", "action": "fail"},
        {
            "name": "types",
            "type": "in_set",
            "column": "event_type",
            "values_from": "event_types",
            "action": "warn",
        },
        {"name": "uniq", "type": "unique", "columns": ["event_id"], "action": "fail"},
    )
    report = run(spark, ruleset)
    assert by_name(report) == {
        "price": (2, 1, "dropped"),
        "user": (4, 1, "FAIL"),
        "types": (4, 1, "warn"),
        "uniq": (4, 1, "FAIL"),
    }
    # Rows passing every drop/fail rule: e1 and the second e3 (the warn rule does not count).
    assert (report.rows, report.rows_passing, report.score) == (4, 2, 0.5)
    assert report.pass_rates == {"price": 0.5, "user": 0.75, "types": 0.75, "uniq": 0.75}
    assert [r.name for r in report.failed_fail_rules] == ["user", "uniq"]

    clean = run(spark, ruleset, [ROWS[0]])
    assert (clean.score, clean.failed_fail_rules) == (1.0, [])


def test_annotate_names_every_failed_rule_and_flags_drops(spark: Any) -> None:
    ruleset = rules(
        {"name": "price", "type": "between", "column": "price", "min": 0, "action": "drop"},
        {"name": "qty", "type": "between", "column": "quantity", "min": 1, "action": "warn"},
        {"name": "user", "type": "not_null", "column": "user_id", "action": "fail"},
    )
    df = spark.createDataFrame(ROWS, SCHEMA).transform(engine.annotate(ruleset, {}))
    got = {
        (r.event_id, r.event_type): (r[engine.FAILED], r[engine.DROP], r[engine.BLOCK]) for r in df.collect()
    }
    assert got == {
        ("e1", "purchase"): ([], False, False),
        ("e2", "purchase"): (["price", "qty"], True, True),
        ("e3", "page_view"): (["user"], False, True),
        ("e3", "bogus"): ([], False, False),
    }


def test_an_empty_table(spark: Any) -> None:
    ruleset = rules(
        {"name": "ids", "type": "not_null", "column": "event_id", "action": "fail"},
        {"name": "count", "type": "row_count_between", "min": 1, "action": "fail"},
    )
    report = run(spark, ruleset, [])
    assert by_name(report) == {"ids": (0, 0, "pass"), "count": (0, 1, "FAIL")}
    assert report.score == 1.0


def _jobs(spark: Any, action: Any) -> int:
    group = uuid.uuid4().hex
    spark.sparkContext.setJobGroup(group, "count jobs")
    try:
        action()
    finally:
        spark.sparkContext.setLocalProperty("spark.jobGroup.id", None)
    return len(spark.sparkContext.statusTracker().getJobIdsForGroup(group))


def test_row_rules_cost_one_job_however_many(spark: Any) -> None:
    df = spark.createDataFrame(ROWS * 50, SCHEMA)

    def rule_set(n: int) -> Any:
        return rules(
            *[
                {"name": f"r{i}", "type": "between", "column": "price", "min": -i, "action": "drop"}
                for i in range(n)
            ]
        )

    def aggregate(n: int) -> None:
        rs = rule_set(n)
        row = df.transform(engine.annotate(rs, {})).agg(*engine.row_aggregates(rs)).first()
        counts = engine.RowCounts()
        counts.add(rs, row)
        assert counts.rows == len(ROWS) * 50 and len(counts.failed or {}) == n

    assert _jobs(spark, lambda: aggregate(2)) == _jobs(spark, lambda: aggregate(30))


def test_bad_sql_is_a_config_error_before_any_data(spark: Any) -> None:
    from medallion.core.lake import spark_schema

    schema = spark_schema(TABLE.columns)
    engine.check_sql(
        spark,
        rules({"name": "ok", "type": "expression", "expression": "price > 0", "action": "warn"}),
        schema,
    )
    cases = {
        "price >": "is not valid Spark SQL",
        "pryce > 0": "is not valid Spark SQL",
        "price + 1": "not a boolean",
    }
    for text, message in cases.items():
        bad = rules({"name": "bad_one", "type": "expression", "expression": text, "action": "warn"})
        with pytest.raises(ConfigError, match=message) as err:
            engine.check_sql(spark, bad, schema)
        assert "test.yaml" in str(err.value) and "bad_one" in str(err.value)
    where = rules({"name": "w", "type": "not_null", "column": "price", "where": "nope = 1", "action": "warn"})
    with pytest.raises(ConfigError, match="`where` 'nope = 1'"):
        engine.check_sql(spark, where, schema)


def test_a_referential_rule_without_its_lookup_is_an_error(spark: Any) -> None:
    ruleset = rules(
        {
            "name": "item",
            "type": "referential",
            "column": "item_id",
            "lookup": "lookup.items",
            "action": "drop",
        }
    )
    with pytest.raises(ConfigError, match="lookup.items, which is not in the lake"):
        run(spark, ruleset)


def test_rule_files_are_checked_in_sparks_dialect_so_what_loads_runs(spark: Any) -> None:
    from medallion.core.lake import spark_schema

    table = catalog.Dataset(
        name="test.flags",
        layer="silver",
        location=("t",),
        writer="test",
        description="",
        columns=catalog.columns("id string, active boolean, digest string, n bigint"),
    )

    def rules_of(*items: dict[str, Any]) -> Any:
        return parse_rules(table, {"table": table.name, "rules": list(items)}, "flags.yaml")

    schema = spark_schema(table.columns)
    ok = rules_of(
        # YAML's true/false on a boolean column: compared as booleans (not as 'True'/'False' text)
        {"name": "flag_set", "type": "in_set", "column": "active", "values": [True, False], "action": "fail"},
        # Java's \p{XDigit}, which Python's re refuses, is what Spark's rlike runs
        {"name": "hex", "type": "regex", "column": "digest", "pattern": r"^\p{XDigit}{4}$", "action": "fail"},
        {"name": "small", "type": "in_set", "column": "n", "values": [1, 2], "action": "warn"},
    )
    engine.check_sql(spark, ok, schema)
    rows = [("a", True, "00ff", 1), ("b", False, "beef", 2), ("c", None, "zzzz", 3)]
    report = engine.evaluate(
        spark.createDataFrame(rows, "id string, active boolean, digest string, n bigint"),
        ok, {}, run_id="r", stage="test", dates=[],
    )  # fmt: skip
    assert by_name(report) == {"flag_set": (2, 0, "pass"), "hex": (3, 1, "FAIL"), "small": (3, 1, "warn")}

    python_only = rules_of(
        {"name": "named", "type": "regex", "column": "digest", "pattern": "(?P<x>ab)", "action": "warn"}
    )
    with pytest.raises(ConfigError, match=r"rule 'named'.*not a Java regular expression.*\(\?<name>") as err:
        engine.check_sql(spark, python_only, schema)
    assert "flags.yaml" in str(err.value) and err.value.exit_code == 2
    maybe = rules_of(
        {"name": "f", "type": "in_set", "column": "active", "values": ["maybe"], "action": "warn"}
    )
    with pytest.raises(ConfigError, match="value 'maybe' is not a boolean, the type of column 'active'"):
        engine.check_sql(spark, maybe, schema)


NASTY = [
    "it's",
    'say "hi"',
    "back\\slash",
    "\\'",
    "line\nbreak",
    "tab\there",
    "100%_off",
    "日本語 é",
    "",
    "${x}",
    "--",
]


def test_names_and_values_reach_the_generated_sql_exactly(spark: Any) -> None:
    """The engine writes rules as SQL text: any string (an `in_set` value, a pattern) and any bound comes
    back from Spark as exactly what the rule file said."""
    from medallion.quality import dialect

    texts = spark.range(1).selectExpr(*[f"{dialect.text(s)} AS s{i}" for i, s in enumerate(NASTY)]).first()
    assert [texts[f"s{i}"] for i in range(len(NASTY))] == NASTY
    numbers = [0.1, -0.0, 1e300, 5e-324, 2.0**53 + 2, float("inf"), float("-inf")]
    row = spark.range(1).selectExpr(*[f"{dialect.number(x)} AS n{i}" for i, x in enumerate(numbers)]).first()
    assert [row[f"n{i}"] for i in range(len(numbers))] == numbers
    assert str(row["n1"]) == "-0.0"

    ruleset = rules(
        {"name": "listed", "type": "in_set", "column": "currency", "values": NASTY[:4], "action": "drop"},
        # SQL of the rule file ending in a comment: it ends with its line, not with the generated SQL
        {
            "name": "commented",
            "type": "expression",
            "expression": "length(currency) < 100 -- any text",
            "where": "true -- every row",
            "action": "warn",
        },
        {"name": "plain", "type": "regex", "column": "currency", "pattern": r"^[^\\\n']*$", "action": "warn"},
    )
    rows = [(f"e{i}", "purchase", "u1", 1.0, 1, s, "i1", T0) for i, s in enumerate(NASTY)]
    df = spark.createDataFrame(rows, SCHEMA).transform(engine.annotate(ruleset, {}))
    failed = {r.currency: r[engine.FAILED] for r in df.collect()}
    # the in_set holds the first four; a string with a backslash, a line break or a quote fails the pattern
    assert failed == {
        s: ([] if i < 4 else ["listed"]) + (["plain"] if any(c in s for c in "\\\n'") else [])
        for i, s in enumerate(NASTY)
    }
