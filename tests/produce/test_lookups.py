"""Lookup tables: written from the same seed as the events, covering every id the events use."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pyarrow.parquet as pq

from medallion.core.config import Config
from medallion.core.contract import CURRENCIES
from medallion.produce.generator import generate
from medallion.produce.lookups import LOOKUP_TABLES, build_world, write_lookups

START = datetime(2026, 5, 1, tzinfo=UTC)


def read(lake: Path, name: str) -> list[dict]:
    files = sorted((lake / "lookups" / name).iterdir())
    assert [f.name for f in files] == ["part-00000.parquet"]
    return pq.read_table(files[0]).to_pylist()


def test_lookups_cover_every_id_the_events_use(lake: Path) -> None:
    counts = write_lookups(str(lake), seed=3, users=150, items=800, as_of=START.date())
    assert counts == {"items": 800, "users": 150, "currency_rates": len(CURRENCIES)}
    items = {r["item_id"]: r for r in read(lake, "items")}
    users = {r["user_id"]: r for r in read(lake, "users")}
    rates = {r["currency"]: r["rate_to_usd"] for r in read(lake, "currency_rates")}
    assert set(rates) == set(CURRENCIES) and rates["USD"] == 1.0

    world = build_world(3, 150, 800, as_of=START.date())
    records, _ = generate(world, count=8000, seed=3, start=START, end=START + timedelta(days=2))
    events = [json.loads(v) for _, v, h in records if h is None]
    assert {e["user_id"] for e in events} <= set(users)
    assert {e["item_id"] for e in events if e.get("item_id")} <= set(items)
    for e in events:
        user = users[e["user_id"]]
        assert e["geo"]["country"] == user["country"] and e["geo"]["city"] == user["city"]
        assert user["signup_date"] <= START.date()
        if "price" in e:  # Silver's normalisation: price * rate is the catalog's USD price
            assert e["currency"] == user["currency"]
            usd = e["price"] * rates[e["currency"]]
            assert abs(usd - items[e["item_id"]]["base_price_usd"]) <= max(0.01, 0.01 * usd)


def test_rewriting_replaces_the_tables(lake: Path) -> None:
    write_lookups(str(lake), seed=1, users=50, items=100)
    (lake / "lookups" / "items" / "stale.parquet").write_bytes(b"old")
    write_lookups(str(lake), seed=1, users=20, items=30)
    assert len(read(lake, "items")) == 30 and len(read(lake, "users")) == 20
    assert sorted(p.name for p in (lake / "lookups").iterdir()) == sorted(LOOKUP_TABLES)


def test_write_lookups_from_config(make_config: Callable[..., Config], lake: Path) -> None:
    cfg = make_config(produce__seed=9, produce__users=40)
    assert write_lookups(cfg, items=60) == {"items": 60, "users": 40, "currency_rates": len(CURRENCIES)}
    again = build_world(9, 40, 60)
    assert [r["user_id"] for r in read(lake, "users")] == [u.user_id for u in again.users]
    assert [r["segment"] for r in read(lake, "users")] == [u.segment for u in again.users]


def test_the_world_depends_on_the_seed_only() -> None:
    a, b = build_world(5, 30, 50, as_of=date(2026, 1, 1)), build_world(5, 30, 50, as_of=date(2026, 6, 1))
    assert a.items == b.items and a.rates == b.rates
    assert [u.email for u in a.users] == [u.email for u in b.users]
    assert [(b2.signup_date - b1.signup_date).days for b1, b2 in zip(a.users, b.users, strict=True)] == [
        151
    ] * 30
    assert build_world(6, 30, 50).items != a.items
