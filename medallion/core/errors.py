"""The error hierarchy: what a failure means decides whether it is retried and which exit code it gets."""

from __future__ import annotations


class MedallionError(Exception):
    """Root of every error medallion raises on purpose; the CLI turns it into one clear message."""

    exit_code = 1


class ConfigError(MedallionError):
    """Bad configuration: fixing a file or an environment variable is the cure. Exit code 2."""

    exit_code = 2


class UsageError(MedallionError):
    """Bad usage of a command (dates out of order, an unknown name, a missing combination of options):
    fixing the command line is the cure. Exit code 2, like the usage errors Typer finds itself."""

    exit_code = 2


class TransientError(MedallionError):
    """A fault that may pass (service unreachable, timeout): retried with backoff, then reported."""


class TerminalError(MedallionError):
    """A fault that retrying cannot fix (contract violation of the whole input, lost data): fail at once."""


class LockHeld(MedallionError):
    """Another run of the same stage holds its lock (an overlapping cron line): nothing was done, try later.
    Exit code 75, sysexits' EX_TEMPFAIL."""

    exit_code = 75


def exit_code(exc: BaseException) -> int:
    """The one mapping of an outcome to the command's exit code: 0 done, 1 a failure it explains, 2 bad
    usage or config, 75 a lock held (nothing done, try later). The stage envelope records it in the
    ledger; the CLI exits with it."""
    if isinstance(exc, SystemExit):
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    if isinstance(exc, MedallionError):
        return exc.exit_code
    return 1
