"""Another client's events through Bronze on the embedded broker: a plain confluent-kafka producer (not
our generator), session ids made of digits or carrying user and hour, user ids that are emails, and PII
in every free-text member. Ids reach Bronze exactly as sent (an email id as its keyed hash), and no PII
is anywhere in the lake in clear."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from medallion.bronze import job, rows
from medallion.core import catalog
from medallion.core.contract import format_event_time
from medallion.core.ledger import Ledger
from tests.e2e.checks import parquet
from tests.fixtures.broker import produce

KEY = b"ids-end-to-end-key-0123456789"
USERS = ["Jane.Doe@Example.com", "o.brien+shop@mail.example.org", "müller@firma.de"]
SESSIONS = ["2026120300123456", "2026120300123457", "s-u_100280-2026120300", "s_a5551234567"]
PHONE, IP = "+44 20 7946 0958", "192.168.1.10"
CLEAR = [
    *USERS,
    *(u.lower() for u in USERS),
    "josé@example.com",
    "jane.doe%40example.com",
    PHONE,
    "442079460958",
    "555.123.4567",  # its digits alone are in s_a5551234567, an id kept as sent
    IP,
    "203.0.113.77",
    "John Smith",
    "Zoë Client",
    "48.856613",
    "2.352222",
]


def _event(n: int, user: str, session: str, at: dt.datetime) -> dict[str, Any]:
    return {
        "schema_version": 1,
        "event_id": str(uuid.UUID(int=n + 1)),
        "event_type": "search" if n % 5 == 0 else "page_view",
        "event_time": format_event_time(at),
        "user_id": user,
        "session_id": session,
        **({"search_query": "john smith 555.123.4567"} if n % 5 == 0 else {}),
        "device": {"type": "mobile", "os": f"iOS call {PHONE}", "browser": "Safari josé@example.com"},
        "geo": {"country": "GB", "city": f"host{IP}", "lat": 48.856613, "lon": 2.352222},
        "context": {
            "ip": "203.0.113.77",
            "user_agent": "Mozilla/5.0 Chrome/124.0.0.0 call 555.123.4567",
            "referrer": "https://t.co/r/jane.doe%40example.com?email=jane.doe@example.com",
            "page": f"/users/{user}/orders",
        },
        "user": {"email": user, "phone": PHONE, "name": "Zoë Client"},
    }


@pytest.mark.integration
def test_ids_arrive_as_sent_and_no_pii_lands_in_clear(
    spark: Any, kafka_broker: Any, make_topic: Any, make_config: Any
) -> None:
    topic = make_topic(2)
    start = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(hours=2)
    sent = [
        _event(n, USERS[n % len(USERS)], SESSIONS[n % len(SESSIONS)], start + dt.timedelta(seconds=40 * n))
        for n in range(48)
    ]
    values = [json.dumps(e, ensure_ascii=False).encode() for e in sent]
    # Rejected ones: a member the contract does not allow, an escaped member name, exact coordinates.
    bad = [
        json.dumps({**sent[0], "event_id": "bad-1", "device": {"type": "watch"}}).encode(),
        json.dumps({**sent[1], "event_id": "bad-2", "geo": {"country": "GB", "lat": 91.5}})
        .replace('"name"', '"n\\u0061me"')
        .encode(),
        b'{"user_id": "Jane.Doe@Example.com", "user": {"name": "John Smith", "phone": "'
        + PHONE.encode()
        + b'"',
    ]
    produce(
        kafka_broker.bootstrap,
        topic,
        [(n % 2, e["user_id"].encode(), v) for n, (e, v) in enumerate(zip(sent, values, strict=True))]
        + [(0, USERS[0].encode(), v) for v in bad],
    )
    cfg = make_config(**{"kafka.bootstrap_servers": kafka_broker.bootstrap, "kafka.topic": topic})
    result = job.run(spark, cfg, pii_key=KEY, run_id="ids", ledger=Ledger(cfg.lake.root), once=True)
    assert result.total("input") == len(sent) + len(bad) and result.total("dlq") == len(bad)

    hashed = rows.Scrubbers(KEY).email
    bronze = {r["event_id"]: r for r in parquet(catalog.BRONZE.path(cfg)).to_pylist()}
    assert len(bronze) == len(sent)
    for event in sent:
        row = bronze[event["event_id"]]
        assert row["session_id"] == event["session_id"]  # byte for byte
        assert row["user_id"] == hashed(event["user_id"]) == row["user"]["email_hmac"]  # joinable
    assert len({r["user_id"] for r in bronze.values()}) == len(USERS)
    assert len({r["session_id"] for r in bronze.values()}) == len(SESSIONS)

    dlq = parquet(catalog.BRONZE_DLQ.path(cfg)).to_pylist()
    assert len(dlq) == len(bad) and all(r["payload"] for r in dlq)
    _assert_nothing_in_clear(Path(cfg.lake.root))


def _assert_nothing_in_clear(lake: Path) -> None:
    """Every file of the lake (tables, DLQ, ledger, checkpoint, state) searched for the planted values."""
    scanned = 0
    for path in lake.rglob("*"):
        if not path.is_file():
            continue
        if path.suffix == ".parquet":
            text = json.dumps(pq.read_table(path).to_pylist(), default=str, ensure_ascii=False)
        else:
            text = path.read_bytes().decode("utf-8", "replace")
        scanned += 1
        for clear in CLEAR:
            assert clear not in text, (clear, path)
    assert scanned > 10
