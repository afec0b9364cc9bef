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
    """Print the effective configuration (files, environment overlay and overrides merged), as YAML."""
    import yaml

    if reference:
        from medallion.config import reference_markdown

        console().print(reference_markdown(), markup=False, highlight=False)
        return
    console().print(yaml.safe_dump(STATE.config().model_dump(mode="json"), sort_keys=False), highlight=False)
