from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any

import typer

from medallion.cli.app import DATE_FORMATS, DATE_METAVAR, STATE, app, console, summary_table


@app.command()
def validate(
    start_date: Annotated[
        datetime, typer.Option(formats=DATE_FORMATS, metavar=DATE_METAVAR, help="First date to check (UTC).")
    ],
    end_date: Annotated[
        datetime, typer.Option(formats=DATE_FORMATS, metavar=DATE_METAVAR, help="Last date to check (UTC).")
    ],
    layer: Annotated[
        list[str] | None,
        typer.Option(
            help="bronze, silver, gold (every feature family) or one Gold table (gold.user_features); "
            "repeat for several (default: all)."
        ),
    ] = None,
    rules: Annotated[
        str | None,
        typer.Option(help="A rule file for Silver instead of the configured one (with --layer silver)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the results as one JSON document.")] = False,
) -> None:
    """Run the declared data-quality rules (and the reconciliation checks) on the lake for a date range;
    exit 1 when a `fail` rule fails (for CI and cron).

    \b
    Example:
      medallion validate --layer silver --start-date 2026-11-01 --end-date 2026-11-07
    """
    # lazy: `medallion --help` loads only Typer (tests/cli/test_cli.py)
    from dataclasses import asdict

    from medallion.core import stages
    from medallion.core.errors import UsageError
    from medallion.core.lake import date_range
    from medallion.engines.spark import get_spark
    from medallion.quality import results
    from medallion.quality.validate import LAYERS, rule_files, tables
    from medallion.quality.validate import validate as run_rules

    start, end = start_date.date(), end_date.date()
    date_range(start, end)  # validates the order, before Spark starts
    layers = layer or list(LAYERS)
    tables(layers)  # an unknown layer is a usage error
    if rules is not None and "silver" not in layers:
        raise UsageError("--rules is a rule file for Silver: give it with --layer silver.")
    cfg = STATE.config()
    rulesets = rule_files(cfg, layers, rules)  # a bad rule file is exit 2 before Spark starts
    options: dict[str, Any] = {
        "start_date": start,
        "end_date": end,
        "layers": ",".join(layers),
        "rules": rules,
    }
    with stages.run(cfg, stages.VALIDATE, **options) as rec:
        reports = run_rules(get_spark(cfg), cfg, layers, start, end, run_id=rec.run_id, rulesets=rulesets)
        for report in reports:
            results.write(cfg, report)
        failed = [f"{rep.table}: {r.name}" for rep in reports for r in rep.failed_fail_rules]
        rec.count(rules=sum(len(r.results) for r in reports), failed=len(failed))
        rec.record.exit_code = 1 if failed else 0  # the run worked; its verdict is the exit code
        rec.metrics.update({rep.table: rep.summary() for rep in reports})
    if as_json:
        console().print_json(json.dumps([asdict(r) for r in reports], default=str))
    else:
        summary_table(
            "validate",
            [
                {
                    "table": rep.table,
                    "rule": r.name,
                    "checked": r.checked,
                    "failed": r.failed,
                    "%": f"{100 * r.failure_rate:.2f}",
                    "action": r.action,
                    "status": r.status,
                }
                for rep in reports
                for r in rep.results
            ],
        )
        for rep in reports:
            console().print(f"{rep.table}: data-quality score {rep.score:.4f} over {rep.rows:,} rows")
    if failed:
        # lazy: `medallion --help` loads only Typer (tests/cli/test_cli.py)
        from medallion.cli.app import err_console

        err_console().print(f"validate: fail rule(s) failed: {', '.join(failed)}", highlight=False)
        raise typer.Exit(1)
