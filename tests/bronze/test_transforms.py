from __future__ import annotations

import copy
import datetime as dt
import json
import re
from typing import Any

import pyarrow as pa
import pytest

from medallion.bronze.records import ARROW_SCHEMA, BronzeDecoder, BronzeRules, check_event
from medallion.bronze.transforms import (
    BRONZE_COLUMNS,
    BRONZE_SCHEMA,
    rejected_events,
    valid_events,
    with_lineage,
)
from medallion.core.contract import BAD_RECORD_HEADER
from medallion.maintenance.register import ERASED_CLASS
from medallion.produce.generator import generate
from medallion.produce.lookups import build_world
from tests.fixtures import records as kafka_records

# The Bronze rule (prefix) each producer bad-record class must be rejected for.
EXPECTED_RULE = {
    "not_json": r"payload:(malformed_json|not_object)",
    "truncated_json": r"payload:malformed_json",
    "non_utf8": r"payload:not_utf8",
    "empty_value": r"payload:empty",
    "missing_required_field": r"required:",
    "wrong_type": r"type:",
    "unknown_event_type": r"enum:event_type",
    "future_timestamp": r"range:event_time_future",
    "before_2000": r"(pattern:event_time|range:event_time_too_old)",
    "negative_price_or_quantity": r"range:(price|quantity)",
    "oversized_payload": r"payload:oversized",
    "unknown_currency": r"enum:currency",
    "not_object": r"payload:not_object",
}
KEY = b"unit-test-key-0123456789"
NOW = dt.datetime.now(dt.UTC)
NOW_US = int(NOW.timestamp() * 1_000_000)


def kafka_batch(values: list[bytes | None], keys: list[bytes | None] | None = None) -> pa.RecordBatch:
    """Raw Kafka records as the source yields them, all stamped `NOW`, on one topic and partition."""
    return kafka_records.kafka_batch(values, timestamp_us=NOW_US, keys=keys)


@pytest.fixture(scope="module")
def generated() -> tuple[list[bytes | None], list[bytes | None], list[str | None]]:
    """Values, keys and the producer's bad-class tag of 1,300 generated records, 30% of them bad."""
    records, _ = generate(
        build_world(3, users=40), count=1300, seed=3, bad_ratio=0.3, start=NOW - dt.timedelta(days=2), end=NOW
    )
    values, keys, tags = [], [], []
    for key, value, headers in records:
        tag = dict(headers or {}).get(BAD_RECORD_HEADER)
        values.append(value if isinstance(value, bytes) or value is None else value.encode())
        keys.append(key if isinstance(key, bytes) or key is None else key.encode())
        tags.append(tag.decode() if tag else None)
    return values, keys, tags


@pytest.fixture(scope="module")
def decoded(generated: Any) -> pa.RecordBatch:
    values, keys, _ = generated
    return BronzeDecoder(KEY)(kafka_batch(values, keys))


def test_every_bad_class_is_rejected_for_its_reason_and_every_valid_event_passes(
    generated: Any, decoded: pa.RecordBatch
) -> None:
    _, _, tags = generated
    rows = decoded.select(["failed_rules", "error_class", "event_id"]).to_pylist()
    seen = set()
    for tag, row in zip(tags, rows, strict=False):
        if tag is None:
            assert row["error_class"] is None and row["event_id"], row
            continue
        seen.add(tag)
        assert row["failed_rules"], f"{tag} passed validation"
        assert any(re.match(EXPECTED_RULE[tag], r) for r in row["failed_rules"]), (tag, row["failed_rules"])
        assert row["error_class"] == row["failed_rules"][0].split(":")[0]
        assert row["event_id"] is None  # a rejected row carries no Bronze fields
    assert seen == set(EXPECTED_RULE), f"classes not generated: {set(EXPECTED_RULE) - seen}"


def test_decoded_batch_has_one_row_per_record_with_its_coordinates(decoded: pa.RecordBatch) -> None:
    assert decoded.schema == ARROW_SCHEMA
    assert decoded.column("_offset").to_pylist() == list(range(1300))
    keys = decoded.column("_dedup_key").to_pylist()
    for key, event_id, offset in zip(keys, decoded.column("event_id").to_pylist(), range(1300), strict=False):
        assert key == (f"id:{event_id}" if event_id else f"at:t:0:{offset}")


def _event(**changes: Any) -> dict[str, Any]:
    event = {
        "schema_version": 1,
        "event_id": "d8fa297e-cd28-40bc-81e1-610fb9a80552",
        "event_type": "purchase",
        "event_time": "2026-01-05T07:27:24.420Z",
        "user_id": "u_001227",
        "session_id": "s_1",
        "item_id": "i_00528",
        "price": 9.5,
        "quantity": 2,
        "currency": "EUR",
        "device": {"type": "mobile"},
        "geo": {"country": "DE"},
    }
    event.update(changes)
    return {k: v for k, v in event.items() if v is not ...}


@pytest.mark.parametrize(
    ("changes", "rules"),
    [
        ({}, []),
        ({"price": 0, "quantity": 1.0}, []),  # 1.0 is an integer in JSON
        ({"unknown_member": [1]}, []),  # members the contract does not know are ignored
        ({"user_id": ...}, ["required:user_id"]),
        ({"user_id": None}, ["type:user_id"]),
        ({"user_id": 42}, ["type:user_id"]),
        ({"schema_version": "1"}, ["type:schema_version"]),
        ({"quantity": True}, ["type:quantity"]),  # a boolean is not a number
        ({"quantity": 1.5}, ["type:quantity"]),
        ({"device": {"type": 3}}, ["type:device.type"]),  # nested members by their path
        ({"device": {"type": "watch"}}, ["enum:device.type"]),
        ({"device": {"os": "iOS"}}, ["required:device.type"]),
        ({"geo": {"country": "DE", "lat": 95}}, ["range:geo.lat"]),
        ({"geo": {"country": "Germany"}}, ["pattern:geo.country"]),
        ({"geo": "DE"}, ["type:geo"]),
        ({"context": {"ip": "999.1.1.1"}}, ["format:context.ip"]),
        ({"context": {"page": "/" * 2049}}, ["length:context.page"]),
        ({"user": {"email": "jane.example.com"}}, ["format:user.email"]),
        ({"event_time": "yesterday"}, ["pattern:event_time"]),
        ({"event_time": "2026-02-30T00:00:00.000Z"}, ["calendar:event_time"]),  # Bronze's own rule
        # enums as the contract spells them; not a commerce type, so price, quantity, currency are out of place
        (
            {"event_type": "Purchase"},
            ["enum:event_type", "forbidden:price", "forbidden:quantity", "forbidden:currency"],
        ),
        ({"event_time": "1999-12-31T23:59:59.999Z"}, ["pattern:event_time", "range:event_time_too_old"]),
        ({"schema_version": 2}, ["const:schema_version"]),
        ({"event_id": ""}, ["pattern:event_id"]),  # blank ids are violations
        ({"user_id": "u\x00"}, ["pattern:user_id"]),  # and so are control characters
        ({"user_id": " "}, ["pattern:user_id"]),
        ({"session_id": " "}, ["pattern:session_id"]),
        ({"item_id": None}, ["type:item_id"]),  # a purchase is about an item
        ({"item_id": ...}, ["required:item_id"]),
        ({"currency": ...}, ["required:currency"]),
        (
            {"event_type": "search", "search_query": "q"},  # with an item, a price, a quantity, a currency
            ["forbidden:price", "forbidden:quantity", "forbidden:currency", "type:item_id"],
        ),
        ({"price": -0.01, "quantity": 0}, ["range:price", "range:quantity"]),
        ({"quantity": 1e30}, ["range:quantity"]),  # an integer, but not one Bronze's long can hold
        ({"currency": "eur"}, ["enum:currency"]),
    ],
)
def test_each_rule_on_a_parsed_event(changes: dict[str, Any], rules: list[str]) -> None:
    failed, time_us = check_event(_event(**changes), NOW_US, BronzeRules())
    assert failed == rules
    if "event_time" not in changes:
        assert time_us == int(dt.datetime(2026, 1, 5, 7, 27, 24, 420000, dt.UTC).timestamp() * 1e6)


def test_future_is_judged_against_the_kafka_timestamp_not_the_clock() -> None:
    kafka_us = int(dt.datetime(2026, 1, 5, tzinfo=dt.UTC).timestamp() * 1e6)
    ahead = _event(event_time="2026-01-06T00:00:01.000Z")  # one second past a day of skew
    within = _event(event_time="2026-01-06T00:00:00.000Z")
    assert check_event(ahead, kafka_us, BronzeRules())[0] == ["range:event_time_future"]
    assert check_event(within, kafka_us, BronzeRules())[0] == []


def test_payload_rules_are_reported_alone() -> None:
    good = json.dumps(_event()).encode()
    values = [None, b"", b"\xff\xfe{}", b"{not json", b"[1, 2]", good + b" " * 40_000, good]
    rows = BronzeDecoder(KEY)(kafka_batch(values)).to_pylist()
    assert [r["failed_rules"] for r in rows] == [
        ["payload:empty"],
        ["payload:empty"],
        ["payload:not_utf8"],
        ["payload:malformed_json"],
        ["payload:not_object"],
        ["payload:oversized"],
        None,
    ]
    assert rows[3]["error_message"] == "record breaks: payload:malformed_json"


def test_valid_event_is_normalized_and_scrubbed() -> None:
    event = _event(
        device={"type": "mobile", "os": " iOS ", "browser": "Safari"},
        geo={"country": "DE", "city": " Berlin ", "lat": 52.520008, "lon": 13.404954},
        context={
            "ip": "203.0.113.77",
            "page": "/u/jane@example.com/p?email=a@b.co",
            "referrer": None,
            "user_agent": "UA",
        },
        user={"email": " Jane@Example.COM ", "phone": "+49 (30) 1234-567", "name": "Jane"},
    )
    row = BronzeDecoder(KEY)(kafka_batch([json.dumps(event).encode()])).to_pylist()[0]
    assert row["error_class"] is None and row["_scrubbed"] == 15
    assert row["event_id"] == "d8fa297e-cd28-40bc-81e1-610fb9a80552"
    assert row["_dedup_key"] == "id:d8fa297e-cd28-40bc-81e1-610fb9a80552"
    assert row["device"] == {"os": "ios", "browser": "safari", "type": "mobile"}
    assert row["geo"] == {"country": "DE", "city": "Berlin", "lat": 52.52, "lon": 13.4}
    assert row["context"] == {
        "ip_prefix": "203.0.113.0/24",
        "user_agent": "UA",
        "referrer": None,
        "page": "/u/<email>/p",  # the query string cut, the email in the path redacted
    }
    same = BronzeDecoder(KEY)(kafka_batch([json.dumps(_event(user={"email": "jane@example.com"})).encode()]))
    assert row["user"]["email_hmac"] == same.column("user").to_pylist()[0]["email_hmac"]
    assert len(row["user"]["phone_hmac"]) == 64
    assert row["event_time"] == dt.datetime(2026, 1, 5, 7, 27, 24, 420000, dt.UTC)
    assert "jane" not in json.dumps(row, default=str).lower()


def test_a_failure_while_scrubbing_rejects_that_record_only() -> None:
    class Faulty(BronzeDecoder):
        def _scrub(self, e: Any, *args: Any) -> int:
            scrubbers = self._scrubbers
            if e.session_id == "s_bad":  # fail half-way through the row, at the IP
                broken = copy.copy(scrubbers)
                broken.ip = lambda ip: 1 / 0  # type: ignore[union-attr]
                self._scrubbers = broken
            try:
                return super()._scrub(e, *args)
            finally:
                self._scrubbers = scrubbers

    event = {"context": {"ip": "203.0.113.9"}}
    values = [json.dumps(_event(session_id=s, **event)).encode() for s in ("s_1", "s_bad", "s_2")]
    out = Faulty(KEY)(kafka_batch(values))
    assert out.schema == ARROW_SCHEMA
    rows = out.to_pylist()
    assert [r["session_id"] for r in rows] == ["s_1", None, "s_2"]
    assert rows[1]["failed_rules"] == ["decode:ZeroDivisionError"] and rows[1]["error_class"] == "decode"
    assert rows[1]["_dedup_key"] == "at:t:0:1" and rows[1]["context"]["ip_prefix"] is None
    assert [r["_offset"] for r in rows] == [0, 1, 2]


def test_decoder_pickles_without_its_hasher_and_never_shows_the_key() -> None:
    import pickle

    decoder = BronzeDecoder(KEY)
    decoder(kafka_batch([json.dumps(_event()).encode()]))  # builds the (unpicklable) hasher
    again = pickle.loads(pickle.dumps(decoder))
    assert again(kafka_batch([json.dumps(_event()).encode()])).num_rows == 1
    assert KEY.decode() not in repr(decoder)


def test_transforms_split_decoded_rows_exactly(decoded: pa.RecordBatch) -> None:
    table = pa.Table.from_batches([decoded])
    bronze, dlq = valid_events(table), rejected_events(table)
    assert tuple(bronze.column_names) == BRONZE_COLUMNS
    n_rejected = sum(1 for c in decoded.column("error_class").to_pylist() if c is not None)
    assert (bronze.num_rows, dlq.num_rows) == (decoded.num_rows - n_rejected, n_rejected) and n_rejected
    assert dlq.column_names[:3] == ["source_topic", "source_partition", "source_offset"]
    assert dlq.column("source_offset").to_pylist() == [
        o
        for o, c in zip(
            decoded.column("_offset").to_pylist(), decoded.column("error_class").to_pylist(), strict=True
        )
        if c
    ]
    at = dt.datetime(2026, 11, 3, 9, 30, tzinfo=dt.UTC)
    lineage = with_lineage(bronze, "run-1", 7, at)
    assert lineage.schema.remove_metadata() == pa.schema(
        [
            *BRONZE_SCHEMA.remove_metadata(),
            pa.field("dt", pa.string()),
            pa.field("hr", pa.int32()),
            pa.field("batch", pa.int64()),
        ]
    )
    for row in lineage.to_pylist():  # dt/hr are the UTC event hour
        event_time = row["event_time"].astimezone(dt.UTC)
        assert (row["dt"], row["hr"], row["batch"]) == (event_time.strftime("%Y-%m-%d"), event_time.hour, 7)
        assert (row["_run_id"], row["_ingested_at"]) == ("run-1", at)


def test_an_erased_person_s_record_is_no_dlq_record(decoded: pa.RecordBatch) -> None:
    table = pa.Table.from_batches([decoded])
    classes = table.column("error_class").to_pylist()
    first_rejected = next(i for i, c in enumerate(classes) if c is not None)
    erased = table.set_column(
        table.column_names.index("error_class"),
        "error_class",
        pa.array([ERASED_CLASS if i == first_rejected else c for i, c in enumerate(classes)], pa.string()),
    )
    assert rejected_events(erased).num_rows == rejected_events(table).num_rows - 1


def test_no_clear_pii_in_bronze_or_dlq(generated: Any, decoded: pa.RecordBatch) -> None:
    values, _, tags = generated
    originals = [json.loads(v) for v, tag in zip(values, tags, strict=False) if tag is None]
    users = [e.get("user") or {} for e in originals]
    emails = {u["email"] for u in users if u.get("email")}
    phones = {u["phone"] for u in users if u.get("phone")}
    names = {u["name"] for u in users if u.get("name")}
    ips = {(e.get("context") or {}).get("ip") for e in originals} - {None}
    assert emails and phones and ips and names
    text = json.dumps(decoded.to_pylist(), default=str)
    leaked = [v for v in emails | phones | ips | names if v in text]
    assert not leaked, leaked[:5]
    assert not re.search(r"[\w.+-]+@[\w-]+", text)


def test_bronze_files_are_the_files_spark_wrote_before(
    spark: Any, decoded: pa.RecordBatch, tmp_path: Any
) -> None:
    """Bronze written from the driver reads in Spark as the Spark write of the same rows did (`bronze/writes.py`
    until the driver wrote it), with the same folders and the same file schema and footer: an hour holding
    files of both still reads as one and `compact` still merges it."""
    import pyarrow.parquet as pq
    from pyspark.sql import functions as F

    from medallion.bronze.writes import BRONZE_FILE
    from medallion.core.catalog import BRONZE
    from medallion.maintenance import files

    at = dt.datetime(2026, 11, 3, 9, 30, tzinfo=dt.UTC)
    ours, theirs = tmp_path / "ours", tmp_path / "theirs"
    files.write_partitions(
        with_lineage(valid_events(pa.Table.from_batches([decoded])), "run-1", 7, at),
        str(ours),
        BRONZE.partitions,
        BRONZE_FILE,
    )
    before = spark.createDataFrame(decoded.to_pandas(), schema=BronzeDecoder.schema)
    (
        before.where(F.col("error_class").isNull())
        .select(*BRONZE_COLUMNS)
        .withColumns(
            {
                "_ingested_at": F.lit(at),  # the clock then, a literal here: both never null
                "_run_id": F.lit("run-1"),
                "dt": F.date_format("event_time", "yyyy-MM-dd"),
                "hr": F.hour("event_time"),
                "batch": F.lit(7).cast("long"),
            }
        )
        .repartition("dt", "hr")
        .write.partitionBy(*BRONZE.partitions)
        .parquet(str(theirs))
    )

    def folders(root: Any) -> set[str]:
        return {str(p.parent.relative_to(root)) for p in root.rglob("*.parquet")}

    assert folders(ours) == folders(theirs) and len(folders(ours)) > 1
    for folder in folders(ours):
        mine = pq.ParquetFile(ours / folder / BRONZE_FILE).schema_arrow
        spark_s = pq.ParquetFile(next((theirs / folder).glob("*.parquet"))).schema_arrow
        assert mine.equals(spark_s, check_metadata=False), (mine, spark_s)
        key = b"org.apache.spark.sql.parquet.row.metadata"
        assert mine.metadata[key] == spark_s.metadata[key]
    a, b = spark.read.parquet(str(ours)), spark.read.parquet(str(theirs))
    assert a.schema == b.schema
    assert sorted(a.collect()) == sorted(b.collect())
