"""Gold data for the serving tests, written the way the Gold job lays it out (no Spark needed).

``<lake>/gold/user_activity/feature_date=YYYY-MM-DD/part-00000-<uuid>.c000.snappy.parquet`` plus
``_SUCCESS`` and Spark's hidden ``.crc`` files; timestamps as TIMESTAMP_MICROS (UTC-adjusted) or INT96,
the two encodings Spark writes. Every feature value encodes (day, user) so a wrong row is visible.
"""

from __future__ import annotations

import datetime as dt
import random
import shutil
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from medallion.config import Config, load_config
from medallion.serving.definitions import FEATURE_TABLES

CONFIG_DIR = Path(__file__).resolve().parents[2] / "config"
TABLE = FEATURE_TABLES[0]
FEATURES = [f.name for f in TABLE.features]
UTC = dt.UTC


def today() -> dt.date:
    return dt.datetime.now(UTC).date()


def end_of(day: dt.date) -> dt.datetime:
    """The event_timestamp of feature_date ``day``: the next midnight, UTC."""
    return dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), tzinfo=UTC)


def gold_rows(
    days: Iterable[dt.date], users: int, seed: int = 7, presence: float = 0.7
) -> list[dict[str, Any]]:
    """One row per (user, day) for a random ~``presence`` of the users each day; values encode both."""
    rnd = random.Random(seed)
    rows = []
    for day in days:
        for u in range(users):
            if rnd.random() >= presence:
                continue
            k = day.toordinal() % 10_000
            events = k * 1000 + u
            purchases = rnd.randrange(0, 5)
            rows.append(
                {
                    "user_id": f"user_{u:04d}",
                    "feature_date": day,
                    "event_timestamp": end_of(day),
                    "created_timestamp": end_of(day) + dt.timedelta(hours=1, seconds=u),
                    "events_1d": events,
                    "sessions_1d": rnd.randrange(1, 9),
                    "purchases_1d": purchases,
                    "revenue_1d": round(purchases * 9.99 + u / 1000, 6),
                    "events_7d": events * 7,
                    "purchases_7d": purchases * 3,
                    "revenue_7d": rnd.random() * 100,
                    "distinct_items_7d": rnd.randrange(0, 40),
                    "conversion_rate_7d": rnd.random(),
                    "days_active_7d": rnd.randrange(1, 8),
                }
            )
    return rows


_SCHEMA = pa.schema(
    [
        ("user_id", pa.string()),
        ("event_timestamp", pa.timestamp("us", tz="UTC")),
        ("created_timestamp", pa.timestamp("us", tz="UTC")),
    ]
    + [(f.name, pa.int64() if f.dtype == "int64" else pa.float64()) for f in TABLE.features]
)


def write_gold(lake: Path, rows: list[dict[str, Any]], encoding: str = "micros") -> Path:
    """Write rows as the Gold job would: each feature_date partition replaced as a whole.

    ``encoding``: ``micros`` (TIMESTAMP_MICROS, UTC), ``int96`` (Spark's default), or ``mixed``
    (alternating by partition, INT96 first).
    """
    table_dir = lake / "gold" / TABLE.name
    by_day: dict[dt.date, list[dict[str, Any]]] = {}
    for row in rows:
        by_day.setdefault(row["feature_date"], []).append(row)
    for day, day_rows in sorted(by_day.items()):
        part = table_dir / f"feature_date={day.isoformat()}"
        shutil.rmtree(part, ignore_errors=True)  # dynamic partition overwrite
        part.mkdir(parents=True)
        table = pa.Table.from_pylist([{k: r[k] for k in _SCHEMA.names} for r in day_rows], schema=_SCHEMA)
        int96 = encoding == "int96" or (encoding == "mixed" and (day.toordinal() % 2 == 0))
        name = f"part-00000-{uuid.uuid4()}.c000.snappy.parquet"
        pq.write_table(table, part / name, compression="snappy", use_deprecated_int96_timestamps=int96)
        (part / f".{name}.crc").write_bytes(b"crc")
    (table_dir / "_SUCCESS").touch()
    return table_dir


def latest_rows(rows: list[dict[str, Any]], at: dt.datetime | None = None) -> dict[str, dict[str, Any]]:
    """Each user's latest row by event_timestamp (at or before ``at``, when given)."""
    latest: dict[str, dict[str, Any]] = {}
    for row in rows:
        if at is not None and row["event_timestamp"] > at:
            continue
        best = latest.get(row["user_id"])
        if best is None or (row["event_timestamp"], row["created_timestamp"]) > (
            best["event_timestamp"],
            best["created_timestamp"],
        ):
            latest[row["user_id"]] = row
    return latest


@pytest.fixture(scope="session")
def serving_config() -> Callable[..., Config]:
    """``serving_config(lake, **{"serving.online_store": "redis"})``: local config on that lake."""

    def make(lake: Path, **overrides: Any) -> Config:
        return load_config("local", CONFIG_DIR, {"lake.root": str(lake), **overrides}, environ={})

    return make


@pytest.fixture(scope="session")
def feast_imported() -> None:
    """Import Feast once, up front, so the first test does not carry the 3 s alone in its timing."""
    import feast  # noqa: F401
