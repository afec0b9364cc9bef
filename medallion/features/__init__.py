"""Gold's feature families, declared once as plain data.

A family is one Gold table (``gold/<family>/feature_date=D/``), one Feast feature view and one line in
`status`: its name, the entity its rows are keyed by, and each feature's name, type, the exact
description of how it is computed, and what it is when its window holds no input. The Gold job loops
over `FAMILIES` and builds each with the builder of the same name in `medallion.gold.families`; the
catalogue derives the family's Gold table; serving derives the Feast entity and feature view. A test
holds the builders to the declarations (columns and types), so they cannot drift apart.

Adding a family: a module here with its `FeatureFamily`, listed in `FAMILIES`, and its builder in
`medallion.gold.families` (see ``docs/architecture.md``). Imports nothing heavy.
"""

from __future__ import annotations

from medallion.features.embeddings import ITEM_EMBEDDINGS, USER_EMBEDDINGS
from medallion.features.item import ITEM_FEATURES
from medallion.features.model import (
    DTYPES,
    EMPTY_RULES,
    ENTITIES,
    ITEM,
    USER,
    Entity,
    Feature,
    FeatureFamily,
    window_text,
)
from medallion.features.session import SESSION_FEATURES
from medallion.features.statistical import STATISTICAL_FEATURES
from medallion.features.temporal import TEMPORAL_FEATURES
from medallion.features.user import USER_FEATURES

FAMILIES: tuple[FeatureFamily, ...] = (
    USER_FEATURES,
    ITEM_FEATURES,
    SESSION_FEATURES,
    STATISTICAL_FEATURES,
    TEMPORAL_FEATURES,
    ITEM_EMBEDDINGS,
    USER_EMBEDDINGS,
)

_names = [f for fam in FAMILIES for f in fam.feature_names]
if len(_names) != len(set(_names)):  # Feast reads feature names unqualified: one name, one feature
    raise ImportError(f"feature names declared twice: {sorted({n for n in _names if _names.count(n) > 1})}")


def family(name: str) -> FeatureFamily:
    """The declared family ``name``; an unknown name is an error that lists the known ones."""
    for f in FAMILIES:
        if f.name == name:
            return f
    raise KeyError(f"unknown feature family {name!r}; known: {', '.join(f.name for f in FAMILIES)}")


__all__ = [
    "DTYPES",
    "EMPTY_RULES",
    "ENTITIES",
    "FAMILIES",
    "ITEM",
    "USER",
    "Entity",
    "Feature",
    "FeatureFamily",
    "family",
    "window_text",
]
