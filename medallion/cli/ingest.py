from __future__ import annotations

from typing import Annotated, Any

import typer

from medallion.cli.app import STATE, app, console, summary_table


@app.command()
def ingest(
    topic: Annotated[str | None, typer.Option(help="Kafka topic to ingest (default: kafka.topic).")] = None,
    once: Annotated[
        bool,
        typer.Option("--once", help="Ingest what is in the topic now, then stop (availableNow; for cron)."),
    ] = False,
    max_offsets_per_trigger: Annotated[
        int | None,
        typer.Option(min=1, help="Cap on records per micro-batch (default: ingest.max_offsets_per_trigger)."),
    ] = None,
    starting_offsets: Annotated[
        str | None, typer.Option(help="For a new checkpoint: earliest, latest or offsets JSON.")
    ] = None,
    trigger_interval: Annotated[
        str | None, typer.Option(help="Micro-batch interval when continuous.")
    ] = None,
) -> None:
    """Kafka → Bronze with Spark Structured Streaming: validated, PII-scrubbed, exactly once.

    Continuous until SIGTERM / Ctrl-C (it stops after the current micro-batch), or --once for cron.

    \b
    Example (crontab):
      */15 * * * * medallion ingest --once
    """
    # lazy: `medallion --help` loads only Typer (tests/cli/test_cli.py)
    from medallion.operations import pipeline

    overrides: dict[str, Any] = {
        "kafka.topic": topic,
        "ingest.max_offsets_per_trigger": max_offsets_per_trigger,
        "ingest.starting_offsets": starting_offsets,
        "ingest.trigger_interval": trigger_interval,
    }
    cfg = STATE.config(**{k: v for k, v in overrides.items() if v is not None})

    def on_batch(m: Any) -> None:
        reasons = ", ".join(f"{k} {v:,}" for k, v in sorted(m.dlq_by_reason.items())) or "none"
        console().print(
            f"batch {m.batch_id}: {m.input:,} in → {m.bronze:,} bronze, {m.dlq:,} DLQ ({reasons}), "
            f"{m.duplicates:,} duplicates; {m.seconds:.1f}s, {m.rows_per_s:,.0f} rows/s; lag {m.lag}",
            highlight=False,
        )

    result = pipeline.ingest(cfg, once=once, on_batch=on_batch)
    summary_table(
        f"ingest {cfg.kafka.topic}",
        [
            {
                "batches": len(result.batches),
                "input": result.total("input"),
                "bronze": result.total("bronze"),
                "dlq": result.total("dlq"),
                "duplicates dropped": result.total("duplicates"),
            }
        ],
    )
