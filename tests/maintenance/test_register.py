"""The erasure register and Bronze's check against it: an erased person's records are counted, written
nowhere, and a new erasure reaches a running stream from the micro-batch it writes next."""

from __future__ import annotations

import datetime as dt
import json
import pickle
from pathlib import Path
from typing import Any

import pytest

from medallion.bronze.records import ERASED_RULE, BronzeDecoder
from medallion.maintenance import register
from medallion.pii.scrub import Hmac, normalize_email
from tests.fixtures import records as kafka_records

KEY = b"register-test-key-0123456789"
KAFKA_US = int(dt.datetime(2026, 11, 26, tzinfo=dt.UTC).timestamp() * 1_000_000)


def event(user_id: str, email: str, n: int) -> dict[str, Any]:
    return {
        "schema_version": 1,
        "event_id": f"0bcebe72-1cd7-41e1-a298-ea46814770{n:02d}",
        "event_type": "page_view",
        "event_time": "2026-11-25T12:34:56.789Z",
        "user_id": user_id,
        "session_id": f"s_{user_id}",
        "device": {"os": "iOS", "browser": "Safari", "type": "mobile"},
        "user": {"email": email},
    }


def batch(events: list[dict[str, Any]], bad: list[bytes]) -> Any:
    values = [json.dumps(e).encode() for e in events] + bad
    keys = [e["user_id"].encode() for e in events] + [None] * len(bad)
    return kafka_records.kafka_batch(values, timestamp_us=KAFKA_US, keys=keys)


def test_a_record_of_an_erased_person_is_counted_and_holds_nothing(tmp_path: Path) -> None:
    path = str(tmp_path / "register.json")
    keyed = Hmac(KEY)
    gone, kept = event("u_000777", "Gone@Example.com", 1), event("u_000123", "kept@example.com", 2)
    # Erased by the user id for one, by the email for another record of the same person (another id).
    by_email = event("u_000778", "gone@example.com", 3)
    bad_json = b'{"user_id": "u_000777", "event_type": "nope", '  # does not parse: found in the text
    bad_other = b'{"user_id": "u_000123", "event_type": "nope"}'
    version, erased = register.snapshot(path)
    assert (version, erased) == ("", frozenset())
    decoder = BronzeDecoder(KEY, erased=erased)
    before = decoder(batch([gone, kept, by_email], [bad_json, bad_other])).to_pylist()
    assert [r["error_class"] for r in before] == [None, None, None, "payload", "required"]

    added = register.add(
        path, {keyed("u_000777") or "", keyed(normalize_email("gone@example.com")) or ""}, "req", "run"
    )
    assert added == 2
    assert "u_000777" not in (tmp_path / "register.json").read_text()  # hashes only

    # A decoder holds the hashes the driver gave it; one built from the new snapshot drops the person,
    # also after travelling to a worker (pickled).
    assert decoder(batch([gone], [])).to_pylist()[0]["error_class"] is None
    new_version, new_erased = register.snapshot(path)
    assert new_version != version and len(new_erased) == 2
    fresh = pickle.loads(pickle.dumps(BronzeDecoder(KEY, erased=new_erased)))
    rows = fresh(batch([gone, kept, by_email], [bad_json, bad_other])).to_pylist()
    assert [r["error_class"] for r in rows] == ["erased", None, "erased", "erased", "required"]
    for row in rows:
        if row["error_class"] == "erased":
            assert row["failed_rules"] == [ERASED_RULE]
            assert row["key"] is None and row["payload"] is None and row["user_id"] is None
            assert row["user"] is None or row["user"]["email_hmac"] is None
    assert rows[1]["user_id"] == "u_000123"  # everyone else as before
    assert rows[1] == before[1]


def test_stored_forms_of_an_id_shaped_like_pii_include_its_keyed_hash() -> None:
    keyed = Hmac(KEY)
    forms = register.stored_user_ids(" Ann@Example.com", keyed)
    assert keyed("ann@example.com") in forms and " Ann@Example.com" in forms
    assert register.stored_user_ids("u_000001", keyed) == {"u_000001"}
    assert keyed("+15550109999") in register.stored_user_ids("+1 (555) 010-9999", keyed)
    # The request id is a keyed hash, and none of the lake's keys of the person.
    rid = register.request_id("email", "Ann@Example.com", keyed)
    assert len(rid) == 64 and rid != keyed("ann@example.com")


@pytest.mark.integration
def test_a_running_stream_drops_a_newly_erased_person_from_its_next_batch_and_loses_nothing(
    spark: Any, kafka_broker: Any, make_topic: Any, make_config: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The register changes while the ingest runs (after its first micro-batch is written): the next
    batch is not written but replayed by a restarted query that holds the new hashes. Only Spark's driver
    reads the register (the workers may not reach the lake's storage from Python)."""
    from confluent_kafka import Producer

    from medallion.bronze import job
    from medallion.core.catalog import BRONZE, ERASURE_REGISTER
    from medallion.core.ledger import Ledger
    from tests.e2e.checks import parquet

    topic = make_topic(partitions=1)
    cfg = make_config(
        **{
            "kafka.bootstrap_servers": kafka_broker.bootstrap,
            "kafka.topic": topic,
            "ingest.max_offsets_per_trigger": 4,
        }
    )
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    stamp = (now - dt.timedelta(minutes=5)).isoformat().replace("+00:00", ".000Z")
    events = []
    for n in range(12):  # the person's records at offsets 1, 5 and 9: one in each micro-batch of 4
        person = n % 4 == 1
        e = event("u_000777" if person else f"u_{n:06d}", "gone@example.com" if person else f"k{n}@x.org", n)
        events.append(e | {"event_time": stamp})
    producer = Producer({"bootstrap.servers": kafka_broker.bootstrap})
    for e in events:
        producer.produce(topic, key=e["user_id"].encode(), value=json.dumps(e).encode())
    assert producer.flush(30) == 0

    path = ERASURE_REGISTER.path(cfg)
    keyed = Hmac(KEY)
    write_batch = job.write_batch

    def erase_after_the_first_batch(batch: Any, batch_id: int, **kwargs: Any) -> Any:
        written = write_batch(batch, batch_id, **kwargs)
        if batch_id == 0:
            register.add(path, {keyed(normalize_email("gone@example.com")) or ""}, "req", "run")
        return written

    monkeypatch.setattr(job, "write_batch", erase_after_the_first_batch)
    result = job.run(spark, cfg, pii_key=KEY, run_id="erase", ledger=Ledger(cfg.lake.root), once=True)

    # Batch 1 written once, after the restart, without the person; then batch 2 (an empty batch may
    # follow: the embedded broker's end offset is one batch behind, which the source checks).
    batches = [(b.batch_id, b.input, b.bronze, b.erased) for b in result.batches if b.input]
    assert batches == [(0, 4, 4, 0), (1, 4, 3, 1), (2, 4, 3, 1)]
    assert len({b.batch_id for b in result.batches}) == len(result.batches)
    assert all(b.reconciled for b in result.batches)
    assert result.total("input") == 12 and result.total("erased") == 2
    bronze = parquet(BRONZE.path(cfg)).to_pandas()
    assert sorted(bronze["event_id"]) == sorted(
        e["event_id"] for n, e in enumerate(events) if n not in (5, 9)
    )
