"""`forget` on a real lake (embedded broker, Spark, Redis): the person is gone from every byte of the
lake and from Redis, everyone else is as before, a replay of Kafka cannot bring them back, and a second
request finds nothing."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from confluent_kafka import Producer

from medallion.core import catalog
from medallion.core.ledger import Ledger
from medallion.maintenance import jobs
from medallion.maintenance.files import data_files, read_file
from medallion.operations import pipeline
from medallion.pii.keys import pii_key
from medallion.pii.scrub import Hmac, normalize_email, normalize_phone

# A person of another client's shape: an id that is an email, another id tied to them by their email.
TARGET_ID, TARGET_ID2 = "Target.Person@Example.com", "tp-0001"
TARGET_EMAIL, TARGET_PHONE = "Target@Example.com", "+1 (555) 010-9999"


def target_records(now: dt.datetime) -> list[tuple[bytes, bytes]]:
    """Valid events of the target under both ids, and rejected ones (one that does not even parse)."""
    out = []
    for n, user in enumerate([TARGET_ID] * 3 + [TARGET_ID2] * 2):
        event = {
            "schema_version": 1,
            "event_id": f"target-{n}",
            "event_type": "page_view",
            "event_time": (now - dt.timedelta(hours=n + 1)).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
            "user_id": user,
            "session_id": f"session-{user}",
            "device": {"os": "iOS", "browser": "Safari", "type": "mobile"},
            "user": {"email": TARGET_EMAIL.lower() if n % 2 else TARGET_EMAIL, "phone": TARGET_PHONE},
        }
        out.append((user.encode(), json.dumps(event).encode()))
    # (An email-shaped id is redacted in a DLQ payload: the alias is what identifies these.)
    bad = {"user_id": TARGET_ID2, "event_type": "bogus", "event_time": "yesterday"}
    out.append((TARGET_ID2.encode(), json.dumps(bad).encode()))
    out.append((b"", b'{"user_id": "' + TARGET_ID2.encode() + b'", "event_type": '))
    return out


def send(bootstrap: str, topic: str, records: list[tuple[bytes, bytes]]) -> None:
    producer = Producer({"bootstrap.servers": bootstrap})
    for key, value in records:
        producer.produce(topic, key=key or None, value=value)
    assert producer.flush(30) == 0


def rows_by_event(path: str) -> dict[str, str]:
    """Every row of a table as canonical JSON, by event id (partition columns excluded)."""
    out = {}
    for f in data_files(path):
        for row in read_file(f.path).to_pylist():
            out[row["event_id"]] = json.dumps(row, default=str, sort_keys=True)
    return out


def lake_texts(root: Path) -> dict[str, bytes]:
    """Every file of the lake as its bytes, and each Parquet file also as its decoded rows."""
    out = {}
    for path in root.rglob("*"):
        if not path.is_file():
            continue
        out[str(path)] = path.read_bytes()
        if path.name.endswith(".parquet"):
            rows = pq.ParquetFile(path).read().to_pylist()
            out[f"{path} (rows)"] = json.dumps(rows, default=str).encode()
    return out


def holders(texts: dict[str, bytes], needle: str) -> list[str]:
    return [name for name, data in texts.items() if needle.encode() in data]


@pytest.mark.integration
def test_forget_erases_a_person_for_good(
    spark: Any, kafka_broker: Any, make_topic: Any, redis_db: Any, make_config: Any, lake: Path
) -> None:
    topic = make_topic(partitions=2)
    cfg = make_config(
        **{
            "kafka.bootstrap_servers": kafka_broker.bootstrap,
            "kafka.topic": topic,
            "serving.online_store": "redis",
            "serving.redis_url": redis_db.url,
            "produce.users": 30,
        }
    )
    now = dt.datetime.now(dt.UTC)
    send(kafka_broker.bootstrap, topic, target_records(now))
    # The stages one by one, Gold and the online store for the user features only (time).
    pipeline.produce(cfg, count=300, seed=11, bad_ratio=0.05, days=2, start_date=now.date() - dt.timedelta(1))
    pipeline.ingest(cfg)
    pipeline.silver(cfg, now.date() - dt.timedelta(1), now.date())
    pipeline.gold(cfg, now.date() - dt.timedelta(1), now.date(), families=["user_features"])
    pipeline.materialize(cfg, feature_views=["user_features"])
    keyed = Hmac(pii_key(cfg))

    bronze = pq.read_table(catalog.BRONZE.path(cfg)).to_pandas()
    generated = bronze[bronze.user_id.str.startswith("u_")].user_id.value_counts().index[0]
    g_rows = bronze[bronze.user_id == generated]
    g_hashes = {u[k] for u in g_rows.user for k in ("email_hmac", "phone_hmac") if u and u[k]}
    t_hashes = {keyed(normalize_email(TARGET_EMAIL)), keyed(normalize_phone(TARGET_PHONE))}
    t_ids = set(bronze.user_id) - set(bronze[bronze.user_id.str.startswith("u_")].user_id)
    assert len(t_ids) == 2  # the target's events are in Bronze, under ids stored in some form
    before = {t: rows_by_event(t.path(cfg)) for t in (catalog.BRONZE, catalog.SILVER)}
    redis = redis_db.server.client(int(redis_db))
    assert any(generated.encode() in k for k in redis.scan_iter())

    dry = jobs.forget(cfg, user_id=generated, dry_run=True)
    assert dry.rows > 0 and not Path(catalog.ERASURE_REGISTER.path(cfg)).exists()
    by_id = jobs.forget(cfg, user_id=generated)
    by_email = jobs.forget(cfg, email=TARGET_EMAIL.upper())
    assert by_id.counts() == {k: v for k, v in dry.counts().items()}
    found = by_email.counts()
    assert found[catalog.BRONZE.name] == 5 and found[catalog.BRONZE_DLQ.name] == 2
    # Silver keeps or rejects (an unknown user) the target's events: either way they were there.
    assert found.get(catalog.SILVER.name, 0) + found.get(catalog.SILVER_DLQ.name, 0) == 5

    # No byte of the lake holds a clear value; only the register holds the keyed hashes.
    texts = lake_texts(lake)
    for clear in (generated, TARGET_ID, TARGET_ID.lower(), TARGET_ID2, TARGET_EMAIL, TARGET_EMAIL.lower()):
        assert holders(texts, clear) == [], clear
    for stored in t_ids:
        assert holders(texts, stored) == [], stored
    register = catalog.ERASURE_REGISTER.path(cfg)
    for hashed in g_hashes | t_hashes | {keyed(u) for u in t_ids | {generated}}:
        assert holders(texts, str(hashed)) in ([register], []), hashed
    assert all(generated.encode() not in k and b"Target" not in k for k in redis.scan_iter())

    # Everyone else exactly as before, and Spark still reads the rewritten files.
    gone = t_ids | {generated}
    for table, rows in before.items():
        after = rows_by_event(table.path(cfg))
        kept = {e: r for e, r in rows.items() if json.loads(r)["user_id"] not in gone}
        assert after == kept and len(kept) < len(rows)
        assert spark.read.parquet(table.path(cfg)).count() == len(kept)

    # The ledger names the requests by their id only (checked with every other file above).
    records = Ledger(cfg.lake.root).records("forget")
    assert {r.inputs["request"] for r in records} == {by_id.request, by_email.request}

    # A replay of Kafka from the start (a reset checkpoint) does not bring them back.
    shutil.rmtree(catalog.INGEST_CHECKPOINT.path(cfg))
    Path(catalog.BRONZE_OWNER.path(cfg)).unlink()
    replay = pipeline.ingest(cfg)
    theirs = sum(json.loads(r)["user_id"] in gone for r in before[catalog.BRONZE].values())
    assert replay.total("erased") >= theirs + 2 and all(b.reconciled for b in replay.batches)
    assert set(rows_by_event(catalog.BRONZE.path(cfg))) >= set(before[catalog.BRONZE]) - {
        e for e, r in before[catalog.BRONZE].items() if json.loads(r)["user_id"] in gone
    }
    texts = lake_texts(lake)
    for clear in (generated, TARGET_ID, TARGET_ID2, *t_ids):
        assert holders(texts, clear) == [], clear

    # A second request finds nothing, and says so.
    again = jobs.forget(cfg, email=TARGET_EMAIL)
    assert again.rows == 0 and again.found == []
    digest = hashlib.sha256(Path(register).read_bytes()).hexdigest()
    assert jobs.forget(cfg, user_id=generated, dry_run=True).rows == 0
    assert hashlib.sha256(Path(register).read_bytes()).hexdigest() == digest  # a dry run writes nothing
