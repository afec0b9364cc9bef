"""Malformed records, one class per way real producers get it wrong, for the consumers' error paths.

Each bad record is tagged in the Kafka header ``medallion.bad`` (`contract.BAD_RECORD_HEADER`) with its
class name, so a test can account for every one: `contract.validate_payload` rejects each class for the
reason `EXPECTED_REASONS` names. Most classes are a real event with one thing broken, so everything else
about them looks normal.
"""

from __future__ import annotations

import copy
import json
import random
from collections.abc import Callable
from typing import Any

from medallion.core.contract import (
    BAD_RECORD_HEADER,
    COMMERCE_EVENT_TYPES,
    MAX_EVENT_BYTES,
    REQUIRED_FIELDS,
    SCHEMA_VERSION,
)
from medallion.produce.mix import Record
from medallion.produce.model import Ids

BAD_CLASSES: tuple[str, ...] = (
    "not_json",
    "truncated_json",
    "non_utf8",
    "empty_value",
    "missing_required_field",
    "wrong_type",
    "unknown_event_type",
    "future_timestamp",
    "before_2000",
    "negative_price_or_quantity",
    "oversized_payload",
    "unknown_currency",
    "not_object",
)

EXPECTED_REASONS: dict[str, str] = {
    "not_json": r"^\$: not JSON",
    "truncated_json": r"^\$: not JSON .*truncated",
    "non_utf8": r"^\$: not UTF-8",
    "empty_value": r"^\$: empty value",
    "missing_required_field": r"^\$: '(" + "|".join(REQUIRED_FIELDS) + r")' is a required property",
    "wrong_type": r"is not of type '(integer|string|number|object)'",
    "unknown_event_type": r"^\$\.event_type: .* is not one of",
    "future_timestamp": r"^\$\.event_time: .* in the future",
    "before_2000": r"^\$\.event_time: .* is before 2000-01-01",
    "negative_price_or_quantity": r"^\$\.(price|quantity): .* is less than the minimum of [01]",
    "oversized_payload": r"^\$: payload of \d+ bytes is over the \d+-byte limit",
    "unknown_currency": r"^\$\.currency: .* is not one of",
    "not_object": r"^\$: .* is not of type 'object'",
}
"""Per class, a regular expression that one of `validate_payload`'s reasons matches."""

Event = dict[str, Any]
_PADDING = "X" * (MAX_EVENT_BYTES + 16_384)


def _dumps(event: object) -> str:
    return json.dumps(event, ensure_ascii=False, separators=(",", ":"))


def _as_commerce(event: Event, rng: random.Random) -> Event:
    if event.get("event_type") not in COMMERCE_EVENT_TYPES:
        event["event_type"] = "purchase"
        event.pop("search_query", None)
        event["item_id"] = event.get("item_id") or f"i_{rng.randint(1, 500):05d}"
        event["price"] = round(rng.uniform(1, 200), 2)
        event["quantity"] = 1
        event["currency"] = "USD"
    return event


def _not_json(event: Event, rng: random.Random) -> bytes:
    choices = (
        f"event_type={event.get('event_type')}&user_id={event.get('user_id')}&t={event.get('event_time')}",
        "<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>",
        f"{event.get('event_type')},{event.get('user_id')},{event.get('session_id')},{event.get('event_time')}",
    )
    return rng.choice(choices).encode()


def _truncated_json(event: Event, rng: random.Random) -> bytes:
    text = _dumps(event)  # cut on a character, not a byte: the record must stay UTF-8
    return text[: rng.randint(len(text) // 10, len(text) * 9 // 10)].encode()


def _non_utf8(event: Event, rng: random.Random) -> bytes:
    event.setdefault("user", {})["name"] = "Zoë Müller"
    text = _dumps(event)
    variant = rng.randrange(3)
    if variant == 0:
        return text.encode("latin-1", errors="replace")
    if variant == 1:
        return text.encode("utf-16")
    raw = text.encode()
    cut = raw.index(b'"event_type"')
    return raw[:cut] + b'"\xff\xfe":1,' + raw[cut:]


def _empty_value(event: Event, rng: random.Random) -> bytes:
    return b""


def _missing_required_field(event: Event, rng: random.Random) -> bytes:
    # pop: a bad record made before any valid event exists starts from a stub that lacks most fields
    event.pop(rng.choice(REQUIRED_FIELDS), None)
    return _dumps(event).encode()


def _wrong_type(event: Event, rng: random.Random) -> bytes:
    variant = rng.randrange(6)
    if variant == 0:
        event["schema_version"] = "1"
    elif variant == 1:
        event["event_time"] = rng.randint(1_600_000_000_000, 1_900_000_000_000)  # epoch ms, not a string
    elif variant == 2:
        event["user_id"] = rng.randint(1, 999_999)
    elif variant == 3:
        event["geo"] = {**event.get("geo", {}), "lat": "48.85"}
    elif variant == 4:
        event["device"] = "mobile"
    else:
        _as_commerce(event, rng)["quantity"] = "2"
    return _dumps(event).encode()


def _unknown_event_type(event: Event, rng: random.Random) -> bytes:
    event["event_type"] = rng.choice(("teleport", "page_veiw", "Purchase", "checkout_started", "login"))
    return _dumps(event).encode()


def _event_time(year: int, rng: random.Random) -> str:
    return (
        f"{year:04d}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}T{rng.randint(0, 23):02d}:"
        f"{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}.{rng.randint(0, 999):03d}Z"
    )


def _future_timestamp(event: Event, rng: random.Random) -> bytes:
    # Decades ahead rather than "now + x", so that the same seed gives the same bytes on any day.
    event["event_time"] = _event_time(rng.randint(2090, 2099), rng)
    return _dumps(event).encode()


def _before_2000(event: Event, rng: random.Random) -> bytes:
    epoch_zero = rng.random() < 0.4  # the classic: an unset clock or a zero timestamp
    event["event_time"] = (
        "1970-01-01T00:00:00.000Z" if epoch_zero else _event_time(rng.randint(1980, 1999), rng)
    )
    return _dumps(event).encode()


def _negative_price_or_quantity(event: Event, rng: random.Random) -> bytes:
    _as_commerce(event, rng)
    if rng.random() < 0.5:
        event["price"] = -round(rng.uniform(0.01, 100), 2)
    else:
        event["quantity"] = rng.choice((0, -1, -3))
    return _dumps(event).encode()


def _oversized_payload(event: Event, rng: random.Random) -> bytes:
    context = event.setdefault("context", {})
    padding = _PADDING[: MAX_EVENT_BYTES + rng.randint(1, 16_384)]
    context["user_agent"] = f"{context.get('user_agent', 'Mozilla/5.0')} {padding}"
    return _dumps(event).encode()


def _unknown_currency(event: Event, rng: random.Random) -> bytes:
    _as_commerce(event, rng)["currency"] = rng.choice(("XYZ", "BTC", "usd", "EURO", "RUB"))
    return _dumps(event).encode()


def _not_object(event: Event, rng: random.Random) -> bytes:
    return rng.choice((_dumps([event]), json.dumps(event.get("event_type")), "42", "null", "true")).encode()


_MAKERS: dict[str, Callable[[Event, random.Random], bytes]] = {
    "not_json": _not_json,
    "truncated_json": _truncated_json,
    "non_utf8": _non_utf8,
    "empty_value": _empty_value,
    "missing_required_field": _missing_required_field,
    "wrong_type": _wrong_type,
    "unknown_event_type": _unknown_event_type,
    "future_timestamp": _future_timestamp,
    "before_2000": _before_2000,
    "negative_price_or_quantity": _negative_price_or_quantity,
    "oversized_payload": _oversized_payload,
    "unknown_currency": _unknown_currency,
    "not_object": _not_object,
}
assert tuple(_MAKERS) == BAD_CLASSES


def make_bad(kind: str, event: Event, rng: random.Random, *, copy_event: bool = True) -> bytes:
    """The record value of class ``kind``, made from the valid ``event`` (changed in place when
    ``copy_event`` is false: the generator passes a freshly parsed one)."""
    try:
        maker = _MAKERS[kind]
    except KeyError:
        raise ValueError(f"unknown bad-record class {kind!r}; known: {', '.join(BAD_CLASSES)}") from None
    return maker(copy.deepcopy(event) if copy_event else event, rng)


class BadRecords:
    """The stream's bad records: the classes take turns (in an order shuffled per run), each made from
    the latest valid event (so it looks like traffic of its time) with a fresh event id, and tagged."""

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._ids = Ids(rng)
        self._order = list(BAD_CLASSES)
        rng.shuffle(self._order)
        self.made = dict.fromkeys(BAD_CLASSES, 0)

    def make(self, latest: Record) -> Record:
        """The next bad record, from ``latest``, the last valid event sent (value ``b""``: none yet)."""
        n = sum(self.made.values())
        kind = self._order[n % len(self._order)]
        key, text, _ = latest
        base = json.loads(text) if text else {"schema_version": SCHEMA_VERSION, "event_type": "page_view"}
        base["event_id"] = self._ids.uuid(n + 1)
        self.made[kind] += 1
        return key, make_bad(kind, base, self._rng, copy_event=False), [(BAD_RECORD_HEADER, kind.encode())]
