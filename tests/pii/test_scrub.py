from __future__ import annotations

import hashlib
import hmac
import ipaddress

from hypothesis import given
from hypothesis import strategies as st

from medallion.pii.scrub import (
    Hmac,
    identifier_kind,
    normalize_phone,
    scrub_identifier,
    strip_query,
    truncate_ip,
)


def test_hmac_matches_rfc2104_for_short_and_long_keys() -> None:
    values = ["a@example.com", "", "ünïcødé@example.org", "+15550100000"]
    for key in (b"k" * 16, b"x" * 100):  # a key longer than the block is hashed first
        keyed = Hmac(key)
        assert [keyed(v) for v in values] == [
            hmac.new(key, v.encode(), hashlib.sha256).hexdigest() for v in values
        ]
    assert Hmac(b"k" * 16)(None) is None


def test_same_value_same_hash_under_one_key_different_under_another() -> None:
    one, two = Hmac(b"key-one-0123456789"), Hmac(b"key-two-0123456789")
    assert one("a@b.co") == one("a@b.co")
    assert one("a@b.co") != two("a@b.co")


@given(st.ip_addresses())
def test_ip_truncation_keeps_exactly_the_network_prefix(
    addr: ipaddress.IPv4Address | ipaddress.IPv6Address,
) -> None:
    text = addr.compressed
    prefix = 24 if addr.version == 4 else 48
    expected = ipaddress.ip_network(f"{text}/{prefix}", strict=False)
    got = truncate_ip(f" {text} ")
    assert got is not None and ipaddress.ip_network(got) == expected
    assert truncate_ip(addr.exploded) == got  # shorthand or not, the same network
    assert truncate_ip(str(expected.network_address)) == got  # idempotent on the network address


def test_not_an_ip_gives_none() -> None:
    for text in ("banana", "1.2.3", "1.2.3.256", "12345::zz", "1:2:3", "", None):
        assert truncate_ip(text) is None, text


def test_phone_normalization_and_query_stripping() -> None:
    assert normalize_phone(" +1 (555) 010-9999 ") == normalize_phone("+15550109999") == "+15550109999"
    assert normalize_phone("0555 010 9999") == "05550109999"
    assert normalize_phone("0049 30 1234567") == normalize_phone("+49 30 1234567") == "+49301234567"
    assert strip_query("/p?email=a@b.co#top") == "/p"
    assert strip_query("/p#a?b") == "/p"
    assert strip_query(None) is None


def test_an_id_is_kept_whole_or_hashed_whole() -> None:
    keyed = Hmac(b"id-test-key-0123456789")
    kept = [
        "2026120300123456",
        "s-u_100280-2026120300",
        "s_a5551234567",
        "s_3a9f01234567",
        "0012345678",
        "123e4567-e89b-12d3-a456-426614174000",
        "12345678-1234-5678-1234-567812345678",
        "+1234567890123456789",  # more digits than any phone number has
        "user@",
        "lodash@4.17.21",
    ]
    for value in kept:
        assert identifier_kind(value) is None, value
        assert scrub_identifier(value, keyed, keyed) == value
    for value, kind in [
        ("jane.doe@example.com", "email"),
        ("José@Example.com", "email"),
        ("jane%40example.com", "email"),
        ("+15551234567", "phone"),
        ("+44 20 7946 0958", "phone"),
        ("(555) 123-4567", "phone"),
    ]:
        assert identifier_kind(value) == kind, value
        hashed = scrub_identifier(value, lambda v: "E" + (keyed(v.lower()) or ""), lambda v: "P")
        assert hashed is not None and hashed[0] == kind[0].upper(), value
