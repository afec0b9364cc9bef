"""``medallion lookups load|show``: a user's reference tables (items, users, currency rates)."""

from __future__ import annotations

from typing import Annotated

import typer

from medallion.cli.app import STATE, app, console, summary_table

lookups_app = typer.Typer(
    name="lookups",
    help="The reference tables Silver joins: load your own (items, users, currency_rates), show them.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
app.add_typer(lookups_app)


@lookups_app.command("load")
def load(
    table: Annotated[str, typer.Argument(metavar="items|users|currency_rates", help="The lookup table.")],
    file: Annotated[
        str, typer.Argument(metavar="FILE", help="A .csv (with a header), .parquet or .jsonl file.")
    ],
    replace: Annotated[
        bool,
        typer.Option(
            "--replace", help="currency_rates: drop the dates this file does not bring (default: keep them)."
        ),
    ] = False,
) -> None:
    """Check FILE against the catalogue (columns, types, unique key) and store it as the lookup, whole or
    not at all. items and users are replaced; currency_rates adds and corrects dates, keeping earlier ones.

    \b
    Examples:
      medallion lookups load items items.csv
      medallion lookups load currency_rates rates-2026-12.jsonl
    """
    # lazy: `medallion --help` loads only Typer (tests/cli/test_cli.py)
    from medallion import lookups

    stored = lookups.load(STATE.config(), table, file, replace=replace)
    summary_table(
        f"lookups load {lookups.by_name(table).short_name}",
        [{"loaded": stored.loaded, "kept": stored.kept, "corrected": stored.corrected, "rows": stored.rows}],
    )


@lookups_app.command("show")
def show() -> None:
    """Each lookup: rows, key, and the last load (or `medallion produce`) that wrote it."""
    # lazy: `medallion --help` loads only Typer (tests/cli/test_cli.py)
    from medallion import lookups

    rows = []
    states = lookups.describe(STATE.config())
    for state in states:
        last = state.last_load
        rows.append(
            {
                "table": state.table.short_name,
                "rows": "missing" if state.rows is None else f"{state.rows:,}",
                "key": ", ".join(state.table.key),
                "last load": f"{last['at']} ({last['by']}{', ' + last['file'] if last['file'] else ''})"
                if last
                else "-",
                "history": state.history or "",
            }
        )
    summary_table("lookups", rows)
    if any(state.rows is None for state in states):
        console().print("Load a missing one with: medallion lookups load <table> FILE")
