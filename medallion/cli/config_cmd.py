from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from medallion.cli.app import STATE, app, console


@app.command("config")
def show_config(
    reference: Annotated[
        bool, typer.Option("--reference", help="Print the Markdown reference of every key instead.")
    ] = False,
    init: Annotated[
        Path | None,
        typer.Option(
            "--init",
            metavar="DIR",
            help="Copy the defaults installed with medallion into DIR (base.yaml and one file per "
            "environment) to edit, and exit; an existing file is never overwritten.",
        ),
    ] = None,
) -> None:
    """Print the effective configuration (files, environment overlay and overrides merged), as YAML, with
    secrets masked (passwords, keys, tokens, a URL's password). Without a ./config folder (or
    --config-dir, MEDALLION_CONFIG_DIR), medallion runs on the defaults installed with it."""
    # lazy: `medallion --help` loads only Typer (tests/cli/test_cli.py)
    import yaml

    from medallion.core.masking import mask_secrets

    if init is not None:
        # lazy: `medallion --help` loads only Typer (tests/cli/test_cli.py)
        from medallion.core.config import write_defaults

        for path, written in write_defaults(init):
            console().print(f"{path}: {'written' if written else 'exists, left as it is'}", highlight=False)
        return
    if reference:
        # lazy: `medallion --help` loads only Typer (tests/cli/test_cli.py)
        from medallion.core.config import reference_markdown

        console().print(reference_markdown(), markup=False, highlight=False)
        return
    shown = mask_secrets(STATE.config().model_dump(mode="json"))
    console().print(yaml.safe_dump(shown, sort_keys=False), highlight=False)
