from __future__ import annotations

from typing import Annotated

import typer

from medallion.cli.app import STATE, app, console, summary_table


@app.command()
def run(
    count: Annotated[
        int | None, typer.Option(min=0, help="Events to produce first (default: produce.count).")
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed of the produced events.")] = None,
    bad_ratio: Annotated[
        float, typer.Option(min=0, max=1, help="Share of malformed records to mix in.")
    ] = 0.01,
) -> None:
    """Every stage in order: produce → Bronze → Silver → Gold → Feast online store → one online read.

    The embedded demo: on a fresh machine it starts its own broker and needs nothing but Java 17.
    Re-running is safe.
    """
    # lazy: `medallion --help` loads only Typer (tests/cli/test_cli.py)
    from medallion.operations import pipeline

    cfg = STATE.config()
    summary = pipeline.PipelineSummary()
    current: list[str] = []

    def report(stage: str) -> None:
        current[:] = [stage]
        console().print(f"[bold]▶ {stage}[/]")

    try:
        pipeline.run_all(cfg, count=count, seed=seed, bad_ratio=bad_ratio, report=report, summary=summary)
    except Exception:
        # Stop at the first failing stage: what finished before it, then its error (printed by the CLI).
        summary_table(f"medallion run stopped at {current[0] if current else 'start'}", summary.stages)
        raise
    summary_table("medallion run", summary.stages)
    if summary.sample_user:
        rows = [{"feature": k, "value": v} for k, v in sorted(summary.online_features.items())]
        summary_table(f"online features of {summary.sample_user}", rows)
