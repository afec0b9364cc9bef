"""What Feast serves, derived from the declared feature families: their entities and one feature view each.

A Gold table is a hive-partitioned Parquet directory (its path and columns in `medallion.core.catalog`) with
the entity's join key, ``event_timestamp`` (the end of ``feature_date``, exclusive: a row is valid from
the first instant after its day, so a point-in-time join never sees a day's features before it ended),
``created_timestamp`` and the family's features. A new family in `medallion.features` is a new feature
view here without any change to this module.

Everything here is plain data until ``definitions()`` builds the Feast objects (``import feast`` takes
about 3 s). ``feature_repo/features.py`` calls it for the ``feast`` CLI, and
``medallion.serving.apply`` for ``medallion materialize``, so both register the same objects.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

from medallion.core.catalog import CREATED_TIMESTAMP, EVENT_TIMESTAMP, FEATURE_DATE
from medallion.features import FAMILIES, FeatureFamily
from medallion.features.services import SERVICES, FeatureService

# Tag on every view defined here: `apply` removes such views once they are no longer defined.
MANAGED_BY = "managed_by"


def definitions(
    table_paths: Mapping[str, str], ttl: timedelta, families: Sequence[FeatureFamily] = FAMILIES
) -> list[Any]:
    """The Feast objects for ``families``: their entities first, then one feature view per family.

    ``table_paths`` maps each family to its Gold directory as Feast reads it (absolute, or a URI with
    ``s3://``): Feast resolves a relative source path against whichever directory it runs from, which
    differs between ``medallion`` and the ``feast`` CLI.
    """
    # lazy: feast takes seconds to import: only where Feast's own objects are needed
    from feast import Entity, FeatureView, Field, FileSource, types
    from feast.value_type import ValueType

    entities: dict[str, Any] = {}
    for fam in families:
        if fam.entity.name not in entities:
            entities[fam.entity.name] = Entity(
                name=fam.entity.name,
                join_keys=[fam.entity.join_key],
                value_type=ValueType.STRING,
                description=fam.entity.description,
            )
    views: list[Any] = []
    for fam in families:
        source = FileSource(
            name=f"gold_{fam.name}",
            path=table_paths[fam.name],
            timestamp_field=EVENT_TIMESTAMP,
            created_timestamp_column=CREATED_TIMESTAMP,
            description=f"Gold table of the {fam.name} family, hive-partitioned by {FEATURE_DATE}.",
        )
        # The join key is in the schema so that Feast never reads the source to infer it: `apply` then
        # works before Gold has any data, and without credentials for a remote lake.
        schema = [Field(name=fam.entity.join_key, dtype=types.String)] + [
            Field(name=f.name, dtype=f.type.feast(), description=f.description) for f in fam.features
        ]
        views.append(
            FeatureView(
                name=fam.name,
                entities=[entities[fam.entity.name]],
                ttl=ttl,
                schema=schema,
                source=source,
                online=True,
                description=fam.description,
                owner=fam.owner,
                tags={
                    "layer": "gold",
                    "partitioned_by": FEATURE_DATE,
                    **fam.tags,
                    MANAGED_BY: "medallion",
                },
            )
        )
    return [*entities.values(), *views, *feature_services(views)]


def feature_services(views: Sequence[Any], services: Sequence[FeatureService] = SERVICES) -> list[Any]:
    """Feast ``FeatureService`` objects for the declared services whose families are all among ``views``."""
    # lazy: feast takes seconds to import: only where Feast's own objects are needed
    from feast import FeatureService as FeastFeatureService

    by_name = {v.name: v for v in views}
    return [
        FeastFeatureService(
            name=s.name,
            features=[by_name[f] for f in s.families],
            description=s.description,
            owner=s.owner,
            tags={MANAGED_BY: "medallion"},
        )
        for s in services
        if all(f in by_name for f in s.families)
    ]
