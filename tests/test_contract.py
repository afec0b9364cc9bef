"""The event contract: the JSON Schema, the rules it cannot state, and the ``jsonschema`` oracle over it."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from medallion.core import contract
from medallion.core.contract import (
    COMMERCE_EVENT_TYPES,
    CURRENCIES,
    EVENT_SCHEMA,
    EVENT_TYPES,
    MAX_EVENT_BYTES,
    SCHEMA_VERSION,
    format_event_time,
    validate_event,
    validate_payload,
)

REPO = Path(__file__).resolve().parents[1]

PURCHASE: dict[str, Any] = {
    "schema_version": 1,
    "event_id": "0bcebe72-1cd7-41e1-a298-ea4681477ae7",
    "event_type": "purchase",
    "event_time": "2026-11-25T12:34:56.789Z",
    "user_id": "u_000123",
    "session_id": "s_303dd8fb83e4",
    "item_id": "i_00042",
    "device": {"os": "iOS", "browser": "Safari", "type": "mobile"},
    "geo": {"country": "BR", "city": "São Paulo", "lat": -23.55, "lon": -46.63},
    "context": {"ip": "2001:db8:1:2::3", "user_agent": "Mozilla/5.0", "referrer": None, "page": "/checkout"},
    "user": {"email": "zoe@example.com", "phone": "+5511987654321", "name": "Zoë"},
    "price": 199.9,
    "quantity": 2,
    "currency": "BRL",
}
NOW = datetime(2026, 11, 26, tzinfo=UTC)


def event(**changes: Any) -> dict[str, Any]:
    out = copy.deepcopy(PURCHASE)
    for key, value in changes.items():
        if value is None and key != "item_id":
            out.pop(key, None)
        else:
            out[key] = value
    return out


def test_the_schema_is_valid_draft_2020_12_and_ships_inside_the_package() -> None:
    Draft202012Validator.check_schema(EVENT_SCHEMA)
    packaged = resources.files("medallion.schemas").joinpath("user_event.schema.json")
    assert json.loads(packaged.read_text(encoding="utf-8")) == EVENT_SCHEMA
    assert "medallion/schemas/user_event.schema.json" in (REPO / "schemas" / "README.md").read_text()


def test_constants_come_from_the_schema() -> None:
    assert SCHEMA_VERSION == 1 and contract.SUPPORTED_VERSIONS == (1,)
    assert EVENT_TYPES == ("page_view", "search", "click", "add_to_cart", "remove_from_cart", "purchase")
    assert set(COMMERCE_EVENT_TYPES) == {"add_to_cart", "remove_from_cart", "purchase"}
    assert {"USD", "EUR", "GBP", "JPY", "CAD", "AUD"} <= set(CURRENCIES)
    assert contract.REQUIRED_FIELDS == (
        "schema_version", "event_id", "event_type", "event_time", "user_id", "session_id",
    )  # fmt: skip


def test_a_full_commerce_event_is_valid() -> None:
    assert validate_event(PURCHASE, now=NOW) == []
    assert validate_payload(json.dumps(PURCHASE, ensure_ascii=False).encode(), now=NOW) == []


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"price": None}, "'price' is a required property"),
        ({"currency": "XYZ"}, "$.currency: 'XYZ' is not one of"),
        ({"quantity": 0}, "$.quantity: 0 is less than the minimum of 1"),
        ({"price": -1}, "$.price: -1 is less than the minimum of 0"),
        (
            {"event_type": "click", "price": None, "quantity": None},
            "$.currency: not allowed for this event_type",
        ),
        ({"event_type": "click", "item_id": None}, "$.item_id: None is not of type 'string'"),
        ({"event_type": "search", "search_query": "x", "item_id": None}, "$.price: not allowed"),
        ({"schema_version": 2}, "$.schema_version: 1 was expected"),
        ({"event_id": "   "}, "$.event_id: '   ' does not match"),
        ({"event_id": "x" * 129}, "$.event_id: '" + "x" * 129 + "' is too long"),
        ({"user_id": "u\t1"}, "$.user_id: 'u\\t1' does not match"),
        ({"session_id": ""}, "$.session_id: '' does not match"),
        ({"item_id": "sku\x85"}, "$.item_id: 'sku\\x85' does not match"),
        ({"event_time": "2026-11-25 12:34:56"}, "$.event_time: '2026-11-25 12:34:56' does not match"),
        ({"event_time": "2026-02-30T00:00:00.000Z"}, "is not a valid date-time"),
        ({"geo": {"country": "Brazil"}}, "$.geo.country: 'Brazil' does not match"),
        (
            {"context": {"ip": "999.1.1.1"}},
            "$.context.ip: '999.1.1.1' is not valid under any of the given schemas",
        ),
        ({"device": {"type": "watch"}}, "$.device.type: 'watch' is not one of"),
    ],
)
def test_contract_violations_are_named(changes: dict[str, Any], reason: str) -> None:
    reasons = validate_event(event(**changes), now=NOW)
    assert any(reason in r for r in reasons), reasons


def test_search_carries_a_query_and_no_item_other_events_no_query() -> None:
    search = {k: v for k, v in PURCHASE.items() if k not in ("price", "quantity", "currency", "item_id")}
    search |= {"event_type": "search", "search_query": "wireless headphones"}
    assert validate_event(search, now=NOW) == []
    assert validate_event(search | {"item_id": None}, now=NOW) == []
    assert "$.item_id: 'i_00042' is not of type 'null'" in validate_event(
        search | {"item_id": "i_00042"}, now=NOW
    )
    no_query = {k: v for k, v in search.items() if k != "search_query"}
    assert "$: 'search_query' is a required property" in validate_event(no_query, now=NOW)
    view = search | {"event_type": "page_view"}
    assert "$.search_query: not allowed for this event_type" in validate_event(view, now=NOW)
    assert validate_event({k: v for k, v in view.items() if k != "search_query"}, now=NOW) == []


@pytest.mark.parametrize(
    "ident",
    [
        "550e8400-e29b-41d4-a716-446655440000",
        "01ARZ3NDEKTSV4RRFFQ69G5FAV",
        "42",
        "zoe@example.com",
        "SKU 12/ä",
        "x" * 128,
    ],
)
def test_ids_are_opaque_strings(ident: str) -> None:
    """UUIDs, ULIDs, digits, emails, SKUs with spaces: any non-blank id of at most 128 characters with no
    control character is an id, for the event, the user, the session and the item alike."""
    changed = event(event_id=ident, user_id=ident, session_id=ident, item_id=ident)
    assert validate_event(changed, now=NOW) == []


def test_unknown_fields_are_allowed_so_that_adding_one_keeps_the_version() -> None:
    assert validate_event(event(new_optional_field={"any": "thing"}), now=NOW) == []


def test_event_time_must_be_after_2000_and_not_far_in_the_future() -> None:
    late_2099 = validate_event(event(event_time="2099-01-01T00:00:00.000Z"), now=NOW)
    assert any("in the future" in r for r in late_2099)
    tomorrow = format_event_time(NOW + timedelta(hours=23))
    assert validate_event(event(event_time=tomorrow), now=NOW) == []
    epoch = validate_event(event(event_time="1970-01-01T00:00:00.000Z"), now=NOW)
    assert any("is before 2000-01-01" in r for r in epoch)


def test_payload_checks_size_encoding_and_syntax_before_the_schema() -> None:
    assert validate_payload(b"") == ["$: empty value (no bytes)"]
    assert validate_payload(None) == ["$: empty value (no bytes)"]
    big = json.dumps(event(context={"user_agent": "x" * MAX_EVENT_BYTES})).encode()
    assert "over the 32768-byte limit" in validate_payload(big)[0]
    assert validate_payload('{"name": "Zoë"}'.encode("latin-1"))[0].startswith("$: not UTF-8")
    assert validate_payload(b"<html>")[0].startswith("$: not JSON")
    assert "truncated" in validate_payload(json.dumps(PURCHASE).encode()[:100])[0]
    assert validate_payload(b"[1, 2]") == ["$: [1, 2] is not of type 'object'"]


@given(st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2099, 12, 31), timezones=st.just(UTC)))
def test_format_event_time_always_matches_the_contract(moment: datetime) -> None:
    text = format_event_time(moment)
    assert validate_event(event(event_time=text), now=datetime(2100, 1, 1, tzinfo=UTC)) == []
    assert datetime.fromisoformat(text) == moment.replace(microsecond=moment.microsecond // 1000 * 1000)
