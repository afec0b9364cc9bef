"""The erasure register: the keyed hashes of every erased person, which Bronze consults.

An erased person's events may still sit in Kafka within the topic's retention, and a replay (a reset
checkpoint, a backfill, a new consumer) would bring them back. So `forget` adds the person's keyed
hashes here before it removes anything, and Bronze's decoder (`Erasures`) drops a record that matches
one: counted, never written, not even to the DLQ, whose payload would hold the person again.

What is stored: HMAC-SHA256 values under the lake's PII key only, never a clear value:

- ``H(u)`` for every form ``u`` under which the lake stores the person's user id (the id as sent and,
  where the id is itself an email or a phone, its keyed hash, as Bronze may store it);
- the person's ``email_hmac`` and ``phone_hmac`` values as Bronze stores them (already keyed hashes);
- per request, a request id ``H("erasure-request" | kind | value)``: the ledger names the request by
  it, and whoever holds the value and the key can prove the request was carried out, while the ledger
  holds none of the lake's keys of the person.

One JSON file (`catalog.ERASURE_REGISTER`), replaced whole on each change (`lakefs.write_text`); the
`forget` lock keeps two erasures from writing it at once. Only the ingest's driver reads it (`snapshot`),
never Spark's workers, which may have no access to the lake's storage from Python: the hashes travel
to them inside the decoder. Before each micro-batch is written, the driver compares the register with
the snapshot its query started from; when it changed, the batch is not written, and the query restarts
from its checkpoint with the new hashes, so a running stream drops a newly erased person from the
micro-batch being written on.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import msgspec

from medallion.core import lakefs
from medallion.pii.scrub import (
    EMAIL_RE,
    PHONE_RE,
    Hmac,
    normalize_email,
    normalize_phone,
    scrub_identifier,
)

ERASED_CLASS = "erased"
"""The decoder's ``error_class`` for a record of an erased person: counted, written nowhere."""

_ANY_JSON = msgspec.json.Decoder()
_USER_ID_RE = re.compile(r'"user_id"\s*:\s*"((?:[^"\\]|\\.)*)"')
_DIGITS = re.compile(r"\d")


@dataclass
class Register:
    """The register's content: the hashes Bronze checks, and one entry per erasure request."""

    hashes: set[str] = field(default_factory=set)
    requests: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> str:
        return json.dumps({"hashes": sorted(self.hashes), "requests": self.requests}, indent=0)


def load(path: str) -> Register:
    """The register at ``path``; empty when there is none yet."""
    if not lakefs.exists(path):
        return Register()
    data = json.loads(lakefs.read_text(path))
    return Register(set(data.get("hashes", ())), list(data.get("requests", ())))


def snapshot(path: str) -> tuple[str, frozenset[str]]:
    """The register's hashes and its version, a digest that changes with any change ('' when there is
    no register yet)."""
    if not lakefs.exists(path):
        return "", frozenset()
    text = lakefs.read_text(path)
    return hashlib.sha256(text.encode()).hexdigest(), frozenset(json.loads(text).get("hashes", ()))


def add(path: str, hashes: Iterable[str], request: str, run_id: str) -> int:
    """Add ``hashes`` (and the request) to the register; how many hashes were new."""
    register = load(path)
    new = set(hashes) - register.hashes
    register.hashes |= new
    register.requests.append(
        {"request": request, "at": datetime.now(UTC).isoformat(timespec="seconds"), "run_id": run_id}
    )
    lakefs.write_text(path, register.to_json())
    return len(new)


def stored_user_ids(raw: str, keyed: Hmac) -> set[str]:
    """Every form under which the lake may store the user id ``raw``: as sent (and stripped), and, when
    it is shaped like an email or a phone, its keyed hash (how PII-shaped ids are stored)."""
    email = lambda v: keyed(normalize_email(v))  # noqa: E731
    phone = lambda v: keyed(normalize_phone(v))  # noqa: E731
    forms = {raw, raw.strip(), scrub_identifier(raw, email, phone) or ""}  # as Bronze stores an id
    if "@" in raw:
        forms.add(keyed(normalize_email(raw)) or "")
    if len(_DIGITS.findall(raw)) >= 7:
        forms.add(keyed(normalize_phone(raw)) or "")
    forms.discard("")
    return forms


def request_id(kind: str, value: str, keyed: Hmac) -> str:
    """The erasure request's id: a keyed hash that is none of the lake's keys of the person."""
    normalized = {"email": normalize_email, "phone": normalize_phone}.get(kind, str.strip)(value)
    return keyed(f"erasure-request\x00{kind}\x00{normalized}") or ""


class Erasures:
    """Bronze's check: is this record about an erased person? Built per task from the register's
    hashes (as the driver read them); every hash it computes is memoized (ids and emails recur across
    a batch)."""

    def __init__(self, hashes: frozenset[str], pii_key: bytes) -> None:
        self.hashes = hashes
        keyed = Hmac(pii_key)
        self._hash = lru_cache(1 << 16)(keyed)
        self._email = lru_cache(1 << 12)(lambda v: keyed(normalize_email(v)))
        self._phone = lru_cache(1 << 12)(lambda v: keyed(normalize_phone(v)))
        self._ids = lru_cache(1 << 12)(lambda v: stored_user_ids(v, keyed))

    def __bool__(self) -> bool:
        return bool(self.hashes)

    def row(self, user_id: str | None, email_hmac: str | None, phone_hmac: str | None) -> bool:
        """A Bronze row (its stored user id and PII hashes) of an erased person."""
        hashes = self.hashes
        return (
            (email_hmac is not None and email_hmac in hashes)
            or (phone_hmac is not None and phone_hmac in hashes)
            or (user_id is not None and self._hash(user_id) in hashes)
        )

    def raw(self, key: bytes | None, value: bytes | None) -> bool:
        """A rejected Kafka record (its key and payload, before redaction) that names an erased person:
        by its user id member (parsed, or found in text that does not parse), its key, or any email or
        phone in its text."""
        text = value.decode("utf-8", "replace") if value else ""
        ids: list[str] = []
        if key:
            ids.append(key.decode("utf-8", "replace"))
        try:
            event = _ANY_JSON.decode(value) if value else None
        except msgspec.DecodeError:
            event = None
        if isinstance(event, dict) and isinstance(event.get("user_id"), str):
            ids.append(event["user_id"])
        else:
            ids += _USER_ID_RE.findall(text)
        if any(self._hash(form) in self.hashes for raw in ids for form in self._ids(raw)):
            return True
        if "@" in text and any(self._email(e) in self.hashes for e in EMAIL_RE.findall(text)):
            return True
        return any(self._phone(p) in self.hashes for p in PHONE_RE.findall(text))
