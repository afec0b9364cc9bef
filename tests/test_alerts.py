"""Each alert fires above its threshold, not at or below it, and says threshold, value and source."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from medallion.core.config import AlertsConfig
from medallion.core.errors import MedallionError
from medallion.core.ledger import Ledger, RunRecord
from medallion.core.status_model import Broker, Kafka, RunSummary, Status, TableStatus
from medallion.operations import pipeline, report
from medallion.operations import status as status_module
from medallion.operations.alerts import evaluate

LIMITS = AlertsConfig()  # type: ignore[call-arg]


def run(stage: str, run_id: str = "r1", outcome: str = "succeeded", **kw: Any) -> RunSummary:
    return RunSummary(stage, run_id, outcome, **{"duration_s": 1.0} | kw)


def status(**kw: Any) -> Status:
    s = Status(broker=Broker("b:9092", reachable=True), kafka=Kafka("t", [], lag=0))
    for k, v in kw.items():
        setattr(s, k, v)
    return s


def names(s: Status) -> list[tuple[str, str]]:
    return [(a.name, a.severity) for a in evaluate(s, LIMITS)]


@pytest.mark.parametrize(("dlq", "fires"), [(50, False), (51, True)])
def test_bronze_error_rate_of_the_last_batch(dlq: int, fires: bool) -> None:
    s = status(recent_batches=[run("ingest", "b1", input=1000, dlq=dlq, output=1000 - dlq)])
    assert (("bronze_error_rate", "critical") in names(s)) is fires
    if fires:
        alert = evaluate(s, LIMITS)[0]
        assert (alert.value, alert.threshold, alert.source) == (0.051, 0.05, "b1")


@pytest.mark.parametrize(("rejected", "fires"), [(10, False), (11, True)])
def test_dlq_share_of_input_over_24_hours(rejected: int, fires: bool) -> None:
    s = status(
        dlq_24h={"ingest": {"enum": rejected - 1}, "silver": {"referential": 1}}, input_24h={"ingest": 1000}
    )
    assert (("dlq_rate", "warning") in names(s)) is fires


def test_slow_batch_and_falling_behind_while_lag_grows() -> None:
    slow = run("ingest", "b2", input=10, duration_s=61.0, metrics={"lag": 5000, "rows_per_s": 50.0})
    s = status(
        recent_batches=[run("ingest", "b1", input=10, metrics={"lag": 4000, "rows_per_s": 80.0}), slow]
    )
    assert names(s) == [("slow_batch", "warning"), ("ingest_falling_behind", "warning")]
    shrinking = run("ingest", "b2", input=10, metrics={"lag": 3000, "rows_per_s": 50.0})
    s = status(
        recent_batches=[run("ingest", "b1", input=10, metrics={"lag": 4000, "rows_per_s": 80.0}), shrinking]
    )
    assert names(s) == []  # slow, but catching up


def test_consumer_lag_above_the_configured_records() -> None:
    assert names(status(kafka=Kafka("t", [], lag=1_000_000))) == []
    assert names(status(kafka=Kafka("t", [], lag=1_000_001))) == [("consumer_lag", "warning")]


def test_silver_score_and_duration() -> None:
    assert names(status(runs=[run("silver", dq_score=0.7, duration_s=300.0)])) == []
    got = names(status(runs=[run("silver", dq_score=0.69, duration_s=301.0)]))
    assert got == [("silver_dq_score", "critical"), ("slow_silver", "warning")]


def test_validation_failures() -> None:
    assert names(status(runs=[run("validate", metrics={"failure_rate": 0.1})])) == []
    assert names(status(runs=[run("validate", metrics={"failure_rate": 0.11})])) == [
        ("validation_failures", "warning")
    ]


@pytest.mark.parametrize(
    ("hours", "want"), [(24, []), (25, [("gold_stale", "warning")]), (49, [("gold_stale", "critical")])]
)
def test_gold_older_than_24_hours_warns_and_48_is_critical(hours: int, want: list[tuple[str, str]]) -> None:
    table = TableStatus("gold.x", "gold", freshness_s=hours * 3600.0, newest_partition="feature_date=d")
    assert names(status(tables=[table])) == want


def test_failed_stage_and_unreachable_kafka_are_critical_first() -> None:
    s = status(
        broker=Broker("b:9092", reachable=False),
        runs=[run("gold", "g1", outcome="failed", error="TerminalError: no Silver")],
        tables=[TableStatus("gold.x", "gold", freshness_s=30 * 3600.0, newest_partition="p")],
    )
    assert names(s) == [
        ("stage_failed", "critical"),
        ("kafka_unreachable", "critical"),
        ("gold_stale", "warning"),
    ]
    assert evaluate(s, LIMITS, embedded=True)[1].name == "gold_stale"  # the embedded broker starts on demand


# --- counted once, from the ledger ------------------------------------------------------------------

NOW = dt.datetime(2026, 11, 20, 12, 0, tzinfo=dt.UTC)


def _record(
    stage: str, run_id: str, minutes_ago: float, outcome: str = "succeeded", **counts: int
) -> RunRecord:
    started = (NOW - dt.timedelta(minutes=minutes_ago)).isoformat(timespec="milliseconds")
    record = RunRecord(stage=stage, run_id=run_id, started_at=started, finished_at=started, outcome=outcome)
    record.count(**counts)
    return record


def test_hourly_silver_reruns_of_one_date_count_its_rejects_once(make_config: Any) -> None:
    """100 Silver rejects in 100,000 events of a day (0.1 %), the date rebuilt by 24 hourly runs: the
    share stays 0.1 %, in `status`, its alert and the report's DLQ chart (summing runs made it 1.2 %)."""
    cfg = make_config(**{"kafka.bootstrap_servers": "127.0.0.1:1"})
    ledger = Ledger(cfg.lake.root)
    day = NOW.date().isoformat()
    for hour in range(24):
        batch = _record(
            "ingest", f"i-b{hour}", 60 * (23 - hour) + 5, input=100_000 // 24, output=100_000 // 24
        )
        ledger.write(batch, key=f"t-x-b{hour:08d}")
        # Each hourly run rebuilds the whole date: what came so far, and the rejects so far.
        seen, rejected = 100_000 * (hour + 1) // 24, 100 * (hour + 1) // 24
        run = _record(
            "silver", f"s{hour}", 60 * (23 - hour), input=seen, output=seen - rejected, dlq=rejected
        )
        run.inputs = {"dates": day}
        run.metrics = {
            "by_date": {day: {"input": seen, "output": seen - rejected, "dlq": rejected, "dropped": 0}}
        }
        ledger.write(run)
    ledger.write(_record("silver", "failed", 1, outcome="failed", input=100_000))  # wrote nothing

    found = status_module.collect(cfg, kafka_timeout_s=0.2, now=NOW)

    assert found.dlq_24h["silver"] == {"silver_rule": 100}
    assert found.input_24h["silver"] == 100_000
    assert [a.name for a in found.alerts if a.name == "dlq_rate"] == []
    chart = report._dlq_by_reason(ledger)
    assert sum(sum(t["y"]) for t in chart.traces if t["name"].startswith("silver")) == 100
    # And the alert does fire on a real 1.2 %.
    assert ("dlq_rate", "warning") in names(
        status(dlq_24h={"silver": {"silver_rule": 1200}}, input_24h={"ingest": 100_000})
    )


def test_an_unreconciled_batch_and_skipped_offsets_alert_for_24_hours(make_config: Any) -> None:
    cfg = make_config(**{"kafka.bootstrap_servers": "127.0.0.1:1"})
    ledger = Ledger(cfg.lake.root)
    odd = _record("ingest", "i-b1", 120, outcome="unreconciled", input=10, output=8, dlq=1)
    ledger.write(odd, key="t-x-b00000001")
    lossy = _record("ingest", "i-b2", 90, input=5, output=5)
    lossy.metrics = {
        "skipped_offsets": [
            {"topic": "t", "partition": 0, "from_offset": 0, "until_offset": 40, "reason": "retention"}
        ]
    }
    ledger.write(lossy, key="t-x-b00000002")
    ledger.write(_record("ingest", "i-b3", 1, input=5, output=5), key="t-x-b00000003")  # the newest: fine

    found = status_module.collect(cfg, kafka_timeout_s=0.2, now=NOW)

    alerts = {a.name: a for a in found.alerts}
    assert (
        alerts["ingest_unreconciled"].severity == "critical"
        and "i-b1" in alerts["ingest_unreconciled"].message
    )
    assert alerts["ingest_data_loss"].value == 40 and "t[0] 0..40" in alerts["ingest_data_loss"].message
    assert "stage_failed" not in alerts  # the newest batch succeeded
    later = status_module.collect(cfg, kafka_timeout_s=0.2, now=NOW + dt.timedelta(hours=25))
    assert not {"ingest_unreconciled", "ingest_data_loss"} & {a.name for a in later.alerts}


def test_a_failing_ingest_records_its_failure_and_raises_stage_failed(make_config: Any) -> None:
    cfg = make_config(
        **{"kafka.bootstrap_servers": "127.0.0.1:1", "kafka.embedded": False, "kafka.connect_timeout_s": 0.2}
    )
    ledger = Ledger(cfg.lake.root)
    ledger.write(_record("ingest", "i-b7", 5, input=5, output=5), key="t-x-b00000007")
    with pytest.raises(MedallionError):
        pipeline.ingest(cfg)
    last = ledger.last("ingest", outcome=None)
    assert last is not None and last.outcome == "failed" and last.error
    found = status_module.collect(cfg, kafka_timeout_s=0.2)
    assert [a.source for a in found.alerts if a.name == "stage_failed"] == [last.run_id]
