"""README "Your own events", run as written: another client's events, the user's own lookups, no `produce`.

The events come from a plain confluent-kafka producer, as a shop's backend would send them: UUID user
ids, SKU item ids, ULID-like event ids, its own producer settings (lz4, idempotence), one resent record.
The README's command block runs line by line through the CLI's entry point (in this process, so that
the stages share the session's Spark instead of starting one JVM each), with the README's exports
replaced by this test's broker, topic, lake and Redis. Then Bronze, Silver, Gold and the online store
are checked against the events as sent.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import random
import re
import shlex
import uuid
from pathlib import Path
from typing import Any

import pytest

from medallion import serving
from medallion.cli.app import STATE
from medallion.cli.main import run_app
from medallion.core import catalog, lakefs
from medallion.core.config import load_config
from medallion.features.user import USER_FEATURES
from tests.conftest import CONFIG_DIR, REPO
from tests.e2e.checks import parquet, same_value, topic_records

SKUS = [f"SKU-{n:04d}-{c}" for n, c in ((17, "BLK"), (42, "RED"), (73, "XL"), (99, "S"))]
PRICES = {sku: 10.0 + 7.5 * i for i, sku in enumerate(SKUS)}
EUR_TO_USD = 1.08


def readme_commands() -> list[str]:
    """The last bash block of the README's "Your own events" section, one command per line."""
    text = (REPO / "README.md").read_text()
    section = text.split("## Your own events", 1)[1].split("\n## ", 1)[0]
    block = re.findall(r"```bash\n(.*?)```", section, re.S)[-1]
    return [line.split("  #", 1)[0].strip() for line in block.splitlines() if line.strip()]


def their_events(users: list[str], now: dt.datetime) -> list[dict[str, Any]]:
    rng = random.Random(22)
    events = []
    for n in range(60):
        at = now - dt.timedelta(hours=30) + dt.timedelta(minutes=29 * n)
        user = users[n % len(users)]
        kind = ["page_view", "click", "add_to_cart", "purchase"][n % 4]
        event: dict[str, Any] = {
            "schema_version": 1,
            "event_id": f"01JE{n:04d}{uuid.uuid4().hex[:18].upper()}",
            "event_type": kind,
            "event_time": at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z",
            "user_id": user,
            "session_id": f"{user[:8]}:{n // 8}",
            "item_id": rng.choice(SKUS),
            "device": {"type": "mobile", "os": "Android"},
            "context": {"ip": f"198.51.100.{n}", "user_agent": "shop-app/5.1 (Android 14)"},
        }
        if kind in ("add_to_cart", "purchase"):
            currency = "EUR" if n % 8 < 4 else "USD"
            usd = PRICES[event["item_id"]]
            event |= {
                "price": round(usd / EUR_TO_USD, 2) if currency == "EUR" else usd,
                "quantity": 1 + n % 3,
                "currency": currency,
            }
        events.append(event)
    return events


def write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    with path.open("w", newline="") as out:
        writer = csv.DictWriter(out, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


@pytest.mark.e2e
def test_your_own_events_section_runs_as_written(
    spark: Any,
    kafka_broker: Any,
    make_topic: Any,
    redis_db: Any,
    lake: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from confluent_kafka import Producer

    topic = make_topic(2)
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    users = [str(uuid.UUID(int=random.Random(n).getrandbits(128), version=4)) for n in range(5)]
    events = their_events(users, now)

    # Their producer: their settings, keyed by user, one record resent (same event_id).
    producer = Producer(
        {"bootstrap.servers": kafka_broker.bootstrap, "compression.type": "lz4", "linger.ms": 5}
    )
    for event in [*events, events[7]]:
        producer.produce(topic, key=event["user_id"].encode(), value=json.dumps(event).encode())
    assert producer.flush(30) == 0

    # Their files, as the README names them.
    monkeypatch.chdir(tmp_path)
    (tmp_path / "samples.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events[:4]))
    write_csv(
        tmp_path / "items.csv",
        [
            {
                "item_id": s,
                "category": ["shoes", "hats"][i % 2],
                "brand": "Acme",
                "base_price_usd": PRICES[s],
                "popularity_rank": i + 1,
            }
            for i, s in enumerate(SKUS)
        ],
    )
    write_csv(
        tmp_path / "users.csv",
        [
            {
                "user_id": u,
                "signup_date": "2025-03-0" + str(i + 1),
                "country": "DE",
                "city": "Berlin",
                "segment": "regular",
                "currency": "EUR",
            }
            for i, u in enumerate(users)
        ],
    )
    start = (now - dt.timedelta(days=10)).date().isoformat()
    write_csv(
        tmp_path / "currency_rates.csv",
        [
            {"currency": "USD", "rate_to_usd": 1.0, "as_of_date": start},
            {"currency": "EUR", "rate_to_usd": EUR_TO_USD, "as_of_date": start},
        ],
    )

    # The README's exports, pointed at this test's services.
    env = {
        "MEDALLION_CONFIG_DIR": str(CONFIG_DIR),
        "MEDALLION__KAFKA__BOOTSTRAP_SERVERS": kafka_broker.bootstrap,
        "MEDALLION__KAFKA__TOPIC": topic,
        "MEDALLION__LAKE__ROOT": str(lake),
        "MEDALLION__SPARK__MASTER": "local[2]",
        "MEDALLION__SPARK__SHUFFLE_PARTITIONS": "2",
        "MEDALLION__SERVING__ONLINE_STORE": "redis",
        "MEDALLION__SERVING__REDIS_URL": redis_db.url,
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)

    commands = readme_commands()
    assert commands[0].startswith("medallion contract check") and "medallion materialize" in commands
    for command in commands:
        args = shlex.split(command)
        assert args[0] == "medallion", command
        STATE._config = None  # each line is its own process in the README
        code = run_app(args[1:])
        out = capsys.readouterr()
        assert code == 0, (command, out.out[-2000:], out.err[-2000:])
        if args[1:3] == ["contract", "check"]:
            assert out.out.splitlines()[-1] == "4 records: 4 valid, 0 invalid"

    cfg = load_config("local", CONFIG_DIR, environ=dict(env))
    sent = {e["event_id"]: e for e in events}
    assert len(topic_records(kafka_broker.bootstrap, topic)) == 61
    bronze = parquet(catalog.BRONZE.path(cfg)).to_pandas()
    assert sorted(bronze["event_id"]) == sorted(sent)  # each once: the resent record was a duplicate
    assert set(bronze["user_id"]) == set(users) and set(bronze["item_id"]) == {e["item_id"] for e in events}
    assert not lakefs.exists(catalog.BRONZE_DLQ.path(cfg))

    silver = parquet(catalog.SILVER.path(cfg)).to_pandas().set_index("event_id")
    assert sorted(silver.index) == sorted(sent)
    for event_id, row in silver.iterrows():
        event = sent[event_id]
        assert row["item_brand"] == "Acme" and row["user_segment"] == "regular"
        if "price" in event:  # the amount in USD, recomputed from the event as sent
            expected = (
                event["price"] * event["quantity"] * (EUR_TO_USD if event["currency"] == "EUR" else 1.0)
            )
            assert abs(float(row["amount_usd"]) - expected) < 0.01, (event, row["amount_usd"])

    # Gold's newest row per user, recomputed from the events as sent; the online store serves that row.
    gold = parquet(catalog.gold_table(USER_FEATURES.name).path(cfg)).to_pandas()
    latest = gold.sort_values("event_timestamp").groupby("user_id").tail(1).set_index("user_id")
    assert set(latest.index) == set(users)
    online = serving.online_features(cfg, users)
    for user in users:
        row = latest.loc[user]
        until = row["event_timestamp"].to_pydatetime().astimezone(dt.UTC)
        mine = [e for e in events if e["user_id"] == user and _time(e) < until]
        bought = [e for e in mine if e["event_type"] == "purchase"]
        revenue = sum(
            e["price"] * e["quantity"] * (EUR_TO_USD if e["currency"] == "EUR" else 1.0) for e in bought
        )
        assert row["events_30d"] == len(mine) > 0, (user, row["events_30d"], len(mine))
        assert abs(row["revenue_30d"] - revenue) < 0.01, (user, row["revenue_30d"], revenue)
        for feature in USER_FEATURES.feature_names:
            assert same_value(online[user][feature], row[feature]), (
                user,
                feature,
                online[user][feature],
                row[feature],
            )


def _time(event: dict[str, Any]) -> dt.datetime:
    return dt.datetime.fromisoformat(event["event_time"])
