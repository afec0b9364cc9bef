"""`medallion gold --incremental --feature-type user_features`, as the README writes it, through the CLI.

Gold's user_features is first built for every date Silver feeds; then Silver rebuilds one recent date
(a late purchase and a new user arrive). The command must rewrite exactly the user_features dates whose
windows cover that Silver date, with the values a plain-Python count of the events gives, leave every
other user_features date as it was (the same files, byte for byte), and write no other family.
"""

from __future__ import annotations

import datetime as dt
import shutil
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow.dataset as ds

from medallion.cli.main import run_app
from medallion.core import catalog, lakefs
from medallion.core.ledger import Ledger
from medallion.features import FAMILIES
from medallion.features.user import USER_FEATURES
from medallion.operations import pipeline
from tests.conftest import config_dir_of
from tests.gold import silver_data

TODAY = dt.datetime.now(dt.UTC).date()
CHANGED = TODAY - dt.timedelta(days=2)  # the Silver date the second Silver run rewrites
OLD = TODAY - dt.timedelta(days=9)
Event = tuple[str, str, dt.datetime, str, Decimal | None]


def at(day: dt.date, hour: int) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour), dt.UTC)


def end_of(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), dt.UTC)


def silver_rows(events: list[Event]) -> list[dict[str, Any]]:
    g = silver_data.Generator(seed=5)
    for user, session, t, kind, _ in events:
        g.event(user, session, t, kind, "i001")
    for row, (*_, amount) in zip(g.rows, events, strict=True):  # the amounts this test sets, not random ones
        row["amount_usd"] = row["price"] = amount
        row["quantity"], row["currency"] = (1, "USD") if amount is not None else (None, None)
    return g.rows


def files(cfg: Any, name: str) -> dict[str, bytes]:
    """Every file of a Gold table by its path under the table: a rewritten partition has new names."""
    root = Path(catalog.gold_table(name).path(cfg))
    if not root.is_dir():
        return {}
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*.parquet")}


def user_rows(cfg: Any, day: dt.date) -> dict[str, dict[str, Any]]:
    path = catalog.gold_table(USER_FEATURES.name).partition_path(
        cfg, **{catalog.FEATURE_DATE: day.isoformat()}
    )
    return {r["user_id"]: r for r in ds.dataset(path, format="parquet").to_table().to_pylist()}


def expected(events: list[Event], user: str, day: dt.date) -> dict[str, Any]:
    """The oracle: counts and revenue over [end of D - w days, end of D), from the events as given."""
    end = end_of(day)
    out: dict[str, Any] = {}
    for w in (1, 7, 30):
        mine = [e for e in events if e[0] == user and end - dt.timedelta(days=w) <= e[2] < end]
        out[f"events_{w}d"] = len(mine)
        out[f"purchase_events_{w}d"] = sum(e[3] == "purchase" for e in mine)
        out[f"click_events_{w}d"] = sum(e[3] == "click" for e in mine)
        out[f"revenue_{w}d"] = float(
            sum((e[4] or Decimal(0) for e in mine if e[3] == "purchase"), Decimal(0))
        )
    return out


def test_incremental_gold_of_one_family_rewrites_only_its_dates_fed_by_changed_silver(
    spark: Any, make_config: Any, lake: Path, tmp_path: Path
) -> None:
    cfg = make_config()
    ledger = Ledger(str(lake))
    first: list[Event] = [
        ("u1", "s1", at(OLD, 9), "click", None),
        ("u1", "s2", at(CHANGED, 8), "purchase", Decimal("12.50")),
    ]
    silver_data.write_silver(catalog.SILVER.path(cfg), silver_rows(first))
    with ledger.run("silver", dates=f"{OLD},{CHANGED}"):
        pass
    built = pipeline.gold(cfg, families=[USER_FEATURES.name], incremental=True)  # consumes both dates
    assert built.dates == [(OLD + dt.timedelta(days=i)).isoformat() for i in range(10)]
    user_before = files(cfg, USER_FEATURES.name)

    # Silver rebuilds CHANGED: a late purchase of u1's and a new user's events arrive on that date.
    second = first + [
        ("u1", "s3", at(CHANGED, 20), "purchase", Decimal("7.25")),
        ("u2", "s4", at(CHANGED, 21), "click", None),
        ("u2", "s4", at(CHANGED, 22), "purchase", None),  # a purchase without a USD amount adds 0
    ]
    shutil.rmtree(catalog.SILVER.path(cfg))
    silver_data.write_silver(catalog.SILVER.path(cfg), silver_rows(second))
    with ledger.run("silver", dates=CHANGED.isoformat()):
        pass

    folder = config_dir_of(cfg, tmp_path / "config")
    code = run_app(["--config-dir", str(folder), "gold", "--incremental", "--feature-type", "user_features"])
    assert code == 0

    others = [f.name for f in FAMILIES if f is not USER_FEATURES and files(cfg, f.name)]
    assert others == [], f"families not named were written: {others}"
    fed = [CHANGED + dt.timedelta(days=i) for i in range(3)]  # CHANGED's windows, up to today
    user_after = files(cfg, USER_FEATURES.name)
    partition = f"{catalog.FEATURE_DATE}="
    untouched = {p: b for p, b in user_before.items() if not any(f"{partition}{d}/" in p for d in fed)}
    assert {p: b for p, b in user_after.items() if p in untouched} == untouched
    rewritten = set(user_after) - set(untouched)
    assert {p.split("/")[0] for p in rewritten} == {f"{partition}{d}" for d in fed}
    assert not rewritten & set(user_before), "a fed date kept its old file"
    assert lakefs.list_partitions(catalog.gold_table(USER_FEATURES.name).path(cfg), catalog.FEATURE_DATE) == [
        (OLD + dt.timedelta(days=i)).isoformat() for i in range(10)
    ]
    for day in fed:
        rows = user_rows(cfg, day)
        assert sorted(rows) == ["u1", "u2"], day
        for user in ("u1", "u2"):
            got = {k: rows[user][k] for k in expected(second, user, day)}
            assert got == expected(second, user, day), (user, day)
    assert user_rows(cfg, CHANGED)["u1"]["revenue_1d"] == 19.75  # both purchases, the late one included
