"""No poison pill: whatever a record's bytes, Bronze's decoder gives exactly one row for it, a Bronze row
or a rejected one with the rules it broke, and raises nothing (a record that raised used to fail its
micro-batch on every restart, so that nothing after it was ever ingested).

The records are arbitrary bytes and JSON built to hurt a parser and a checker: nesting thousands of
levels deep, numbers of any size, duplicate keys, lone surrogates, NUL, bytes that are not UTF-8, each
also planted inside an otherwise valid event, in a member the contract names or in one it does not.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from medallion.bronze.records import ARROW_SCHEMA, MAX_NESTING, BronzeDecoder
from medallion.core.contract import MAX_EVENT_BYTES
from tests.fixtures import records as kafka_records

KEY = b"poison-test-key-0123456789"
KAFKA_US = int(dt.datetime(2026, 11, 26, 12, tzinfo=dt.UTC).timestamp() * 1_000_000)
RULE = re.compile(r"[a-z_]+:[A-Za-z0-9_.]*")
EVENT: dict[str, Any] = {
    "schema_version": 1,
    "event_id": "0bcebe72-1cd7-41e1-a298-ea4681477ae7",
    "event_type": "purchase",
    "event_time": "2026-11-25T12:34:56.789Z",
    "user_id": "u_000123",
    "session_id": "s_303dd8fb83e4",
    "item_id": "i_00042",
    "price": 19.9,
    "quantity": 2,
    "currency": "EUR",
    "device": {"os": "iOS", "type": "mobile"},
    "geo": {"country": "BR", "lat": -23.55, "lon": -46.63},
    "context": {"ip": "203.0.113.7", "referrer": None, "page": "/checkout"},
    "user": {"email": "zoe@example.com", "phone": "+5511987654321"},
}
HOLE = "\x01hole\x01"
PATHS = [
    ("event_id",),
    ("event_type",),
    ("event_time",),
    ("user_id",),
    ("quantity",),
    ("price",),
    ("schema_version",),
    ("geo", "lat"),
    ("device", "type"),
    ("context", "ip"),
    ("user", "email"),
    ("device",),
    ("not_in_the_contract",),
    ("geo", "not_in_the_contract"),
]


def decode(values: list[bytes | None]) -> pa.RecordBatch:
    """``values`` through the decoder in one batch; every row checked against the law, and the batch
    against the same records decoded one at a time (a record's fate does not depend on its batch)."""
    out = BronzeDecoder(KEY)(kafka_records.kafka_batch(values, timestamp_us=KAFKA_US))
    assert out.schema == ARROW_SCHEMA and out.num_rows == len(values)
    for offset, row in enumerate(out.to_pylist()):
        assert row["_offset"] == offset and row["_topic"] == "t"
        if row["error_class"] is None:
            assert row["event_id"] and row["_dedup_key"] == "id:" + row["event_id"], row
            assert row["failed_rules"] is None and row["event_time"] is not None
        else:
            rules = row["failed_rules"]
            assert rules and all(RULE.fullmatch(r) for r in rules), rules
            assert row["error_class"] == rules[0].split(":")[0] and "decode:" not in "".join(rules), rules
            assert row["event_id"] is None and row["_dedup_key"] == f"at:t:0:{offset}"
            assert row["error_message"] == "record breaks: " + ", ".join(rules)
    alone = [BronzeDecoder(KEY)(kafka_records.kafka_batch([v], timestamp_us=KAFKA_US)) for v in values]
    assert [b.column("failed_rules").to_pylist()[0] for b in alone] == out.column("failed_rules").to_pylist()
    return out


# --- what a hostile producer sends ---------------------------------------------------------------------

_STRING_PARTS = st.sampled_from(
    [b"a", b"\\ud800", b"\\udc00", b"\\ud83d\\ude00", b"\\u0000", b"\x00", b"\xff", b"\xed\xa0\x80", b"\\"]
    + [b'\\"', b"\\n", b"\n", "é".encode(), b"[", b"{", b"}", b"]", b'"', b"\\x", b"\\u12"]
)
_NUMBERS = st.one_of(
    st.integers(min_value=-(10**400), max_value=10**400).map(lambda n: str(n).encode()),
    st.floats(allow_nan=False, allow_infinity=False).map(lambda x: repr(x).encode()),
    st.sampled_from(
        [b"1e400", b"-1e400", b"1E-400", b"-0", b"2e0", b"9" * 5000, b"NaN", b"-Infinity", b"01"]
    ),
    st.sampled_from([b"9223372036854775808", b"-9223372036854775809", b"3000000000", b"1e19", b"0.5"]),
)
_LEAVES = st.one_of(
    _NUMBERS,
    st.sampled_from([b"true", b"false", b"null", b'""', b"tru", b"nul"]),
    st.lists(_STRING_PARTS, max_size=8).map(lambda parts: b'"' + b"".join(parts) + b'"'),
    st.text(max_size=12).map(lambda s: json.dumps(s, ensure_ascii=False).encode("utf-8", "surrogatepass")),
)
_KEYS = st.one_of(
    st.sampled_from(
        [json.dumps(k).encode() for k in ("event_id", "quantity", "price", "geo", "lat", "", "a")]
    ),
    st.lists(_STRING_PARTS, max_size=4).map(lambda parts: b'"' + b"".join(parts) + b'"'),
)
_JSON = st.recursive(
    _LEAVES,
    lambda kids: st.one_of(
        st.lists(kids, max_size=4).map(lambda xs: b"[" + b",".join(xs) + b"]"),
        st.lists(st.tuples(_KEYS, kids), max_size=4).map(
            lambda kv: b"{" + b",".join(k + b":" + v for k, v in kv) + b"}"  # duplicate keys included
        ),
    ),
    max_leaves=12,
)


@st.composite
def _deep(draw: st.DrawFn) -> bytes:
    """A value nested up to thousands of levels, balanced or not, of arrays, objects or both."""
    depth = draw(st.one_of(st.integers(1, 3 * MAX_NESTING), st.integers(900, 6000)))
    kind = draw(st.sampled_from(["array", "object", "mixed"]))
    opens = [b"[" if kind == "array" or (kind == "mixed" and i % 2) else b'{"a":' for i in range(depth)]
    closes = [b"]" if o == b"[" else b"}" for o in reversed(opens)]
    inner = draw(_LEAVES)
    if draw(st.booleans()):
        return b"".join(opens) + inner + b"".join(closes)
    return b"".join(opens) + inner + b"".join(closes[: draw(st.integers(0, depth - 1))])


_VALUES = st.one_of(_JSON, _deep())


@st.composite
def _planted(draw: st.DrawFn) -> bytes:
    """A valid event with one member replaced by (or a duplicate key set to) a hostile value."""
    value = draw(_VALUES)
    path = draw(st.sampled_from(PATHS))
    event = json.loads(json.dumps(EVENT))
    node = event
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = HOLE
    text = json.dumps(event).encode()
    hole = json.dumps(HOLE).encode()
    if len(path) == 1 and path[0] in EVENT and draw(st.booleans()):  # the member twice: valid, then not
        first, second = json.dumps(EVENT[path[0]]).encode(), value
        if draw(st.booleans()):  # or hostile first, then valid
            first, second = second, first
        return text.replace(hole, first + b"," + json.dumps(path[0]).encode() + b":" + second)
    return text.replace(hole, value)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(st.binary(max_size=300), _VALUES, _planted()), min_size=1, max_size=6))
@example([b"[" * 5000 + b"]" * 5000, b'{"a":' * 3000 + b"1" + b"}" * 3000])
@example([json.dumps({**EVENT, "extra": "x"}).replace('"x"', "[" * 5000 + "]" * 5000).encode()])
@example([b'"\\ud800"', b'{"event_id":"\\udc00"}', b"\x00", b'{"a":1,"a":2}', b"\xff" * 10])
@example([b"[" * (MAX_EVENT_BYTES + 10)])
@example([json.dumps({**EVENT, "price": "HOLE"}).replace('"HOLE"', "2" + "0" * 308).encode()])
def test_every_record_ends_in_one_row_valid_or_rejected_with_its_rules(values: list[bytes]) -> None:
    decode(values)


def test_a_record_nested_past_the_limit_is_rejected_deterministically() -> None:
    """The limit is exact and the same for every record: a valid event carrying, in a member the contract
    does not name, arrays nested to the limit is Bronze; one level more is ``payload:too_deep`` (a
    parser's own limit depends on the caller's stack, so a replay could split differently)."""

    def nested(levels: int) -> bytes:  # the event object is the first level
        return (
            json.dumps({**EVENT, "extra": HOLE})
            .replace(json.dumps(HOLE), "[" * levels + "]" * levels)
            .encode()
        )

    brackets_in_strings = json.dumps({**EVENT, "extra": "[" * 500 + "{" * 500}).encode()
    rows = decode(
        [nested(MAX_NESTING - 1), nested(MAX_NESTING), brackets_in_strings, nested(5000)]
    ).to_pylist()
    assert [r["failed_rules"] for r in rows] == [None, ["payload:too_deep"], None, ["payload:too_deep"]]


def test_a_batch_that_fails_to_build_loses_only_the_record_that_broke_it() -> None:
    """A bug no per-record guard catches (here: a row Arrow cannot hold) costs that record only."""

    class Faulty(BronzeDecoder):
        def _scrub(self, event: Any, *args: Any) -> int:
            bits = super()._scrub(event, *args)
            return 2**40 if event.session_id == "s_bad" else bits  # overflows the int32 column at build

    values = [json.dumps({**EVENT, "session_id": s}).encode() for s in ("s_1", "s_bad", "s_2")]
    rows = Faulty(KEY)(kafka_records.kafka_batch(values, timestamp_us=KAFKA_US)).to_pylist()
    assert [r["session_id"] for r in rows] == ["s_1", None, "s_2"]
    assert rows[1]["error_class"] == "decode" and rows[1]["failed_rules"][0].startswith("decode:")
    assert [r["_offset"] for r in rows] == [0, 1, 2]
    assert rows[1]["payload"] is not None and "zoe@example.com" not in rows[1]["payload"]


def test_a_record_the_redaction_cannot_handle_is_rejected_without_its_payload(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from medallion.pii.redact import Redactor

    real = Redactor.payload

    def fragile(self: Redactor, value: bytes | None) -> str | None:
        if value is not None and b"boom" in value:
            raise ValueError("redaction bug")
        return real(self, value)

    monkeypatch.setattr(Redactor, "payload", fragile)
    rows = BronzeDecoder(KEY)(
        kafka_records.kafka_batch([b"boom zoe@example.com", b"{not json"], timestamp_us=KAFKA_US)
    ).to_pylist()
    assert rows[0]["payload"] is None and rows[0]["key"] is None
    assert rows[0]["failed_rules"] == ["payload:malformed_json", "decode:ValueError"]
    assert rows[1]["payload"] == "{not json" and rows[1]["failed_rules"] == ["payload:malformed_json"]


@pytest.mark.integration
def test_poison_records_in_the_middle_of_a_topic_stop_nothing(
    spark: Any, kafka_broker: Any, make_topic: Any, make_config: Any
) -> None:
    """Hostile records between valid events on the embedded broker: one ingest run reads to the end of
    the topic, every valid event is in Bronze, every hostile record in the DLQ with a payload rule."""
    from medallion.bronze import job
    from medallion.core import catalog
    from medallion.core.ledger import Ledger
    from medallion.produce.generator import generate
    from medallion.produce.lookups import build_world
    from tests.e2e.checks import parquet
    from tests.fixtures.broker import produce

    topic = make_topic(1)
    now = dt.datetime.now(dt.UTC)
    generated, _ = generate(
        build_world(5, users=20), count=60, seed=5, start=now - dt.timedelta(days=1), end=now
    )
    valid = [value if isinstance(value, bytes) else value.encode() for _, value, _ in generated]
    hostile = {
        b"[" * 6000 + b"]" * 6000: "payload:too_deep",
        b'{"a":' * 3000 + b"1" + b"}" * 3000: "payload:too_deep",
        json.dumps({**EVENT, "x": "HOLE"})
        .replace('"HOLE"', "[" * 5000 + "]" * 5000)
        .encode(): "payload:too_deep",
        b"[" * 900_000: "payload:oversized",
        b'{"event_id": 0, ' + json.dumps(EVENT).encode()[1:]: "payload:duplicate_key",
        b'{"event_id": "\\ud800"}': "payload:malformed_json",
        b'{"a": "\x00"}': "payload:malformed_json",
        b"\xed\xa0\x80": "payload:not_utf8",
        json.dumps({**EVENT, "quantity": "HOLE"}).replace('"HOLE"', "9" * 4000).encode(): "range:quantity",
    }
    records = [*valid[:30], *hostile, *valid[30:]]
    produce(kafka_broker.bootstrap, topic, [(0, None, value) for value in records])
    cfg = make_config(
        **{
            "kafka.bootstrap_servers": kafka_broker.bootstrap,
            "kafka.topic": topic,
            "ingest.max_offsets_per_trigger": 25,
        }
    )
    result = job.run(spark, cfg, pii_key=KEY, run_id="poison", ledger=Ledger(cfg.lake.root), once=True)

    assert result.total("input") == len(records)
    assert all(batch.reconciled for batch in result.batches)
    bronze = parquet(catalog.BRONZE.path(cfg)).to_pylist()
    assert sorted(r["event_id"] for r in bronze) == sorted(json.loads(v)["event_id"] for v in valid)
    dlq = sorted(parquet(catalog.BRONZE_DLQ.path(cfg)).to_pylist(), key=lambda r: r["source_offset"])
    assert [r["source_offset"] for r in dlq] == list(range(30, 30 + len(hostile)))
    assert [r["failed_rules"][0] for r in dlq] == list(hostile.values())
