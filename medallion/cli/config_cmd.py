from __future__ import annotations

from typing import Annotated

import typer

from medallion.cli.app import STATE, app, console


@app.command("config")
def show_config(
    reference: Annotated[
        bool, typer.Option("--reference", help="Print the Markdown reference of every key instead.")
    ] = False,
) -> None:
    """Print the effective configuration (files, environment overlay and overrides merged), as YAML, with
    secrets masked (passwords, keys, tokens, a URL's password)."""
    # lazy: `medallion --help` loads only Typer (tests/cli/test_cli.py)
    import yaml

    from medallion.core.masking import mask_secrets

    if reference:
        # lazy: `medallion --help` loads only Typer (tests/cli/test_cli.py)
        from medallion.core.config import reference_markdown

        console().print(reference_markdown(), markup=False, highlight=False)
        return
    shown = mask_secrets(STATE.config().model_dump(mode="json"))
    console().print(yaml.safe_dump(shown, sort_keys=False), highlight=False)
