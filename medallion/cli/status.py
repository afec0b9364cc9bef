from __future__ import annotations

import json
from typing import Annotated

import typer

from medallion.cli.app import STATE, app, console, summary_table


@app.command()
def status(
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON document (for monitoring).")
    ] = False,
    fail_on_alert: Annotated[
        bool, typer.Option("--fail-on-alert", help="Exit 1 when any alert is raised (for cron).")
    ] = False,
) -> None:
    """Broker, rows per layer, consumer lag, DLQ counts, last runs and alerts. Fast: no Spark.

    \b
    Example:
      medallion status --fail-on-alert
    """
    from medallion.status import collect

    report = collect(STATE.config())
    if as_json:
        console().print_json(json.dumps(report.as_dict(), default=str))
    else:
        broker = report.broker
        state = "up" if broker["reachable"] else "DOWN"
        pid = f" (embedded, pid {broker['embedded_pid']})" if broker.get("embedded_pid") else ""
        console().print(f"Kafka at {broker['address']}: {state}{pid}", highlight=False)
        summary_table("lake", report.layers)
        if report.lag:
            summary_table("consumer lag (records behind, per partition)", [report.lag])
        summary_table("last runs", report.runs)
        for alert in report.alerts:
            console().print(f"[bold red]ALERT[/] {alert}", highlight=False)
    if fail_on_alert and report.alerts:
        raise typer.Exit(1)
