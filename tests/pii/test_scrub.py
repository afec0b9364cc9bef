from __future__ import annotations

import hashlib
import hmac
import ipaddress

from hypothesis import given
from hypothesis import strategies as st

from medallion.pii.scrub import Hmac, normalize_phone, redact_text, strip_query, truncate_ip


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
    assert strip_query("/p?email=a@b.co#top") == "/p"
    assert strip_query("/p#a?b") == "/p"
    assert strip_query(None) is None


def test_redact_text_leaves_no_email_phone_or_full_ip() -> None:
    text = (
        '{"user": {"email": "Jane.Doe+x@mail.example.com", "phone": "+44 20 7946 0958", "name": "Jane Doe"}, '
        '"note": "call +1 (555) 010-9999 or mail j.doe@example.org", "ip": "198.51.100.23", "v6": "2001:db8:1234::5", '
        '"cut": "jane@exam'  # truncated JSON: the last string never closes
    )
    out = redact_text(text)
    assert out is not None
    for clear in ("Jane", "7946", "010-9999", "j.doe", "198.51.100.23", "2001:db8:1234", "jane@"):
        assert clear not in out, (clear, out)
    assert '"email":"<redacted>"' in out and '"name":"<redacted>"' in out
    assert "198.51.100.0/24" in out and "<email>" in out and "<phone>" in out
