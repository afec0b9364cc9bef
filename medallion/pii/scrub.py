"""PII scrubbing of single values: keyed hashing, IP truncation, coordinate rounding, redaction.

Email and phone become HMAC-SHA256 (RFC 2104), so they stay
joinable under one key and are useless to a dictionary attack without it. A plain hash is never used: an
email's SHA-256 is one lookup away from the email.

These run once per record inside Bronze's Arrow pass (`medallion.bronze.records`), so each is a few
string operations, no more: no parsing library where a split does.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re

# Each pattern may only start where a run of its characters starts (the look-behind), and its runs are
# the first run is possessive, so a long run without a match costs linear time rather than quadratic backtracking.
EMAIL_RE = re.compile(
    r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]++@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]*)*"
)  # cut-off ones too
# No dots (those are IPv4 addresses), and not an ISO date (2026-11-29), which has the digits of one.
PHONE_RE = re.compile(r"(?<![\d+])(?![0-9]{4}-[0-9]{2}-[0-9]{2}(?![0-9]))\+?\d[\d ()-]{7,}\d")
IPV4_RE = re.compile(r"\b(\d{1,3}\.\d{1,3}\.\d{1,3})\.\d{1,3}\b")
# Two groups and a colon (``2001:db8:...``), or one group and ``::`` (``fe80::1``).
IPV6_RE = re.compile(
    r"(?<![0-9A-Fa-f:])(?:(?:[0-9A-Fa-f]{1,4}:){2,7}|[0-9A-Fa-f]{1,4}::)[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4})*"
)
# What each of the four cannot do without (an @; eight phone characters from a digit; digit, dot, digit;
# two colons after a hex digit): one quick search, with no look-arounds, clears most text.
_MAYBE_PII_RE = re.compile(r"@|\d[\d ()-]{7}|\d\.\d|[0-9A-Fa-f]:[0-9A-Fa-f]{0,4}:")
# JSON members whose whole value is personal (names, free text): the value goes, the key stays.
PII_MEMBER_RE = re.compile(
    r'"(name|first_name|last_name|full_name|search_query|email|phone)"\s*:\s*"(?:[^"\\]|\\.)*+(?:"|$)'
)
REDACTED_MAX_CHARS = 8192
_BLOCK = 64  # SHA-256 block size in bytes
_NOT_DIGIT = re.compile(r"[^0-9]")
_IPV4 = re.compile(r"([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})")


class Hmac:
    """HMAC-SHA256 under one key, of a string (UTF-8) as lower-case hex; None stays None.

    RFC 2104 with the key's inner and outer pads hashed once, so each value costs two hash updates
    (about a third of `hmac.digest`'s time). Not picklable: build it where it is used.
    """

    def __init__(self, key: bytes) -> None:
        if len(key) > _BLOCK:
            key = hashlib.sha256(key).digest()
        key = key.ljust(_BLOCK, b"\0")
        self._inner = hashlib.sha256(bytes(b ^ 0x36 for b in key))
        self._outer = hashlib.sha256(bytes(b ^ 0x5C for b in key))

    def __call__(self, value: str | None) -> str | None:
        if value is None:
            return None
        inner = self._inner.copy()
        inner.update(value.encode())
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.hexdigest()


def normalize_email(value: str | None) -> str | None:
    return None if value is None else value.strip().lower()


def normalize_phone(value: str | None) -> str | None:
    """Digits only, keeping a leading +: `+1 (555) 010-9999` and `+15550109999` hash alike."""
    if value is None:
        return None
    value = value.strip()
    digits = _NOT_DIGIT.sub("", value)
    return "+" + digits if value.startswith("+") else digits


def truncate_ip(value: str | None) -> str | None:
    """IPv4 → its /24 (``203.0.113.0/24``), IPv6 → its /48 (``2001:db8:abcd::/48``); else None.

    IPv6 addresses are expanded first, so that ``::`` shorthand cannot hide which groups are kept.
    """
    if value is None:
        return None
    ip = value.strip()
    v4 = _IPV4.fullmatch(ip)
    if v4 is not None:
        a, b, c, d = v4.groups()
        if max(len(a), len(b), len(c), len(d)) < 3 or max(int(a), int(b), int(c), int(d)) < 256:
            return f"{a}.{b}.{c}.0/24"
        return None
    if ":" not in ip:
        return None
    try:
        groups = ipaddress.IPv6Address(ip).exploded.split(":")[:3]
    except ValueError:
        return None
    return ":".join(g.lstrip("0") or "0" for g in groups) + "::/48"


def round_coordinate(value: float | None, decimals: int = 2) -> float | None:
    """Round a latitude/longitude: 2 decimals is about 1 km, enough for geo features, not for a home."""
    return None if value is None else round(value, decimals)


def strip_query(value: str | None) -> str | None:
    """Drop a URL's query string and fragment, where emails and tokens hide."""
    if value is None:
        return None
    cut = len(value)
    for mark in "?#":
        at = value.find(mark)
        if 0 <= at < cut:
            cut = at
    return value[:cut]


def scrub_text(text: str | None) -> str | None:
    """Emails, phones and IPv6 addresses inside ``text`` become placeholders, IPv4 addresses their /24.

    For every string Bronze keeps (a page path, a referrer, the user agent, a city): PII hides anywhere.
    Text that cannot hold any of them is returned as it is, after one quick search. A version number shaped like an IPv4
    address (``Chrome/124.0.0.0``) is truncated like one: text gives no way to tell them apart.
    """
    if text is None or _MAYBE_PII_RE.search(text) is None:
        return text
    text = EMAIL_RE.sub("<email>", text)
    text = IPV4_RE.sub(r"\1.0/24", text)
    text = IPV6_RE.sub("<ipv6>", text)
    return PHONE_RE.sub("<phone>", text)


def scrub_url(value: str | None) -> str | None:
    """A URL kept in Bronze: its query string and fragment cut (`strip_query`), PII in the rest scrubbed."""
    return scrub_text(strip_query(value))


def redact_text(text: str | None) -> str | None:
    """Scrub PII inside text that may not even parse (a rejected payload): personal JSON members become
    placeholders, then `scrub_text`; the text is cut at ``REDACTED_MAX_CHARS``. The rest is kept, to show
    what went wrong."""
    if text is None:
        return None
    if len(text) > REDACTED_MAX_CHARS:
        text = text[:REDACTED_MAX_CHARS] + "…[truncated]"
    return scrub_text(PII_MEMBER_RE.sub(r'"\1":"<redacted>"', text))
