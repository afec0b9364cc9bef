"""Bronze's per-record work, in one pass over an Arrow batch of raw Kafka records.

`BronzeDecoder` checks each value against the whole contract and either normalizes and scrubs the event
(a Bronze row) or redacts the record for the DLQ (a rejected row). It runs inside the Kafka source's
reader (`medallion.engines.kafka.source`, ``decoder=``), where the records already are in Python.

The contract is compiled from its JSON Schema at import (`medallion.bronze.validator`): a record is
decoded by msgspec straight into struct types generated from the schema, in C, then a generated Python
check does the rest (integer floats, formats, the ``allOf`` conditionals) and the rules Bronze adds (the
event-time window, a calendar date that exists, a quantity that fits a long). Only a record this fast
path rejects goes through the rule-by-rule path (`check_event`), which names every rule it breaks. The
row is written by code generated from the same schema (`medallion.bronze.rows`).

Validation is deterministic for a given record: "too far in the future" is judged against the record's
own Kafka timestamp, not the wall clock, so a micro-batch replayed after a crash splits into exactly the
same Bronze and rejected rows as the first time (exactly-once relies on it).

Rules are named ``<class>:<member>``, nested members by their path (``enum:device.type``):
``payload:*`` (empty, not_utf8, oversized, too_deep, malformed_json, not_object, and duplicate_key for
a member given twice with a value the contract refuses; when one fails no other is reported); the
schema's own, one class per keyword (`validator.RULE_CLASS`: ``type``, ``enum``, ``const``, ``pattern``,
``format``, ``range``, ``length``, ``required``, ``forbidden``); Bronze's additions
``calendar:event_time``, ``range:event_time_future``, ``range:event_time_too_old`` and ``range:quantity``
(beyond a long); and ``decode:<exception>`` should checking or scrubbing a record ever raise (a bug: it
costs that one record, never the stream). ``error_class`` is the class of the first failed rule.

No record can stop the stream: every exception one record raises is caught around that record, and a
batch that still fails to build (a bug) is decoded again record by record, so that only the record that
breaks it is rejected (`BronzeDecoder.__call__`).

Why one module: the ingest's per-record path (decode, check, scrub, build the Arrow batch) is one hot loop,
kept together so its cost can be read and measured as one (bench/bench_ingest.py).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import msgspec
import pyarrow as pa
from pyspark.sql import types as T
from pyspark.sql.pandas.types import to_arrow_schema

from medallion.bronze import rows
from medallion.bronze.validator import Compiled, Schema, compile_contract, rule_failures
from medallion.core import contract
from medallion.maintenance.register import ERASED_CLASS, Erasures
from medallion.pii.redact import Redactor

if TYPE_CHECKING:
    from medallion.core.config import Config

PII_BITS = rows.PII_BITS
"""PII a valid event carried, as bits of ``_scrubbed``: counted per batch by the job."""

_S = T.StringType()
BRONZE_FIELDS = [
    *rows.bronze_fields(contract.EVENT_SCHEMA),
    T.StructField("_topic", _S),
    T.StructField("_partition", T.IntegerType()),
    T.StructField("_offset", T.LongType()),
    T.StructField("_kafka_timestamp", T.TimestampType()),
]
"""The Bronze row, as the Bronze table stores it (before the job's lineage columns): the contract's
members as `rows.STORED` says, then the record's Kafka coordinates."""

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
_REJECTED_ONLY = tuple(f.name for f in REJECTED_FIELDS)
SCHEMA = Schema(contract.EVENT_SCHEMA)
FAST = compile_contract(SCHEMA)
_ANY_JSON = msgspec.json.Decoder(float_hook=float)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = 1_000_000
_INT64_MAX = 2**63 - 1  # Bronze stores quantity as a long
MAX_NESTING = 64
"""How deep a record's JSON may nest (``payload:too_deep`` beyond). JSON Schema sets no limit, but every
parser has one: msgspec's (like Python's) is the interpreter's recursion limit *minus the depth of the
caller's stack*, so the same record could parse in one call and raise in another, or in a replay. A
fixed limit far below it keeps the split deterministic, which exactly-once relies on."""


@dataclass(frozen=True)
class BronzeRules:
    """Limits a record must respect, and the contract. The defaults are the packaged contract's
    (``x-medallion`` in the schema); `rules_for` reads a user's contract from config."""

    max_event_bytes: int = contract.MAX_EVENT_BYTES
    max_future_skew_s: int = int(contract.MAX_FUTURE_SKEW.total_seconds())
    min_event_time: str = contract.MIN_EVENT_TIME.isoformat()
    max_nesting: int = MAX_NESTING
    contract: str | None = None
    """A user's contract as JSON text (None: the packaged one). Text, not the compiled validator: the
    rules travel pickled inside the decoder to Spark's Python workers, and each worker compiles the text
    once (`bronze_contract`)."""


@dataclass(frozen=True)
class BronzeContract:
    """A contract compiled for Bronze: the rule-by-rule path, the fast path, its number members and the
    Bronze row writer."""

    schema: Schema
    fast: Compiled
    numbers: list[tuple[str, ...]]
    writer: rows.RowWriter | None  # None: the packaged contract's own


@lru_cache(4)
def bronze_contract(text: str | None) -> BronzeContract:
    """The contract of `BronzeRules.contract`, compiled once per process."""
    if text is None:
        return _PACKAGED
    schema = json.loads(text)
    contract.check_user_contract(schema)
    return BronzeContract(
        Schema(schema), compile_contract(Schema(schema)), _number_members(schema), rows.row_writer(schema)
    )


def rules_for(cfg: Config) -> BronzeRules:
    """Bronze's rules for ``cfg``: the packaged contract, or the user's (``contract.path``) with the
    limits of its ``x-medallion`` block (the packaged ones where it sets none)."""
    if not cfg.contract.path:
        return BronzeRules()
    schema = contract.load_user_contract(cfg.contract.path)
    limits = schema.get("x-medallion", {})
    default = BronzeRules()
    return BronzeRules(
        max_event_bytes=int(limits.get("max_event_bytes", default.max_event_bytes)),
        max_future_skew_s=int(limits.get("max_future_skew_seconds", default.max_future_skew_s)),
        min_event_time=str(limits.get("min_event_time", default.min_event_time)),
        contract=json.dumps(schema, sort_keys=True),
    )


def too_deep(value: bytes, limit: int) -> bool:
    """The JSON text nests arrays and objects more than ``limit`` deep (brackets inside strings do not
    count). Counting brackets settles nearly every record in C; only one with more brackets than
    ``limit`` is scanned, byte by byte, as a JSON lexer would (malformed text is scanned the same way,
    so a parser that fails on it never recursed deeper than the scan found)."""
    if value.count(b"[") + value.count(b"{") <= limit:
        return False
    depth = 0
    in_string = escaped = False
    for byte in value:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte == 0x5B or byte == 0x7B:
            depth += 1
            if depth > limit:
                return True
        elif byte == 0x5D or byte == 0x7D:
            depth -= 1
    return False


# --- the rule-by-rule path ------------------------------------------------------------------------------


def payload_failures(value: bytes | None, rules: BronzeRules) -> tuple[list[str], Any]:
    """Rules the raw bytes break before any member is looked at, and the parsed value when they parse.

    Parsed by msgspec, as the fast path parses: the same bytes mean the same value on both paths (a
    number beyond a double's range, which the fast path skips in a member the contract does not name,
    reads as infinite here rather than failing the parse).
    """
    if not value:
        return ["payload:empty"], None
    failed = ["payload:oversized"] if len(value) > rules.max_event_bytes else []
    if too_deep(value, rules.max_nesting):
        return [*failed, "payload:too_deep"], None
    try:
        parsed = _ANY_JSON.decode(value)
    except msgspec.DecodeError:
        try:
            value.decode("utf-8")
        except UnicodeDecodeError:
            return [*failed, "payload:not_utf8"], None
        return [*failed, "payload:malformed_json"], None
    if not isinstance(parsed, dict):
        failed.append("payload:not_object")
    return failed, parsed


def _has_duplicate_keys(value: bytes) -> bool:
    """Some object of the JSON text names a member twice. Only asked of the rare record whose two paths
    disagree; its nesting is already bounded (`too_deep`), which Python's parser needs too."""
    found = False

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        nonlocal found
        found = found or len({k for k, _ in items}) < len(items)
        return dict(items)

    try:
        json.loads(value, object_pairs_hook=pairs)
    except ValueError:
        return False
    return found


def check_event(
    event: dict[str, Any], kafka_ts_us: int | None, rules: BronzeRules
) -> tuple[list[str], int | None]:
    """Every rule a parsed JSON object breaks (the schema's, then Bronze's), and its event time in µs
    since the epoch when it has one."""
    compiled = bronze_contract(rules.contract)
    failed = rule_failures(compiled.schema, event)
    time_us = None
    raw_time = event.get("event_time")
    if type(raw_time) is str:
        time_us = _parse_time(raw_time)
        if time_us is None and "pattern:event_time" not in failed:
            failed.append("calendar:event_time")  # the pattern holds, the calendar has no such day
    if time_us is not None:
        failed += _window_failures(time_us, kafka_ts_us, rules)
    quantity: Any = event.get("quantity")
    if type(quantity) in (int, float) and quantity > _INT64_MAX:
        failed.append("range:quantity")
    for path in compiled.numbers:  # 1e400, or 400 digits: a double cannot hold it, msgspec refuses it
        number = _member(event, path)
        if (type(number) is float and not math.isfinite(number)) or (
            type(number) is int and not _double(number)
        ):
            failed.append(f"range:{'.'.join(path)}")
    return list(dict.fromkeys(failed)), time_us


def _double(number: int) -> bool:
    """An integer a double can hold (to its precision): msgspec reads a JSON integer beyond int64 as one."""
    try:
        float(number)
    except OverflowError:
        return False
    return True


def _number_members(node: dict[str, Any], prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    out = []
    for name, sub in node.get("properties", {}).items():
        kinds = sub.get("type", [])
        kinds = kinds if isinstance(kinds, list) else [kinds]
        if "number" in kinds or "integer" in kinds:
            out.append((*prefix, name))
        out += _number_members(sub, (*prefix, name))
    return out


_PACKAGED = BronzeContract(SCHEMA, FAST, _number_members(contract.EVENT_SCHEMA), None)


def _member(event: Any, path: tuple[str, ...]) -> Any:
    for step in path:
        if type(event) is not dict:
            return None
        event = event.get(step)
    return event


def _window_failures(time_us: int, kafka_ts_us: int | None, rules: BronzeRules) -> list[str]:
    failed = []
    if kafka_ts_us is not None and time_us > kafka_ts_us + rules.max_future_skew_s * _US:
        failed.append("range:event_time_future")
    if time_us < _min_time_us(rules.min_event_time):
        failed.append("range:event_time_too_old")
    return failed


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


# --- the fast path --------------------------------------------------------------------------------------


@lru_cache(1 << 16)
def _minute_us(prefix: str) -> int | None:
    """``YYYY-MM-DDTHH:MM`` as µs since the epoch, None for a day the calendar does not have. Event times
    of one minute share it: a live stream parses about one per minute, a backlog one per minute of it."""
    try:
        at = datetime(
            int(prefix[:4]), int(prefix[5:7]), int(prefix[8:10]), int(prefix[11:13]), int(prefix[14:16])
        )
    except ValueError:
        return None
    return int((at - _EPOCH.replace(tzinfo=None)).total_seconds()) * _US


def fast_check(value: bytes, kafka_ts_us: int | None, rules: BronzeRules) -> tuple[Any, int] | None:
    """The decoded event and its time in µs when ``value`` meets every rule, else None (then
    `payload_failures` and `check_event` say why). The contract's pattern fixes the time's layout."""
    fast = bronze_contract(rules.contract).fast
    if len(value) > rules.max_event_bytes or too_deep(value, rules.max_nesting):
        return None
    try:
        if not value.isascii():  # msgspec skips members the contract does not name without checking them
            value.decode("utf-8")
        event = fast.decode(value)
    except (msgspec.DecodeError, UnicodeDecodeError):
        return None
    if not fast.post(event):
        return None
    text = event.event_time
    minute = _minute_us(text[:16])
    if minute is None:
        return None
    time_us = minute + int(text[17:19]) * _US + int(text[20:23]) * 1000
    if (kafka_ts_us is not None and time_us > kafka_ts_us + rules.max_future_skew_s * _US) or (
        time_us < _min_time_us(rules.min_event_time)
    ):
        return None
    quantity = event.quantity
    if quantity is not msgspec.UNSET and quantity > _INT64_MAX:
        return None
    return event, time_us


# --- the batch ------------------------------------------------------------------------------------------


class BronzeDecoder:
    """Raw Kafka records (the source's schema) → decoded rows (`DECODED_SCHEMA`). Picklable: it travels
    to Spark's Python workers inside the source; the PII key goes with it and nowhere else."""

    schema = DECODED_SCHEMA

    def __init__(
        self, pii_key: bytes, rules: BronzeRules | None = None, erased: frozenset[str] = frozenset()
    ) -> None:
        self.pii_key = pii_key
        self.rules = rules or BronzeRules()
        # The erasure register's hashes, as the driver read them (`medallion.maintenance.register`).
        self.erased = erased
        self._scrubbers: rows.Scrubbers | None = None
        self._redactor: Redactor | None = None
        self._erasures: Erasures | None = None

    def __repr__(self) -> str:  # never the key
        return f"BronzeDecoder(rules={self.rules})"

    def __getstate__(self) -> dict[str, Any]:
        return {
            "pii_key": self.pii_key,
            "rules": self.rules,
            "erased": self.erased,
            "_scrubbers": None,
            "_redactor": None,
            "_erasures": None,
        }

    def __call__(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        try:
            return self._decode(batch)
        except Exception:  # a bug no per-record guard caught: decode again record by record, below
            return pa.concat_batches([self._decode_alone(batch.slice(i, 1)) for i in range(batch.num_rows)])

    def _decode_alone(self, record: pa.RecordBatch) -> pa.RecordBatch:
        """One record decoded on its own; rejected as ``decode:<exception>`` when even that raises."""
        try:
            return self._decode(record)
        except Exception as exc:
            out = rows.Columns(ARROW_SCHEMA, bronze_contract(self.rules.contract).writer)
            out.cols["_dedup_key"].append(None)
            out.cols["_scrubbed"].append(0)
            out.add_rejected_placeholder()
            return self._finish(record, out, [(0, [f"decode:{type(exc).__name__}"])])

    def _decode(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        if self._scrubbers is None:
            self._scrubbers = rows.Scrubbers(self.pii_key)
        if self._erasures is None:
            self._erasures = Erasures(self.erased, self.pii_key)
        erased, keys = self._erasures, batch.column("key")
        rules = self.rules
        values = batch.column("value").to_pylist()
        stamps = batch.column("timestamp").cast(pa.int64()).to_pylist()
        out = rows.Columns(ARROW_SCHEMA, bronze_contract(rules.contract).writer)
        dedup, scrubbed = out.cols["_dedup_key"].append, out.cols["_scrubbed"].append
        rejected: list[tuple[int, list[str]]] = []
        for i, (value, ts) in enumerate(zip(values, stamps, strict=True)):
            checked = self._fast(value, ts)
            if checked is not None:
                event, time_us = checked
                try:
                    bits = self._scrub(event, time_us, out)
                except Exception as exc:  # a bug here must cost one record, never stop the stream
                    out.truncate_bronze(len(out.cols["_dedup_key"]))
                    failed = [f"decode:{type(exc).__name__}"]
                else:
                    if not (erased and _erased_row(erased, out)):
                        dedup("id:" + event.event_id)
                        scrubbed(bits)
                        continue
                    out.truncate_bronze(len(out.cols["_dedup_key"]))
                    failed = [ERASED_RULE]
            elif erased and erased.raw(keys[i].as_py(), value):
                failed = [ERASED_RULE]
            else:
                failed = self.failures(value, ts)
            dedup(None)  # filled in below, with the coordinates
            scrubbed(0)
            out.add_rejected_placeholder()
            rejected.append((i, failed))
        return self._finish(batch, out, rejected)

    def check(self, value: bytes | None, kafka_ts_us: int | None) -> list[str]:
        """Every rule a record breaks, ``[]`` when Bronze would take it (`medallion contract check`)."""
        return [] if self._fast(value, kafka_ts_us) is not None else self.failures(value, kafka_ts_us)

    def _fast(self, value: bytes | None, kafka_ts_us: int | None) -> tuple[Any, int] | None:
        """`fast_check`, never raising: a bug in the fast path sends the record down the rule-by-rule
        path, which says why it fails (or that it is a bug)."""
        if not value:
            return None
        try:
            return fast_check(value, kafka_ts_us, self.rules)
        except Exception:
            return None

    def failures(self, value: bytes | None, kafka_ts_us: int | None) -> list[str]:
        """Why a record the fast path refused breaks the contract: the rule-by-rule path. Never raises:
        a record that breaks the checker itself is rejected as ``decode:<exception>``."""
        try:
            failed, event = payload_failures(value, self.rules)
            if not failed:
                failed, _ = check_event(event, kafka_ts_us, self.rules)
        except Exception as exc:
            return [f"decode:{type(exc).__name__}"]
        if not failed and value and _has_duplicate_keys(value):
            # The fast path checks every occurrence of a member, the parsed object keeps the last one:
            # a member given twice, once against the contract, is ambiguous (readers differ on which wins).
            failed = ["payload:duplicate_key"]
        # Both paths are compiled from one schema and a property test holds them together: this is a bug.
        return failed or ["decode:paths_disagree"]

    def _scrub(self, event: Any, time_us: int, out: rows.Columns) -> int:
        """Append one valid event as a Bronze row; its PII bits."""
        assert self._scrubbers is not None
        return rows.append_row(event, time_us, self._scrubbers, out)

    def _finish(
        self, batch: pa.RecordBatch, out: rows.Columns, rejected: list[tuple[int, list[str]]]
    ) -> pa.RecordBatch:
        topics = batch.column("topic")
        partitions = batch.column("partition")
        offsets = batch.column("offset")
        c = out.cols
        n = batch.num_rows
        for name in _REJECTED_ONLY:
            c[name] = [None] * n
        if rejected:
            if self._scrubbers is None:
                self._scrubbers = rows.Scrubbers(self.pii_key)
            if self._redactor is None:
                self._redactor = rows.rejected_redactor(self._scrubbers)
            redactor, ident = self._redactor, self._scrubbers.ident
            keys, values = batch.column("key"), batch.column("value")
            for i, failed in rejected:
                key, value = keys[i].as_py(), values[i].as_py()
                c["_dedup_key"][i] = f"at:{topics[i].as_py()}:{partitions[i].as_py()}:{offsets[i].as_py()}"
                if failed == [ERASED_RULE]:  # counted by the job, written nowhere: no key, no payload
                    c["failed_rules"][i], c["error_class"][i] = failed, ERASED_CLASS
                    c["error_message"][i] = "record of an erased person"
                    continue
                try:  # the redactor never raises; this guard is the stream's, not the redaction's
                    c["key"][i] = redactor.key(key, ident)
                    c["payload"][i] = redactor.payload(value)
                except Exception as exc:  # last resort: withhold both (never in clear), keep the stream going
                    c["key"][i] = c["payload"][i] = None
                    failed = [*failed, f"decode:{type(exc).__name__}"]
                c["failed_rules"][i] = failed
                c["error_class"][i] = failed[0].split(":", 1)[0]
                c["error_message"][i] = "record breaks: " + ", ".join(failed)
        coordinates = {
            "_topic": topics,
            "_partition": partitions,
            "_offset": offsets,
            "_kafka_timestamp": batch.column("timestamp"),
        }
        return out.to_batch(coordinates)


ERASED_RULE = f"{ERASED_CLASS}:person"
"""The rule of a record whose person is in the erasure register (`medallion.maintenance.register`)."""


def _erased_row(erasures: Erasures, out: rows.Columns) -> bool:
    """Whether the Bronze row just appended to ``out`` is of an erased person."""
    user = out.nested.get("user", {})
    return erasures.row(
        out.cols["user_id"][-1],
        user["email_hmac"][-1] if "email_hmac" in user else None,
        user["phone_hmac"][-1] if "phone_hmac" in user else None,
    )
