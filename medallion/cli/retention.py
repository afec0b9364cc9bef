from __future__ import annotations

from typing import Annotated

import typer

from medallion.cli.app import STATE, app, console, summary_table


@app.command()
def retention(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only list what is past its age.")] = False,
) -> None:
    """Delete whole date partitions past their dataset's age (maintenance.*_days), and say what went:
    Bronze, the DLQs, Silver, Gold (never the dates serving or drift still need), rule and drift
    results, the ledger, the ingest's data-loss log.

    \b
    Examples:
      medallion retention --dry-run
      medallion retention
    """
    # lazy: `medallion --help` loads only Typer (tests/cli/test_cli.py)
    from medallion.maintenance import jobs

    result = jobs.retention(STATE.config(), dry_run=dry_run)
    rows = [
        {
            "dataset": e.dataset,
            "before": e.cutoff,
            "partitions": len(e.partitions),
            "files": e.files,
            "rows": e.rows,
            "bytes": e.bytes,
            "kept": e.kept,
        }
        for e in result.expired
        if e.partitions or e.kept
    ]
    if not rows:
        console().print("retention: nothing is past its age")
        return
    summary_table("retention (dry run: nothing deleted)" if dry_run else "retention: deleted", rows)
