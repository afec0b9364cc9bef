"""The Typer application, its global options and the one place errors become messages and exit codes.

Nothing heavy is imported here or by the command modules at import time: the config models (pydantic),
rich and loguru load when a command runs, so ``medallion --help`` costs little more than Typer itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from rich.console import Console

    from medallion.core.config import Config

# Plain (click) help, not Typer's rich panels: rendering those imports rich's markdown and traceback
# modules, which alone took Typer's `--help` to about twice the cost of importing Typer (measured in
# bench/bench_cli.py). Help texts therefore use no markup; `\b` keeps an example line unwrapped.
app = typer.Typer(
    name="medallion",
    help="An ML data pipeline: Kafka → Bronze → Silver → Gold → Feast, embedded or on a cluster.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
    rich_markup_mode=None,
)


@cache
def console() -> Console:
    """Where a command's results go (stdout)."""
    # lazy: `medallion --help` loads only Typer (tests/cli/test_cli.py)
    from rich.console import Console

    return Console()


@cache
def err_console() -> Console:
    """Where errors go (stderr)."""
    # lazy: `medallion --help` loads only Typer (tests/cli/test_cli.py)
    from rich.console import Console

    return Console(stderr=True)


@dataclass
class AppState:
    env: str = "local"
    config_dir: str | None = None
    debug: bool = False
    _config: Config | None = None

    def config(self, **overrides: Any) -> Config:
        """The validated config, with command-line overrides (dotted keys) applied on top."""
        if self._config is None or overrides:
            # lazy: `medallion --help` loads only Typer (tests/cli/test_cli.py)
            from medallion.core.config import load_config

            self._config = load_config(self.env, self.config_dir, overrides)
        return self._config


STATE = AppState()


class LogLevel(StrEnum):
    DEBUG = "DEBUG"
    INFO = "INFO"
    WARNING = "WARNING"
    ERROR = "ERROR"


@app.callback()
def main_options(
    env: Annotated[
        str,
        typer.Option(
            "--env",
            envvar="MEDALLION_ENV",
            metavar="local|docker|prod",
            help="Environment: local (embedded), docker or prod.",
        ),
    ] = "local",
    config_dir: Annotated[
        str | None,
        typer.Option(
            "--config-dir",
            envvar="MEDALLION_CONFIG_DIR",
            metavar="DIR",
            help="Folder with base.yaml and overlays.",
        ),
    ] = None,
    log_level: Annotated[
        LogLevel,
        typer.Option(
            "--log-level",
            envvar="MEDALLION_LOG_LEVEL",
            case_sensitive=False,
            help="Our log's level; debug also shows what Spark, Feast and other libraries say.",
        ),
    ] = LogLevel.INFO,
    log_json: Annotated[
        bool, typer.Option("--log-json", help="Log one JSON object per line (for collectors).")
    ] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show the full traceback of an error.")] = False,
) -> None:
    # lazy: `medallion --help` loads only Typer (tests/cli/test_cli.py)
    from medallion.cli.logs import configure_logging

    STATE.env, STATE.config_dir, STATE.debug = env, config_dir, debug
    STATE._config = None  # each invocation loads its own (several run in one process under CliRunner)
    configure_logging(log_level.value, log_json)


def run_app(argv: list[str] | None = None) -> int:
    """Run the CLI and turn every outcome into an exit code: 0 ok, 1 pipeline failure, 2 usage/config.

    Typer (standalone) already answers bad usage with exit 2; everything the commands raise lands here.
    """
    # lazy: `medallion --help` loads only Typer (tests/cli/test_cli.py)
    from medallion.core.errors import MedallionError, exit_code

    try:
        app(args=argv)
    except SystemExit as exc:
        return exit_code(exc)
    except MedallionError as exc:
        if STATE.debug:
            raise
        _print_error(str(exc))
        return exit_code(exc)
    except Exception as exc:  # a bug or an unclassified library error: still one clear line
        if STATE.debug:
            raise
        _print_error(f"{type(exc).__name__}: {exc}\n(run with --debug for the traceback)")
        return 1
    return 0


def _print_error(message: str) -> None:
    # As text, not markup: a message may hold brackets (`local[2]`, a JSON list) that are not markup.
    # lazy: `medallion --help` loads only Typer (tests/cli/test_cli.py)
    from rich.text import Text

    from medallion.core.masking import mask_text

    err_console().print(Text.assemble(("Error:", "bold red"), " ", mask_text(message)), soft_wrap=True)


DATE_FORMATS = ["%Y-%m-%d"]
DATE_METAVAR = "YYYY-MM-DD"


def summary_table(title: str, rows: list[dict[str, Any]]) -> None:
    """Print rows of a command's results as one table (keys of the first row are the columns)."""
    # lazy: `medallion --help` loads only Typer (tests/cli/test_cli.py)
    from rich.table import Table

    if not rows:
        console().print(f"{title}: nothing to report")
        return
    table = Table(title=title, title_justify="left")
    for column in rows[0]:
        table.add_column(str(column), justify="right" if isinstance(rows[0][column], int | float) else "left")
    for row in rows:
        table.add_row(*(f"{v:,}" if isinstance(v, int) else str(v) for v in row.values()))
    console().print(table)
