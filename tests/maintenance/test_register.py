"""The erasure register and Bronze's check against it: an erased person's records are counted, written
nowhere, and a new erasure reaches a decoder from its next task on."""

from __future__ import annotations

import datetime as dt
import json
import pickle
from pathlib import Path
from typing import Any

from medallion.bronze.records import ERASED_RULE, BronzeDecoder
from medallion.maintenance import register
from medallion.pii.scrub import Hmac, normalize_email
from tests.fixtures import records as kafka_records

KEY = b"register-test-key-0123456789"
KAFKA_US = int(dt.datetime(2026, 11, 26, tzinfo=dt.UTC).timestamp() * 1_000_000)


def event(user_id: str, email: str, n: int) -> dict[str, Any]:
    return {
        "schema_version": 1,
        "event_id": f"0bcebe72-1cd7-41e1-a298-ea46814770{n:02d}",
        "event_type": "page_view",
        "event_time": "2026-11-25T12:34:56.789Z",
        "user_id": user_id,
        "session_id": f"s_{user_id}",
        "device": {"os": "iOS", "browser": "Safari", "type": "mobile"},
        "user": {"email": email},
    }


def batch(events: list[dict[str, Any]], bad: list[bytes]) -> Any:
    values = [json.dumps(e).encode() for e in events] + bad
    keys = [e["user_id"].encode() for e in events] + [None] * len(bad)
    return kafka_records.kafka_batch(values, timestamp_us=KAFKA_US, keys=keys)


def test_a_record_of_an_erased_person_is_counted_and_holds_nothing(tmp_path: Path) -> None:
    path = str(tmp_path / "register.json")
    keyed = Hmac(KEY)
    gone, kept = event("u_000777", "Gone@Example.com", 1), event("u_000123", "kept@example.com", 2)
    # Erased by the user id for one, by the email for another record of the same person (another id).
    by_email = event("u_000778", "gone@example.com", 3)
    bad_json = b'{"user_id": "u_000777", "event_type": "nope", '  # does not parse: found in the text
    bad_other = b'{"user_id": "u_000123", "event_type": "nope"}'
    decoder = BronzeDecoder(KEY, erasure_register=path)
    before = decoder(batch([gone, kept, by_email], [bad_json, bad_other])).to_pylist()
    assert [r["error_class"] for r in before] == [None, None, None, "payload", "required"]

    added = register.add(
        path, {keyed("u_000777") or "", keyed(normalize_email("gone@example.com")) or ""}, "req", "run"
    )
    assert added == 2
    assert "u_000777" not in (tmp_path / "register.json").read_text()  # hashes only

    # The decoder already running keeps its register; a new task (a pickled copy) reads the new one.
    assert decoder(batch([gone], [])).to_pylist()[0]["error_class"] is None
    fresh = pickle.loads(pickle.dumps(decoder))
    rows = fresh(batch([gone, kept, by_email], [bad_json, bad_other])).to_pylist()
    assert [r["error_class"] for r in rows] == ["erased", None, "erased", "erased", "required"]
    for row in rows:
        if row["error_class"] == "erased":
            assert row["failed_rules"] == [ERASED_RULE]
            assert row["key"] is None and row["payload"] is None and row["user_id"] is None
            assert row["user"] is None or row["user"]["email_hmac"] is None
    assert rows[1]["user_id"] == "u_000123"  # everyone else as before
    assert rows[1] == before[1]


def test_stored_forms_of_an_id_shaped_like_pii_include_its_keyed_hash() -> None:
    keyed = Hmac(KEY)
    forms = register.stored_user_ids(" Ann@Example.com", keyed)
    assert keyed("ann@example.com") in forms and " Ann@Example.com" in forms
    assert register.stored_user_ids("u_000001", keyed) == {"u_000001"}
    assert keyed("+15550109999") in register.stored_user_ids("+1 (555) 010-9999", keyed)
    # The request id is a keyed hash, and none of the lake's keys of the person.
    rid = register.request_id("email", "Ann@Example.com", keyed)
    assert len(rid) == 64 and rid != keyed("ann@example.com")
