from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from medallion.cli.app import STATE, app, console


@app.command()
def report(
    out: Annotated[Path, typer.Option("--out", help="The HTML file to write.")] = Path("report.html"),
) -> None:
    """One self-contained HTML page: events per day and layer, DLQ by reason, DQ scores, freshness, lag,
    Gold feature distributions. Reads the lake only (no Spark); opens offline.

    \b
    Example:
      medallion report --out report.html
    """
    # lazy: `medallion --help` loads only Typer (tests/cli/test_cli.py)
    from medallion.operations.report import write_report

    charts = write_report(STATE.config(), out)
    console().print(
        f"Wrote {out} ({len(charts)} charts, {out.stat().st_size / 1e6:.1f} MB).", highlight=False
    )
