"""The Bronze row derived from the contract, and PII wherever it hides in the strings Bronze keeps."""

from __future__ import annotations

import copy
import datetime as dt
import json
import re
from typing import Any

import pyarrow as pa
from pyspark.sql import types as T

from medallion.bronze import rows
from medallion.bronze.records import BRONZE_FIELDS, BronzeDecoder
from medallion.core.contract import EVENT_SCHEMA
from tests.fixtures import records as kafka_records

KEY = b"rows-test-key-0123456789"
KAFKA_US = int(dt.datetime(2026, 11, 26, tzinfo=dt.UTC).timestamp() * 1_000_000)
EVENT: dict[str, Any] = {
    "schema_version": 1,
    "event_id": "0bcebe72-1cd7-41e1-a298-ea4681477ae7",
    "event_type": "page_view",
    "event_time": "2026-11-25T12:34:56.789Z",
    "user_id": "u_000123",
    "session_id": "s_303dd8fb83e4",
    "item_id": "i_00042",
    "device": {"os": "iOS", "browser": "Safari", "type": "mobile"},
    "geo": {"country": "BR", "city": "São Paulo", "lat": -23.55, "lon": -46.63},
    "context": {"ip": "203.0.113.7", "user_agent": "Mozilla/5.0", "referrer": "https://t.co/", "page": "/p"},
    "user": {"email": "zoe@example.com", "phone": "+5511987654321", "name": "Zoë"},
}
PLANTED = {
    "email": "jane.doe+shop@mail.example.org",
    "phone": "+44 20 7946 0958",
    "ipv4": "198.51.100.23",
    "ipv6": "2001:db8:1234:5678::9",
    "short ipv6": "fe80::1",
}


def kafka_batch(values: list[bytes]) -> pa.RecordBatch:
    return kafka_records.kafka_batch(list(values), timestamp_us=KAFKA_US, keys=[b"u_000123"] * len(values))


def kept_strings() -> list[tuple[str, ...]]:
    """Every string member Bronze keeps as text (not one whose shape the contract fixes), by the plan."""
    return [
        tuple(path.split("."))
        for path, stored, _ in rows._plan(EVENT_SCHEMA)
        if stored.how in ("text", "lower_text", "url")
    ]


def test_the_bronze_row_is_the_contract_as_stored() -> None:
    names = [f.name for f in BRONZE_FIELDS]
    assert names[:14] == [n for n in EVENT_SCHEMA["properties"] if n != "search_query"]
    types = {f.name: f.dataType for f in BRONZE_FIELDS}
    assert types["schema_version"] == T.IntegerType() and types["quantity"] == T.LongType()
    assert types["event_time"] == T.TimestampType() and types["price"] == T.DoubleType()
    assert types["context"] == T.StructType(
        [T.StructField(n, T.StringType()) for n in ("ip_prefix", "user_agent", "referrer", "page")]
    )
    assert types["user"] == T.StructType(
        [T.StructField(n, T.StringType()) for n in ("email_hmac", "phone_hmac")]
    )
    assert kept_strings() == [  # ids are identifiers: kept as sent, or hashed whole (not free text)
        ("device", "os"),
        ("device", "browser"),
        ("geo", "city"),
        ("context", "user_agent"),
        ("context", "referrer"),
        ("context", "page"),
    ]


def test_a_new_member_of_the_contract_becomes_a_column() -> None:
    grown = copy.deepcopy(EVENT_SCHEMA)
    grown["properties"]["coupon"] = {"type": ["string", "null"], "maxLength": 32}
    grown["properties"]["geo"]["properties"]["region"] = {"type": "string"}
    fields = {f.name: f.dataType for f in rows.bronze_fields(grown)}
    assert fields["coupon"] == T.StringType()
    assert "region" in fields["geo"].fieldNames()  # type: ignore[attr-defined]


def test_pii_planted_in_every_kept_string_never_lands_in_clear() -> None:
    values = []
    for path in kept_strings():
        for kind, pii in PLANTED.items():
            event = copy.deepcopy(EVENT)
            target = event
            for step in path[:-1]:
                target = target[step]
            text = f"/a/{pii}/b" if kind != "phone" else f"call {pii} now"
            target[path[-1]] = text  # within every member's maxLength (64 at least)
            values.append((path, kind, json.dumps(event, ensure_ascii=False).encode()))
    decoded = BronzeDecoder(KEY)(kafka_batch([v for _, _, v in values])).to_pylist()
    for (path, kind, _), row in zip(values, decoded, strict=True):
        assert row["error_class"] is None, (path, kind, row["failed_rules"])
        stored = json.dumps(row, default=str, ensure_ascii=False)
        pii = PLANTED[kind]
        assert pii not in stored and pii.lower() not in stored, (path, kind, stored)
    # An address's prefix may stay (IPv4 keeps its /24, as the ip member does); never the whole address.
    assert not re.search(r"[\w.+-]+@[\w-]+\.", json.dumps(decoded, default=str))


def test_pii_in_a_rejected_record_is_redacted_too() -> None:
    event = copy.deepcopy(EVENT)
    event["context"]["page"] = f"/u/{PLANTED['email']}/orders"
    event["geo"]["city"] = PLANTED["phone"]
    event["device"]["type"] = "watch"  # breaks the contract: the record goes to the DLQ
    row = BronzeDecoder(KEY)(kafka_batch([json.dumps(event).encode()])).to_pylist()[0]
    assert row["failed_rules"] == ["enum:device.type"]
    for pii in (PLANTED["email"], PLANTED["phone"], "zoe@example.com", "+5511987654321", "Zoë"):
        assert pii not in row["payload"], (pii, row["payload"])


def test_search_text_and_names_are_dropped() -> None:
    search = {k: v for k, v in EVENT.items() if k != "item_id"} | {
        "event_type": "search",
        "search_query": "jane doe",
    }
    row = BronzeDecoder(KEY)(kafka_batch([json.dumps(search).encode()])).to_pylist()[0]
    assert row["error_class"] is None and row["_scrubbed"] == 15
    text = json.dumps(row, default=str, ensure_ascii=False)
    assert "jane doe" not in text and "Zoë" not in text


def test_ids_are_kept_as_sent_or_hashed_whole() -> None:
    ids = [p for p, stored, _ in rows._plan(EVENT_SCHEMA) if stored.how == "identifier"]
    assert ids == ["event_id", "user_id", "session_id", "item_id"]
    sessions = [
        "2026120300123456",
        "s-u_100280-2026120300",
        "s_a5551234567",
        "s_555.123.4567",
        "+44 20 7946 0958",
    ]
    events = []
    for session in sessions:
        event = copy.deepcopy(EVENT)
        event["session_id"] = session
        events.append(json.dumps(event).encode())
    decoded = BronzeDecoder(KEY)(kafka_batch(events)).to_pylist()
    assert [r["error_class"] for r in decoded] == [None] * len(sessions)
    scrubbers = rows.Scrubbers(KEY)
    assert [r["session_id"] for r in decoded] == [*sessions[:4], scrubbers.phone("+44 20 7946 0958")]
    assert decoded[0]["event_id"] == EVENT["event_id"] and decoded[0]["item_id"] == EVENT["item_id"]
