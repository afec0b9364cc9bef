"""--log-json: one JSON object per line with the run id on ours; at debug, no secret in any line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.cli.test_cli import medallion

PII_KEY = "pii-key-that-must-never-be-logged-7c1e"
REDIS_PASSWORD = "redis-password-that-must-never-be-logged-93af"
# The JVM itself (not log4j) prints this at start-up; no flag silences it.
JVM_NOTICE = "WARNING: Using incubator modules"


@pytest.mark.integration
def test_ingest_at_debug_logs_json_lines_with_the_run_id_and_no_secret(
    kafka_broker: Any, make_topic: Any, make_config: Any, lake: Path
) -> None:
    from medallion.produce.producer import produce_events

    topic = make_topic(2)
    cfg = make_config(**{"kafka.bootstrap_servers": kafka_broker.bootstrap, "kafka.topic": topic})
    produced = produce_events(cfg, count=300, seed=5, bad_ratio=0.05, write_lookups=False)
    assert produced.delivered == 300

    done = medallion(
        "--log-json",
        "--log-level",
        "debug",
        "ingest",
        "--once",
        env={
            "MEDALLION__LAKE__ROOT": str(lake),
            "MEDALLION__KAFKA__BOOTSTRAP_SERVERS": kafka_broker.bootstrap,
            "MEDALLION__KAFKA__TOPIC": topic,
            "MEDALLION__KAFKA__EMBEDDED": "false",
            "MEDALLION__SPARK__MASTER": "local[2]",
            "MEDALLION__SPARK__SHUFFLE_PARTITIONS": "2",
            "MEDALLION__SERVING__ONLINE_STORE": "redis",
            "MEDALLION__SERVING__REDIS_URL": f"127.0.0.1:1,db=0,password={REDIS_PASSWORD}",
            "MEDALLION_PII_KEY": PII_KEY,
        },
        timeout=400,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    for secret in (PII_KEY, REDIS_PASSWORD):
        assert secret not in done.stdout and secret not in done.stderr

    ours, spark, other = [], [], []
    for line in done.stderr.splitlines():
        if not line.strip() or line.startswith(JVM_NOTICE):
            continue
        try:
            obj = json.loads(line)
        except ValueError:
            other.append(line)
            continue
        (spark if obj.get("source") == "spark" else ours).append(obj)
    assert other == [], other[:5]
    assert spark, "at debug Spark's own lines show, as JSON"
    assert any("batch 0:" in o["text"] for o in ours)  # the per-batch line, among ours
    stage_lines = [o for o in ours if o["record"]["extra"].get("run_id")]
    run_ids = {o["record"]["extra"]["run_id"] for o in stage_lines}
    assert len(run_ids) == 1
    # Every line logged from the moment the stage starts carries it: ours before that are the CLI's own.
    first = next(i for i, o in enumerate(ours) if o["record"]["extra"].get("run_id"))
    assert all(o["record"]["extra"].get("run_id") for o in ours[first:]), [
        o["text"] for o in ours[first:] if not o["record"]["extra"].get("run_id")
    ][:5]
