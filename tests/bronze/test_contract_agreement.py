"""Bronze's compiled validator against the contract: ``jsonschema`` is the independent oracle.

Events are generated around every keyword's boundary, read from the schema itself (each member's kinds,
enum values and near misses, pattern matches and breaks, lengths and ranges at and past their limits,
formats, required members removed, the ``allOf`` conditionals switched by the event type), and Bronze
must accept exactly what the oracle accepts, apart from the cases ``schemas/README.md`` lists where
Bronze is stricter; its two paths (compiled, rule by rule) must agree on every record.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import re
from typing import Any

import pyarrow as pa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from medallion.bronze.records import BronzeDecoder, BronzeRules, check_event, fast_check, payload_failures
from medallion.bronze.validator import RULE_CLASS
from medallion.core.contract import EVENT_SCHEMA, MAX_EVENT_BYTES, MAX_FUTURE_SKEW
from tests.fixtures import records as kafka_records

ORACLE = Draft202012Validator(EVENT_SCHEMA, format_checker=Draft202012Validator.FORMAT_CHECKER)
KAFKA_TS = dt.datetime(2026, 11, 26, 12, tzinfo=dt.UTC)
KAFKA_US = int(KAFKA_TS.timestamp() * 1_000_000)
KEY = b"agreement-test-key-0123456789"
DELETE = object()
INT64_MAX = 2**63 - 1

COMMON: dict[str, Any] = {
    "schema_version": 1,
    "event_id": "0bcebe72-1cd7-41e1-a298-ea4681477ae7",
    "event_time": "2026-11-25T12:34:56.789Z",
    "user_id": "u_000123",
    "session_id": "s_303dd8fb83e4",
    "device": {"os": "iOS", "browser": "Safari", "type": "mobile"},
    "geo": {"country": "BR", "city": "São Paulo", "lat": -23.55, "lon": -46.63},
    "context": {"ip": "203.0.113.7", "user_agent": "Mozilla/5.0", "referrer": None, "page": "/checkout"},
    "user": {"email": "zoe@example.com", "phone": "+5511987654321", "name": "Zoë"},
}
BASES: dict[str, dict[str, Any]] = {
    "page_view": {**COMMON, "event_type": "page_view", "item_id": "i_00042"},
    "search": {**COMMON, "event_type": "search", "search_query": "red shoes"},
    "click": {**COMMON, "event_type": "click", "item_id": "i_00042"},
    "purchase": {
        **COMMON,
        "event_type": "purchase",
        "item_id": "i_00042",
        "price": 19.9,
        "quantity": 2,
        "currency": "EUR",
    },
}
FORMAT_SAMPLES = {
    "uuid": ["0BCEBE72-1CD7-41E1-A298-EA4681477AE7", "0bcebe721cd741e1a298ea4681477ae7", "0bcebe72-1cd7"],
    "email": ["zoe.example.com", "@", "a@b"],
    "ipv4": ["999.1.1.1", "1.2.3", "01.2.3.4", "1.2.3.4", "255.255.255.255"],
    "ipv6": ["2001:db8::1", "fe80::1%eth0", "::ffff:1.2.3.4", "2001:db8:::1", "::"],
}
OTHER_KINDS: list[Any] = ["x", "", 0, 1, 2.0, 1.5, -1, True, False, None, [], {}, ["u_000123"]]


def _members(
    node: dict[str, Any], prefix: tuple[str, ...] = ()
) -> list[tuple[tuple[str, ...], dict[str, Any]]]:
    out = []
    for name, sub in node.get("properties", {}).items():
        out.append(((*prefix, name), sub))
        out += _members(sub, (*prefix, name))
    return out


def _resolve(node: dict[str, Any]) -> dict[str, Any]:
    if "$ref" in node:
        target: Any = EVENT_SCHEMA
        for part in node["$ref"][2:].split("/"):
            target = target[part]
        return {**node, **target}
    return node


def boundary_values(node: dict[str, Any]) -> list[Any]:
    """Values at and around each of the member's keywords: valid ones and every way to break them."""
    node = _resolve(node)
    values: list[Any] = [DELETE, *OTHER_KINDS]
    for v in node.get("enum", []):
        values += [v, v.upper() if isinstance(v, str) else v, f" {v}" if isinstance(v, str) else v]
    if "const" in node:
        c = node["const"]
        values += [c, float(c), c + 1, str(c), True]
    if "pattern" in node:
        values += [" ", "\t", "a", "u_000123\n", "i_00042\n", "u_12345", "i_1234", "i_00042", "u_000123"]
        values += ["US", "us", "USA", "US\n", "0bcebe72-1cd7-41e1-a298-ea4681477ae7\n"]
        values += ["\u00a0", " x", "x\ty", "x\x00", "sku\x85", "\x7f", "01ARZ3NDEKTSV4RRFFQ69G5FAV", "😀"]
        values += ["2026-02-30T00:00:00.000Z", "2026-02-28T23:59:59.999Z", "2026-11-25T12:34:56Z"]
        values += ["2026-11-25T12:34:56.789Z\n", "1999-12-31T23:59:59.999Z", "2026-13-01T00:00:00.000Z"]
    for key in ("minLength", "maxLength"):
        if key in node:
            n = node[key]
            values += ["x" * max(n - 1, 0), "x" * n, "x" * (n + 1), "é" * n, "😀" * (n + 1)]
    for key in ("minimum", "maximum"):
        if key in node:
            b = node[key]
            values += [b, b - 1, b + 1, b - 0.001, b + 0.001, float(b)]
    if "format" in node:
        values += FORMAT_SAMPLES[node["format"]]
    for branch in node.get("anyOf", []):
        if "format" in branch:
            values += FORMAT_SAMPLES[branch["format"]]
    if _resolve(node).get("type") in ("integer", "number"):
        values += [INT64_MAX, INT64_MAX + 1, 1e30, 3.0]
    return values


MEMBERS = _members(EVENT_SCHEMA)
MUTATIONS: list[tuple[tuple[str, ...], Any]] = [
    (path, v) for path, node in MEMBERS for v in boundary_values(node)
]


def near_kafka_time(seconds: int) -> str:
    at = KAFKA_TS + dt.timedelta(seconds=seconds)
    return at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"


# Event times around the window Bronze adds (the record's Kafka timestamp + the allowed skew).
SKEW = int(MAX_FUTURE_SKEW.total_seconds())
MUTATIONS += [(("event_time",), near_kafka_time(s)) for s in (-3600, 0, SKEW - 1, SKEW, SKEW + 1, 40 * 86400)]


def apply(event: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    target = event
    for step in path[:-1]:
        nxt = target.get(step)
        if not isinstance(nxt, dict):
            nxt = target[step] = {}
        target = nxt
    if value is DELETE:
        target.pop(path[-1], None)
    else:
        target[path[-1]] = copy.deepcopy(value)


@st.composite
def events(draw: st.DrawFn) -> dict[str, Any]:
    event = copy.deepcopy(BASES[draw(st.sampled_from(sorted(BASES)))])
    for path, value in draw(st.lists(st.sampled_from(MUTATIONS), max_size=3)):
        apply(event, path, value)
    return event


def _pattern_members() -> list[tuple[tuple[str, ...], re.Pattern[str]]]:
    return [(p, re.compile(_resolve(n)["pattern"])) for p, n in MEMBERS if "pattern" in _resolve(n)]


def _get(event: Any, path: tuple[str, ...]) -> Any:
    for step in path:
        if not isinstance(event, dict) or step not in event:
            return DELETE
        event = event[step]
    return event


def stricter_than_the_schema(event: dict[str, Any], raw: bytes) -> list[str]:
    """The cases `schemas/README.md` lists where Bronze rejects what the JSON Schema accepts."""
    why = []
    if len(raw) > MAX_EVENT_BYTES:
        why.append("size")
    for path, pattern in _pattern_members():
        value = _get(event, path)
        # ECMA-262's $ is the end of the text; Python's (the oracle's) also matches before a final newline.
        ecma = re.compile(pattern.pattern[:-1] + r"(?![\s\S])") if pattern.pattern.endswith("$") else pattern
        if isinstance(value, str) and pattern.search(value) and not ecma.search(value):
            why.append(f"newline before $ in {'.'.join(path)}")
    text = event.get("event_time")
    if isinstance(text, str):
        try:
            at = dt.datetime.fromisoformat(text)
        except ValueError:
            why.append("calendar")
        else:
            if at.tzinfo is not None and at > KAFKA_TS + MAX_FUTURE_SKEW:
                why.append("future")
    quantity = event.get("quantity")
    if isinstance(quantity, int | float) and not isinstance(quantity, bool) and quantity > INT64_MAX:
        why.append("quantity beyond a long")
    return why


def kafka_batch(values: list[bytes]) -> pa.RecordBatch:
    return kafka_records.kafka_batch(list(values), timestamp_us=KAFKA_US, keys=[b"u_000123"] * len(values))


DECODER = BronzeDecoder(KEY)


@settings(max_examples=2500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(events())
def test_bronze_accepts_exactly_what_the_schema_accepts(event: dict[str, Any]) -> None:
    raw = json.dumps(event, ensure_ascii=False).encode()
    oracle = ORACLE.is_valid(event)
    stricter = stricter_than_the_schema(event, raw)
    row = DECODER(kafka_batch([raw])).to_pylist()[0]
    accepted = row["error_class"] is None
    assert accepted == (oracle and not stricter), (oracle, stricter, row["failed_rules"], event)

    # Both paths: the compiled one accepts exactly what the rule-by-rule one finds nothing wrong with.
    failed, parsed = payload_failures(raw, BronzeRules())
    if not failed:
        failed, _ = check_event(parsed, KAFKA_US, BronzeRules())
    assert (fast_check(raw, KAFKA_US, BronzeRules()) is not None) == (not failed), (failed, event)
    if not accepted:
        assert row["failed_rules"] == failed and failed
        assert all(r.split(":", 1)[0] in _CLASSES for r in failed), failed


_CLASSES = {*RULE_CLASS.values(), "payload", "calendar", "range", "any_of", "format"}


def test_the_boundaries_reach_every_keyword_of_the_schema() -> None:
    """The generator's mutations cover every member, and each rule class fires at least once."""
    assert {path for path, _ in MUTATIONS} == {path for path, _ in MEMBERS}
    seen: set[str] = set()
    for name, base in BASES.items():
        for path, value in MUTATIONS:
            event = copy.deepcopy(base)
            apply(event, path, value)
            failed, _ = check_event(event, KAFKA_US, BronzeRules())
            seen |= {r.split(":", 1)[0] for r in failed}
        assert check_event(base, KAFKA_US, BronzeRules())[0] == [], name
    assert seen >= set(RULE_CLASS.values()) | {"calendar", "range"}, seen


def test_rule_names_say_which_nested_member_failed() -> None:
    event = copy.deepcopy(BASES["click"])
    event["device"] = {"os": "x" * 65}
    event["geo"] = {"country": "Brazil", "lat": 95}
    event["context"] = {"ip": "999.1.1.1"}
    event["user"] = {"email": "no-at-sign"}
    failed, _ = check_event(event, KAFKA_US, BronzeRules())
    assert failed == [
        "required:device.type",
        "length:device.os",
        "pattern:geo.country",
        "range:geo.lat",
        "format:context.ip",
        "format:user.email",
    ]


def test_the_conditionals_are_enforced() -> None:
    search_with_item = {**BASES["search"], "item_id": "i_00042"}
    assert check_event(search_with_item, KAFKA_US, BronzeRules())[0] == ["type:item_id"]
    view_with_price = {**BASES["page_view"], "price": 1.0, "search_query": "q"}
    assert check_event(view_with_price, KAFKA_US, BronzeRules())[0] == [
        "forbidden:price",
        "forbidden:search_query",
    ]
    purchase = {k: v for k, v in BASES["purchase"].items() if k not in ("item_id", "currency")}
    assert check_event(purchase, KAFKA_US, BronzeRules())[0] == ["required:item_id", "required:currency"]
    click = {**BASES["click"], "item_id": None}
    assert check_event(click, KAFKA_US, BronzeRules())[0] == ["type:item_id"]


def test_blank_ids_are_violations_never_one_dedup_key() -> None:
    values = []
    for member in ("event_id", "user_id", "session_id", "item_id"):
        for blank in ("", " ", "\t\n"):
            values.append(json.dumps({**BASES["click"], member: blank}).encode())
    rows = DECODER(kafka_batch(values)).to_pylist()
    assert all(r["error_class"] is not None for r in rows), [r["failed_rules"] for r in rows]
    assert {r["_dedup_key"] for r in rows} == {f"at:t:0:{i}" for i in range(len(values))}


_EDGES = "".join(map(chr, [*range(0x00, 0x21), *range(0x7E, 0xA1), 0x1680, 0x2000, 0x2028, 0x3000, 0xFEFF]))


@settings(max_examples=3000, deadline=None)
@given(
    st.one_of(
        st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=0x7F), max_size=12),
        st.text(alphabet=st.sampled_from(_EDGES + "a-_ "), max_size=8),
        st.text(max_size=12),
    )
)
def test_the_identifier_pattern_s_fast_test_is_the_regular_expression(text: str) -> None:
    """`pattern_test` decides what the contract's id pattern decides, for any text: ASCII controls, the
    C1 range, Unicode spaces and plain ids."""
    from medallion.bronze.validator import IDENTIFIER_TEXT, ecma_pattern, pattern_test

    fast = pattern_test(IDENTIFIER_TEXT)
    assert fast is not None and fast(text) == (ecma_pattern(IDENTIFIER_TEXT).search(text) is not None)


def test_the_contract_s_ids_use_the_accelerated_pattern() -> None:
    """The schema's id members carry exactly `IDENTIFIER_TEXT`, or the fast test would never run."""
    from medallion.bronze.validator import IDENTIFIER_TEXT

    ids = [EVENT_SCHEMA["properties"][m].get("pattern") for m in ("event_id", "user_id", "session_id")]
    assert ids == [IDENTIFIER_TEXT] * 3
