"""Bronze's per-record work, in one pass over an Arrow batch of raw Kafka records.

`BronzeDecoder` parses each value against the contract, checks every rule, and either normalizes and
scrubs the event (a Bronze row) or redacts the record for the DLQ (a rejected row). It runs inside the
Kafka source's reader (`medallion.kafka.source`, ``decoder=``), where the records already are in Python:
done as Spark expressions, the same work cost about ten times more (``docs/architecture.md``, "Bronze's
per-record work"), and a second Python pass (``mapInArrow``) costs a round trip of every row.

Validation is deterministic for a given record: "too far in the future" is judged against the record's
own Kafka timestamp, not the wall clock, so a micro-batch replayed after a crash splits into exactly the
same Bronze and rejected rows as the first time (exactly-once relies on it).

Rules are named ``<class>:<what>``: ``payload:*`` (empty, not_utf8, oversized, malformed_json,
not_object; when one fails no other is reported), ``required:*``, ``type:*``, ``enum:*``, ``range:*``,
``version:*``; and ``decode:<exception>`` should scrubbing a valid event ever fail (a bug: it costs that one
record, never the stream). ``error_class`` is the class of the first failed rule.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import orjson
import pyarrow as pa
from pyspark.sql import types as T
from pyspark.sql.pandas.types import to_arrow_schema

from medallion import contract
from medallion.pii.scrub import (
    Hmac,
    normalize_email,
    normalize_phone,
    redact_text,
    round_coordinate,
    strip_query,
    truncate_ip,
)

COMMERCE_REQUIRED = ("price", "quantity", "currency")
# PII a valid event carried, as bits of ``_scrubbed``: counted per batch by the job.
PII_BITS = {"emails": 1, "phones": 2, "ips": 4, "names": 8}

_S = T.StringType()
BRONZE_FIELDS = [
    T.StructField("schema_version", T.IntegerType()),
    T.StructField("event_id", _S),
    T.StructField("event_type", _S),
    T.StructField("event_time", T.TimestampType()),
    T.StructField("user_id", _S),
    T.StructField("session_id", _S),
    T.StructField("item_id", _S),
    T.StructField("device", T.StructType([T.StructField(n, _S) for n in ("os", "browser", "type")])),
    T.StructField(
        "geo",
        T.StructType(
            [
                T.StructField("country", _S),
                T.StructField("city", _S),
                T.StructField("lat", T.DoubleType()),
                T.StructField("lon", T.DoubleType()),
            ]
        ),
    ),
    T.StructField(
        "context",
        T.StructType([T.StructField(n, _S) for n in ("ip_prefix", "user_agent", "referrer", "page")]),
    ),
    T.StructField("user", T.StructType([T.StructField(n, _S) for n in ("email_hmac", "phone_hmac")])),
    T.StructField("price", T.DoubleType()),
    T.StructField("quantity", T.LongType()),
    T.StructField("currency", _S),
    T.StructField("_topic", _S),
    T.StructField("_partition", T.IntegerType()),
    T.StructField("_offset", T.LongType()),
    T.StructField("_kafka_timestamp", T.TimestampType()),
]
"""The Bronze row, as the Bronze table stores it (before the job's lineage columns)."""

REJECTED_FIELDS = [
    T.StructField("key", _S),  # redacted
    T.StructField("payload", _S),  # redacted
    T.StructField("failed_rules", T.ArrayType(_S)),
    T.StructField("error_class", _S),
    T.StructField("error_message", _S),
]
"""What a rejected row carries besides its Kafka coordinates (``_topic``, ``_partition``, ``_offset``)."""

DECODED_SCHEMA = T.StructType(
    [
        T.StructField("_dedup_key", _S),
        T.StructField("_scrubbed", T.IntegerType()),
        *BRONZE_FIELDS,
        *REJECTED_FIELDS,
    ]
)
"""One row per Kafka record: a Bronze row (``error_class`` null) or a rejected one (Bronze fields null
except the Kafka coordinates). ``_dedup_key`` is ``id:<event_id>``, or the coordinates for a rejected
record, which is never taken for a duplicate."""

ARROW_SCHEMA = to_arrow_schema(DECODED_SCHEMA, timezone="UTC")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = 1_000_000


@dataclass(frozen=True)
class BronzeRules:
    """Limits a record must respect. The defaults are the contract's (``x-medallion`` in the schema)."""

    max_event_bytes: int = contract.MAX_EVENT_BYTES
    max_future_skew_s: int = int(contract.MAX_FUTURE_SKEW.total_seconds())
    min_event_time: str = contract.MIN_EVENT_TIME.isoformat()


def _member_types(node: dict[str, Any]) -> dict[str, tuple[frozenset[type], bool, str]]:
    """``{member: (Python types its JSON kind parses to, nullable, kind)}`` of an object in the contract.

    Exact types, so a boolean is never taken for a number (``type(True) is bool``, not ``int``).
    """
    py = {
        "string": frozenset({str}),
        "object": frozenset({dict}),
        "array": frozenset({list}),
        "boolean": frozenset({bool}),
        "integer": frozenset({int}),
        "number": frozenset({int, float}),
    }
    out = {}
    for name, sub in node.get("properties", {}).items():
        kinds = sub.get("type")
        kinds = kinds if isinstance(kinds, list) else [kinds]
        kind = next(k for k in kinds if k != "null")
        out[name] = (py[kind], "null" in kinds, kind)
    return out


def _is_kind(types: frozenset[type], kind: str, value: Any) -> bool:
    # JSON has one number type: 2.0 is an integer, as JSON Schema says.
    return type(value) in types or (kind == "integer" and type(value) is float and value.is_integer())


_TOP = _member_types(contract.EVENT_SCHEMA)
_NESTED = {
    name: _member_types(contract.EVENT_SCHEMA["properties"][name])
    for name, (_, _, kind) in _TOP.items()
    if kind == "object"
}
_NUMBERS = frozenset({int, float})
_EVENT_TYPES = frozenset(contract.EVENT_TYPES)
_COMMERCE = frozenset(contract.COMMERCE_EVENT_TYPES)
_ITEM_EVENTS = frozenset(contract.ITEM_EVENT_TYPES)
_CURRENCIES = frozenset(contract.CURRENCIES)
_VERSIONS = frozenset(contract.SUPPORTED_VERSIONS)
_REQUIRED = contract.REQUIRED_FIELDS
_INT64_MAX = 2**63 - 1  # Bronze stores quantity as a long


def check_event(
    event: dict[str, Any], kafka_ts_us: int | None, rules: BronzeRules
) -> tuple[list[str], int | None]:
    """The rules a parsed JSON object breaks (in report order), and its event time in µs since the epoch.

    This runs once per record: plain dictionary and type tests, no helper per member.
    """
    failed = [f"required:{name}" for name in _REQUIRED if name not in event]
    # Kinds: a present member of the wrong JSON kind, or JSON null where the contract does not allow it.
    for name, value in event.items():
        spec = _TOP.get(name)
        if spec is None:
            continue  # members the contract does not know are ignored (schema evolution)
        types, nullable, kind = spec
        if value is None:
            if not nullable:
                failed.append(f"type:{name}")
        elif type(value) not in types and not _is_kind(types, kind, value):
            failed.append(f"type:{name}")
        elif kind == "object":
            members = _NESTED[name]
            for sub_name, sub_value in value.items():
                sub = members.get(sub_name)
                if (
                    sub is not None
                    and sub_value is not None
                    and type(sub_value) not in sub[0]
                    and not _is_kind(sub[0], sub[2], sub_value)
                ):
                    failed.append(f"type:{sub_name}")
    etype = event.get("event_type")
    if type(etype) is not str:
        etype = None
    time_us = None
    raw_time = event.get("event_time")
    if type(raw_time) is str:
        time_us = _parse_time(raw_time)
        if time_us is None:
            failed.append("type:event_time")
    if etype is not None and etype not in _EVENT_TYPES:
        failed.append("enum:event_type")
    if time_us is not None:
        if kafka_ts_us is not None and time_us > kafka_ts_us + rules.max_future_skew_s * _US:
            failed.append("range:event_time_future")
        if time_us < _min_time_us(rules.min_event_time):
            failed.append("range:event_time_too_old")
    version = event.get("schema_version")
    if type(version) in _NUMBERS and version not in _VERSIONS:
        failed.append("version:schema_version")
    if etype in _ITEM_EVENTS and event.get("item_id") is None:
        failed.append("required:item_id")
    if etype in _COMMERCE:
        failed += [f"required:{name}" for name in COMMERCE_REQUIRED if name not in event]
    price, quantity, currency = event.get("price"), event.get("quantity"), event.get("currency")
    if price is not None and type(price) in _NUMBERS and price < 0:
        failed.append("range:price")
    if quantity is not None and type(quantity) in _NUMBERS and not 1 <= quantity <= _INT64_MAX:
        failed.append("range:quantity")
    if type(currency) is str and currency not in _CURRENCIES:
        failed.append("enum:currency")
    return failed, time_us


def _parse_time(text: str) -> int | None:
    """An ISO-8601 time as µs since the epoch (no zone means UTC); None when it is not one."""
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        return None
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    delta = at - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * _US + delta.microseconds


@lru_cache
def _min_time_us(text: str) -> int:
    parsed = _parse_time(text)
    if parsed is None:
        raise ValueError(f"min_event_time {text!r} is not an ISO-8601 time")
    return parsed


def payload_failures(value: bytes | None, rules: BronzeRules) -> tuple[list[str], Any]:
    """Rules the raw bytes break before any field is looked at, and the parsed value when they parse."""
    if not value:
        return ["payload:empty"], None
    failed = ["payload:oversized"] if len(value) > rules.max_event_bytes else []
    try:
        parsed = orjson.loads(value)
    except orjson.JSONDecodeError:
        try:
            value.decode("utf-8")
        except UnicodeDecodeError:
            return [*failed, "payload:not_utf8"], None
        return [*failed, "payload:malformed_json"], None
    if not isinstance(parsed, dict):
        failed.append("payload:not_object")
    return failed, parsed


class _Columns:
    """The decoded batch's columns as Python lists, filled row by row, built into Arrow once."""

    def __init__(self) -> None:
        self.cols: dict[str, list[Any]] = {f.name: [] for f in ARROW_SCHEMA}
        self.nested: dict[str, dict[str, list[Any]]] = {
            f.name: {sub.name: [] for sub in f.type} for f in ARROW_SCHEMA if pa.types.is_struct(f.type)
        }

    def to_batch(self) -> pa.RecordBatch:
        arrays = []
        for f in ARROW_SCHEMA:
            if pa.types.is_struct(f.type):
                fields = self.nested[f.name]
                arrays.append(
                    pa.StructArray.from_arrays(
                        [pa.array(fields[sub.name], sub.type) for sub in f.type], fields=list(f.type)
                    )
                )
            else:
                arrays.append(pa.array(self.cols[f.name], f.type))
        return pa.RecordBatch.from_arrays(arrays, schema=ARROW_SCHEMA)


class BronzeDecoder:
    """Raw Kafka records (the source's schema) → decoded rows (`DECODED_SCHEMA`). Picklable: it travels
    to Spark's Python workers inside the source; the PII key goes with it and nowhere else."""

    schema = DECODED_SCHEMA

    def __init__(self, pii_key: bytes, rules: BronzeRules | None = None) -> None:
        self.pii_key = pii_key
        self.rules = rules or BronzeRules()
        self._scrubbers: _Scrubbers | None = None

    def __repr__(self) -> str:  # never the key
        return f"BronzeDecoder(rules={self.rules})"

    def __getstate__(self) -> dict[str, Any]:
        return {"pii_key": self.pii_key, "rules": self.rules, "_scrubbers": None}

    def __call__(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        if self._scrubbers is None:
            self._scrubbers = _Scrubbers(self.pii_key)
        values = batch.column("value").to_pylist()
        keys = batch.column("key").to_pylist()
        topics = batch.column("topic").to_pylist()
        partitions = batch.column("partition").to_pylist()
        offsets = batch.column("offset").to_pylist()
        stamps = batch.column("timestamp").cast(pa.int64()).to_pylist()
        out = _Columns()
        c = out.cols
        rejected = [c[name] for name in _REJECTED_ONLY]
        bronze = [c[name] for name in _BRONZE_ONLY] + [col for f in out.nested.values() for col in f.values()]
        coords = [c["_topic"], c["_partition"], c["_offset"], c["_kafka_timestamp"]]
        for value, key, topic, partition, offset, ts in zip(
            values, keys, topics, partitions, offsets, stamps, strict=False
        ):
            for column, item in zip(coords, (topic, partition, offset, ts), strict=False):
                column.append(item)
            failed, event = payload_failures(value, self.rules)
            time_us = None
            if not failed:
                failed, time_us = check_event(event, ts, self.rules)
                if not failed:
                    row = len(c["_dedup_key"])
                    try:
                        self._scrub(event, time_us, c, out.nested)
                    except Exception as exc:  # a bug here must cost one record, never stop the stream
                        for column in bronze:
                            del column[row:]
                        del c["_dedup_key"][row:], c["_scrubbed"][row:]
                        failed = [f"decode:{type(exc).__name__}"]
                    else:
                        for column in rejected:
                            column.append(None)
                        continue
            c["_dedup_key"].append(f"at:{topic}:{partition}:{offset}")
            c["_scrubbed"].append(0)
            for column in bronze:
                column.append(None)
            for column, item in zip(
                rejected,
                (
                    redact_text(key.decode("utf-8", "replace")) if key is not None else None,
                    redact_text(value.decode("utf-8", "replace")) if value is not None else None,
                    failed,
                    failed[0].split(":", 1)[0],
                    "record breaks: " + ", ".join(failed),
                ),
                strict=False,
            ):
                column.append(item)
        return out.to_batch()

    def _scrub(
        self, e: dict[str, Any], time_us: int | None, c: dict[str, list[Any]], nested: dict[str, Any]
    ) -> None:
        """Append one valid event as a Bronze row: enums lower-cased, PII scrubbed, names and text dropped.

        The event passed `check_event`, so every member present has the contract's kind.
        """
        get = e.get
        event_id = e["event_id"].strip(" ")
        c["_dedup_key"].append("id:" + event_id)  # the id as stored: " x" and "x" are one event
        c["schema_version"].append(int(e["schema_version"]))
        c["event_id"].append(event_id)
        c["event_type"].append(e["event_type"].strip(" ").lower())
        c["event_time"].append(time_us)
        c["user_id"].append(e["user_id"].strip(" "))
        c["session_id"].append(e["session_id"].strip(" "))
        item = get("item_id")
        c["item_id"].append(item.strip(" ") if item is not None else None)
        device = get("device") or _NOTHING
        d = nested["device"]
        for name in ("os", "browser", "type"):
            v = device.get(name)
            d[name].append(v.strip(" ").lower() if v is not None else None)
        geo = get("geo") or _NOTHING
        g = nested["geo"]
        v = geo.get("country")
        g["country"].append(v.strip(" ").upper() if v is not None else None)
        v = geo.get("city")
        g["city"].append(v.strip(" ") if v is not None else None)
        v = geo.get("lat")
        g["lat"].append(round_coordinate(float(v)) if v is not None else None)
        v = geo.get("lon")
        g["lon"].append(round_coordinate(float(v)) if v is not None else None)
        context = get("context") or _NOTHING
        x = nested["context"]
        scrub = self._scrubbers
        assert scrub is not None
        ip = context.get("ip")
        x["ip_prefix"].append(scrub.ip(ip) if ip is not None else None)
        x["user_agent"].append(context.get("user_agent"))
        x["referrer"].append(strip_query(context.get("referrer")))
        x["page"].append(strip_query(context.get("page")))
        user = get("user") or _NOTHING
        email, phone = user.get("email"), user.get("phone")
        u = nested["user"]
        u["email_hmac"].append(scrub.email(email) if email is not None else None)
        u["phone_hmac"].append(scrub.phone(phone) if phone is not None else None)
        c["_scrubbed"].append(
            (email is not None) * PII_BITS["emails"]
            | (phone is not None) * PII_BITS["phones"]
            | (ip is not None) * PII_BITS["ips"]
            | (user.get("name") is not None) * PII_BITS["names"]
        )
        v = get("price")
        c["price"].append(float(v) if v is not None else None)
        v = get("quantity")
        c["quantity"].append(int(v) if v is not None else None)
        v = get("currency")
        c["currency"].append(v.strip(" ").upper() if v is not None else None)


class _Scrubbers:
    """The scrubbing of repeated values, memoized per worker: a user's email, phone and address recur in
    every event of theirs, and a cache hit costs a fraction of an HMAC. Bounded; memory only."""

    def __init__(self, pii_key: bytes, size: int = 1 << 16) -> None:
        keyed = Hmac(pii_key)
        self.email = lru_cache(size)(lambda v: keyed(normalize_email(v)))
        self.phone = lru_cache(size)(lambda v: keyed(normalize_phone(v)))
        self.ip = lru_cache(size)(truncate_ip)


_NOTHING: dict[str, Any] = {}
_REJECTED_ONLY = tuple(f.name for f in REJECTED_FIELDS)
_BRONZE_ONLY = tuple(
    f.name
    for f in BRONZE_FIELDS
    if not isinstance(f.dataType, T.StructType)
    and f.name not in ("_topic", "_partition", "_offset", "_kafka_timestamp")
)
