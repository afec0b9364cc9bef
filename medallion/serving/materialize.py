"""Register the feature views (apply) and load Gold into the online store (materialize).

Materialization reads, per feature view, the Gold rows whose ``event_timestamp`` lies in the window
and writes each user's latest one (by ``event_timestamp``, then ``created_timestamp``) to the online
store. Incremental runs take the window from the end of the previous run (the first one from now minus
the TTL), and by default end at the end of the current UTC day:

- so today's Gold row, computed from the events so far and stamped with the end of today,
  is served as soon as the Gold job has written it: the online store holds each user's latest Gold row.
  Training sets stay point-in-time (a row is used only from its ``event_timestamp`` on), so a model sees
  complete days in training and today's partial ``*_1d`` values in serving; pass ``end=now`` to
  materialize complete days only;
- a re-run of today's Gold is picked up by the next run (the window starts where the last one ended,
  inclusive); a re-run of an earlier date (late events) is behind the window: reload with
  ``materialize(cfg, start=...)``, or run incrementally with ``lookback``. An explicit window writes each
  user's latest row *within the window*, so one that ends in the past rolls online values back to then.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from loguru import logger

from medallion.config import Config
from medallion.errors import ConfigError
from medallion.serving.definitions import MANAGED_BY, definitions
from medallion.serving.store import (
    check_online_store,
    feast_paths,
    feature_store,
    online_store_name,
    quiet_feast,
    redis_errors,
    require_gold,
)
from medallion.times import as_utc

if TYPE_CHECKING:
    from feast import FeatureStore


@dataclass
class MaterializeResult:
    """What one materialization did; flat, so the CLI and the ledger can print it as it is."""

    feature_views: list[str]
    online_store: str
    start: datetime | None  # the earliest window start used (incremental: from the previous run)
    end: datetime
    rows: int | None  # rows written to the online store (one per user and feature view)
    entities: int | None  # distinct users written
    seconds: float


def _desired(cfg: Config) -> list[Any]:
    return definitions(feast_paths(cfg).gold, timedelta(days=cfg.serving.ttl_days))


def _spec(obj: Any) -> Any:
    """The definition part of a registry object, without what the registry itself stamps on it."""
    spec = obj.to_proto().spec
    spec.project = ""
    if spec.DESCRIPTOR.fields_by_name.get("batch_source") and spec.HasField("batch_source"):
        spec.batch_source.ClearField("meta")  # created/updated timestamps
    return spec


def _same_spec(registered: Any, desired: Any) -> bool:
    return bool(_spec(registered) == _spec(desired))


def apply(cfg: Config) -> list[str]:
    """Register the families' entities and feature views; returns ``["entity:user", "feature_view:…"]``.

    Idempotent: when the registry already holds exactly these definitions nothing is written. Feature
    views that medallion registered earlier and that are no longer defined are removed.
    """
    from feast import Entity

    objects = _desired(cfg)
    entities = [o for o in objects if isinstance(o, Entity)]
    views = [o for o in objects if not isinstance(o, Entity)]
    names = [*(f"entity:{e.name}" for e in entities), *(f"feature_view:{v.name}" for v in views)]
    store = feature_store(cfg)
    with quiet_feast():
        registered = {fv.name: fv for fv in store.list_feature_views()}
        stale: list[Any] = [
            fv
            for name, fv in registered.items()
            if fv.tags.get(MANAGED_BY) == "medallion" and name not in {v.name for v in views}
        ]
        current = {e.name: e for e in store.list_entities()}
        unchanged = (
            not stale
            and all(e.name in current and _same_spec(current[e.name], e) for e in entities)
            and all(v.name in registered and _same_spec(registered[v.name], v) for v in views)
        )
        if unchanged:
            logger.debug("Feast registry already up to date: {names}", names=names)
            return names
        store.apply([*entities, *views], objects_to_delete=stale, partial=False)
    logger.info("Registered {names} in {registry}", names=names, registry=feast_paths(cfg).registry)
    return names


def materialize(
    cfg: Config,
    end: datetime | None = None,
    start: datetime | None = None,
    *,
    lookback: timedelta | None = None,
) -> MaterializeResult:
    """Load Gold into the online store up to ``end``: incrementally, or from ``start``.

    ``end`` defaults to the end of the current UTC day, the ``event_timestamp`` of today's Gold row, so
    every Gold row written so far is served (see the module docstring).

    Incremental is Feast's ``materialize_incremental``: each view from the end of its previous run. With
    ``lookback``, each view starts that much before its previous end instead, so Gold that landed after
    the last run with an earlier ``event_timestamp`` (a date computed late, or re-run) is still picked
    up; rewriting the overlap is harmless, since each user gets the latest row of the window.

    Applies the definitions first (a no-op when unchanged) and checks the online store, so a fresh
    lake or an unreachable Redis gives a clear error rather than a silent zero-view run.
    """
    started = time.perf_counter()
    end = _utc(end) or end_of_today()
    start = _utc(start)
    if start is not None and start >= end:
        raise ConfigError(f"materialize: start {start.isoformat()} is not before end {end.isoformat()}.")
    check_online_store(cfg)
    views = [name.split(":", 1)[1] for name in apply(cfg) if name.startswith("feature_view:")]
    require_gold(cfg, views)

    store = feature_store(cfg)
    with quiet_feast(), redis_errors(cfg), _count_online_writes(store) as counter:
        if start is not None:
            store.materialize(start_date=start, end_date=end, feature_views=views)
        elif lookback is None:
            store.materialize_incremental(end_date=end, feature_views=views)
        else:
            for name in views:
                previous = _utc(store.get_feature_view(name).most_recent_end_time)
                ttl = timedelta(days=cfg.serving.ttl_days)
                view_start = previous - lookback if previous is not None else datetime.now(UTC) - ttl
                store.materialize(
                    start_date=min(view_start, end - timedelta(microseconds=1)),
                    end_date=end,
                    feature_views=[name],
                )

    starts = _window_starts(store, views)
    result = MaterializeResult(
        feature_views=views,
        online_store=online_store_name(cfg),
        start=start if start is not None else (min(starts) if starts else None),
        end=end,
        rows=counter.rows if counter.counted else None,
        entities=len(counter.entities) if counter.counted else None,
        seconds=round(time.perf_counter() - started, 3),
    )
    logger.info(
        "Materialized {views} into {store}: {rows} rows in {s:.2f}s",
        views=views,
        store=result.online_store,
        rows=result.rows,
        s=result.seconds,
    )
    return result


def end_of_today() -> datetime:
    """The next midnight, UTC: the ``event_timestamp`` Gold gives today's (partial) row."""
    today = datetime.now(UTC).date()
    return datetime.combine(today + timedelta(days=1), datetime.min.time(), tzinfo=UTC)


def _utc(value: datetime | None) -> datetime | None:
    return None if value is None else as_utc(value)


def _window_starts(store: FeatureStore, views: list[str]) -> list[datetime]:
    """Where each view's last materialization window started (Feast records every window)."""
    starts = []
    for name in views:
        intervals = store.get_feature_view(name).materialization_intervals
        if intervals:
            starts.append(intervals[-1][0])
    return [as_utc(s) for s in starts]


class _WriteCounter:
    def __init__(self) -> None:
        self.counted = False
        self.rows = 0
        self.entities: set[tuple[str, ...]] = set()


@contextlib.contextmanager
def _count_online_writes(store: FeatureStore) -> Iterator[_WriteCounter]:
    """Count what Feast hands the online store, by wrapping this store's own writer instance.

    Feast returns nothing from materialize; the rows it writes pass through ``online_write_batch`` of
    the provider's online store, which belongs to this FeatureStore only, so nothing global changes.
    """
    counter = _WriteCounter()
    online = getattr(getattr(store, "provider", None), "online_store", None)
    original = getattr(online, "online_write_batch", None)
    if online is None or original is None:
        yield counter
        return

    def counting(config: Any, table: Any, data: Any, progress: Any) -> Any:
        for entity_key, *_ in data:
            counter.rows += 1
            counter.entities.add(
                tuple(str(getattr(v, v.WhichOneof("val"))) for v in entity_key.entity_values)
            )
        return original(config, table, data, progress)

    online.online_write_batch = counting
    counter.counted = True
    try:
        yield counter
    finally:
        del online.online_write_batch  # back to the class's method
