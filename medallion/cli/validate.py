from __future__ import annotations

from datetime import datetime
from typing import Annotated

import typer

from medallion.cli.app import DATE_FORMATS, DATE_METAVAR, STATE, app, summary_table


@app.command()
def validate(
    start_date: Annotated[
        datetime, typer.Option(formats=DATE_FORMATS, metavar=DATE_METAVAR, help="First date to check (UTC).")
    ],
    end_date: Annotated[
        datetime, typer.Option(formats=DATE_FORMATS, metavar=DATE_METAVAR, help="Last date to check (UTC).")
    ],
    layer: Annotated[
        list[str] | None, typer.Option(help="bronze, silver or gold; repeat for several (default: all).")
    ] = None,
) -> None:
    """Run the data-quality checks on the lake for a date range; exit 1 when any fails (for CI and cron).

    \b
    Example:
      medallion validate --start-date 2026-11-01 --end-date 2026-11-07 --layer silver
    """
    from medallion.errors import UsageError
    from medallion.lake import date_range
    from medallion.quality.checks import LAYERS, validate
    from medallion.spark import get_spark

    date_range(start_date.date(), end_date.date())  # validates the order, before Spark starts
    layers = layer or list(LAYERS)
    unknown = sorted(set(layers) - set(LAYERS))
    if unknown:
        raise UsageError(f"Unknown layer {', '.join(unknown)} (--layer): use {', '.join(LAYERS)}.")
    cfg = STATE.config()
    results = validate(get_spark(cfg), cfg, layers, start_date.date(), end_date.date())
    summary_table(
        "validate",
        [
            {"layer": r.layer, "check": r.name, "ok": "pass" if r.passed else "FAIL", "detail": r.detail}
            for r in results
        ],
    )
    if not all(r.passed for r in results):
        raise typer.Exit(1)
