"""Reading features: online (latest values per user) and historical (point-in-time training sets)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from medallion.config import Config
from medallion.errors import ConfigError, TerminalError
from medallion.serving.definitions import JOIN_KEY, TIMESTAMP_FIELD
from medallion.serving.store import feature_store, gold_paths, quiet_feast, redis_errors, require_gold

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

    ``features`` are names (``events_7d``) or references (``user_activity:events_7d``); all by default.
    Builds a FeatureStore per call (a few ms); a hot loop should hold ``feature_store(cfg)`` itself.
    """
    if not user_ids:
        return {}
    store = feature_store(cfg)
    with quiet_feast(), redis_errors(cfg):
        refs = feature_refs(store, features)
        response = store.get_online_features(features=refs, entity_rows=[{JOIN_KEY: u} for u in user_ids])
        columns = response.to_dict()
    ids = columns.pop(JOIN_KEY)
    return {str(user): {name: values[i] for name, values in columns.items()} for i, user in enumerate(ids)}


def historical_features(
    cfg: Config, entity_df: pd.DataFrame, features: list[str] | None = None
) -> pd.DataFrame:
    """A point-in-time correct training set: for each row of ``entity_df`` (``user_id``,
    ``event_timestamp``, any label columns), the features of the user's latest Gold row with
    ``event_timestamp`` at or before the row's time, and not older than the TTL.

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
    import pandas as pd

    missing = [c for c in (JOIN_KEY, TIMESTAMP_FIELD) if c not in entity_df.columns]
    if missing:
        raise ConfigError(
            f"historical_features: entity_df lacks {', '.join(missing)}; "
            f"it has {', '.join(map(str, entity_df.columns)) or 'no columns'}."
        )
    result = entity_df.copy()
    result[TIMESTAMP_FIELD] = pd.to_datetime(result[TIMESTAMP_FIELD], utc=True).astype("datetime64[ns, UTC]")
    keys = result[[JOIN_KEY, TIMESTAMP_FIELD]].drop_duplicates().reset_index(drop=True)

    store = feature_store(cfg)
    refs = feature_refs(store, features)
    by_view: dict[str, list[str]] = {}
    for ref in refs:
        by_view.setdefault(ref.split(":", 1)[0], []).append(ref)
    require_gold(cfg, list(by_view))
    tables = gold_paths(cfg)

    for view, view_refs in by_view.items():
        names = [ref.split(":", 1)[1] for ref in view_refs]
        known = keys[keys[JOIN_KEY].isin(_users_with_rows(tables[view], keys[JOIN_KEY].unique().tolist()))]
        if known.empty:
            found = pd.DataFrame(columns=[JOIN_KEY, TIMESTAMP_FIELD, *names])
        else:
            with quiet_feast():
                found = store.get_historical_features(entity_df=known, features=view_refs).to_df()
        found = found[[JOIN_KEY, TIMESTAMP_FIELD, *names]].copy()
        found[TIMESTAMP_FIELD] = pd.to_datetime(found[TIMESTAMP_FIELD], utc=True).astype(
            "datetime64[ns, UTC]"
        )
        found = found.drop_duplicates([JOIN_KEY, TIMESTAMP_FIELD])
        result = result.merge(found, on=[JOIN_KEY, TIMESTAMP_FIELD], how="left", validate="many_to_one")
        for ref, name in zip(view_refs, names, strict=True):
            if _is_integer(store, ref):
                result[name] = result[name].astype("Int64")
    result.index = entity_df.index
    return result


def _users_with_rows(table_path: str, users: list[str]) -> set[str]:
    """Which of ``users`` have at least one row in the Gold table (one column read, filtered)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.dataset as ds

    from medallion import lakefs

    filesystem, inner = lakefs.filesystem_and_path(table_path)
    dataset = ds.dataset(
        inner, filesystem=filesystem, format="parquet", partitioning="hive", ignore_prefixes=["_", "."]
    )
    column = dataset.to_table(
        columns=[JOIN_KEY], filter=pc.field(JOIN_KEY).isin(pa.array(users, pa.string()))
    )
    return set(pc.unique(column[JOIN_KEY]).to_pylist())


def _is_integer(store: FeatureStore, ref: str) -> bool:
    from feast.value_type import ValueType

    view, name = ref.split(":", 1)
    field = next(f for f in store.get_feature_view(view).features if f.name == name)
    return field.dtype.to_value_type() in (ValueType.INT32, ValueType.INT64)
