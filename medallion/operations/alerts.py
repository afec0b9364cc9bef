"""Alerts: the thresholds of `AlertsConfig` applied to what `status` gathered.

Each alert names its rule, its severity, the threshold, the value and where the value comes from (a run
id or a table), so a page at 3 a.m. says what is wrong without another command. Pure functions of the
status, so they are tested on hand-built statuses.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from medallion.core import stages
from medallion.core.config import DriftConfig
from medallion.core.status_model import SUCCEEDED, UNRECONCILED, Alert, RunSummary, Status

if TYPE_CHECKING:
    from medallion.core.config import AlertsConfig, DriftConfig

WARNING, CRITICAL = "warning", "critical"
__all__ = ["CRITICAL", "WARNING", "Alert", "evaluate"]


def _pct(x: float) -> str:
    return f"{100 * x:.1f} %"


def evaluate(
    status: Status, limits: AlertsConfig, *, embedded: bool = False, drift: DriftConfig | None = None
) -> list[Alert]:
    """Every alert the status raises, most severe first (``drift``: the PSI thresholds; the defaults
    when not given)."""
    found: list[Alert] = []
    runs = {r.stage: r for r in status.runs}

    # A stage whose last run failed. "written": an ingest batch is in the lake and Spark has not reported
    # it yet (or the process was killed in between). Not a failure.
    for stage, run in runs.items():
        if not run.ok:
            found.append(
                Alert(
                    "stage_failed",
                    CRITICAL,
                    f"last {stage} run {run.run_id} {run.outcome}: {run.error or _counts(run)}",
                    value=run.outcome,
                    threshold=SUCCEEDED,
                    source=run.run_id,
                )
            )

    if not status.broker.reachable and not embedded:
        found.append(
            Alert(
                "kafka_unreachable",
                CRITICAL,
                f"Kafka unreachable at {status.broker.address}",
                source=status.broker.address,
            )
        )

    found += _ingest(status, limits)
    found += _ingest_24h(status)
    found += _dlq(status, limits)
    found += _silver(runs.get(stages.SILVER.name), limits)
    found += _validation(runs.get(stages.VALIDATE.name), limits)
    found += _gold(status, limits)
    found += _drift(status, drift)
    found.sort(key=lambda a: a.severity != CRITICAL)
    return found


def _counts(run: RunSummary) -> str:
    return f"input {run.input}, output {run.output}, dlq {run.dlq}, dropped {run.dropped}"


def _ingest(status: Status, limits: AlertsConfig) -> list[Alert]:
    out = []
    batches = [b for b in status.recent_batches if b.outcome in (SUCCEEDED, UNRECONCILED)]
    if batches:
        last = batches[-1]
        if last.input and last.dlq / last.input > limits.bronze_error_rate:
            rate = last.dlq / last.input
            out.append(
                Alert(
                    "bronze_error_rate",
                    CRITICAL,
                    f"ingest batch {last.run_id} sent {_pct(rate)} of its records to the DLQ "
                    f"(threshold {_pct(limits.bronze_error_rate)})",
                    value=round(rate, 4),
                    threshold=limits.bronze_error_rate,
                    source=last.run_id,
                )
            )
        if last.duration_s > limits.max_batch_seconds:
            out.append(
                Alert(
                    "slow_batch",
                    WARNING,
                    f"ingest batch {last.run_id} took {last.duration_s:.0f} s "
                    f"(threshold {limits.max_batch_seconds:.0f} s)",
                    value=last.duration_s,
                    threshold=limits.max_batch_seconds,
                    source=last.run_id,
                )
            )
        lags = [b.metrics.get("lag") for b in batches]
        speed = last.metrics.get("rows_per_s")
        if (
            len(lags) >= 2
            and lags[-1] is not None
            and lags[-2] is not None
            and lags[-1] > lags[-2]
            and speed is not None
            and speed < limits.min_events_per_s
        ):
            out.append(
                Alert(
                    "ingest_falling_behind",
                    WARNING,
                    f"ingest moves {speed:.0f} events/s (threshold {limits.min_events_per_s:.0f}) while its lag "
                    f"grew from {lags[-2]:,} to {lags[-1]:,} records",
                    value=speed,
                    threshold=limits.min_events_per_s,
                    source=last.run_id,
                )
            )
    lag = status.kafka.lag
    if lag is not None and lag > limits.max_lag_records:
        out.append(
            Alert(
                "consumer_lag",
                WARNING,
                f"ingest is {lag:,} records behind the log end of {status.kafka.topic} "
                f"(threshold {limits.max_lag_records:,})",
                value=lag,
                threshold=limits.max_lag_records,
                source=status.kafka.topic,
            )
        )
    return out


def _ingest_24h(status: Status) -> list[Alert]:
    """What went wrong in any ingest batch of the last 24 h, not only in the newest one (a batch is the
    newest record for one trigger interval, about 10 s)."""
    out = []
    if status.unreconciled_24h:
        ids = status.unreconciled_24h
        out.append(
            Alert(
                "ingest_unreconciled",
                CRITICAL,
                f"{len(ids)} ingest batch(es) in the last 24 h did not reconcile (input != bronze + dlq + "
                f"duplicates): {', '.join(ids[-5:])}",
                value=len(ids),
                threshold=0,
                source=ids[-1],
            )
        )
    if status.data_loss_24h:
        lost = status.data_loss_24h
        skipped = sum(int(r.get("until_offset", 0)) - int(r.get("from_offset", 0)) for r in lost)
        ranges = ", ".join(
            f"{r.get('topic')}[{r.get('partition')}] {r.get('from_offset')}..{r.get('until_offset')}"
            for r in lost[-5:]
        )
        out.append(
            Alert(
                "ingest_data_loss",
                CRITICAL,
                f"ingest skipped {skipped:,} offsets deleted from Kafka before they were read in the last "
                f"24 h (ingest.fail_on_data_loss is false): {ranges}",
                value=skipped,
                threshold=0,
                source=ranges,
            )
        )
    return out


def _dlq(status: Status, limits: AlertsConfig) -> list[Alert]:
    # Each rejected record counted once (`medallion.core.rejections`: a Silver date rebuilt by every hourly run
    # counts from its latest run). Each stage's input counted once: ingest's records; Silver's input is
    # Bronze's output, so the share is of what came in from Kafka, plus nothing twice.
    rejected = sum(sum(reasons.values()) for reasons in status.dlq_24h.values())
    total = status.input_24h.get(stages.INGEST.name, 0) or sum(status.input_24h.values())
    if total and rejected / total > limits.dlq_rate:
        rate = rejected / total
        by_stage = ", ".join(f"{s} {sum(r.values()):,}" for s, r in status.dlq_24h.items() if r)
        return [
            Alert(
                "dlq_rate",
                WARNING,
                f"the DLQs took {_pct(rate)} of the input in the last 24 h ({by_stage} of {total:,}; "
                f"threshold {_pct(limits.dlq_rate)})",
                value=round(rate, 4),
                threshold=limits.dlq_rate,
                source="last 24 h",
            )
        ]
    return []


def _silver(run: RunSummary | None, limits: AlertsConfig) -> list[Alert]:
    if run is None or run.outcome != SUCCEEDED:
        return []
    out = []
    score = run.dq_score
    if score is not None and score < limits.min_silver_dq_score:
        out.append(
            Alert(
                "silver_dq_score",
                CRITICAL,
                f"silver run {run.run_id} scored {score:.3f} (threshold {limits.min_silver_dq_score})",
                value=score,
                threshold=limits.min_silver_dq_score,
                source=run.run_id,
            )
        )
    if run.duration_s > limits.max_silver_seconds:
        out.append(
            Alert(
                "slow_silver",
                WARNING,
                f"silver run {run.run_id} took {run.duration_s:.0f} s "
                f"(threshold {limits.max_silver_seconds:.0f} s)",
                value=run.duration_s,
                threshold=limits.max_silver_seconds,
                source=run.run_id,
            )
        )
    return out


def _validation(run: RunSummary | None, limits: AlertsConfig) -> list[Alert]:
    if run is None:
        return []
    rate = run.metrics.get("failure_rate")
    if rate is None or rate <= limits.validation_failure_rate:
        return []
    return [
        Alert(
            "validation_failures",
            WARNING,
            f"validate run {run.run_id} found {_pct(rate)} of the checked rows failing "
            f"(threshold {_pct(limits.validation_failure_rate)})",
            value=rate,
            threshold=limits.validation_failure_rate,
            source=run.run_id,
        )
    ]


def _gold(status: Status, limits: AlertsConfig) -> list[Alert]:
    out = []
    for table in status.tables:
        if table.layer != "gold" or table.freshness_s is None:
            continue
        hours = table.freshness_s / 3600
        severity = (
            CRITICAL
            if hours > limits.gold_critical_hours
            else WARNING
            if hours > limits.gold_warning_hours
            else None
        )
        if severity is None:
            continue
        threshold = limits.gold_critical_hours if severity == CRITICAL else limits.gold_warning_hours
        out.append(
            Alert(
                "gold_stale",
                severity,
                f"{table.table}: newest feature date ({table.newest_partition}) ended {hours:.0f} h ago "
                f"(threshold {threshold:.0f} h)",
                value=round(hours, 1),
                threshold=threshold,
                source=table.table,
            )
        )
    return out


def _drift(status: Status, settings: DriftConfig | None) -> list[Alert]:
    """A warning per Gold feature whose latest PSI is above its threshold (``drift.psi_threshold``, or
    its own in ``drift.feature_thresholds``)."""
    if settings is None:
        settings = DriftConfig.model_validate({})
    out = []
    for row in status.drift:
        psi = row.psi
        threshold = settings.threshold(row.feature)
        if psi is None or psi <= threshold:
            continue
        ks = row.ks
        out.append(
            Alert(
                "feature_drift",
                WARNING,
                f"{row.table}.{row.feature} drifted on {row.feature_date}: PSI {psi:.3f} against "
                f"{row.reference}"
                + (f", KS {ks:.3f}" if ks is not None else "")
                + f" (threshold {threshold:g})",
                value=psi,
                threshold=threshold,
                source=f"{row.table}.{row.feature}",
            )
        )
    return out
