from __future__ import annotations

from datetime import datetime
from typing import Annotated

import typer

from medallion.cli.app import DATE_FORMATS, DATE_METAVAR, STATE, app, summary_table


@app.command()
def silver(
    start_date: Annotated[
        datetime | None,
        typer.Option(formats=DATE_FORMATS, metavar=DATE_METAVAR, help="First event date (UTC)."),
    ] = None,
    end_date: Annotated[
        datetime | None,
        typer.Option(formats=DATE_FORMATS, metavar=DATE_METAVAR, help="Last event date (UTC)."),
    ] = None,
    incremental: Annotated[
        bool,
        typer.Option("--incremental", help="Only the dates new Bronze batches touched since the last run."),
    ] = False,
) -> None:
    """Bronze → Silver for a date range: flatten, type, dedupe, enrich; re-running a date is idempotent.

    \b
    Examples:
      medallion silver --start-date 2026-11-01 --end-date 2026-11-07
      medallion silver --incremental
    """
    # lazy: `medallion --help` loads only Typer (tests/cli/test_cli.py)
    from medallion.operations import pipeline

    result = pipeline.silver(
        STATE.config(),
        start_date.date() if start_date else None,
        end_date.date() if end_date else None,
        incremental=incremental,
    )
    summary_table(
        "silver",
        [
            {
                "dates": len(result.dates),
                "input": result.input,
                "output": result.output,
                "dlq (rules)": result.dlq,
                "duplicates dropped": result.dropped,
                "seconds": round(result.seconds, 1),
            }
        ],
    )
    if result.dates:
        # lazy: `medallion --help` loads only Typer (tests/cli/test_cli.py)
        from medallion.cli.app import console
        from medallion.core import catalog
        from medallion.quality import results

        report = results.latest(STATE.config(), catalog.SILVER.name)
        if report is not None and report.run_id == result.run_id:
            failing = ", ".join(f"{r.name} {r.failed:,}" for r in report.results if not r.passed)
            console().print(
                f"data-quality score {report.score:.4f}" + (f"; rules failed: {failing}" if failing else "")
            )
