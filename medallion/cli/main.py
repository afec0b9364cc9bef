"""Entry point of the `medallion` command. One module per command; heavy libraries load inside commands."""

from __future__ import annotations

import sys

from medallion.cli import (  # noqa: F401  (importing a module registers its command)
    compact,
    config_cmd,
    contract,
    features,
    forget,
    gold,
    ingest,
    lookups,
    materialize,
    produce,
    report,
    retention,
    run,
    serve,
    services,
    silver,
    status,
    validate,
)
from medallion.cli.app import app, run_app

__all__ = ["app", "main"]


def main() -> None:
    sys.exit(run_app())


if __name__ == "__main__":
    main()
