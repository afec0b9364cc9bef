from __future__ import annotations

from typing import Any

from medallion import status
from medallion.ledger import Ledger, RunRecord


def test_a_batch_written_but_not_yet_reported_is_no_alert_and_a_failed_run_is(make_config: Any) -> None:
    cfg = make_config(**{"kafka.bootstrap_servers": "127.0.0.1:1"})
    ledger = Ledger(cfg.lake.root)
    written = RunRecord(stage="ingest", run_id="r-b3", started_at="2026-01-05T00:00:00.000+00:00")
    written.count(output=90, dlq=10)
    written.outcome = "written"
    ledger.write(written, key="user_events-abc-b00000003")
    failed = RunRecord(stage="silver", run_id="s1", started_at="2026-01-05T00:01:00.000+00:00")
    failed.outcome, failed.error = "failed", "Bronze is empty"
    ledger.write(failed)

    report = status.collect(cfg, kafka_timeout_s=0.2)

    runs = {r["stage"]: r for r in report.runs}
    assert (runs["ingest"]["outcome"], runs["ingest"]["output"], runs["ingest"]["dlq"]) == ("written", 90, 10)
    assert report.alerts == ["last silver run s1 failed: Bronze is empty"]


def test_status_runs_without_importing_pyspark(make_config: Any, lake: Any) -> None:
    """`status` is for cron and humans: it reads the lake and the ledger, it never starts Spark."""
    import json
    import os
    import subprocess
    import sys

    from tests.conftest import CONFIG_DIR, REPO

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
    assert '"broker"' in done.stdout, done.stdout + done.stderr  # it did report
    assert json.loads(done.stderr.strip().splitlines()[-1]) == []
