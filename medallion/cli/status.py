from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated

import typer

from medallion.cli.app import STATE, app, console, summary_table

if TYPE_CHECKING:
    from medallion.core.status_model import Status

DRIFT_SHOWN = 5


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


@app.command()
def status(
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON document (its shape: docs/architecture.md).")
    ] = False,
    prometheus: Annotated[
        bool, typer.Option("--prometheus", help="Print the metrics in Prometheus' text exposition format.")
    ] = False,
    fail_on_alert: Annotated[
        bool, typer.Option("--fail-on-alert", help="Exit 1 when any alert is active (for cron).")
    ] = False,
) -> None:
    """Tables, Kafka lag, DLQ counts, last runs and alerts, from the lake alone. Fast: no Spark.

    \b
    Example:
      medallion status --fail-on-alert
    """
    # lazy: `medallion --help` loads only Typer (tests/cli/test_cli.py)
    from medallion.operations.status import collect

    report = collect(STATE.config())
    if as_json:
        console().print_json(json.dumps(report.as_dict(), default=str))
    elif prometheus:
        # lazy: `medallion --help` loads only Typer (tests/cli/test_cli.py)
        from medallion.core.metrics import status_exposition

        console().out(status_exposition(report), end="", highlight=False)
    else:
        _print(report)
    if fail_on_alert and report.alerts:
        raise typer.Exit(1)


def _print(report: Status) -> None:
    out = console()
    broker = report.broker
    state = "up" if broker.reachable else "DOWN"
    pid = f" (embedded, pid {broker.embedded_pid})" if broker.embedded_pid else ""
    out.print(f"Kafka at {broker.address}: {state}{pid}", highlight=False)
    summary_table(
        "lake",
        [
            {
                "table": t.table,
                "rows": t.rows,
                "partitions": t.partitions,
                "newest": t.newest_partition or "-",
                "freshness": _age(t.freshness_s),
            }
            for t in report.tables
        ],
    )
    kafka = report.kafka
    if kafka.partitions:
        summary_table(
            f"kafka {kafka.topic} (lag {kafka.lag or 0:,} records)",
            [
                {"partition": p.partition, "log end": p.log_end, "committed": p.committed, "lag": p.lag}
                for p in kafka.partitions
            ],
        )
    dlq = [
        {"stage": stage, "reason": reason, "records": n}
        for stage, reasons in report.dlq_24h.items()
        for reason, n in sorted(reasons.items(), key=lambda kv: -kv[1])
    ]
    if dlq:
        summary_table("DLQ, last 24 h", dlq)
    summary_table(
        "last runs",
        [
            {
                "stage": r.stage,
                "outcome": r.outcome,
                "finished": (r.finished_at or "")[:19].replace("T", " "),
                "seconds": r.duration_s,
                "input": r.input,
                "output": r.output,
                "dlq": r.dlq,
                "dropped": r.dropped,
                "dq score": "-" if r.dq_score is None else f"{r.dq_score:.3f}",
            }
            for r in report.runs
        ],
    )
    done = [
        {
            "operation": name,
            "outcome": m["outcome"],
            "finished": (m["finished_at"] or "")[:19].replace("T", " "),
            "counts": ", ".join(f"{k} {v:,}" for k, v in m["counts"].items()) or "-",
        }
        for name, m in report.maintenance.items()
        if isinstance(m, dict)
    ]
    if done:
        summary_table("lake maintenance, last runs", done)
    drifted = sorted((d for d in report.drift if d.psi is not None), key=lambda d: -(d.psi or 0.0))[
        :DRIFT_SHOWN
    ]
    if drifted:
        summary_table(
            f"feature drift, highest PSI (of {len(report.drift)} features)",
            [
                {
                    "feature": f"{d.table}.{d.feature}",
                    "date": d.feature_date,
                    "psi": round(d.psi or 0.0, 4),
                    "ks": "-" if d.ks is None else round(d.ks, 4),
                    "reference": d.reference,
                }
                for d in drifted
            ],
        )
    m = report.materialization
    if m is not None:
        out.print(
            f"Online store: {m.online_store or '?'}, last materialized {str(m.finished_at)[:19]} "
            f"({m.outcome}, {m.rows:,} rows)",
            highlight=False,
        )
    for alert in report.alerts:
        colour = "bold red" if alert.severity == "critical" else "yellow"
        out.print(f"[{colour}]ALERT {alert.severity}[/] {alert.name}: {alert.message}", highlight=False)
    if not report.alerts:
        out.print("No alerts.")
