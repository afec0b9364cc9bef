"""Rejected records (the DLQ's key and payload) scrubbed by the rules valid rows get, whatever the bytes."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from medallion.bronze import rows
from medallion.pii.redact import REDACTED, REDACTED_MAX_CHARS

KEY = b"redact-test-key-0123456789"
S = rows.Scrubbers(KEY)
R = rows.rejected_redactor(S)
CLEAR = ("Jane", "jane.doe", "7946", "010-9999", "198.51.100.23", "2001:db8:1234:5", "48.856613", "2.352222")


def test_a_parsed_payload_is_scrubbed_member_by_member() -> None:
    raw = (
        b'{"user": {"email": "Jane.Doe+x@mail.example.com", "phone": 442079460958, "n\\u0061me": "Jane Doe"},'
        b' "first_name": ["Jane"], "note": "call +1 (555) 010-9999 or mail j.doe@example.org",'
        b' "context": {"ip": "198.51.100.23"}, "v6": "2001:db8:1234:5::1", "user_id": "jane.doe@example.com",'
        b' "session_id": "2026120300123456", "geo": {"lat": 48.856613, "lon": "2.352222"},'
        b' "price": 1e400, "big": 123456789012345678901234567890, "device": {"type": "watch"}}'
    )
    out = R.payload(raw)
    assert out is not None
    for clear in CLEAR:
        assert clear not in out, (clear, out)
    parsed = json.loads(out.replace("1E+400", "1e400"))
    assert parsed["user"]["name"] == REDACTED and parsed["first_name"] == REDACTED
    assert parsed["user"]["email"] == S.email("Jane.Doe+x@mail.example.com")
    assert parsed["user"]["phone"] == S.phone("442079460958")
    assert parsed["user_id"] == S.email("jane.doe@example.com")  # the whole id hashed, as Bronze does
    assert parsed["session_id"] == "2026120300123456"  # an id kept as sent
    assert parsed["geo"] == {"lat": 48.86, "lon": "2.35"}
    assert parsed["context"]["ip"] == "198.51.100.0/24" and parsed["v6"] == "2001:db8:1234::/48"
    assert parsed["big"] == 123456789012345678901234567890 and "1E+400" in out  # what was wrong, kept
    assert parsed["device"] == {"type": "watch"}


def test_text_that_does_not_parse_is_scrubbed_as_text() -> None:
    raw = (
        b'{"user": {"email": "Jane.Doe+x@mail.example.com", "phone": "+44 20 7946 0958", "n\\u0061me": "Jane"},'
        b' "note": "call +1 (555) 010-9999", "ip": "198.51.100.23", "geo": {"lat": 48.856613, "lon": 2.352222},'
        b' "cut": "jane.doe@exam'  # truncated JSON: the last string never closes
    )
    out = R.payload(raw)
    assert out is not None
    for clear in CLEAR:
        assert clear not in out, (clear, out)
    assert '"name": "<redacted>"' in out and '"lat": 48.86' in out


def test_the_key_is_an_id() -> None:
    assert R.key(b"u_000123", S.ident) == "u_000123"
    assert R.key(b"jane@example.com", S.ident) == S.email("jane@example.com")
    assert R.key(b"\xff\xfe jane@example.com", S.ident) == "\ufffd\ufffd <email>"
    assert R.key(None, S.ident) is None


def test_hostile_payloads_never_raise() -> None:
    for raw in (
        b"[" * 100_000 + b"]" * 100_000,
        b'{"a":' * 5000 + b"1" + b"}" * 5000,
        b"\xff\xfe\x00garbage jane@example.com",
        b'{"n\\ud800": "\\udc00 jane@example.com"}',
        b'"' + b"x" * 100_000,
        b'{"lat": 1e999999, "lon": -1e-999999}',
        b"",
    ):
        out = R.payload(raw)
        assert out is not None and len(out) <= REDACTED_MAX_CHARS + 20
        assert "jane@example.com" not in out


@settings(max_examples=100, deadline=None)
@given(
    st.recursive(
        st.none() | st.booleans() | st.floats() | st.integers() | st.text(),
        lambda c: st.lists(c) | st.dictionaries(st.text(), c),
        max_leaves=30,
    )
)
def test_any_json_value_is_redacted_without_raising(value: object) -> None:
    raw = json.dumps(value, allow_nan=True).encode()
    assert isinstance(R.payload(raw), str)
