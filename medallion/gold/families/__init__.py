"""The builders of Gold's feature families, one module per family, by the family's declared name.

A builder is ``build(inputs) -> DataFrame``: `GoldInputs` holds the Silver events of the read window (the
feature dates' longest window back from the first date), the feature dates (one ``feature_date`` column)
and the ``gold`` settings; out comes one row per entity and feature date with exactly the family's
declared columns (`as_declared`). Each module registers its builder against the family's declaration
(``@builds(USER_FEATURES)``, `medallion.gold.registry`); importing this package imports them all and
checks that every declared family has one. ``DATES_WRITTEN`` names, for the families that do not write
every date of a run, which dates they do (so the job removes stale rows only there).
"""

from __future__ import annotations

from medallion.features import FAMILIES
from medallion.gold.families import embeddings, item, session, statistical, temporal, user  # noqa: F401  (they register)
from medallion.gold.registry import BUILDERS, DATES_WRITTEN, Builder

__all__ = ["BUILDERS", "DATES_WRITTEN", "Builder"]

missing = {f.name for f in FAMILIES} - set(BUILDERS)
if missing:  # a declared family without a builder is a programming error, caught at import
    raise ImportError(f"feature families without a builder in medallion.gold.families: {sorted(missing)}")
