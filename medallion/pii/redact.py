"""Redaction of a rejected record (the DLQ's key and payload) by the rules kept rows get.

A payload that parses as JSON is decoded (msgspec, so an escaped member name such as ``"n\\u0061me"`` is
read as ``name``), every member is scrubbed by the rule its name carries — the same rules Bronze applies
to a valid event (`medallion.bronze.rows.rejected_rules`): personal members redacted, email and phone
hashed, coordinates rounded, addresses truncated, ids kept or hashed whole — and every other string,
member names included, scrubbed as free text; then it is serialized again. Numbers are kept as written
(``1E+400`` stays ``1E+400``), so the DLQ still shows what was wrong. Bytes that do not parse are
scrubbed as text. Nothing here raises: a rejected record is bad input by definition.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any

import msgspec

REDACTED = "<redacted>"
PERSONAL_NAMES = ("first_name", "last_name", "full_name", "address")
"""Member names redacted wherever they appear in a rejected payload, besides those Bronze drops from a
valid event (the contract's ``user.name``, ``search_query``)."""
REDACTED_MAX_CHARS = 8192
MAX_DEPTH = 32
"""Members nested deeper than this are replaced whole: the DLQ shows the shape, not the data."""

Rule = Callable[[Any], Any]
_DECODE = msgspec.json.Decoder(float_hook=Decimal)
_ENCODE = msgspec.json.Encoder(decimal_format="number")
_TOO_DEEP = "<too deep>"
# An escaped letter, digit or underscore in text that does not parse (``n\u0061me``): read as itself, so
# a member's name is seen as the rules name it. Quotes and backslashes stay escaped.
_ESCAPED_WORD_CHAR = re.compile(r"\\u00(3[0-9]|[46][1-9A-Fa-f]|[57][0-9Aa]|5[Ff])")
_CUT = "…[truncated]"


def redact(value: Any) -> str:
    """A personal member's value, whatever it was."""
    return REDACTED


def round_number(value: Any, decimals: int = 2) -> Any:
    """A coordinate rounded as Bronze rounds it, whether a JSON number or a string holding one; a value
    that is no finite number is returned as it is (it is no location)."""
    number = value
    if isinstance(value, str):
        try:
            number = Decimal(value.strip())
        except InvalidOperation:
            return value
    if isinstance(number, bool) or not isinstance(number, (int, float, Decimal)):
        return value
    try:
        rounded = Decimal(number).quantize(Decimal(1).scaleb(-decimals))
    except (InvalidOperation, ValueError, OverflowError):
        return value
    return str(rounded) if isinstance(value, str) else rounded


class Redactor:
    """Scrubs rejected payloads by ``rules`` (member name, lower-case → what its value becomes);
    ``text`` scrubs every other string."""

    def __init__(self, rules: dict[str, Rule], text: Callable[[str], str | None]) -> None:
        self.rules = rules
        self.text = text
        names = "|".join(re.escape(n) for n in sorted(n for n, r in rules.items() if r is redact))
        self._personal = re.compile(
            rf'"({names})"(\s*:\s*)(?:"(?:[^"\\]|\\.)*+(?:"|$)|[-+0-9.eE]+)', re.IGNORECASE
        )
        numeric = "|".join(re.escape(n) for n, r in rules.items() if r is round_number)
        self._coordinate = re.compile(rf'"({numeric})"(\s*:\s*)(-?[0-9]+\.[0-9]+)', re.IGNORECASE)

    def payload(self, value: bytes | None) -> str | None:
        """The payload as the DLQ keeps it; never raises."""
        if value is None:
            return None
        try:
            parsed = _DECODE.decode(value)
        except Exception:  # noqa: BLE001 (not JSON, not UTF-8, too deep: scrubbed as text)
            return self.raw_text(value)
        try:
            text = _ENCODE.encode(self._value(parsed, None, 0)).decode("utf-8", "replace")
        except Exception:  # noqa: BLE001 (a value msgspec cannot write back, e.g. a lone surrogate)
            return self.raw_text(value)
        return text if len(text) <= REDACTED_MAX_CHARS else text[:REDACTED_MAX_CHARS] + _CUT

    def key(self, value: bytes | None, ident: Callable[[str], str | None]) -> str | None:
        """A record's key (the user id, by the contract) as the DLQ keeps it; never raises."""
        if value is None:
            return None
        try:
            text = value.decode("utf-8", "replace")[:REDACTED_MAX_CHARS]
            return self.text(ident(text) or "")
        except Exception:  # noqa: BLE001
            return REDACTED

    def raw_text(self, value: bytes) -> str:
        """Bytes that do not parse: personal members redacted, coordinates rounded, then free-text
        scrubbing, cut at ``REDACTED_MAX_CHARS``."""
        try:
            text = value.decode("utf-8", "replace")
            if len(text) > REDACTED_MAX_CHARS:
                text = text[:REDACTED_MAX_CHARS] + _CUT
            text = _ESCAPED_WORD_CHAR.sub(lambda m: chr(int(m[1], 16)), text)
            text = self._personal.sub(rf'"\1"\2"{REDACTED}"', text)
            text = self._coordinate.sub(lambda m: f'"{m[1]}"{m[2]}{round_number(Decimal(m[3]))}', text)
            return self.text(text) or ""
        except Exception:  # noqa: BLE001
            return REDACTED

    def _value(self, value: Any, rule: Rule | None, depth: int) -> Any:
        if depth > MAX_DEPTH:
            return _TOO_DEEP
        if isinstance(value, dict):
            out = {}
            for name, member in value.items():
                own = self.rules.get(name.lower(), rule)
                out[self.text(name) or ""] = (
                    REDACTED if own is redact else self._value(member, own, depth + 1)
                )
            return out
        if isinstance(value, list):
            return [self._value(item, rule, depth + 1) for item in value]
        if rule is not None:
            scrubbed = rule(value)
            if scrubbed is not value:
                return scrubbed
        # No rule, or one that did not apply (a coordinate that is no number): a string is free text.
        return self.text(value) if isinstance(value, str) else value
