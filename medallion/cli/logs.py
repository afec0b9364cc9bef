"""Our log, and how loud the libraries under it may be: quiet by default, everything at debug.

- medallion's own messages go through loguru at the chosen level.
- Spark: the level reaches the sessions this process builds through ``MEDALLION_LOG_LEVEL``
  (``medallion.engines.spark`` turns it into log4j levels), and Spark's Python workers, which inherit the
  environment, log in the same format and level through loguru's ``LOGURU_*`` variables.
- Python warnings: library deprecations and Feast's notices ("... is an experimental feature", its
  dependencies' dask and protobuf warnings) are dropped below debug; every other warning, and all of
  them at debug, become one line of our log.
- Feast's own loggers: errors only below debug, everything at debug.
- One time zone in every line: UTC by default, as Spark's session and the lake's timestamps are
  (``MEDALLION_LOG_TZ=local`` for the host's zone). Our lines and Spark's log4j lines (through
  ``MEDALLION_LOG_TZ_ID``, which log4j2.properties reads from the environment the JVM inherits) both
  follow it.
"""

from __future__ import annotations

import logging
import os
import sys
import warnings
from typing import TextIO

from medallion.engines.spark import LOG_LEVEL_ENV

LOG_TZ_ENV = "MEDALLION_LOG_TZ"  # utc (default) or local
LOG_TZ_ID_ENV = "MEDALLION_LOG_TZ_ID"  # the zone as a Java TimeZone id, for log4j
LOG_FORMAT_UTC = "<green>{time:HH:mm:ss!UTC}</green> {level: <7} {message}"
LOG_FORMAT_LOCAL = "<green>{time:HH:mm:ss}</green> {level: <7} {message}"
# Libraries whose warnings say nothing a user of the pipeline can act on (seen at --log-level debug).
QUIET_WARNING_MODULES = r"(feast|dask|google\.protobuf)(\.|$)"
QUIET_WARNING_CATEGORIES: tuple[type[Warning], ...] = (
    DeprecationWarning,
    PendingDeprecationWarning,
    FutureWarning,
)
QUIET_LOGGERS = ("feast",)
LOGURU_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def configure_logging(level: str, as_json: bool) -> None:
    """Set up our log at ``level`` (DEBUG, INFO, WARNING or ERROR) and the libraries' to match."""
    level = level.upper()
    log_format = _log_format()
    os.environ[LOG_LEVEL_ENV] = level
    os.environ["LOGURU_LEVEL"] = level
    os.environ["LOGURU_FORMAT"] = log_format
    os.environ["LOGURU_SERIALIZE"] = "1" if as_json else "0"
    # lazy: `medallion --help` loads only Typer (tests/cli/test_cli.py)
    from loguru import logger

    logger.remove()
    # Every line masked as written (`medallion.core.masking`), tracebacks included; and no variable values in
    # tracebacks (loguru's ``diagnose``), where a secret would pass unnamed.
    if as_json:
        logger.add(_masked_stderr, level=level, serialize=True, diagnose=False)
    else:
        logger.add(
            _masked_stderr, level=level, format=log_format, diagnose=False, colorize=sys.stderr.isatty()
        )
    _route_warnings(verbose=level == "DEBUG")
    for name in QUIET_LOGGERS:
        _route_logger(name, logging.DEBUG if level == "DEBUG" else logging.ERROR)


def _masked_stderr(message: str) -> None:
    # lazy: `medallion --help` loads only Typer (tests/cli/test_cli.py)
    from medallion.core.masking import mask_text

    sys.stderr.write(mask_text(message))


def _log_format() -> str:
    """The line format for ``MEDALLION_LOG_TZ`` (``local``, or UTC for anything else), and the same zone
    for Spark's lines."""
    # lazy: `medallion --help` loads only Typer (tests/cli/test_cli.py)
    import time

    choice = os.environ.get(LOG_TZ_ENV, "utc").strip().lower()
    if choice == "local":
        offset = -(time.altzone if time.daylight and time.localtime().tm_isdst > 0 else time.timezone)
        sign = "+" if offset >= 0 else "-"
        os.environ[LOG_TZ_ID_ENV] = f"GMT{sign}{abs(offset) // 3600:02d}:{abs(offset) % 3600 // 60:02d}"
        return LOG_FORMAT_LOCAL
    os.environ[LOG_TZ_ID_ENV] = "UTC"
    return LOG_FORMAT_UTC


def _route_warnings(*, verbose: bool) -> None:
    if verbose:
        warnings.simplefilter("default")  # each warning once per place, deprecations included
    else:
        for category in QUIET_WARNING_CATEGORIES:
            warnings.filterwarnings("ignore", category=category)
        warnings.filterwarnings("ignore", message=r".*\bexperimental feature")
        warnings.filterwarnings("ignore", module=QUIET_WARNING_MODULES)
    warnings.showwarning = _warning_to_log


def _warning_to_log(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: TextIO | None = None,
    line: str | None = None,
) -> None:
    # lazy: `medallion --help` loads only Typer (tests/cli/test_cli.py)
    from loguru import logger

    logger.warning(
        "{category}: {message} ({filename}:{lineno})",
        category=category.__name__,
        message=str(message),
        filename=filename,
        lineno=lineno,
    )


class _ToLoguru(logging.Handler):
    """A standard-library logger's records, into our log at their own level."""

    def emit(self, record: logging.LogRecord) -> None:
        # lazy: `medallion --help` loads only Typer (tests/cli/test_cli.py)
        from loguru import logger

        level = record.levelname if record.levelname in LOGURU_LEVELS else "ERROR"
        logger.log(level, "{name}: {message}", name=record.name, message=record.getMessage())


def _route_logger(name: str, level: int) -> None:
    # The handler's level too: a child logger with its own level (Feast sets some to INFO) still
    # reaches this handler, since propagation checks handlers' levels, not the parents'.
    library = logging.getLogger(name)
    library.setLevel(level)
    library.handlers = [h for h in library.handlers if not isinstance(h, _ToLoguru)] + [_ToLoguru(level)]
    library.propagate = False
