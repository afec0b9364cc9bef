"""PII scrubbing as Spark column helpers: keyed hashing, IP truncation, coordinate rounding, redaction.

Email and phone become HMAC-SHA256 (RFC 2104) computed with Spark's built-in ``sha2`` — no Python UDF —
so they stay joinable under one key and are useless to a dictionary attack without it. A plain hash is
never used: an email's SHA-256 is one lookup away from the email.
"""

from __future__ import annotations

import hashlib

from pyspark.sql import Column
from pyspark.sql import functions as F

_BLOCK = 64  # SHA-256 block size in bytes

# Each pattern may only start where a run of its characters starts (the look-behind), so a long run
# without a match costs linear time rather than quadratic backtracking.
EMAIL_RE = r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]++@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]*)*"  # cut-off ones too
PHONE_RE = r"(?<![\d+])\+?\d[\d ()-]{7,}\d"  # no dots: those are IPv4 addresses
IPV4_RE = r"\b(\d{1,3}\.\d{1,3}\.\d{1,3})\.\d{1,3}\b"
IPV6_RE = r"(?<![0-9A-Fa-f:])(?:[0-9A-Fa-f]{1,4}:){2,7}[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4})*"
# JSON members whose whole value is personal (names, free text): the value goes, the key stays.
PII_MEMBER_RE = (
    r'"(name|first_name|last_name|full_name|search_query|email|phone)"\s*:\s*"(?:[^"\\]|\\.)*+(?:"|$)'
)
REDACTED_MAX_CHARS = 8192


def _pads(key: bytes) -> tuple[bytes, bytes]:
    if len(key) > _BLOCK:
        key = hashlib.sha256(key).digest()
    key = key.ljust(_BLOCK, b"\0")
    return bytes(b ^ 0x36 for b in key), bytes(b ^ 0x5C for b in key)


def hmac_sha256(col: Column, key: bytes) -> Column:
    """HMAC-SHA256 of a string column as lower-case hex; null stays null."""
    ipad, opad = _pads(key)
    inner = F.unhex(F.sha2(F.concat(F.lit(ipad), F.encode(col, "UTF-8")), 256))
    return F.sha2(F.concat(F.lit(opad), inner), 256)


def normalize_email(col: Column) -> Column:
    return F.lower(F.trim(col))


def normalize_phone(col: Column) -> Column:
    """Digits only, keeping a leading +: `+1 (555) 010-9999` and `+15550109999` hash alike."""
    trimmed = F.trim(col)
    digits = F.regexp_replace(trimmed, r"[^0-9]", "")
    return F.when(trimmed.startswith("+"), F.concat(F.lit("+"), digits)).otherwise(digits)


def truncate_ip(col: Column) -> Column:
    """IPv4 → its /24 (``203.0.113.0/24``), IPv6 → its /48 (``2001:db8:abcd::/48``); else null.

    IPv6 addresses are expanded first so that ``::`` shorthand cannot hide which groups are kept.
    """
    ip = F.trim(col)
    v4 = F.regexp_extract(ip, r"^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$", 0) != ""
    v4_net = F.concat(F.regexp_extract(ip, r"^(\d{1,3}\.\d{1,3}\.\d{1,3})\.", 1), F.lit(".0/24"))
    return (
        F.when(v4, v4_net)
        .when(ip.contains(":"), _ipv6_prefix48(F.lower(ip)))
        .otherwise(F.lit(None).cast("string"))
    )


def _ipv6_prefix48(ip: Column) -> Column:
    # Split around "::"; the groups before it are the leading groups, padded with zeros when fewer than 3.
    head = F.split(F.split(ip, "::").getItem(0), ":")
    has_gap = ip.contains("::")
    tail = F.when(has_gap, F.split(F.element_at(F.split(ip, "::"), -1), ":"))
    head_groups = F.when(F.element_at(head, 1) == "", F.array().cast("array<string>")).otherwise(head)
    n_head = F.size(head_groups)
    # Without "::" the address must have 8 groups; with it, the missing groups are zeros in between.
    n_tail = F.when(has_gap & (F.element_at(tail, 1) != ""), F.size(tail)).otherwise(F.lit(0))
    missing = F.lit(8) - n_head - n_tail
    zeros = F.array_repeat(F.lit("0"), F.greatest(missing, F.lit(0)))
    groups = F.concat(
        head_groups,
        F.when(has_gap, zeros).otherwise(F.array().cast("array<string>")),
        F.when(has_gap & (n_tail > 0), tail).otherwise(F.array().cast("array<string>")),
    )
    valid = (F.size(groups) == 8) & F.forall(groups, lambda g: g.rlike("^[0-9a-f]{1,4}$"))
    first3 = F.transform(F.slice(groups, 1, 3), lambda g: F.regexp_replace(g, "^0+(?=.)", ""))
    return F.when(valid, F.concat(F.array_join(first3, ":"), F.lit("::/48")))


def round_coordinate(col: Column, decimals: int = 2) -> Column:
    """Round a latitude/longitude: 2 decimals is about 1 km, enough for geo features, not for a home."""
    return F.round(col.cast("double"), decimals)


def strip_query(col: Column) -> Column:
    """Drop a URL's query string and fragment, where emails and tokens hide."""
    return F.regexp_replace(col, r"[?#].*$", "")


def redact_text(col: Column) -> Column:
    """Scrub PII inside text that may not even parse (a rejected payload): personal JSON members and
    emails, phones and IPv6 addresses become placeholders, IPv4 addresses their /24; the text is cut at
    ``REDACTED_MAX_CHARS``. The rest is kept, to show what went wrong."""
    cut = F.when(
        F.length(col) > REDACTED_MAX_CHARS,
        F.concat(F.substring(col, 1, REDACTED_MAX_CHARS), F.lit("…[truncated]")),
    ).otherwise(col)
    out = F.regexp_replace(cut, PII_MEMBER_RE, '"$1":"<redacted>"')
    out = F.regexp_replace(out, EMAIL_RE, "<email>")
    out = F.regexp_replace(out, IPV4_RE, "$1.0/24")
    out = F.regexp_replace(out, IPV6_RE, "<ipv6>")
    return F.regexp_replace(out, PHONE_RE, "<phone>")
