"""Gold rows as a Spark frame for the governance tests: the family's join key, feature_date, its
event_timestamp (the end of feature_date, as Gold writes it) and features, typed as the catalogue's Gold
table declares them."""

from __future__ import annotations

from typing import Any

from pyspark.sql import functions as F

from medallion.core import catalog
from medallion.features import FeatureFamily


def gold_frame(spark: Any, fam: FeatureFamily, rows: list[dict[str, Any]]) -> Any:
    types = {c.name: c.type for c in catalog.gold_table(fam.name).columns}
    names = [fam.entity.join_key, catalog.FEATURE_DATE, *fam.feature_names]
    ddl = ", ".join(f"{n} {'date' if n == catalog.FEATURE_DATE else types[n]}" for n in names)
    df = spark.createDataFrame([tuple(r[n] for n in names) for r in rows], ddl)
    end = F.date_add(F.col(catalog.FEATURE_DATE), 1).cast("timestamp")
    return df.withColumn(catalog.EVENT_TIMESTAMP, end)
