from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer

from medallion.cli.app import STATE, app, summary_table


@app.command()
def materialize(
    end: Annotated[
        datetime | None,
        typer.Option(
            help="Load feature rows up to this time (UTC); default: the end of today, so today's partial row is served."
        ),
    ] = None,
    start: Annotated[
        datetime | None, typer.Option(help="Reload from this time instead of from the last materialization.")
    ] = None,
) -> None:
    """Gold → Feast online store (incremental by default): what serving reads in milliseconds.

    \b
    Example:
      medallion materialize
    """
    from medallion import pipeline
    from medallion.errors import UsageError

    as_utc = lambda t: t.replace(tzinfo=UTC) if t and t.tzinfo is None else t  # noqa: E731
    start, end = as_utc(start), as_utc(end)
    if start is not None and end is not None and start >= end:  # a usage error, before a run is recorded
        raise UsageError(f"--start {start.isoformat()} is not before --end {end.isoformat()}.")
    result = pipeline.materialize(STATE.config(), end=end, start=start)
    summary_table(
        "materialize", [{k: v if isinstance(v, int | float) else str(v) for k, v in vars(result).items()}]
    )
