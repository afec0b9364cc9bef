"""What Feast serves: the `user` entity and one feature view per Gold feature table.

A Gold feature table is a hive-partitioned Parquet directory ``<gold>/<name>/feature_date=YYYY-MM-DD/``
with the columns ``user_id``, ``event_timestamp`` (the end of ``feature_date``, exclusive: decision 6),
``created_timestamp`` and its features. Serving a new table is one more entry in ``FEATURE_TABLES``.

The specs are plain data so that this module imports without Feast (3 s): ``definitions()`` builds the
Feast objects on demand. ``feature_repo/features.py`` calls it for the ``feast`` CLI, and
``medallion.serving.apply`` for ``medallion materialize``, so both register the same objects.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

ENTITY = "user"
JOIN_KEY = "user_id"
TIMESTAMP_FIELD = "event_timestamp"
CREATED_TIMESTAMP_FIELD = "created_timestamp"
PARTITION_COLUMN = "feature_date"
# Tag on every view defined here: `apply` removes such views once they are no longer defined.
MANAGED_BY = "managed_by"

# Gold column type -> Feast type name (feast.types); Spark long/double/string land as these.
_FEAST_TYPES = {"int64": "Int64", "float64": "Float64", "string": "String", "bool": "Bool"}


@dataclass(frozen=True)
class Feature:
    name: str
    dtype: str  # one of _FEAST_TYPES
    description: str = ""


@dataclass(frozen=True)
class FeatureTable:
    """One Gold table served as one Feast feature view of the same name."""

    name: str
    description: str
    features: tuple[Feature, ...]

    @property
    def columns(self) -> list[str]:
        """The columns the Gold files must carry (the partition column aside)."""
        return [JOIN_KEY, TIMESTAMP_FIELD, CREATED_TIMESTAMP_FIELD, *(f.name for f in self.features)]


FEATURE_TABLES: tuple[FeatureTable, ...] = (
    FeatureTable(
        name="user_activity",
        description="Per user and feature_date: activity of that day and of the 7 days ending with it.",
        features=(
            Feature("events_1d", "int64", "Events on feature_date."),
            Feature("sessions_1d", "int64", "Distinct sessions on feature_date."),
            Feature("purchases_1d", "int64", "Purchases on feature_date."),
            Feature("revenue_1d", "float64", "Purchase revenue on feature_date."),
            Feature("events_7d", "int64", "Events in the 7 days ending with feature_date."),
            Feature("purchases_7d", "int64", "Purchases in the 7 days ending with feature_date."),
            Feature("revenue_7d", "float64", "Purchase revenue in the 7 days ending with feature_date."),
            Feature(
                "distinct_items_7d", "int64", "Distinct items seen in the 7 days ending with feature_date."
            ),
            Feature("conversion_rate_7d", "float64", "Purchases / events over the 7 days."),
            Feature("days_active_7d", "int64", "Days with at least one event among the 7."),
        ),
    ),
)


def table_path(gold_path: str, table: FeatureTable) -> str:
    return "/".join([gold_path.rstrip("/"), table.name])


def feast_uri(path: str) -> str:
    """A lake path as Feast, dask and pyarrow spell it: Hadoop's ``s3a://`` is ``s3://`` there."""
    if path.startswith("s3a://"):
        return "s3://" + path[len("s3a://") :]
    return path.removeprefix("file://")


def definitions(
    gold_path: str, ttl: timedelta, tables: tuple[FeatureTable, ...] = FEATURE_TABLES
) -> list[Any]:
    """The Feast objects for the Gold tables under ``gold_path``: the entity first, then one view per table.

    ``gold_path`` must be absolute (or a URI): Feast resolves a relative source path against whichever
    directory it runs from, which differs between ``medallion`` and the ``feast`` CLI.
    """
    from feast import Entity, FeatureView, Field, FileSource, types
    from feast.value_type import ValueType

    user = Entity(
        name=ENTITY,
        join_keys=[JOIN_KEY],
        value_type=ValueType.STRING,
        description="A user of the product (pseudonymous id: Gold carries no PII).",
    )
    views: list[Any] = []
    for table in tables:
        source = FileSource(
            name=f"gold_{table.name}",
            path=feast_uri(table_path(gold_path, table)),
            timestamp_field=TIMESTAMP_FIELD,
            created_timestamp_column=CREATED_TIMESTAMP_FIELD,
            description=f"Gold table {table.name}, hive-partitioned by {PARTITION_COLUMN}.",
        )
        # The join key is in the schema so that Feast never reads the source to infer it: `apply` then
        # works before Gold has any data, and without credentials for a remote lake.
        schema = [Field(name=JOIN_KEY, dtype=types.String)] + [
            Field(name=f.name, dtype=getattr(types, _FEAST_TYPES[f.dtype]), description=f.description)
            for f in table.features
        ]
        views.append(
            FeatureView(
                name=table.name,
                entities=[user],
                ttl=ttl,
                schema=schema,
                source=source,
                online=True,
                description=table.description,
                tags={"layer": "gold", "partitioned_by": PARTITION_COLUMN, MANAGED_BY: "medallion"},
            )
        )
    return [user, *views]
