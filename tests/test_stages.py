"""The stage envelope (one way every stage runs) and `medallion run`'s resume plan, without Spark."""

from __future__ import annotations

import os
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from medallion import RUN_ID_ENV
from medallion.core import catalog, stages
from medallion.core.errors import ConfigError, LockHeld, TerminalError
from medallion.core.ledger import Ledger, RunRecord
from medallion.features import FAMILIES
from medallion.gold.job import CONSUMED
from medallion.operations import pipeline


def test_the_envelope_records_who_options_outcome_exit_code_and_the_textfile(
    make_config: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = make_config()
    monkeypatch.setattr(sys, "argv", ["/usr/bin/medallion", "silver", "--sasl-password", "hunter2", "--x=1"])
    with stages.run(cfg, stages.SILVER, start_date="2026-11-01", pii_key="k3y", url="s3a://me:pw@b/x") as run:
        assert os.environ[RUN_ID_ENV] == run.run_id
        run.count(input=3, output=2, dlq=1)
    assert RUN_ID_ENV not in os.environ
    record = Ledger(cfg.lake.root).last(stages.SILVER.name)
    assert record is not None and record.run_id == run.run_id and record.exit_code == 0
    assert record.counts == {"input": 3, "output": 2, "dlq": 1}
    assert record.inputs == {"start_date": "2026-11-01", "pii_key": "***", "url": "s3a://me:***@b/x"}
    assert record.who["pid"] == os.getpid() and record.who["host"] and record.who["user"]
    assert record.who["command"] == "medallion silver --sasl-password *** --x=1"
    prom = (Path(catalog.METRICS.path(cfg)) / "medallion_silver.prom").read_text()
    assert 'medallion_stage_rows_total{stage="silver",outcome="input"} 3.0' in prom

    # Each error keeps its meaning: the record says failed, with the exit code the command gives.
    for error, code in ((ConfigError("bad"), 2), (TerminalError("lost"), 1), (KeyError("bug"), 1)):
        with pytest.raises(type(error)), stages.run(cfg, stages.GOLD):
            raise error
        failed = Ledger(cfg.lake.root).last(stages.GOLD.name, outcome="failed")
        assert failed is not None and failed.exit_code == code and type(error).__name__ in str(failed.error)


def test_a_run_refused_by_a_lock_did_nothing_and_records_nothing(make_config: Any) -> None:
    cfg = make_config()
    with stages.run(cfg, stages.SILVER), pytest.raises(LockHeld) as refused, stages.run(cfg, stages.GOLD):
        pass
    assert refused.value.exit_code == 75
    assert Ledger(cfg.lake.root).last(stages.GOLD.name, outcome=None) is None


def _record(
    ledger: Ledger,
    stage: stages.Stage,
    at: datetime,
    outcome: str = "succeeded",
    consumed: datetime | None = None,
    **inputs: str,
) -> None:
    """A run's record; ``consumed``: the start of the Silver run an incremental Gold run consumed."""
    ledger.write(
        RunRecord(
            stage.name,
            f"{stage.name}-{at:%H%M}",
            started_at=at.isoformat(timespec="milliseconds"),
            inputs=dict(inputs),
            metrics={CONSUMED: consumed.isoformat(timespec="milliseconds")} if consumed else {},
            outcome=outcome,
            finished_at=(at + timedelta(minutes=1)).isoformat(timespec="milliseconds"),
        )
    )


def test_run_resumes_from_the_first_stage_that_has_not_succeeded_for_its_data(make_config: Any) -> None:
    cfg = make_config()
    runs = Ledger(cfg.lake.root)
    every = ",".join(f.name for f in FAMILIES)
    t = datetime(2026, 11, 2, 10, tzinfo=UTC)
    assert pipeline.resume_plan(cfg) == []  # an empty lake: nothing to do
    Path(catalog.SILVER.partition_path(cfg, event_date="2026-11-01")).mkdir(parents=True)
    _record(runs, stages.SILVER, t, dates="2026-11-01")
    assert pipeline.resume_plan(cfg) == [stages.GOLD, stages.MATERIALIZE]  # Gold never ran
    _record(runs, stages.GOLD, t + timedelta(minutes=5), consumed=t, families=every)
    assert pipeline.resume_plan(cfg) == [stages.MATERIALIZE]  # Gold is done, the online store is not
    _record(runs, stages.MATERIALIZE, t + timedelta(minutes=10))
    assert pipeline.resume_plan(cfg) == []
    # New Silver dates, then Gold fails: the next run retries Gold though Silver finds nothing new.
    _record(runs, stages.SILVER, t + timedelta(minutes=15), dates="2026-11-02")
    _record(runs, stages.GOLD, t + timedelta(minutes=20), outcome="failed", families=every)
    assert pipeline.resume_plan(cfg) == [stages.GOLD, stages.MATERIALIZE]
    # A Gold run of one family does not count as having covered the others.
    new = t + timedelta(minutes=15)
    _record(runs, stages.GOLD, t + timedelta(minutes=25), consumed=new, families=FAMILIES[0].name)
    assert stages.GOLD in pipeline.resume_plan(cfg)
    _record(runs, stages.GOLD, t + timedelta(minutes=30), consumed=new, families=every)
    _record(runs, stages.MATERIALIZE, t + timedelta(minutes=35), outcome="failed")
    assert pipeline.resume_plan(cfg) == [stages.MATERIALIZE]  # materialize failed: only it again
    _record(runs, stages.MATERIALIZE, t + timedelta(minutes=40))
    assert pipeline.resume_plan(cfg) == []
