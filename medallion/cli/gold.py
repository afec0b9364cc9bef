from __future__ import annotations

from datetime import datetime
from typing import Annotated

import typer

from medallion.cli.app import DATE_FORMATS, DATE_METAVAR, STATE, app, console, summary_table


@app.command()
def gold(
    start_date: Annotated[
        datetime | None,
        typer.Option(formats=DATE_FORMATS, metavar=DATE_METAVAR, help="First feature date (UTC)."),
    ] = None,
    end_date: Annotated[
        datetime | None,
        typer.Option(formats=DATE_FORMATS, metavar=DATE_METAVAR, help="Last feature date (UTC)."),
    ] = None,
    feature_type: Annotated[
        list[str] | None,
        typer.Option(
            "--feature-type",
            metavar="NAME",
            help="Only this feature family (repeatable); all of them by default. `medallion status` lists them.",
        ),
    ] = None,
    incremental: Annotated[
        bool,
        typer.Option(
            "--incremental",
            help="Only the feature dates whose windows cover Silver dates written since the last Gold run.",
        ),
    ] = False,
    allow_breaking: Annotated[
        bool,
        typer.Option(
            "--allow-breaking",
            help="Write even when a feature was removed, renamed or retyped against the schema registry "
            "(records a breaking schema version; `medallion features schema --history` shows it).",
        ),
    ] = False,
) -> None:
    """Silver → Gold: the feature families for each feature date in the range (also the backfill path).

    A feature date D reads only events before the end of D; a backfill of many dates is one Spark job per
    family over all of them, and re-running a range is idempotent.

    \b
    Examples:
      medallion gold --start-date 2026-11-01 --end-date 2026-11-07
      medallion gold --start-date 2026-11-01 --end-date 2026-11-07 --feature-type user_features
      medallion gold --incremental
    """
    # lazy: `medallion --help` loads only Typer (tests/cli/test_cli.py)
    from rich.progress import Progress

    from medallion.operations import pipeline

    with Progress(console=console(), transient=True) as bar:
        task = bar.add_task("gold: reading Silver", total=None)

        def progress(family: str, done: int, total: int) -> None:
            bar.update(task, total=total, completed=done, description=f"gold: {family} written")

        result = pipeline.gold(
            STATE.config(),
            start_date.date() if start_date else None,
            end_date.date() if end_date else None,
            families=feature_type or None,
            incremental=incremental,
            allow_breaking=allow_breaking,
            progress=progress,
        )
    summary_table(
        "gold",
        [
            {
                "feature dates": len(result.dates),
                "silver events": result.input,
                "feature rows": result.output,
                "seconds": round(result.seconds, 1),
            }
        ],
    )
