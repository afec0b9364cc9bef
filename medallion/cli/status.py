from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from medallion.cli.app import STATE, app, console, summary_table

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
    from medallion.status import collect

    report = collect(STATE.config())
    if as_json:
        console().print_json(json.dumps(report.as_dict(), default=str))
    elif prometheus:
        from medallion.metrics import status_exposition

        console().out(status_exposition(report), end="", highlight=False)
    else:
        _print(report)
    if fail_on_alert and report.alerts:
        raise typer.Exit(1)


def _print(report: Any) -> None:
    from medallion.catalog import FEATURE_DATE

    out = console()
    broker = report.broker
    state = "up" if broker["reachable"] else "DOWN"
    pid = f" (embedded, pid {broker['embedded_pid']})" if broker.get("embedded_pid") else ""
    out.print(f"Kafka at {broker['address']}: {state}{pid}", highlight=False)
    summary_table(
        "lake",
        [
            {
                "table": t["table"],
                "rows": t["rows"],
                "partitions": t["partitions"],
                "newest": t["newest_partition"] or "-",
                "freshness": _age(t["freshness_s"]),
            }
            for t in report.tables
        ],
    )
    parts = report.kafka.get("partitions") or []
    if parts:
        summary_table(
            f"kafka {report.kafka['topic']} (lag {report.kafka['lag']:,} records)",
            [
                {
                    "partition": p["partition"],
                    "log end": p["log_end"],
                    "committed": p["committed"],
                    "lag": p["lag"],
                }
                for p in parts
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
                "stage": r["stage"],
                "outcome": r["outcome"],
                "finished": (r["finished_at"] or "")[:19].replace("T", " "),
                "seconds": r["duration_s"],
                "input": r["input"],
                "output": r["output"],
                "dlq": r["dlq"],
                "dropped": r["dropped"],
                "dq score": "-" if r["dq_score"] is None else f"{r['dq_score']:.3f}",
            }
            for r in report.runs
        ],
    )
    drifted = sorted((d for d in report.drift if d["psi"] is not None), key=lambda d: -d["psi"])[:DRIFT_SHOWN]
    if drifted:
        summary_table(
            f"feature drift, highest PSI (of {len(report.drift)} features)",
            [
                {
                    "feature": f"{d['table']}.{d['feature']}",
                    "date": d[FEATURE_DATE],
                    "psi": round(d["psi"], 4),
                    "ks": "-" if d["ks"] is None else round(d["ks"], 4),
                    "reference": d["reference"],
                }
                for d in drifted
            ],
        )
    if report.materialization:
        m = report.materialization
        out.print(
            f"Online store: {m.get('online_store') or '?'}, last materialized {str(m.get('finished_at'))[:19]} "
            f"({m.get('outcome')}, {m.get('rows'):,} rows)",
            highlight=False,
        )
    for alert in report.alerts:
        colour = "bold red" if alert["severity"] == "critical" else "yellow"
        out.print(
            f"[{colour}]ALERT {alert['severity']}[/] {alert['name']}: {alert['message']}", highlight=False
        )
    if not report.alerts:
        out.print("No alerts.")
