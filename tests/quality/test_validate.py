"""`medallion validate` over what Silver wrote: the same rules, the reconciliation checks, exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml
from typer.testing import CliRunner

from medallion.cli.main import app
from medallion.core import catalog, stages
from medallion.core.ledger import Ledger
from medallion.quality import results
from medallion.silver import job
from tests.conftest import CONFIG_DIR, REPO
from tests.silver.bronze import DAY, event, write_bronze, write_world
from tests.stage_runs import run_job


def invoke(lake: Path, *args: str) -> Any:
    env = {"MEDALLION__LAKE__ROOT": str(lake), "MEDALLION__SPARK__MASTER": "local[2]"}
    return CliRunner().invoke(app, ["--config-dir", str(CONFIG_DIR), "validate", *args], env=env)


def test_validate_reruns_silvers_rules_and_reconciles(
    spark: Any, make_config: Any, lake: Path, tmp_path: Path
) -> None:
    cfg = make_config()
    write_world(cfg)
    write_bronze(spark, cfg, [event("page_view"), event("purchase"), event("click", item_id="i_99999")])
    run_job(stages.SILVER, job.run, spark, cfg, [DAY], run_id="s1", ledger=Ledger(cfg.lake.root))
    day = DAY.isoformat()

    ok = invoke(lake, "--layer", "silver", "--start-date", day, "--end-date", day, "--json")
    assert ok.exit_code == 0, ok.output
    [report] = json.loads(ok.stdout)  # the JSON document is stdout; logs go to stderr
    statuses = {r["name"]: (r["checked"], r["failed"], r["status"]) for r in report["results"]}
    assert statuses["item_in_catalog"] == (1, 0, "pass")  # Silver dropped the unknown item
    assert statuses["reconciled_with_bronze"] == (3, 0, "pass")  # 2 in Silver + 1 in its DLQ
    assert statuses["ledger_balanced"][1:] == (0, "pass")
    assert set(statuses) >= {r.name for r in job.silver_rules(cfg).rules}
    stored = results.latest(cfg, catalog.SILVER.name)
    assert stored is not None and stored.stage == "validate" and stored.score == 1.0
    # Through the stage envelope, like every stage: its ledger record says who ran it, its textfile follows.
    record = Ledger(cfg.lake.root).last(stages.VALIDATE.name)
    assert record is not None and record.exit_code == 0 and record.who["host"] and record.who["user"]
    # The process's command line (pytest here: CliRunner runs the command in this process), masked.
    assert record.inputs["layers"] == "silver" and record.who["command"] == stages.mask_argv(sys.argv)
    prom = (Path(catalog.METRICS.path(cfg)) / "medallion_validate.prom").read_text()
    assert 'medallion_stage_runs_total{stage="validate",outcome="succeeded"} 1.0' in prom

    # A stricter rule file of the user's: purchases must be in USD. It fails, so exit 1.
    strict = tmp_path / "strict.yaml"
    strict.write_text(
        yaml.safe_dump(
            {
                "table": catalog.SILVER.name,
                "rules": [
                    {
                        "name": "usd_only",
                        "type": "in_set",
                        "column": "currency",
                        "values": ["USD"],
                        "where": "event_type = 'purchase'",
                        "action": "fail",
                    }
                ],
            }
        )
    )
    failed = invoke(lake, "--layer", "silver", "--start-date", day, "--end-date", day, "--rules", str(strict))
    assert failed.exit_code == 1, failed.output
    assert "usd_only" in failed.output and "FAIL" in failed.output
    verdict = Ledger(cfg.lake.root).last(stages.VALIDATE.name)
    assert verdict is not None and verdict.exit_code == 1 and verdict.run_id != record.run_id


def test_a_bad_rule_file_is_exit_2_before_spark_starts(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        yaml.safe_dump({"rules": [{"name": "r", "type": "not_null", "column": "evnt_id", "action": "warn"}]})
    )
    out = subprocess.run(
        [sys.executable, "-m", "medallion.cli.main", "--config-dir", str(CONFIG_DIR), "validate", "--layer", "silver",
         "--start-date", "2026-01-01", "--end-date", "2026-01-02", "--rules", str(bad)],
        capture_output=True, text=True, timeout=120, cwd=REPO,
        env={"PATH": "/usr/bin:/bin", "MEDALLION__LAKE__ROOT": str(tmp_path / "lake")},
    )  # fmt: skip
    assert out.returncode == 2, out.stderr
    assert str(bad) in out.stderr and "'r'" in out.stderr and "'evnt_id'" in out.stderr
    assert "pyspark" not in out.stderr.lower()
