from __future__ import annotations

from datetime import datetime
from typing import Annotated

import typer

from medallion.cli.app import DATE_FORMATS, DATE_METAVAR, STATE, app, summary_table


@app.command()
def gold(
    start_date: Annotated[
        datetime, typer.Option(formats=DATE_FORMATS, metavar=DATE_METAVAR, help="First feature date (UTC).")
    ],
    end_date: Annotated[
        datetime, typer.Option(formats=DATE_FORMATS, metavar=DATE_METAVAR, help="Last feature date (UTC).")
    ],
) -> None:
    """Silver → Gold: user features for each feature date in the range (also the backfill path).

    \b
    Example:
      medallion gold --start-date 2026-11-01 --end-date 2026-11-07
    """
    from medallion import pipeline

    result = pipeline.gold(STATE.config(), start_date.date(), end_date.date())
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
