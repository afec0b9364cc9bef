"""`status` from the lake alone: tables, runs, DLQ counts, alerts; and it never imports Spark."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from medallion.core import catalog
from medallion.core.ledger import Ledger, RunRecord
from medallion.operations import status
from tests.conftest import CONFIG_DIR, REPO

NOW = dt.datetime(2026, 11, 20, 12, 0, tzinfo=dt.UTC)


V1_KEYS = [
    "version", "generated_at", "broker", "kafka", "tables", "dlq_24h", "input_24h", "runs", "recent_batches",
    "materialization", "drift", "alerts",
    "unreconciled_24h", "data_loss_24h", "maintenance",  # added within version 1: new keys, none changed
]  # fmt: skip
V1_TABLE_KEYS = sorted(["table", "layer", "rows", "partitions", "newest_partition", "newest", "freshness_s"])
V1_RUN_KEYS = sorted(
    ["stage", "run_id", "outcome", "started_at", "finished_at", "duration_s", "input", "output", "dlq",
     "dropped", "dq_score", "error", "metrics"]
)  # fmt: skip


def _record(stage: str, run_id: str, minutes_ago: float, **counts: int) -> RunRecord:
    started = (NOW - dt.timedelta(minutes=minutes_ago)).isoformat(timespec="milliseconds")
    record = RunRecord(stage=stage, run_id=run_id, started_at=started, finished_at=started)
    record.count(**counts)
    record.outcome = "succeeded"
    return record


def test_a_batch_written_but_not_yet_reported_is_no_alert_and_a_failed_run_is(make_config: Any) -> None:
    cfg = make_config(**{"kafka.bootstrap_servers": "127.0.0.1:1"})
    ledger = Ledger(cfg.lake.root)
    written = _record("ingest", "r-b3", 10, output=90, dlq=1)
    written.outcome = "written"
    ledger.write(written, key="user_events-abc-b00000003")
    failed = _record("silver", "s1", 9)
    failed.outcome, failed.error = "failed", "Bronze is empty"
    ledger.write(failed)

    report = status.collect(cfg, kafka_timeout_s=0.2, now=NOW)

    runs = {r.stage: r for r in report.runs}
    assert (runs["ingest"].outcome, runs["ingest"].output, runs["ingest"].dlq) == ("written", 90, 1)
    assert [(a.name, a.source) for a in report.alerts] == [("stage_failed", "s1")]
    assert "Bronze is empty" in report.alerts[0].message

    # --json keeps version 1's shape: the same keys, nested the same way, as before the typed records.
    doc = json.loads(json.dumps(report.as_dict(), default=str))
    assert doc["version"] == 1 and sorted(doc) == sorted(V1_KEYS)
    assert sorted(doc["broker"]) == ["address", "embedded_pid", "reachable"]  # the local embedded broker
    assert doc["broker"]["embedded_pid"] is None  # not running
    assert sorted(doc["kafka"]) == ["lag", "partitions", "topic"]
    assert all(sorted(t) == V1_TABLE_KEYS for t in doc["tables"])
    assert all(sorted(r) == V1_RUN_KEYS for r in doc["runs"] + doc["recent_batches"])
    assert sorted(doc["alerts"][0]) == ["message", "name", "severity", "source", "threshold", "value"]
    assert doc["materialization"] == {} and doc["drift"] == []


def test_tables_report_rows_newest_partition_and_the_newest_event_from_footers(
    make_config: Any, lake: Path
) -> None:
    cfg = make_config(**{"kafka.bootstrap_servers": "127.0.0.1:1"})
    newest = NOW - dt.timedelta(hours=2, minutes=30)
    for day, hour, times in (
        ("2026-11-19", 23, [NOW - dt.timedelta(hours=13)]),
        ("2026-11-20", 9, [newest, newest - dt.timedelta(minutes=5)]),
    ):
        folder = Path(catalog.BRONZE.partition_path(cfg, dt=day, hr=hour, batch=1))
        folder.mkdir(parents=True)
        table = pa.table(
            {
                "event_id": [f"e{i}" for i in range(len(times))],
                "event_time": pa.array(times, pa.timestamp("us", "UTC")),
            }
        )
        pq.write_table(table, folder / "part-0.parquet")
    gold = Path(catalog.GOLD_TABLES[0].partition_path(cfg, feature_date="2026-11-17"))
    gold.mkdir(parents=True)
    pq.write_table(pa.table({"user_id": ["u"]}), gold / "part-0.parquet")

    report = status.collect(cfg, kafka_timeout_s=0.2, now=NOW)

    bronze = report.table(catalog.BRONZE.name)
    assert (bronze.rows, bronze.partitions, bronze.newest_partition) == (3, 2, "dt=2026-11-20")
    assert bronze.freshness_s == 2.5 * 3600
    g = report.table(catalog.GOLD_TABLES[0].name)
    assert g.freshness_s == (NOW - dt.datetime(2026, 11, 18, tzinfo=dt.UTC)).total_seconds()  # 60 h
    stale = [a for a in report.alerts if a.name == "gold_stale"]
    assert [(a.severity, a.value) for a in stale] == [("critical", 60.0)]


def test_dlq_by_stage_and_reason_over_the_last_24_hours(make_config: Any) -> None:
    cfg = make_config(**{"kafka.bootstrap_servers": "127.0.0.1:1"})
    ledger = Ledger(cfg.lake.root)
    for i, (minutes, reasons) in enumerate(
        ((30, {"enum": 3, "type": 1}), (60, {"enum": 2}), (25 * 60, {"range": 9}))
    ):
        r = _record(
            "ingest",
            f"b{i}",
            minutes,
            input=1000,
            output=1000 - sum(reasons.values()),
            dlq=sum(reasons.values()),
        )
        r.metrics = {"dlq_by_reason": reasons}
        ledger.write(r, key=f"t-x-b{i:08d}")

    report = status.collect(cfg, kafka_timeout_s=0.2, now=NOW)

    assert report.dlq_24h["ingest"] == {"enum": 5, "type": 1}  # the 25-hour-old batch is out
    assert report.input_24h["ingest"] == 2000
    assert [a.name for a in report.alerts] == []  # 0.3 % of input: under both thresholds


def test_status_runs_without_importing_pyspark(lake: Path) -> None:
    """`status` is for cron and humans: it reads the lake and the ledger, it never starts Spark."""
    code = (
        "import sys, runpy\n"
        "sys.argv = ['medallion', 'status', '--json']\n"
        "try:\n"
        "    runpy.run_module('medallion.cli.main', run_name='__main__')\n"
        "except SystemExit:\n"
        "    pass\n"
        "import json\n"
        "print(json.dumps(sorted(m for m in ('pyspark', 'feast') if m in sys.modules)), file=sys.stderr)\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEDALLION")}
    env |= {
        "MEDALLION_CONFIG_DIR": str(CONFIG_DIR),
        "MEDALLION__LAKE__ROOT": str(lake),
        "MEDALLION__KAFKA__BOOTSTRAP_SERVERS": "127.0.0.1:1",
        "MEDALLION__KAFKA__EMBEDDED": "false",
    }
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=REPO, timeout=120
    )
    assert json.loads(done.stdout)["version"] == status.STATUS_VERSION, done.stdout + done.stderr
    assert sorted(json.loads(done.stdout)["broker"]) == ["address", "reachable"]  # no embedded broker here
    assert json.loads(done.stderr.strip().splitlines()[-1]) == []


def test_the_last_silver_run_shows_its_data_quality_score_from_the_ledger(make_config: Any) -> None:
    cfg = make_config(**{"kafka.bootstrap_servers": "127.0.0.1:1"})
    record = _record("silver", "s9", 5, input=100, output=60, dlq=40)
    record.metrics = {"quality": {"score": 0.6, "failed": {"item_in_catalog": 40}}}
    Ledger(cfg.lake.root).write(record)
    report = status.collect(cfg, kafka_timeout_s=0.2, now=NOW)
    silver = report.run("silver")
    assert silver is not None and silver.dq_score == 0.6
    assert [a.name for a in report.alerts] == ["silver_dq_score", "dlq_rate"]  # 40 of 100 to the DLQ
