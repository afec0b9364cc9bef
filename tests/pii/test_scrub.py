from __future__ import annotations

import hashlib
import hmac
import ipaddress
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from pyspark.sql import functions as F

from medallion.pii.scrub import hmac_sha256, redact_text, truncate_ip


def test_hmac_matches_rfc2104_for_short_and_long_keys(spark: Any) -> None:
    values = ["a@example.com", "", "ünïcødé@example.org", "+15550100000"]
    keys = [b"k" * 16, b"x" * 100]  # a key longer than the block is hashed first
    df = spark.createDataFrame([(v,) for v in values], "v string")
    for key in keys:
        got = [r[0] for r in df.select(hmac_sha256(F.col("v"), key)).collect()]
        want = [hmac.new(key, v.encode(), hashlib.sha256).hexdigest() for v in values]
        assert got == want


def test_same_value_same_hash_under_one_key_different_under_another(spark: Any) -> None:
    df = spark.createDataFrame([("a@b.co",), ("a@b.co",)], "v string")
    one = df.select(hmac_sha256(F.col("v"), b"key-one-0123456789").alias("h")).collect()
    two = df.select(hmac_sha256(F.col("v"), b"key-two-0123456789").alias("h")).collect()
    assert one[0].h == one[1].h
    assert one[0].h != two[0].h


ipv4 = st.ip_addresses(v=4).map(str)
ipv6 = st.ip_addresses(v=6).map(lambda a: a.compressed)


@settings(max_examples=1, deadline=None)
@given(st.lists(ipv4, min_size=30, max_size=30), st.lists(ipv6, min_size=30, max_size=30))
def test_ip_truncation_keeps_exactly_the_network_prefix(spark: Any, v4: list[str], v6: list[str]) -> None:
    # One Spark job for many generated addresses; compared with Python's ipaddress module.
    rows = (
        spark.createDataFrame([(a,) for a in v4 + v6], "ip string")
        .select("ip", truncate_ip(F.col("ip")).alias("t"))
        .collect()
    )
    for row in rows:
        addr = ipaddress.ip_address(row.ip)
        prefix = 24 if addr.version == 4 else 48
        expected = ipaddress.ip_network(f"{row.ip}/{prefix}", strict=False)
        assert ipaddress.ip_network(row.t) == expected, row
        # idempotent on the network address itself
        again = spark.createDataFrame([(str(expected.network_address),)], "ip string")
        if addr.version == 4:
            assert again.select(truncate_ip(F.col("ip"))).first()[0] == row.t


def test_not_an_ip_gives_null(spark: Any) -> None:
    df = spark.createDataFrame([("banana",), ("1.2.3",), ("12345::zz",), (None,)], "ip string")
    assert [r[0] for r in df.select(truncate_ip(F.col("ip"))).collect()] == [None] * 4


def test_redact_text_leaves_no_email_phone_or_full_ip(spark: Any) -> None:
    text = (
        '{"user": {"email": "Jane.Doe+x@mail.example.com", "phone": "+44 20 7946 0958", "name": "Jane Doe"}, '
        '"note": "call +1 (555) 010-9999 or mail j.doe@example.org", "ip": "198.51.100.23", "v6": "2001:db8:1234::5", '
        '"cut": "jane@exam'  # truncated JSON: the last string never closes
    )
    out = spark.createDataFrame([(text,)], "t string").select(redact_text(F.col("t"))).first()[0]
    for clear in ("Jane", "7946", "010-9999", "j.doe", "198.51.100.23", "2001:db8:1234", "jane@"):
        assert clear not in out, (clear, out)
    assert '"email":"<redacted>"' in out and '"name":"<redacted>"' in out
    assert "198.51.100.0/24" in out and "<email>" in out and "<phone>" in out
