"""The Typer application, its global options and the one place errors become messages and exit codes."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Annotated, Any

import typer
from rich.console import Console

from medallion.config import Config, load_config

app = typer.Typer(
    name="medallion",
    help="An ML data pipeline: Kafka → Bronze → Silver → Gold → Feast, embedded or on a cluster.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
    rich_markup_mode="rich",
)
console = Console()
err_console = Console(stderr=True)


@dataclass
class AppState:
    env: str = "local"
    config_dir: str | None = None
    debug: bool = False
    _config: Config | None = None

    def config(self, **overrides: Any) -> Config:
        """The validated config, with command-line overrides (dotted keys) applied on top."""
        if self._config is None or overrides:
            self._config = load_config(self.env, self.config_dir, overrides)
        return self._config


STATE = AppState()


def configure_logging(level: str, as_json: bool) -> None:
    from loguru import logger

    logger.remove()
    if as_json:
        logger.add(sys.stderr, level=level.upper(), serialize=True)
    else:
        logger.add(
            sys.stderr, level=level.upper(), format="<green>{time:HH:mm:ss}</green> {level: <7} {message}"
        )


@app.callback()
def main_options(
    env: Annotated[
        str,
        typer.Option("--env", envvar="MEDALLION_ENV", help="Environment: local (embedded), docker or prod."),
    ] = "local",
    config_dir: Annotated[
        str | None,
        typer.Option(
            "--config-dir", envvar="MEDALLION_CONFIG_DIR", help="Folder with base.yaml and overlays."
        ),
    ] = None,
    log_level: Annotated[str, typer.Option("--log-level", help="DEBUG, INFO, WARNING or ERROR.")] = "INFO",
    log_json: Annotated[
        bool, typer.Option("--log-json", help="Log one JSON object per line (for collectors).")
    ] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show the full traceback of an error.")] = False,
) -> None:
    STATE.env, STATE.config_dir, STATE.debug = env, config_dir, debug
    configure_logging(log_level, log_json)


def run_app(argv: list[str] | None = None) -> int:
    """Run the CLI and turn every outcome into an exit code: 0 ok, 1 pipeline failure, 2 usage/config.

    Typer (standalone) already answers bad usage with exit 2; everything the commands raise lands here.
    """
    from medallion.errors import MedallionError

    try:
        app(args=argv)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except MedallionError as exc:
        if STATE.debug:
            raise
        err_console.print(f"[bold red]Error:[/] {exc}", highlight=False, soft_wrap=True)
        return exc.exit_code
    except Exception as exc:  # a bug or an unclassified library error: still one clear line
        if STATE.debug:
            raise
        err_console.print(
            f"[bold red]Error:[/] {type(exc).__name__}: {exc}\n(run with --debug for the traceback)",
            highlight=False,
            soft_wrap=True,
        )
        return 1
    return 0


DATE_FORMATS = ["%Y-%m-%d"]


def summary_table(title: str, rows: list[dict[str, Any]]) -> None:
    """Print rows of a command's results as one table (keys of the first row are the columns)."""
    from rich.table import Table

    if not rows:
        console.print(f"{title}: nothing to report")
        return
    table = Table(title=title, title_justify="left")
    for column in rows[0]:
        table.add_column(str(column), justify="right" if isinstance(rows[0][column], int | float) else "left")
    for row in rows:
        table.add_row(*(f"{v:,}" if isinstance(v, int) else str(v) for v in row.values()))
    console.print(table)
