"""Bronze and lookup tables written the way their stages write them, for Silver's tests.

Bronze: Parquet written by Spark with `catalog.BRONZE`'s columns, partitioned by its partitions
(``dt/hr/batch``), as ingest's writer does. Lookups: one Parquet file per table with the catalogue's
columns, as `produce` writes them.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from typing import Any

from medallion.core import catalog
from medallion.core.config import Config
from medallion.core.lake import spark_schema
from medallion.produce.lookups import write_lookups

DAY = dt.date(2026, 1, 5)
UA = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36"
)
_offsets = iter(range(10**9))


def hexdigest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def event(
    event_type: str = "page_view",
    *,
    day: dt.date = DAY,
    hour: int = 10,
    user_id: str = "u_000001",
    item_id: str | None = None,
    price: float | None = None,
    quantity: int | None = None,
    currency: str | None = None,
    event_id: str | None = None,
    batch: int = 0,
    partition: int = 0,
    offset: int | None = None,
    email_hmac: str | None = None,
) -> dict[str, Any]:
    """One valid Bronze row (override what a test needs); commerce events get a price by default."""
    if event_type in ("add_to_cart", "remove_from_cart", "purchase"):
        price = 10.0 if price is None else price
        quantity = 1 if quantity is None else quantity
        currency = currency or "EUR"
    if event_type != "search" and item_id is None and event_type != "page_view":
        item_id = "i_00001"
    t = dt.datetime.combine(day, dt.time(hour, 15))
    return {
        "schema_version": 1,
        "event_id": event_id or str(uuid.uuid4()),
        "event_type": event_type,
        "event_time": t,
        "user_id": user_id,
        "session_id": "s-1",
        "item_id": item_id,
        "device": {"os": "Windows", "browser": "Chrome", "type": "desktop"},
        "geo": {"country": "DE", "city": "Berlin", "lat": 52.52, "lon": 13.4},
        "context": {
            "ip_prefix": "203.0.113.0/24",
            "user_agent": UA,
            "referrer": "https://www.google.com/",
            "page": "/p/i_00001",
        },
        "user": {"email_hmac": email_hmac or hexdigest("a@example.com"), "phone_hmac": hexdigest("+4930")},
        "price": price,
        "quantity": quantity,
        "currency": currency,
        "_topic": "user_events",
        "_partition": partition,
        "_offset": next(_offsets) if offset is None else offset,
        "_kafka_timestamp": t,
        "_ingested_at": t,
        "_run_id": "test",
        catalog.DT: day.isoformat(),
        catalog.HR: hour,
        catalog.BATCH: batch,
    }


def write_bronze(spark: Any, cfg: Config, rows: list[dict[str, Any]]) -> None:
    """Append rows to Bronze as ingest writes them: dynamic overwrite of their dt/hr/batch partitions."""
    schema = spark_schema(catalog.BRONZE.columns + catalog.columns("dt string, hr int, batch long"))
    ordered = [tuple(r[f.name] for f in schema.fields) for r in rows]
    df = spark.createDataFrame(ordered, schema)
    df.write.mode("overwrite").partitionBy(*catalog.BRONZE.partitions).parquet(catalog.BRONZE.path(cfg))


def write_world(cfg: Config, as_of: dt.date = DAY) -> None:
    """The synthetic world's lookups (users u_000001.., items i_00001..), rates in force from ``as_of``."""
    write_lookups(cfg, seed=1, users=20, items=50, as_of=as_of)
