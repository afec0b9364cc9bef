"""Gold's quality rules, derived from the feature declarations in the rule files' own format.

A Gold table needs no rule file: each feature's declaration (`medallion.features.Feature`) says what its
values may be — its range (``min``/``max``; counts are ≥ 0), the share of nulls allowed (``max_null_rate``,
by default none, or any for a feature declared null when its window is empty), whether NaN is allowed
(``when_empty: nan``) — and the family says how many rows a date should have per active entity
(``coverage``). `declared_rules` turns that into rules of the one format (`medallion.quality.rules`),
which the one parser checks and the one engine runs:

==========================  ==============  ===========================================================
name                        type            what
==========================  ==============  ===========================================================
``null_rate:<feature>``     not_null        nulls at most ``null_limit`` of the rows (``max_failure_rate``)
``non_finite:<feature>``    finite          no NaN or ±∞ (in a vector: no such element)
``range:<feature>``         between         finite values within the declared range (numeric features)
``constant:<feature>``      not_constant    more than one value over the run's rows (not vectors)
``unique_key``              unique          one row per entity and feature_date
``row_count``               coverage        rows per date / entities active in the family's window
``freshness``               freshness       the newest feature date ended at most 48 hours ago
==========================  ==============  ===========================================================

The actions below are the shipped defaults, stated here once. A user's ``gold.<family>.yaml`` in
``quality.rules_dir`` (the same format as Silver's file) replaces the rules of the same name and adds its
others. Imports nothing heavy.
"""

from __future__ import annotations

from typing import Any

from medallion.core.catalog import EVENT_TIMESTAMP, FEATURE_DATE
from medallion.features import Feature, FeatureFamily

ACTIONS = {
    "null_rate": "fail",
    "non_finite": "fail",
    "range": "fail",
    "constant": "warn",
    "unique_key": "fail",
    "row_count": "warn",
    "freshness": "warn",
}
"""The action of each derived check: a ``fail`` stops the run before the table is written."""
FRESHNESS = "48 hours"


def _bound(value: float | None) -> str:
    return "−∞" if value is None else f"{value:g}"


def _feature_rules(f: Feature) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = [
        {
            "name": f"null_rate:{f.name}",
            "type": "not_null",
            "column": f.name,
            "action": ACTIONS["null_rate"],
            "max_failure_rate": f.null_limit,
            "description": f"Share of null {f.name} at most {f.null_limit:g}.",
            "tags": ["completeness"],
        }
    ]
    if f.numeric or f.vector:
        allow_nan = f.when_empty == "nan"
        out.append(
            {
                "name": f"non_finite:{f.name}",
                "type": "finite",
                "column": f.name,
                "allow_nan": allow_nan,
                "action": ACTIONS["non_finite"],
                "description": f"No NaN or infinite {f.name}" + (" (NaN allowed)." if allow_nan else "."),
                "tags": ["validity"],
            }
        )
    lo, hi = f.bounds
    if f.numeric and (lo is not None or hi is not None):
        rng = {k: v for k, v in (("min", lo), ("max", hi)) if v is not None}
        out.append(
            {
                "name": f"range:{f.name}",
                "type": "between",
                "column": f.name,
                **rng,
                "action": ACTIONS["range"],
                "description": f"{f.name} within [{_bound(lo)}, {_bound(hi)}].",
                "tags": ["validity"],
            }
        )
    if not f.vector:
        out.append(
            {
                "name": f"constant:{f.name}",
                "type": "not_constant",
                "column": f.name,
                "action": ACTIONS["constant"],
                "description": f"{f.name} takes more than one value over the run's rows.",
                "tags": ["variability"],
            }
        )
    return out


def declared_rules(fam: FeatureFamily) -> list[dict[str, Any]]:
    """The rules of ``fam``'s Gold table, as a rule file's ``rules`` list."""
    key = fam.entity.join_key
    lo, hi = fam.coverage
    table: list[dict[str, Any]] = [
        {
            "name": "unique_key",
            "type": "unique",
            "columns": [key, FEATURE_DATE],
            "action": ACTIONS["unique_key"],
            "description": f"One row per {key} and feature_date.",
            "tags": ["uniqueness"],
        },
        {
            "name": "row_count",
            "type": "coverage",
            "min": lo,
            "max": hi,
            "action": ACTIONS["row_count"],
            "description": f"Rows per feature date between {lo:g} and {hi:g} × the {fam.entity.name}s with "
            f"a Silver event in the family's {fam.window_days}-day window.",
            "tags": ["completeness"],
        },
        {
            "name": "freshness",
            "type": "freshness",
            "column": EVENT_TIMESTAMP,
            "max_age": FRESHNESS,
            "action": ACTIONS["freshness"],
            "description": f"The newest feature_date ended at most {FRESHNESS} ago.",
            "tags": ["timeliness"],
        },
    ]
    return [r for f in fam.features for r in _feature_rules(f)] + table
