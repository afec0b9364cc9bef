from __future__ import annotations

import datetime as dt
from typing import Annotated

import typer

from medallion.cli.app import DATE_FORMATS, DATE_METAVAR, STATE, app, console, summary_table


@app.command()
def compact(
    layer: Annotated[
        str, typer.Option("--layer", help="bronze, dlq (Bronze's and Silver's), silver or gold.")
    ],
    start_date: Annotated[
        dt.datetime | None,
        typer.Option(
            formats=DATE_FORMATS, metavar=DATE_METAVAR, help="First partition date (with --end-date)."
        ),
    ] = None,
    end_date: Annotated[
        dt.datetime | None,
        typer.Option(formats=DATE_FORMATS, metavar=DATE_METAVAR, help="Last partition date, included."),
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only list what would be rewritten.")] = False,
    exclusive: Annotated[
        bool,
        typer.Option(
            "--exclusive",
            help="On a lake where a folder cannot be swapped atomically (an object store): no reader outside "
            "medallion's locks reads the layer during the run, so files may be moved one by one.",
        ),
    ] = False,
) -> None:
    """Rewrite a layer's closed partitions into files near maintenance.compact_target_mb, the same rows
    (Bronze: committed batches of hours past maintenance.compact_grace_hours, beside a running ingest).
    Without dates: every closed partition. A crashed run is completed or rolled back by the next one.

    \b
    Examples:
      medallion compact --layer bronze --dry-run
      medallion compact --layer silver --start-date 2026-11-01 --end-date 2026-11-07
    """
    # lazy: `medallion --help` loads only Typer (tests/cli/test_cli.py)
    from medallion.maintenance import jobs

    result = jobs.compact(
        STATE.config(),
        layer,
        start=start_date.date() if start_date else None,
        end=end_date.date() if end_date else None,
        dry_run=dry_run,
        exclusive=exclusive,
    )
    print_ = console().print
    for line in result.recovered:
        print_(f"a crashed compact settled: {line}")
    skipped = "".join(f"; {n} left: {reason}" for reason, n in sorted(result.skipped.items()))
    if not result.compacted:
        print_(
            f"compact {layer}: nothing to compact ({result.already} partition(s) already compact{skipped})"
        )
        return
    rows = [
        {
            "partition": c.partition,
            "files": f"{c.files_before} → {c.files_after}",
            "rows": c.rows,
            "bytes": f"{c.bytes_before} → {c.bytes_after}" if not dry_run else c.bytes_before,
        }
        for c in result.compacted
    ]
    title = f"compact {layer} (dry run: nothing rewritten)" if dry_run else f"compact {layer}: rewritten"
    summary_table(title, rows)
    print_(
        f"{len(rows)} partition(s), files {result.total('files_before')} → {result.total('files_after')}, "
        f"{result.total('rows')} rows; {result.already} already compact{skipped}"
    )
