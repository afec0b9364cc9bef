from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

import typer

from medallion.cli.app import STATE, app, summary_table


@app.command()
def materialize(
    end_date: Annotated[
        datetime | None,
        typer.Option(
            "--end-date",
            "--end",
            help="Load feature rows up to this time (UTC); default: the end of today, so today's partial row "
            "is served.",
        ),
    ] = None,
    full: Annotated[
        bool,
        typer.Option(
            "--full", help="Rebuild: every entity's newest row within the TTL, not only what changed."
        ),
    ] = False,
    feature_view: Annotated[
        list[str] | None,
        typer.Option("--feature-view", help="Only this feature view (repeat the option for several)."),
    ] = None,
    start: Annotated[
        datetime | None,
        typer.Option(help="An explicit window from this time: each entity's newest row within [start, end]."),
    ] = None,
) -> None:
    """Gold → Feast online store, incremental by default: what serving reads in milliseconds.

    Incremental runs write the entities whose newest Gold row is newer than the last run, or sits in a
    date Gold rewrote since then (late events). Re-running is harmless.

    \b
    Examples:
      medallion materialize
      medallion materialize --full --feature-view user_features
    """
    # lazy: `medallion --help` loads only Typer (tests/cli/test_cli.py)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from medallion.core.errors import UsageError
    from medallion.operations import pipeline

    as_utc = lambda t: t.replace(tzinfo=UTC) if t and t.tzinfo is None else t  # noqa: E731
    start, end = as_utc(start), as_utc(end_date)
    if start is not None and end is not None and start >= end:  # a usage error, before a run is recorded
        raise UsageError(f"--start {start.isoformat()} is not before --end-date {end.isoformat()}.")
    if start is not None and full:
        raise UsageError("--start and --full exclude each other: pass one.")
    cfg = STATE.config()
    with Progress(
        TextColumn("{task.description:<22}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]:>9,.0f} rows/s"),
        TimeElapsedColumn(),
        transient=True,
    ) as bar:
        tasks: dict[str, Any] = {}  # view -> rich's TaskID

        def progress(view: str, done: int, total: int) -> None:
            if view not in tasks:
                tasks[view] = bar.add_task(view, total=total, rate=0.0)
            task = tasks[view]
            elapsed = bar.tasks[task].elapsed or 0.0
            bar.update(task, completed=done, rate=done / elapsed if elapsed else 0.0)

        result = pipeline.materialize(
            cfg, end=end, start=start, full=full, feature_views=feature_view or None, progress=progress
        )
    summary_table(
        "materialize",
        [
            {
                "mode": result.mode,
                "feature views": len(result.feature_views),
                "rows": result.rows,
                "entities": result.entities,
                "window": f"{result.start} → {result.end}",
                "online store": result.online_store,
                "seconds": result.seconds,
            }
        ],
    )
