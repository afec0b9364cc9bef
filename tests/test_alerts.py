"""Each alert fires above its threshold, not at or below it, and says threshold, value and source."""

from __future__ import annotations

from typing import Any

import pytest

from medallion.alerts import evaluate
from medallion.config import AlertsConfig
from medallion.status_model import Broker, Kafka, RunSummary, Status, TableStatus

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
