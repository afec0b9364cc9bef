"""``medallion contract check FILE``: sample events checked offline by Bronze's own validator."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from medallion.cli.app import STATE, app

contract_app = typer.Typer(
    name="contract",
    help="The event contract: check sample events against it before a producer ships them.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
app.add_typer(contract_app)


@contract_app.command("check")
def check(
    file: Annotated[str, typer.Argument(metavar="FILE", help="JSON lines, one event per line; - for stdin.")],
    contract_file: Annotated[
        str | None,
        typer.Option(
            "--contract", metavar="PATH", help="Check against this contract file, not the configured one."
        ),
    ] = None,
) -> None:
    """Validate events with Bronze's own validator, offline (no broker, no Spark): each line is one
    record's value. Prints each record's line number and valid, or the rules it breaks; exits 1 if any
    is invalid. Blank lines are skipped.

    \b
    Examples:
      medallion contract check samples.jsonl
      my-producer --dry-run | medallion contract check -
    """
    # lazy: `medallion --help` loads only Typer (tests/cli/test_cli.py)
    from medallion.bronze.records import rules_for
    from medallion.core.contract import check_records
    from medallion.core.errors import UsageError

    cfg = STATE.config(**({"contract.path": contract_file} if contract_file else {}))
    if file == "-":
        lines = sys.stdin.buffer.read().splitlines()
    else:
        try:
            lines = Path(file).read_bytes().splitlines()
        except OSError as exc:
            raise UsageError(
                f"Cannot read {file}: {exc.strerror}. Give a JSON-lines file, or - for stdin."
            ) from None
    numbered = [(n, line.rstrip(b"\r")) for n, line in enumerate(lines, 1) if line.strip()]
    invalid = 0
    out = sys.stdout
    for (n, _), failed in zip(numbered, check_records((v for _, v in numbered), rules_for(cfg)), strict=True):
        if failed:
            invalid += 1
            out.write(f"line {n}: invalid: {', '.join(failed)}\n")
        else:
            out.write(f"line {n}: valid\n")
    out.write(f"{len(numbered)} records: {len(numbered) - invalid} valid, {invalid} invalid\n")
    out.flush()
    if invalid:
        raise typer.Exit(1)
