"""Prometheus exposition parses with prometheus_client's own parser, names and labels as documented."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from medallion.core import metrics
from medallion.core.ledger import RunRecord
from medallion.core.status_model import (
    Alert,
    Broker,
    Kafka,
    PartitionOffsets,
    RunSummary,
    Status,
    TableStatus,
)


def families(text: str) -> dict[str, Any]:
    return {f.name: f for f in text_string_to_metric_families(text)}


def test_status_exposition_parses_with_labels_per_partition_and_table() -> None:
    s = Status(
        broker=Broker("b:9092", reachable=True),
        kafka=Kafka("t", [PartitionOffsets(partition=0, log_end=10, committed=3, lag=7)], lag=7),
        tables=[TableStatus('odd "name"\\x', "gold", rows=5, freshness_s=12.5)],
        runs=[
            RunSummary("silver", "s1", "succeeded", duration_s=2.0, input=9, output=8, dlq=1, dq_score=0.9)
        ],
        dlq_24h={"ingest": {"enum": 4}},
        alerts=[Alert("gold_stale", "warning", "old")],
    )
    got = families(metrics.status_exposition(s))
    lag = got["medallion_kafka_lag_records"].samples[0]
    assert (lag.labels, lag.value) == ({"topic": "t", "partition": "0"}, 7.0)
    assert got["medallion_table_freshness_seconds"].samples[0].labels == {"table": 'odd "name"\\x'}
    rows = {s.labels["outcome"]: s.value for s in got["medallion_stage_last_run_rows"].samples}
    assert rows == {"input": 9.0, "output": 8.0, "dlq": 1.0, "dropped": 0.0}
    assert got["medallion_dlq_records_24h"].samples[0].labels == {"stage": "ingest", "reason": "enum"}
    assert got["medallion_alerts_active"].samples[0].value == 1.0


def test_the_textfile_after_each_run_carries_running_totals_and_is_replaced_whole(
    make_config: Any, lake: Path
) -> None:
    cfg = make_config()
    for i, outcome in enumerate(("succeeded", "failed", "succeeded")):
        r = RunRecord(stage="silver", run_id=f"s{i}", started_at="2026-11-20T00:00:00+00:00", outcome=outcome)
        r.count(input=10, output=8, dlq=2)
        path = metrics.record_run(cfg, r)
    assert path is not None and path.parent == lake / "_state" / "metrics"
    got = families(path.read_text())
    rows = {
        s.labels["outcome"]: s.value for s in got["medallion_stage_rows"].samples if s.name.endswith("_total")
    }
    assert rows == {"input": 30.0, "output": 24.0, "dlq": 6.0, "dropped": 0.0}
    runs = {
        s.labels["outcome"]: s.value for s in got["medallion_stage_runs"].samples if s.name.endswith("_total")
    }
    assert runs == {"succeeded": 2.0, "failed": 1.0}
    assert sorted(p.name for p in path.parent.iterdir()) == [
        "medallion_silver.prom",
        "medallion_silver.totals.json",
    ]
