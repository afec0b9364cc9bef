"""The whole embedded pipeline, for real: embedded broker, Spark, Feast with a real Redis."""

from __future__ import annotations

from typing import Any

import pytest

from medallion import catalog, pipeline, serving
from medallion.status import collect
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
    rows = {layer["table"]: layer["rows"] for layer in report.layers}
    assert rows[catalog.BRONZE.name] == counts["bronze"] and rows[catalog.BRONZE_DLQ.name] == counts["dlq"]
    assert rows[catalog.SILVER.name] == counts["silver"]
    assert rows[catalog.gold_table("user_activity").name] == counts["gold"]
    assert report.broker["reachable"] and set(report.lag.values()) == {0}
    assert {r["stage"] for r in report.runs} == {
        "ingest",
        "silver",
        "gold",
        "materialize",
    } and not report.alerts

    # Re-running is safe: nothing new in the topic, so nothing changes.
    pipeline.run_all(cfg, count=0)
    assert assert_pipeline_correct(cfg) == counts


def assert_users(cfg: Any) -> set[str]:
    from tests.e2e.checks import parquet

    return set(parquet(catalog.gold_table("user_activity").path(cfg)).column("user_id").to_pylist())
