"""medallion's Feast definitions, for the `feast` CLI run in this directory (`feast plan`, `feast apply`,
`feast serve`, `feast ui`): the entities and one feature view per Gold feature family.

The objects are built by `definitions(gold_paths, ttl)` (medallion/serving/definitions.py), the same
function `medallion materialize` registers them with, so both register identical objects. The Gold path
and the TTL come from medallion's config, read the way the `medallion` command reads it:
`MEDALLION_ENV` (default `local`), `MEDALLION_CONFIG_DIR` (default `../config`) and the
`MEDALLION__SECTION__KEY` variables; a relative lake root is taken from the project directory (the
parent of this one), where `medallion` runs.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

from medallion.core.config import Config, load_config
from medallion.serving.definitions import definitions
from medallion.serving.store import feast_paths

PROJECT_DIR = Path(__file__).resolve().parent.parent


def medallion_config() -> Config:
    config_dir = os.environ.get("MEDALLION_CONFIG_DIR") or PROJECT_DIR / "config"
    return load_config(os.environ.get("MEDALLION_ENV", "local"), config_dir)


_cfg = medallion_config()
_paths = feast_paths(_cfg, base_dir=PROJECT_DIR)
if "://" not in _paths.registry:
    # Feast creates the registry's directory but not its parents: a fresh lake would fail `feast plan`.
    Path(_paths.registry).parent.mkdir(parents=True, exist_ok=True)
_objects = definitions(_paths.gold, timedelta(days=_cfg.serving.ttl_days))

# Feast finds definitions among this module's attributes: one per entity and feature view, by its name,
# so a family added to medallion.features needs no change here.
globals().update({obj.name: obj for obj in _objects})
