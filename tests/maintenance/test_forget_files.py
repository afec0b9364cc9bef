"""`forget` on a lake built by hand (no Spark): the closure over ids and hashes, whole-word matches in
DLQ text, files left empty, the SQLite online store, and a second request that finds nothing."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from medallion.core import catalog
from medallion.maintenance import jobs
from medallion.maintenance.register import load
from medallion.pii.keys import pii_key
from medallion.pii.scrub import Hmac
from medallion.serving.codec import entity_key

TARGET, OTHER, NEAR = "u_000001", "u_000002", "u_0000011"  # NEAR contains TARGET, and is someone else


def write(folder: Path, rows: list[dict[str, Any]], name: str = "part-0.snappy.parquet") -> None:
    folder.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows), folder / name)


def bronze_row(user: str, email: str | None, n: int) -> dict[str, Any]:
    return {"event_id": f"e{n}", "user_id": user, "user": {"email_hmac": email, "phone_hmac": None}}


def test_forget_follows_the_keys_and_rewrites_only_what_holds_them(
    make_config: Callable[..., Any], lake: Path
) -> None:
    cfg = make_config(**{"kafka.topic": "user_events"})
    keyed = Hmac(pii_key(cfg))
    mail, other_mail = keyed("target@example.com"), keyed("other@example.com")
    bronze = lake / "bronze" / "user_events" / "dt=2026-11-01" / "hr=1"
    write(bronze / "batch=0", [bronze_row(TARGET, mail, 1)])  # only the target: left empty
    write(bronze / "batch=1", [bronze_row(OTHER, other_mail, 2), bronze_row("alias-9", mail, 3)])
    write(bronze / "batch=2", [bronze_row(NEAR, None, 4)])
    untouched = (bronze / "batch=2" / "part-0.snappy.parquet").stat().st_mtime_ns
    silver = lake / "silver" / "user_events" / "event_date=2026-11-01" / "event_type=click"
    write(silver, [{"event_id": "e3", "user_id": "alias-9", "email_hmac": mail, "phone_hmac": None}])
    dlq = lake / "dlq" / "bronze" / "batch=0"
    write(
        dlq,
        [
            {"key": TARGET, "payload": '{"user_id": "u_000001", "event_type": "bogus"}'},
            {"key": None, "payload": '{"user_id": "u_0000011", "x": "u_000001x"}'},  # not the target
            {"key": None, "payload": '{"user_id": "alias-9"'},
        ],
    )
    online = lake / "_feast" / "online.db"
    online.parent.mkdir(parents=True)
    with sqlite3.connect(online) as db:
        db.execute("CREATE TABLE medallion_user_features (entity_key BLOB, feature_name TEXT, value BLOB)")
        for user in (TARGET, "alias-9", OTHER):
            key = entity_key("user_id", user, "medallion")[: -len("medallion")]
            db.execute("INSERT INTO medallion_user_features VALUES (?, 'f', ?)", (key, user.encode()))

    result = jobs.forget(cfg, user_id=TARGET)
    assert result.counts() == {
        catalog.BRONZE.name: 2,
        catalog.SILVER.name: 1,
        catalog.BRONZE_DLQ.name: 2,
        "online_store": 2,
    }
    assert pq.read_table(bronze / "batch=0").num_rows == 0
    assert pq.read_table(bronze / "batch=1" / "part-0.snappy.parquet").to_pylist() == [
        bronze_row(OTHER, other_mail, 2)
    ]
    assert (bronze / "batch=2" / "part-0.snappy.parquet").stat().st_mtime_ns == untouched
    kept = pq.read_table(dlq / "part-0.snappy.parquet").to_pylist()
    assert kept == [{"key": None, "payload": '{"user_id": "u_0000011", "x": "u_000001x"}'}]
    with sqlite3.connect(online) as db:
        assert [r[0] for r in db.execute("SELECT value FROM medallion_user_features")] == [OTHER.encode()]
    assert b"alias-9" not in online.read_bytes()  # vacuumed: not even in free pages

    register = load(catalog.ERASURE_REGISTER.path(cfg))
    assert (
        mail in register.hashes and keyed(TARGET) in register.hashes and keyed("alias-9") in register.hashes
    )
    assert TARGET not in json.dumps(sorted(register.hashes | {r["request"] for r in register.requests}))

    again = jobs.forget(cfg, email="Target@Example.com")
    assert again.rows == 0 and again.found == []
