"""PII scrubbing of single values: keyed hashing, IP truncation, coordinate rounding, free-text detection.

Email and phone become HMAC-SHA256 (RFC 2104), so they stay joinable under one key and are useless to a
dictionary attack without it. A plain hash is never used: an email's SHA-256 is one lookup away from the
email.

Free text (`scrub_text`) is searched for four kinds, each with a shape strict enough that the look-alikes
Bronze meets every day stay as they are (times, dates, versions, hashes, UUIDs, ids, prices, ISBNs);
tests/pii/corpus.py holds the labelled strings and tests/pii/test_corpus.py measures precision and
recall per kind. The rules, in short:

- **email**: a local part (any letters, so ``josé@``, ``müller@``; ``%XX`` escapes) then ``@`` or its URL
  escape ``%40``, then a domain whose last label has a letter (``lodash@4.17.21`` is a version).
- **phone**: one of the shapes people write — international (``+44 20 7946 0958``, ``+15551234567``,
  ``0049 30 1234567``), North-American (``(555) 123-4567``, ``555.123.4567``, ``1-555-123-4567``),
  national with a trunk 0 and a separator (``030 1234567``, ``07911 123456``), or any 7–15 digits right
  after a word that says phone (``tel:``, ``phone=``, ``call``…). A bare run of digits without such a
  word is **not** a phone: ids, epoch times, order numbers and ISBNs are made of digits too. Never inside
  a word or a longer number (``s_a5551234567``, ``s-u_100280-2026120300`` stay).
- **IPv4** (zero-padded octets too, glued to text as in ``host192.168.1.10``): becomes its /24 in
  canonical form. A dotted quad ending in ``.0`` is kept: it says no more than its /24 would, and it is
  how versions are written (``Chrome/124.0.0.0``); any other dotted quad of valid octets is taken for an
  address (a version ``1.2.3.4`` is truncated like one: text gives no way to tell them apart).
- **IPv6**: a run of hex digits and colons that `ipaddress` accepts (so ``12:34:56`` and MAC addresses are
  not), becomes its /48.

These run once per distinct string inside Bronze's Arrow pass (`medallion.bronze.records`, memoized per
worker), after one quick search that clears most text.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from collections.abc import Callable

_ESC = r"%(?!40)[0-9A-Fa-f]{2}"  # a URL escape inside a local part, never the escaped @ itself
EMAIL_RE = re.compile(
    rf"(?<![\w.%+-])(?:[\w+-]|{_ESC})(?:[\w.+-]|{_ESC})*+(?:@|%40)(?P<domain>[\w-]+(?:\.[\w-]+)*+)"
)
_HAS_LETTER = re.compile(r"[^\W\d_]")
# The shapes of a phone number (see the module's docstring); the callback counts digits.
_PHONE_WORD = r"(?i:tel|phone|mobile|cell|fax|whatsapp|call|ph|fon|handy)[a-z]*"
PHONE_RE = re.compile(
    r"(?<![\w.+-])(?:"
    r"(?P<intl>(?:\+|00(?=[1-9][0-9]{0,2}[ .-]))[1-9][0-9]{0,2}(?:[ .-]?\(?[0-9]{1,5}\)?){1,6})"
    r"|(?P<nanp>(?:1[ .-])?(?:\([2-9][0-9]{2}\) ?|[2-9][0-9]{2}[ .-])[0-9]{3}[ .-][0-9]{4})"
    r"|(?P<trunk>(?:\(0[1-9][0-9]{0,4}\) ?|0[1-9][0-9]{0,4}[ /.-])[0-9]{2,8}(?:[ .-][0-9]{2,8}){0,3})"
    rf"|(?P<cue>{_PHONE_WORD}[\s:=/_#-]{{0,3}}\+?)(?P<bare>[0-9]{{7,15}})"
    r")(?![\w:]|[.,/-][0-9])"
)
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|[01]?[0-9]{1,2})"
IPV4_RE = re.compile(rf"(?<![0-9.])({_OCTET})\.({_OCTET})\.({_OCTET})\.({_OCTET})(?![0-9]|\.[0-9])")
IPV6_RE = re.compile(
    r"(?<![0-9A-Fa-f:])(?=[0-9A-Fa-f]*:[0-9A-Fa-f]*:)[0-9A-Fa-f:]++(?:\.[0-9]{1,3}){0,3}(?!\w)"
)
# Seven digits, one separator at most between two: what every phone shape has. With the counts of ``@``,
# ``:`` and ``.``, it decides which of the four searches a text needs (most need none).
_MAYBE_PHONE = re.compile(r"[0-9](?:[ ().-]?[0-9]){6}")
_BLOCK = 64  # SHA-256 block size in bytes
_NOT_DIGIT = re.compile(r"[^0-9]")
_DIGIT = re.compile(r"[0-9]")
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
        inner.update(value.encode("utf-8", "surrogatepass"))
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.hexdigest()


def normalize_email(value: str | None) -> str | None:
    return None if value is None else value.strip().lower().replace("%40", "@")


def normalize_phone(value: str | None) -> str | None:
    """Digits only, keeping a leading + (``00`` is the same prefix): ``+1 (555) 010-9999``,
    ``+15550109999`` and ``0015550109999`` hash alike."""
    if value is None:
        return None
    value = value.strip()
    digits = _NOT_DIGIT.sub("", value)
    if value.startswith("+"):
        return "+" + digits
    return "+" + digits[2:] if value.startswith("00") and len(digits) > 2 and digits[2] != "0" else digits


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


def _email(m: re.Match[str]) -> str:
    last_label = m["domain"].rsplit(".", 1)[-1]
    return "<email>" if _HAS_LETTER.search(last_label) else m[0]


def _is_phone(m: re.Match[str]) -> bool:
    if m["bare"] is not None:
        return True  # a word said phone, and 7-15 digits follow
    digits = len(_DIGIT.findall(m[0]))
    if m["intl"] is not None:
        return 8 <= digits - (2 if m[0].startswith("00") else 0) <= 15
    if m["trunk"] is not None:
        return 9 <= digits <= 12
    return True  # North-American: the shape fixes the count


def _phone(m: re.Match[str]) -> str:
    if not _is_phone(m):
        return m[0]
    return m["cue"] + "<phone>" if m["bare"] is not None else "<phone>"


def _ipv4(m: re.Match[str]) -> str:
    a, b, c, d = (int(g) for g in m.groups())
    return m[0] if d == 0 else f"{a}.{b}.{c}.0/24"


def _ipv6(m: re.Match[str]) -> str:
    text = m[0]
    candidate = text.rstrip(":.")
    for start in range(min(5, len(candidate))):  # hex letters glued in front (``cafe2001:db8::1``)
        try:
            ip = ipaddress.IPv6Address(candidate[start:])
        except ValueError:
            continue
        if len(_NOT_COLON.sub("", candidate[start:])) < 2:
            break  # ``d::`` (as in ``std::vector``) parses, but is no address anyone has
        prefix = ":".join(g.lstrip("0") or "0" for g in ip.exploded.split(":")[:3]) + "::/48"
        return text[:start] + prefix + text[len(candidate) :]
    return text


_NOT_COLON = re.compile(r"[:.]")


def scrub_text(text: str | None) -> str | None:
    """Emails and phones inside ``text`` become placeholders, IP addresses their /24 or /48 (the rules are
    the module's docstring).

    For every free-text string Bronze keeps (a page path, a referrer, the user agent, a city): PII hides
    anywhere. Text that cannot hold any of them is returned as it is, after one quick search.
    """
    if text is None:
        return None
    if "@" in text or "%40" in text:
        text = EMAIL_RE.sub(_email, text)
    if text.count(":") >= 2:  # first: an IPv4-mapped one (``::ffff:192.0.2.1``) is one address
        text = IPV6_RE.sub(_ipv6, text)
    if text.count(".") >= 3:
        text = IPV4_RE.sub(_ipv4, text)
    if _MAYBE_PHONE.search(text) is not None:
        text = PHONE_RE.sub(_phone, text)
    return text


def scrub_url(value: str | None) -> str | None:
    """A URL kept in Bronze: its query string and fragment cut (`strip_query`), PII in the rest scrubbed."""
    return scrub_text(strip_query(value))


def identifier_kind(value: str) -> str | None:
    """``"email"`` or ``"phone"`` when the whole of ``value`` (an id) is one, else None.

    A phone needs a phone's shape as in `scrub_text`; a bare run of digits is an id (``2026120300123456``),
    and so is ``+`` followed by more than 15 digits.
    """
    text = value.strip()
    if "@" not in text and "%" not in text and text.strip(PHONE_CHARS):
        return None  # the test Bronze's row code inlines: most ids end here
    if "@" in text or "%40" in text:
        m = EMAIL_RE.fullmatch(text)
        return "email" if m is not None and _email(m) == "<email>" else None
    if not text.strip(PHONE_CHARS) and not text.isdigit():
        m = PHONE_RE.fullmatch(text)
        if m is not None and m["bare"] is None and _is_phone(m):
            return "phone"
    return None


PHONE_CHARS = "+()0123456789 ./-"
"""All a phone number written as an id can be made of: an id with any other character is no phone."""


def scrub_identifier(
    value: str, hash_email: Callable[[str], str | None], hash_phone: Callable[[str], str | None]
) -> str | None:
    """An id member as Bronze stores it: exactly as sent, unless the whole id is an email or a phone
    number, which is replaced whole by its keyed hash (the hash of ``user.email`` / ``user.phone``, so
    it joins with them). Never partly: a redacted piece of an id would merge ids that differ."""
    kind = identifier_kind(value)
    if kind is None:
        return value
    return hash_email(value) if kind == "email" else hash_phone(value)
