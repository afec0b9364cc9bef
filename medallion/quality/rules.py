"""Data-quality rules declared in YAML, one file per catalogue table, and their validation.

A rule file names its table and lists rules::

    table: silver.user_events
    rules:
      - name: price_not_negative
        type: between
        column: price
        min: 0
        where: "event_type IN ${commerce_event_types}"
        action: drop
        description: A price below zero is a producer bug.
        tags: [validity]

Row rules (`not_null`, `between`, `in_set`, `regex`, `referential`, `expression`, `finite`) judge each
row and may ``warn`` (count only), ``drop`` (the row goes to the stage's DLQ) or ``fail`` (the run stops,
nothing is written). Table rules (`unique`, `row_count_between`, `freshness`, `not_constant`, `coverage`)
judge the table as a whole and may only ``warn`` or ``fail``. ``where`` (a Spark SQL boolean) limits a
row rule to the rows it holds for; a row rule ignores nulls in its columns (that is `not_null`'s job).
A ``warn``/``fail`` row rule may allow a share of its rows to fail (``max_failure_rate``, default 0).
`between` judges finite values only; `finite` is the rule against NaN and ±∞ (element-wise in arrays;
``allow_nan: true`` lets NaN pass). `not_constant` fails when a column takes one value over every row;
`coverage` (Gold) holds each date's rows to ``min``..``max`` × the entities active in the family's window.

Gold's tables need no file: their rules are derived from the feature declarations
(`medallion.quality.feature_rules`); a user's ``<rules_dir>/gold.<family>.yaml`` in this same format
replaces the derived rules of the same name and adds its others.

``${event_types}``, ``${commerce_event_types}``, ``${currencies}`` and ``${device_types}`` in ``where`` and
``expression`` expand to SQL lists from the event contract, and ``values_from`` names one of them for
`in_set`: the sets are written once, in the contract.

Loading checks everything that can be checked without data and without Spark: the YAML's shape, rule
types, actions, names, and columns against the table's declared columns. A problem is a `ConfigError`
naming the file, the rule and the column. What only Spark can judge — the SQL of ``where`` and
``expression``, a ``pattern`` (Java's regex dialect, as `rlike` runs it) and ``in_set`` values cast to
the column's type — `medallion.quality.engine.check_sql` checks against the table's schema, also
before any data is read. No pyspark here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from medallion import features
from medallion.core import catalog, contract
from medallion.core.errors import ConfigError
from medallion.quality.feature_rules import declared_rules

ROW_TYPES = ("not_null", "between", "in_set", "regex", "referential", "expression", "finite")
TABLE_TYPES = ("unique", "row_count_between", "freshness", "not_constant", "coverage")
ACTIONS = ("warn", "drop", "fail")
TABLE_ACTIONS = ("warn", "fail")

SETS: dict[str, tuple[str, ...]] = {
    "event_types": contract.EVENT_TYPES,
    "commerce_event_types": contract.COMMERCE_EVENT_TYPES,
    "item_event_types": contract.ITEM_EVENT_TYPES,
    "currencies": contract.CURRENCIES,
    "device_types": contract.DEVICE_TYPES,
}
"""Named value sets from the event contract, for ``values_from`` and ``${name}`` in SQL."""

_COMMON = {"name", "type", "action", "description", "tags"}
_KEYS: dict[str, set[str]] = {
    "not_null": {"column", "columns", "where"},
    "between": {"column", "columns", "where", "min", "max"},
    "in_set": {"column", "columns", "where", "values", "values_from"},
    "regex": {"column", "columns", "where", "pattern"},
    "referential": {"column", "where", "lookup", "key"},
    "expression": {"expression", "where"},
    "finite": {"column", "columns", "where", "allow_nan"},
    "unique": {"column", "columns"},
    "row_count_between": {"min", "max"},
    "freshness": {"column", "max_age"},
    "not_constant": {"column"},
    "coverage": {"min", "max"},
}
for _kind in ROW_TYPES:
    _KEYS[_kind].add("max_failure_rate")
# lower_snake_case, optionally `<check>:<feature>` (the names of Gold's derived rules)
_NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,62}(:[a-z][a-z0-9_]{0,62})?$")
_AGE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(second|minute|hour|day)s?\s*$")
_AGE_UNITS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}
_MACRO_RE = re.compile(r"\$\{(\w+)\}")

PACKAGE_RULES = "rules"  # the shipped defaults: medallion/quality/rules/<table name>.yaml


@dataclass(frozen=True)
class Rule:
    """One declared rule. ``columns`` are the columns it reads (a referential rule: the event's key)."""

    name: str
    type: str
    action: str
    description: str = ""
    tags: tuple[str, ...] = ()
    columns: tuple[str, ...] = ()
    where: str | None = None
    min: float | None = None
    max: float | None = None
    values: tuple[str, ...] = ()  # in_set: each value as Spark's text of it (true, 1.5, abc)
    pattern: str | None = None  # a Java regular expression (Spark's `rlike`)
    lookup: str | None = None  # a catalogue dataset name
    key: str | None = None  # the lookup's column matched against columns[0]
    max_age_s: float | None = None
    expression: str | None = None
    max_failure_rate: float = 0.0  # a row rule passes while failed / checked stays at or below this
    allow_nan: bool = False  # finite: NaN passes (a feature declared NaN when empty)

    @property
    def level(self) -> str:
        return "table" if self.type in TABLE_TYPES else "row"


@dataclass(frozen=True)
class RuleSet:
    """The rules of one table, and the file they came from (for error messages)."""

    table: str
    source: str
    rules: tuple[Rule, ...]

    @property
    def row_rules(self) -> tuple[Rule, ...]:
        return tuple(r for r in self.rules if r.level == "row")

    @property
    def table_rules(self) -> tuple[Rule, ...]:
        return tuple(r for r in self.rules if r.level == "table")

    def lookups(self) -> tuple[str, ...]:
        return tuple(sorted({r.lookup for r in self.rules if r.lookup}))


def expand_sets(sql: str) -> str:
    """``event_type IN ${commerce_event_types}`` → ``event_type IN ('add_to_cart', ...)``."""

    def sub(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in SETS:
            raise KeyError(name)
        return "(" + ", ".join("'" + v.replace("'", "''") + "'" for v in SETS[name]) + ")"

    return _MACRO_RE.sub(sub, sql)


def table_columns(table: catalog.Dataset) -> tuple[str, ...]:
    """The columns a rule of ``table`` may name: its declared columns and its partition columns."""
    return table.column_names + table.partitions


def spark_text(value: Any) -> str:
    """A YAML scalar as Spark's text of it: ``true``/``false`` for booleans (Python's ``str`` gives
    ``True``, which no boolean column equals), numbers and strings as written."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def default_rules_file(table: catalog.Dataset) -> Path:
    """The shipped rule file of ``table`` (it may not exist: a table without default rules)."""
    return Path(str(resources.files("medallion.quality").joinpath(PACKAGE_RULES, f"{table.name}.yaml")))


def rules_file(table: catalog.Dataset, rules_dir: str | None) -> Path | None:
    """The rule file for ``table``: ``<rules_dir>/<table name>.yaml`` when the user has one, else the
    shipped default; None when neither exists."""
    if rules_dir:
        own = Path(rules_dir) / f"{table.name}.yaml"
        if own.is_file():
            return own
    default = default_rules_file(table)
    return default if default.is_file() else None


def load_rules(table: catalog.Dataset, path: str | Path | None) -> RuleSet:
    """The rules of ``table`` from ``path`` (None: no rules), checked against the table's columns."""
    if path is None:
        return RuleSet(table.name, "(no rule file)", ())
    return parse_rules(table, read_yaml(path), str(path))


def read_yaml(path: str | Path) -> Any:
    source = str(path)
    try:
        data = yaml.safe_load(Path(path).read_text())
    except OSError as exc:
        raise ConfigError(
            f"Cannot read rule file {source}: {exc.strerror}. Check the path (--rules)."
        ) from None
    except yaml.YAMLError as exc:
        raise ConfigError(
            f"Invalid YAML in rule file {source}: {exc}. Fix the syntax of that file."
        ) from None
    return data


def parse_rules(table: catalog.Dataset, data: Any, source: str) -> RuleSet:
    def bad(problem: str) -> ConfigError:
        return ConfigError(f"Invalid rule file {source}: {problem}.")

    if not isinstance(data, dict) or set(data) - {"table", "rules"}:
        raise bad("the top level must be a mapping with `table` and `rules` (a list)")
    if data.get("table", table.name) != table.name:
        raise bad(f"it declares table {data.get('table')!r}, but it is used for {table.name}")
    items = data.get("rules") or []
    if not isinstance(items, list):
        raise bad("`rules` must be a list of rules")
    known = table_columns(table)
    rules: list[Rule] = []
    for i, item in enumerate(items):
        rules.append(_parse_rule(item, i, known, bad))
    names = [r.name for r in rules]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise bad(f"rule names must be unique; {', '.join(twice)} appear more than once")
    return RuleSet(table.name, source, tuple(rules))


def _parse_rule(item: Any, index: int, known: tuple[str, ...], bad: Any) -> Rule:
    if not isinstance(item, dict):
        raise bad(f"rule #{index + 1} is not a mapping")
    name = item.get("name")
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise bad(f"rule #{index + 1}: `name` must be lower_snake_case (got {name!r})")
    label = f"rule {name!r}"
    kind = item.get("type")
    if kind not in _KEYS:
        types = ", ".join(ROW_TYPES + TABLE_TYPES)
        raise bad(f"{label}: unknown rule type {kind!r}; use one of {types}")
    label = f"rule {name!r} ({kind})"
    unknown = sorted(set(item) - _COMMON - _KEYS[kind])
    if unknown:
        allowed = ", ".join(sorted(_COMMON | _KEYS[kind]))
        raise bad(f"{label}: unknown key {', '.join(unknown)}; a {kind} rule takes {allowed}")
    action = item.get("action")
    allowed_actions = TABLE_ACTIONS if kind in TABLE_TYPES else ACTIONS
    if action not in allowed_actions:
        what = "a table-level rule" if kind in TABLE_TYPES else "a row rule"
        raise bad(f"{label}: action {action!r}; {what} can only {' or '.join(allowed_actions)}")
    tags = item.get("tags") or []
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise bad(f"{label}: `tags` must be a list of words")

    columns = _columns(item, label, bad)
    if kind == "freshness" and not columns:
        columns = ("event_time",)
    for column in columns:
        if column not in known:
            raise bad(f"{label}: column {column!r} is not a column of the table; it has {', '.join(known)}")
    needs_columns = kind not in ("expression", "row_count_between", "coverage")
    if needs_columns and not columns:
        raise bad(f"{label}: give `column` or `columns`")
    if kind in ("referential", "freshness", "not_constant") and len(columns) != 1:
        raise bad(f"{label}: takes exactly one `column`")

    fields: dict[str, Any] = {}
    if kind in ("between", "row_count_between", "coverage"):
        lo, hi = item.get("min"), item.get("max")
        for key, value in (("min", lo), ("max", hi)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
                raise bad(f"{label}: `{key}` must be a number, not {value!r}")
        if lo is None and hi is None:
            raise bad(f"{label}: give `min`, `max` or both")
        if lo is not None and hi is not None and lo > hi:
            raise bad(f"{label}: `min` {lo} is above `max` {hi}")
        fields |= {"min": lo, "max": hi}
    if kind == "in_set":
        values, named = item.get("values"), item.get("values_from")
        if (values is None) == (named is None):
            raise bad(f"{label}: give either `values` (a list) or `values_from` ({', '.join(SETS)})")
        if named is not None:
            if named not in SETS:
                raise bad(f"{label}: values_from {named!r} is not one of {', '.join(SETS)}")
            values = list(SETS[named])
        if not isinstance(values, list) or not values:
            raise bad(f"{label}: `values` must be a non-empty list")
        if not all(isinstance(v, str | int | float | bool) for v in values):
            raise bad(f"{label}: `values` must be a list of plain values (text, numbers, true/false)")
        fields["values"] = tuple(spark_text(v) for v in values)
    if kind == "regex":
        pattern = item.get("pattern")
        if not isinstance(pattern, str) or not pattern:
            raise bad(f"{label}: give `pattern`, a regular expression (Java's dialect, as Spark runs it)")
        fields["pattern"] = pattern  # compiled by the JVM in engine.check_sql, the dialect it runs in
    if "max_failure_rate" in item:
        rate = item["max_failure_rate"]
        if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 <= rate <= 1:
            raise bad(f"{label}: `max_failure_rate` is a share of the rows checked, between 0 and 1")
        if rate and action == "drop":
            raise bad(
                f"{label}: a drop rule drops every row it fails; `max_failure_rate` is for warn or fail"
            )
        fields["max_failure_rate"] = float(rate)
    if kind == "finite":
        allow = item.get("allow_nan", False)
        if not isinstance(allow, bool):
            raise bad(f"{label}: `allow_nan` is true or false")
        fields["allow_nan"] = allow
    if kind == "referential":
        fields |= _referential(item, label, bad, columns[0])
    if kind == "freshness":
        age = item.get("max_age")
        match = _AGE_RE.match(str(age)) if age is not None else None
        if match is None:
            raise bad(f"{label}: `max_age` must be like '6 hours' or '2 days', not {age!r}")
        fields["max_age_s"] = float(match.group(1)) * _AGE_UNITS[match.group(2)]
    for key in ("where", "expression"):
        text = item.get(key)
        if text is None:
            if key == "expression" and kind == "expression":
                raise bad(f"{label}: give `expression`, a Spark SQL boolean")
            continue
        if not isinstance(text, str) or not text.strip():
            raise bad(f"{label}: `{key}` must be a Spark SQL boolean expression")
        try:
            fields[key] = expand_sets(text)
        except KeyError as exc:
            raise bad(f"{label}: `{key}` uses ${{{exc.args[0]}}}; known sets: {', '.join(SETS)}") from None
    return Rule(
        name=name,
        type=kind,
        action=str(action),
        description=str(item.get("description") or ""),
        tags=tuple(tags),
        columns=columns,
        **fields,
    )


def _columns(item: dict[str, Any], label: str, bad: Any) -> tuple[str, ...]:
    one, many = item.get("column"), item.get("columns")
    if one is not None and many is not None:
        raise bad(f"{label}: give `column` or `columns`, not both")
    if one is not None:
        many = [one]
    if many is None:
        return ()
    if not isinstance(many, list) or not all(isinstance(c, str) for c in many) or not many:
        raise bad(f"{label}: `columns` must be a non-empty list of column names")
    return tuple(many)


def _referential(item: dict[str, Any], label: str, bad: Any, column: str) -> dict[str, Any]:
    name = item.get("lookup")
    try:
        target = catalog.CATALOG.get(str(name))
    except KeyError:
        lookups = ", ".join(d.name for d in catalog.CATALOG.tables())
        raise bad(f"{label}: lookup {name!r} is not a table of the catalogue; use one of {lookups}") from None
    key = item.get("key") or (target.key[0] if len(target.key) == 1 else column)
    if key not in table_columns(target):
        raise bad(
            f"{label}: column {key!r} is not a column of {target.name}; it has {', '.join(table_columns(target))}"
        )
    return {"lookup": target.name, "key": key}


def rules_for(
    table: catalog.Dataset, rules_dir: str | None = None, path: str | Path | None = None
) -> RuleSet:
    """The rules of ``table``: from ``path`` when given (``validate --rules``), else `rules_file`; for a
    Gold table, the rules derived from its family's declarations, overridden by that file's."""
    path = path if path is not None else rules_file(table, rules_dir)
    if table.layer != "gold":
        return load_rules(table, path)
    family = features.family(table.name.removeprefix("gold."))
    derived = declared_rules(family)
    source = f"(declared in medallion/features: {family.name})"
    if path is None:
        return parse_rules(table, {"table": table.name, "rules": derived}, source)
    data = read_yaml(path)
    parse_rules(table, data, str(path))  # the user's file is checked on its own first
    mine = {item["name"]: item for item in data.get("rules") or []}
    merged = [mine.pop(r["name"], r) for r in derived] + list(mine.values())
    return parse_rules(table, {"rules": merged}, str(path))
