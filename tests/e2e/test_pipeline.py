"""The whole embedded pipeline, for real: embedded broker, Spark, Feast with a real Redis."""

from __future__ import annotations

from typing import Any

import pytest

from medallion import serving
from medallion.core import catalog
from medallion.features.user import USER_FEATURES
from medallion.operations import pipeline
from medallion.operations.status import collect
from tests.e2e.checks import assert_pipeline_correct


@pytest.mark.e2e
def test_embedded_pipeline_end_to_end(spark: Any, kafka_broker: Any, redis_db: Any, make_config: Any) -> None:
    cfg = make_config(
        **{
            "kafka.bootstrap_servers": kafka_broker.bootstrap,
            "kafka.topic": "e2e_events",
            "kafka.partitions": 3,
            "serving.online_store": "redis",
            "serving.redis_url": redis_db.url,
            "ingest.max_offsets_per_trigger": 1500,  # several micro-batches
        }
    )
    summary = pipeline.run_all(cfg, count=4000, seed=7, bad_ratio=0.02)
    counts = assert_pipeline_correct(cfg)
    assert counts["dlq"] > 0 and counts["bronze"] > 0

    users = sorted(assert_users(cfg))[:25]
    online = serving.online_features(cfg, users)
    assert_pipeline_correct(cfg, online)
    assert summary.sample_user is not None and summary.online_features

    # `status` (no Spark) sees the same lake: rows per table, nothing left to ingest, every run succeeded.
    report = collect(cfg)
    rows = {table.table: table.rows for table in report.tables}
    assert rows[catalog.BRONZE.name] == counts["bronze"] and rows[catalog.BRONZE_DLQ.name] == counts["dlq"]
    assert rows[catalog.SILVER.name] == counts["silver"]
    assert rows[catalog.gold_table(USER_FEATURES.name).name] == counts["gold"]
    assert report.broker.reachable and {p.lag for p in report.kafka.partitions} == {0}
    assert {r.stage for r in report.runs} == {"ingest", "silver", "gold", "materialize"}
    assert all(r.outcome == "succeeded" for r in report.runs)
    # 2 % bad records: over the 1 % DLQ share of the default alert, under the 5 % per-batch critical one.
    # Three days of unshifted synthetic events raise no drift alert: the last date is incomplete and the
    # others have too short a reference (drift.min_reference_days), so none is judged.
    alerts = {(a.name, a.severity) for a in report.alerts}
    assert alerts <= {("dlq_rate", "warning")}, report.alerts
    (dlq_alert,) = [a for a in report.alerts if a.name == "dlq_rate"]
    assert dlq_alert.value == round(counts["dlq"] / counts["records"], 4)

    # Re-running is safe: Silver and Gold rebuild every date they hold, and the lake comes out the same.
    import datetime as dt

    from medallion.core import lakefs
    from tests.e2e.checks import parquet

    days = [
        dt.date.fromisoformat(d) for d in lakefs.list_partitions(catalog.SILVER.path(cfg), catalog.EVENT_DATE)
    ]
    silver_before = (
        parquet(catalog.SILVER.path(cfg)).to_pandas().sort_values("event_id").reset_index(drop=True)
    )
    rebuilt = pipeline.silver(cfg, min(days), max(days))
    assert (
        rebuilt.dates == [d.isoformat() for d in pipeline_dates(min(days), max(days))] and rebuilt.output > 0
    )
    pipeline.gold(cfg, incremental=True)  # the feature dates the rebuilt Silver dates feed
    pipeline.run_all(cfg, count=0)  # and nothing new in the topic: nothing changes
    assert assert_pipeline_correct(cfg) == counts
    silver_after = (
        parquet(catalog.SILVER.path(cfg)).to_pandas().sort_values("event_id").reset_index(drop=True)
    )
    assert silver_after.equals(silver_before)


def pipeline_dates(start: Any, end: Any) -> list[Any]:
    from medallion.core.lake import date_range

    return date_range(start, end)


def assert_users(cfg: Any) -> set[str]:
    from tests.e2e.checks import parquet

    return set(parquet(catalog.gold_table(USER_FEATURES.name).path(cfg)).column("user_id").to_pylist())
