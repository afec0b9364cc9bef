from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import typer

from medallion.cli.app import DATE_FORMATS, DATE_METAVAR, STATE, app, summary_table


@app.command()
def produce(
    count: Annotated[int | None, typer.Option(min=0, help="Events to send (default: produce.count).")] = None,
    seed: Annotated[
        int | None, typer.Option(help="Random seed; the same seed sends the same events.")
    ] = None,
    rate: Annotated[float, typer.Option(min=0, help="Events per second; 0 sends as fast as possible.")] = 0.0,
    start_date: Annotated[
        datetime | None,
        typer.Option(
            formats=DATE_FORMATS, metavar=DATE_METAVAR, help="First day of event times (UTC); default: live."
        ),
    ] = None,
    days: Annotated[
        int | None, typer.Option(min=1, help="Days of history the events span (with --start-date).")
    ] = None,
    bad_ratio: Annotated[
        float, typer.Option(min=0, max=1, help="Share of malformed records, tagged by class.")
    ] = 0.0,
    duplicate_ratio: Annotated[
        float, typer.Option(min=0, max=0.5, help="Share of exact duplicates (same event_id).")
    ] = 0.01,
    late_ratio: Annotated[
        float, typer.Option(min=0, max=1, help="Share of late, out-of-order events.")
    ] = 0.02,
) -> None:
    """Generate realistic synthetic user events into Kafka (demos, development, load tests).

    \b
    Example:
      medallion produce --count 100000 --bad-ratio 0.01 --seed 7
    """
    # lazy: `medallion --help` loads only Typer (tests/cli/test_cli.py)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from medallion.operations import pipeline
    from medallion.produce.producer import ProduceFailed

    cfg = STATE.config()
    total = cfg.produce.count if count is None else count
    with Progress(
        TextColumn("produce"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]:>9,.0f} ev/s"),
        TimeRemainingColumn(),
        transient=True,
    ) as bar:
        task = bar.add_task("produce", total=total, rate=0.0)

        def progress(sent: int) -> None:
            elapsed = bar.tasks[task].elapsed or 0.0
            bar.update(task, completed=sent, rate=sent / elapsed if elapsed else 0.0)

        try:
            result = pipeline.produce(
                cfg,
                count=total,
                seed=seed,
                rate=rate,
                start_date=start_date.date() if start_date else None,
                days=days,
                bad_ratio=bad_ratio,
                duplicate_ratio=duplicate_ratio,
                late_ratio=late_ratio,
                progress=progress,
            )
        except ProduceFailed as failed:
            _summarize(failed.result)  # the counts, then the error naming the broker and dead-letter file
            raise
    _summarize(result)


def _summarize(result: Any) -> None:
    rows: list[dict[str, Any]] = [
        {"event type": k, "sent": v} for k, v in sorted(result.by_event_type.items())
    ]
    rows += [{"event type": f"bad: {k}", "sent": v} for k, v in sorted(result.by_bad_class.items())]
    summary_table("produced", rows)
    summary_table(
        "delivery",
        [
            {
                "sent": result.sent,
                "delivered": result.delivered,
                "failed": result.failed,
                "duplicates": result.duplicates,
                "late": result.late,
                "events/s": round(result.events_per_second),
            }
        ],
    )
