"""The error hierarchy: what a failure means decides whether it is retried and which exit code it gets."""

from __future__ import annotations


class MedallionError(Exception):
    """Root of every error medallion raises on purpose; the CLI turns it into one clear message."""

    exit_code = 1


class ConfigError(MedallionError):
    """Bad configuration or bad usage: fixing a file or a flag is the cure. Exit code 2."""

    exit_code = 2


class TransientError(MedallionError):
    """A fault that may pass (service unreachable, timeout): retried with backoff, then reported."""


class TerminalError(MedallionError):
    """A fault that retrying cannot fix (contract violation of the whole input, lost data): fail at once."""
