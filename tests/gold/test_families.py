"""Gold's families against their declarations, and the builders' rules on small Silver frames."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest

from medallion.core import catalog
from medallion.core.lake import spark_schema
from medallion.features import FAMILIES, family
from medallion.gold.families import BUILDERS
from medallion.gold.transforms import GoldInputs, feature_dates

UTC = dt.UTC
D = dt.date(2026, 11, 10)
END = dt.datetime(2026, 11, 11, tzinfo=UTC)  # the end of D
SILVER = (
    "event_id string, event_time timestamp, event_date date, event_type string, user_id string, "
    "session_id string, item_id string, item_category string, amount_usd decimal(18,4)"
)


def ev(
    n: int,
    t: dt.datetime,
    etype: str = "click",
    user: str = "u1",
    session: str = "s1",
    item: Any = "i1",
    amount: Any = None,
) -> tuple[Any, ...]:
    money = Decimal(str(amount)) if amount is not None else None
    return (f"e{n}", t, t.date(), etype, user, session, item, "c1" if item else None, money)


def inputs(
    spark: Any, rows: list[tuple[Any, ...]], start: dt.date = D, end: dt.date = D, **settings: Any
) -> GoldInputs:
    from medallion.core.config import GoldConfig

    return GoldInputs(
        spark.createDataFrame(rows, SILVER), feature_dates(spark, start, end), GoldConfig(**settings)
    )


def build(
    spark: Any, name: str, rows: list[tuple[Any, ...]], start: dt.date = D, end: dt.date = D
) -> list[dict[str, Any]]:
    return [r.asDict() for r in BUILDERS[name](inputs(spark, rows, start, end)).collect()]


MIXED = [
    ev(1, END - dt.timedelta(hours=3), "page_view", item="i1"),
    ev(2, END - dt.timedelta(hours=2), "add_to_cart", item="i1"),
    ev(3, END - dt.timedelta(hours=1), "purchase", item="i1", amount=12.5),
    ev(4, END - dt.timedelta(days=3), "click", user="u2", session="s2", item="i2"),
]


@pytest.mark.parametrize("fam", FAMILIES, ids=lambda f: f.name)
def test_every_family_produces_exactly_its_declared_columns_and_types(spark: Any, fam: Any) -> None:
    built = BUILDERS[fam.name](inputs(spark, MIXED, embedding_dim=4))
    table = catalog.gold_table(fam.name)
    got = [(f.name, f.dataType.simpleString()) for f in built.schema.fields]
    declared = spark_schema(table.columns).fields
    want = [(f.name, f.dataType.simpleString()) for f in declared] + [(catalog.FEATURE_DATE, "date")]
    assert got == want
    assert built.count() > 0  # the shape of rows that exist, not of an empty frame


def test_every_feature_states_its_window_and_rule_for_empty_input() -> None:
    for fam in FAMILIES:
        for f in fam.features:
            assert len(f.description) > 30, f.name
            if f.when_empty == "null":
                assert "null" in f.description, f.name
    names = [n for fam in FAMILIES for n in fam.feature_names]
    assert len(names) == len(set(names))  # Feast reads them unqualified


def test_feature_row_uses_only_the_past_and_is_stamped_at_the_end_of_its_day(spark: Any) -> None:
    rows = [
        ev(1, END - dt.timedelta(hours=5), "page_view", item="i1"),
        ev(2, END - dt.timedelta(hours=4), "purchase", item="i1", amount=30),
        ev(3, END - dt.timedelta(days=3), "page_view", session="s2", item="i2"),
        ev(4, END - dt.timedelta(days=7, microseconds=1), "purchase", session="s9", item="i9", amount=999),
        ev(5, END, "purchase", session="s3", item="i3", amount=500),  # the first instant after D
    ]
    out = BUILDERS["user_features"](inputs(spark, rows)).selectExpr(
        "*", "unix_micros(event_timestamp) AS _stamp"
    )
    row = out.collect()[0].asDict()
    assert row["_stamp"] == int(END.timestamp()) * 1_000_000  # zone-free: micros since the epoch
    assert row["feature_date"] == D
    assert (row["events_1d"], row["purchase_events_1d"], row["revenue_1d"]) == (2, 1, 30.0)
    assert (row["events_7d"], row["purchase_events_7d"], row["revenue_7d"]) == (3, 1, 30.0)
    assert (row["events_30d"], row["revenue_30d"], row["avg_order_value_30d"]) == (4, 1029.0, 514.5)
    assert (row["distinct_items_7d"], row["active_days_7d"]) == (2, 2)
    assert row["view_to_purchase_rate_7d"] == 0.5
    assert row["days_since_last_purchase"] == 4 / 24


def test_the_window_edge_an_event_exactly_seven_days_before_the_end_counts_a_microsecond_earlier_does_not(
    spark: Any,
) -> None:
    edge = END - dt.timedelta(days=7)
    rows = [ev(1, edge, user="u1"), ev(2, edge - dt.timedelta(microseconds=1), user="u2")]
    got = {r["user_id"]: r["events_7d"] for r in build(spark, "user_features", rows)}
    assert got == {"u1": 1, "u2": 0}  # u2 still has a row: its event is in the 30-day window


def test_rows_exist_for_entities_active_in_the_longest_window_only(spark: Any) -> None:
    rows = [ev(1, END - dt.timedelta(hours=1)), ev(2, END - dt.timedelta(days=30), user="u2")]
    out = build(spark, "user_features", rows, D - dt.timedelta(days=1), D + dt.timedelta(days=1))
    got = sorted((r["user_id"], r["feature_date"].isoformat(), r["events_1d"]) for r in out)
    assert got == [
        ("u1", "2026-11-10", 1),
        ("u1", "2026-11-11", 0),
        ("u2", "2026-11-09", 0),
        ("u2", "2026-11-10", 0),  # u2's event left the 30-day window on 11-11
    ]


def test_a_purchase_without_a_usd_amount_adds_no_revenue_and_no_order_value(spark: Any) -> None:
    rows = [
        ev(1, END - dt.timedelta(hours=1), "purchase"),
        ev(2, END - dt.timedelta(hours=2), "purchase", amount=4.25),
    ]
    row = build(spark, "user_features", rows)[0]
    assert (row["purchase_events_1d"], row["revenue_1d"], row["avg_order_value_1d"]) == (2, 4.25, 4.25)
    stats = build(spark, "statistical_features", rows)[0]
    assert (stats["order_value_mean_30d"], stats["order_value_std_30d"]) == (4.25, None)


def test_empty_inputs_follow_their_declared_rule(spark: Any) -> None:
    # One search, no item, no purchase, a one-event session, 20 days back: everything the window lacks.
    rows = [ev(1, END - dt.timedelta(days=20), "search", item=None)]
    # the one non-empty input: the 0 s session's duration over 30 days (its std needs two values)
    not_empty = {f"session_duration_{s}_30d" for s in ("mean", "min", "max", "p50", "p90")}
    for name in ("user_features", "session_features", "statistical_features", "temporal_features"):
        row = build(spark, name, rows)[0]
        for f in family(name).features:
            value = row[f.name]
            if f.when_empty == "null" and f.name not in not_empty:
                assert value is None, (name, f.name, value)
            elif f.when_empty == "zero" and f.name.endswith(("_1d", "_7d")):
                assert value == 0, (name, f.name, value)
            elif f.when_empty in ("not_applicable", "zero"):
                assert value is not None, (name, f.name)
    temporal = build(spark, "temporal_features", rows)[0]
    shares = [temporal[f"{p}_share_30d"] for p in ("night", "morning", "afternoon", "evening")]
    assert sorted(shares) == [0.0, 0.0, 0.0, 1.0]  # every bucket present, empty ones 0.0
    assert temporal["hour_entropy_30d"] == 0.0


def test_sessions_are_clipped_to_the_window_and_one_event_sessions_last_zero(spark: Any) -> None:
    edge = END - dt.timedelta(days=7)
    rows = [
        ev(1, edge - dt.timedelta(minutes=10), session="long"),  # before the 7-day window
        ev(2, edge + dt.timedelta(minutes=20), "purchase", session="long"),
        ev(3, edge + dt.timedelta(minutes=50), "page_view", session="long"),
        ev(4, END - dt.timedelta(hours=1), session="bounce"),
    ]
    row = build(spark, "session_features", rows)[0]
    assert row["sessions_7d"] == row["sessions_30d"] == 2
    assert row["avg_session_duration_7d"] == (30 * 60 + 0) / 2  # 'long' inside 7 days: 20 → 50 minutes
    assert row["avg_session_duration_30d"] == (60 * 60 + 0) / 2
    assert row["bounce_rate_7d"] == 0.5
    assert row["time_between_events_mean_7d"] == 30 * 60 / 1
    assert (row["mixed_session_share_7d"], row["browsing_session_share_7d"]) == (0.5, 0.5)


def test_item_rank_and_trend(spark: Any) -> None:
    t = END - dt.timedelta(hours=1)
    rows = [
        ev(1, t, item="a"),
        ev(2, t, item="a"),
        ev(3, t, item="b"),
        ev(4, t - dt.timedelta(days=9), item="c"),
    ]
    got = {r["item_id"]: r for r in build(spark, "item_features", rows)}
    assert {k: r["item_popularity_rank_1d"] for k, r in got.items()} == {"a": 1, "b": 2, "c": 3}
    assert got["c"]["item_growth_7d"] == -1.0 and got["a"]["item_growth_7d"] is None
    assert got["a"]["item_trend_7d_vs_30d"] == (2 / 7) / (2 / 30)


def _builder_name_literals() -> list[str]:
    """``file:line: text`` for each string in a builder that spells a declared feature's name (or the
    windowed shape of one, ``…_{w}d``) other than as the key handed to ``FAMILY.column(...)``."""
    import ast
    import re
    from pathlib import Path

    import medallion.gold.families as package

    declared = {f.name for fam in FAMILIES for f in fam.features}
    windowed_shape = re.compile(r"^[a-z][a-z0-9_]*_(\d+|\{w\})d$")
    found = []
    for path in sorted(Path(package.__file__).parent.glob("*.py")):
        tree = ast.parse(path.read_text())
        keys = {
            id(arg)
            for node in ast.walk(tree)
            if isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "column"
            for arg in ast.walk(node.args[0] if node.args else node)
        }
        for node in ast.walk(tree):
            if id(node) in keys:
                continue
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                text = node.value
            elif isinstance(node, ast.JoinedStr):
                text = "".join(v.value if isinstance(v, ast.Constant) else "{w}" for v in node.values)
            else:
                continue
            if text in declared or windowed_shape.match(text):
                found.append(f"{path.name}:{node.lineno}: {text!r}")
    return found


def test_builders_name_their_features_only_through_the_declaration() -> None:
    """A feature's name is spelled once, by its declaration (`features.model.windowed`); a builder asks
    its family for it (`FAMILY.column(key, days)`), which fails for a feature the family does not
    declare."""
    assert _builder_name_literals() == []
    user = family("user_features")
    assert user.column("events", 7) == "events_7d"
    assert user.column("days_since_last_event") == "days_since_last_event"
    with pytest.raises(KeyError, match="user_features declares no feature 'events_2d'"):
        user.column("events", 2)


@pytest.mark.parametrize(
    ("settings", "complaint"),
    [
        ({"when_empty": "zeroish"}, "when_empty 'zeroish' is not one of"),
        ({"min": 2, "max": 1}, "min 2 is above max 1"),
        ({"max_null_rate": 1.5}, "max_null_rate is a share"),
        ({"dtype": "int32"}, "dtype 'int32' is not one of"),
    ],
)
def test_a_feature_declaration_that_cannot_hold_is_refused(settings: dict[str, Any], complaint: str) -> None:
    from medallion.features.model import Feature

    fields = {"name": "f", "dtype": "int64", "description": "d", **settings}
    with pytest.raises(ValueError, match=complaint):
        Feature(**fields)
