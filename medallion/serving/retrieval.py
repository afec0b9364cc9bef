"""Reading features: online (latest values per user) and historical (point-in-time training sets)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from medallion.core.catalog import EVENT_TIMESTAMP as TIMESTAMP_FIELD
from medallion.core.config import Config
from medallion.core.errors import ConfigError, TerminalError
from medallion.features import FAMILIES, USER
from medallion.serving.store import feature_store, gold_paths, quiet_feast, redis_errors, require_gold

JOIN_KEY = USER.join_key  # online_features(cfg, user_ids): the user-keyed views
_JOIN_KEYS = {f.name: f.entity.join_key for f in FAMILIES}  # feature view -> its join key

if TYPE_CHECKING:
    import pandas as pd
    from feast import FeatureStore


def feature_refs(store: FeatureStore, features: list[str] | None = None) -> list[str]:
    """Feast references (``view:feature``) for ``features``: every registered one when None.

    A bare feature name is accepted when exactly one registered view has it.
    """
    views = store.list_feature_views()
    if not views:
        raise TerminalError(
            "No feature views are registered in the Feast registry: run `medallion materialize` "
            "(it registers them) or medallion.serving.apply(cfg) first."
        )
    ordered = [f"{v.name}:{f.name}" for v in sorted(views, key=lambda v: v.name) for f in v.features]
    available = set(ordered)
    if features is None:
        return ordered
    refs = []
    for name in features:
        matches = [name] if ":" in name else [r for r in sorted(available) if r.split(":", 1)[1] == name]
        if len(matches) != 1 or matches[0] not in available:
            problem = "is ambiguous" if len(matches) > 1 else "is not a registered feature"
            raise ConfigError(f"Feature {name!r} {problem}; available: {', '.join(sorted(available))}.")
        refs.append(matches[0])
    return refs


def online_features(
    cfg: Config, user_ids: list[str], features: list[str] | None = None
) -> dict[str, dict[str, Any]]:
    """The online values for each user: ``{user_id: {feature: value}}`` (None where a user has none).

    ``features`` are names (``events_7d``) or references (``user_features:events_7d``); all by default.
    Builds a FeatureStore per call (a few ms); a hot loop should hold ``feature_store(cfg)`` itself.
    """
    if not user_ids:
        return {}
    store = feature_store(cfg)
    with quiet_feast(), redis_errors(cfg):
        refs = feature_refs(store, features)
        if features is None:
            refs = [r for r in refs if _JOIN_KEYS.get(r.split(":", 1)[0], JOIN_KEY) == JOIN_KEY]
        response = store.get_online_features(features=refs, entity_rows=[{JOIN_KEY: u} for u in user_ids])
        columns = response.to_dict()
    ids = columns.pop(JOIN_KEY)
    return {str(user): {name: values[i] for name, values in columns.items()} for i, user in enumerate(ids)}


def historical_features(
    cfg: Config, entity_df: pd.DataFrame, features: list[str] | None = None, *, service: str | None = None
) -> pd.DataFrame:
    """A point-in-time correct training set: for each row of ``entity_df`` (the join keys of the views
    asked for, e.g. ``user_id`` and ``item_id``, ``event_timestamp``, any label columns), the features of
    each entity's latest Gold row with ``event_timestamp`` at or before the row's time, and not older
    than the TTL. ``features`` are names or ``view:feature`` references (all by default); ``service``
    names a feature service instead.

    Every input row comes back once, in the input order, with its other columns; features with no row
    are null, integer features are pandas' nullable ``Int64``. ``event_timestamp`` is returned in UTC
    (naive input is taken as UTC).

    Three faults of Feast's file (dask) store are kept away from the caller here, by what Feast is
    asked rather than by patching it: it fails outright ("Divisions calculation failed for non-numeric
    column 'created_timestamp'") as soon as one user has no Gold row at all and the table has more than
    one file, so each view is asked only for users its table has; it drops entity rows whose user has
    rows but none in the window, and merges rows with equal keys, so it is asked for distinct keys and
    its answer is joined back onto every input row.
    """
    # lazy: pandas (about a second) only where a DataFrame is built
    import pandas as pd

    store = feature_store(cfg)
    if service is not None:
        with quiet_feast():
            try:
                projections = store.get_feature_service(service).feature_view_projections
            except Exception as exc:  # Feast's FeatureServiceNotFoundException, by whichever path
                raise ConfigError(f"Unknown feature service {service!r} ({exc}).") from None
        features = [f"{p.name}:{f.name}" for p in projections for f in p.features]
    refs = feature_refs(store, features)
    by_view: dict[str, list[str]] = {}
    for ref in refs:
        by_view.setdefault(ref.split(":", 1)[0], []).append(ref)
    join_keys = sorted({_JOIN_KEYS.get(view, JOIN_KEY) for view in by_view})
    missing = [c for c in (*join_keys, TIMESTAMP_FIELD) if c not in entity_df.columns]
    if missing:
        raise ConfigError(
            f"historical_features: entity_df lacks {', '.join(missing)}; "
            f"it has {', '.join(map(str, entity_df.columns)) or 'no columns'}."
        )
    result = entity_df.copy()
    result[TIMESTAMP_FIELD] = pd.to_datetime(result[TIMESTAMP_FIELD], utc=True).astype("datetime64[ns, UTC]")
    require_gold(cfg, list(by_view))
    tables = gold_paths(cfg)

    for view, view_refs in by_view.items():
        key = _JOIN_KEYS.get(view, JOIN_KEY)
        names = [ref.split(":", 1)[1] for ref in view_refs]
        keys = result[[key, TIMESTAMP_FIELD]].drop_duplicates().reset_index(drop=True)
        known = keys[keys[key].isin(_entities_with_rows(tables[view], key, keys[key].unique().tolist()))]
        if known.empty:
            found = pd.DataFrame(columns=[key, TIMESTAMP_FIELD, *names])
        else:
            with quiet_feast():
                found = store.get_historical_features(entity_df=known, features=view_refs).to_df()
        found = found[[key, TIMESTAMP_FIELD, *names]].copy()
        found[TIMESTAMP_FIELD] = pd.to_datetime(found[TIMESTAMP_FIELD], utc=True).astype(
            "datetime64[ns, UTC]"
        )
        found = found.drop_duplicates([key, TIMESTAMP_FIELD])
        result = result.merge(found, on=[key, TIMESTAMP_FIELD], how="left", validate="many_to_one")
        for ref, name in zip(view_refs, names, strict=True):
            if _is_integer(store, ref):
                result[name] = result[name].astype("Int64")
    result.index = entity_df.index
    return result


def _entities_with_rows(table_path: str, join_key: str, values: list[str]) -> set[str]:
    """Which of ``values`` of ``join_key`` have at least one row in the Gold table (one column read)."""
    # lazy: pyarrow and numpy stay out of the start-up of an online lookup (`features online`, `serve`)
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.dataset as ds

    from medallion.core import lakefs

    filesystem, inner = lakefs.filesystem_and_path(table_path)
    dataset = ds.dataset(
        inner, filesystem=filesystem, format="parquet", partitioning="hive", ignore_prefixes=["_", "."]
    )
    column = dataset.to_table(
        columns=[join_key], filter=pc.field(join_key).isin(pa.array(values, pa.string()))
    )
    return set(pc.unique(column[join_key]).to_pylist())


def _is_integer(store: FeatureStore, ref: str) -> bool:
    # lazy: feast takes seconds to import: only where Feast's own objects are needed
    from feast.value_type import ValueType

    view, name = ref.split(":", 1)
    field = next(f for f in store.get_feature_view(view).features if f.name == name)
    return field.dtype.to_value_type() in (ValueType.INT32, ValueType.INT64)
