"""Builders registered against their family's declaration: ``@builds(USER_FEATURES)`` on the function.

A builder is ``build(inputs) -> DataFrame`` (see `medallion.gold.families`). Registering it against the
declared `FeatureFamily` object, not a name typed again, keeps the two together: a family is built by
exactly one function, and `medallion.gold.families` fails at import when a declared family has none.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from pyspark.sql import DataFrame

from medallion.features import FeatureFamily
from medallion.gold.transforms import GoldInputs

Builder = Callable[[GoldInputs], DataFrame]
DatesWritten = Callable[[GoldInputs], list[dt.date]]

BUILDERS: dict[str, Builder] = {}
"""Family name → its builder."""
DATES_WRITTEN: dict[str, DatesWritten] = {}
"""For the families that do not write every date of a run (the embeddings), which dates they do."""


def builds(
    family: FeatureFamily, *, dates_written: DatesWritten | None = None
) -> Callable[[Builder], Builder]:
    """Register the decorated function as ``family``'s builder (``dates_written``: see `DATES_WRITTEN`)."""

    def register(builder: Builder) -> Builder:
        if family.name in BUILDERS:
            raise ImportError(
                f"feature family {family.name} has two builders: {BUILDERS[family.name]}, {builder}"
            )
        BUILDERS[family.name] = builder
        if dates_written is not None:
            DATES_WRITTEN[family.name] = dates_written
        return builder

    return register
