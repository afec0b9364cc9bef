"""The builders of Gold's feature families, one module per family, by the family's declared name.

A builder is ``build(inputs) -> DataFrame``: `GoldInputs` holds the Silver events of the read window (the
feature dates' longest window back from the first date), the feature dates (one ``feature_date`` column)
and the ``gold`` settings; out comes one row per entity and feature date with exactly the family's
declared columns (`as_declared`). ``DATES_WRITTEN`` names, for the families that do not write every date
of a run, which dates they do (so the job removes stale rows only there).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from pyspark.sql import DataFrame

from medallion.features import FAMILIES
from medallion.features.embeddings import ITEM_EMBEDDINGS, USER_EMBEDDINGS
from medallion.features.item import ITEM_FEATURES
from medallion.features.session import SESSION_FEATURES
from medallion.features.statistical import STATISTICAL_FEATURES
from medallion.features.temporal import TEMPORAL_FEATURES
from medallion.features.user import USER_FEATURES
from medallion.gold.families import embeddings, item, session, statistical, temporal, user
from medallion.gold.transforms import GoldInputs

Builder = Callable[[GoldInputs], DataFrame]

BUILDERS: dict[str, Builder] = {
    USER_FEATURES.name: user.build,
    ITEM_FEATURES.name: item.build,
    SESSION_FEATURES.name: session.build,
    STATISTICAL_FEATURES.name: statistical.build,
    TEMPORAL_FEATURES.name: temporal.build,
    ITEM_EMBEDDINGS.name: embeddings.build_items,
    USER_EMBEDDINGS.name: embeddings.build_users,
}

DATES_WRITTEN: dict[str, Callable[[GoldInputs], list[dt.date]]] = {
    ITEM_EMBEDDINGS.name: embeddings.trained_dates,
    USER_EMBEDDINGS.name: embeddings.trained_dates,
}

missing = {f.name for f in FAMILIES} - set(BUILDERS)
if missing:  # a declared family without a builder is a programming error, caught at import
    raise ImportError(f"feature families without a builder in medallion.gold.families: {sorted(missing)}")
