"""Register the definitions (apply) and load Gold into the online store (materialize).

Materialization writes each entity's newest Gold row (by ``event_timestamp``, then
``created_timestamp``) to the online store, per feature view, reading Gold with pyarrow
(`medallion.serving.gold`). Into Redis it writes Feast's layout itself, pipelined
(`medallion.serving.redis_writer`, about 20× Feast's own writer: bench/README.md); any other online
store (SQLite) gets the same rows through Feast's own ``online_write_batch``. Either way Feast reads
what was written, and Feast's registry records each window (``materialization_intervals``), so
``feast materialize-incremental`` and ``feast serve`` stay coherent with it.

Windows. ``end`` defaults to the end of the current UTC day, the ``event_timestamp`` of today's
(partial) Gold row, so every Gold row written so far is served; training sets stay point-in-time.

- First run of a view, or ``full``: the newest row of every entity with ``event_timestamp`` in
  ``[now - ttl, end]`` (Feast's first ``materialize_incremental`` window).
- Incremental (default): entities whose newest row is newer than the previous run's end, **or** lies
  in a ``feature_date`` partition Gold rewrote since the previous run. Partitions are told apart by a
  fingerprint of their files (names, sizes, modification times: Spark writes new file names on every
  overwrite), kept per view in ``<registry dir>/medallion_materialized.json`` with the online store it
  describes. So a date re-run with late events after its materialization reaches the online store on
  the next run, with no clock comparison between the Gold job and this one, and an unchanged lake
  writes nothing. The newest row is taken over the whole TTL horizon, so a re-run of an old date never
  rolls an entity back to it. An entity that *left* a rewritten partition (its row there is gone) would
  keep the old row online: the entities whose newest row is older than the rewritten date have their
  stored event time read back (one pipelined read), and those the store holds newer than Gold now
  does get their newest row written again (`_left_behind`).
- ``start``: an explicit window ``[start, end]``: the newest row of each entity within it (Feast's
  ``materialize``), so a window that ends in the past rolls online values back to then.

Why one module: the incremental plan (which entities changed since the last run, which left a rewritten
partition) and the encoders that write them share one window arithmetic; the store clients live apart
(`online_stores.py`, `redis_writer.py`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from loguru import logger

from medallion.core import lakefs
from medallion.core.catalog import EVENT_TIMESTAMP, FEATURE_DATE
from medallion.core.config import Config
from medallion.core.errors import ConfigError, UsageError
from medallion.core.times import as_utc
from medallion.features import family
from medallion.serving import wire
from medallion.serving.definitions import MANAGED_BY, definitions
from medallion.serving.gold import UTC_US, latest_rows, micros, partition_fingerprints
from medallion.serving.online_stores import Group, OnlineStoreFailed, open_store
from medallion.serving.store import (
    check_online_store,
    feast_paths,
    feature_store,
    key_ttl_seconds,
    online_store_name,
    quiet_feast,
    redis_errors,
    require_gold,
)

if TYPE_CHECKING:
    from feast import FeatureStore

# progress(view, rows_done, rows_total): called once with 0 when a view's rows are known, then per batch.
Progress = Callable[[str, int, int], None]
STATE_FILE = "medallion_materialized.json"


@dataclass
class MaterializeResult:
    """What one materialization did; flat, so the CLI and the ledger can print it as it is."""

    feature_views: list[str]
    online_store: str
    mode: str  # full | incremental | window
    start: datetime | None  # the earliest window start used (incremental: the previous run's end)
    end: datetime
    rows: int  # rows written to the online store (one per entity and feature view)
    entities: int  # distinct entities written (per entity type)
    seconds: float


def _desired(cfg: Config) -> list[Any]:
    return definitions(feast_paths(cfg).gold, timedelta(days=cfg.serving.ttl_days))


def _spec(obj: Any) -> Any:
    """The definition part of a registry object, without what the registry itself stamps on it."""
    spec = obj.to_proto().spec
    spec.project = ""
    if spec.DESCRIPTOR.fields_by_name.get("batch_source") and spec.HasField("batch_source"):
        spec.batch_source.ClearField("meta")  # created/updated timestamps
    if spec.DESCRIPTOR.fields_by_name.get("features") and spec.DESCRIPTOR.name == "FeatureServiceSpec":
        for projection in spec.features:  # a service's views carry their sources' timestamps too
            if projection.HasField("batch_source"):
                projection.batch_source.ClearField("meta")
    return spec


def _same_spec(registered: Any, desired: Any) -> bool:
    return bool(_spec(registered) == _spec(desired))


def apply(cfg: Config) -> list[str]:
    """Register the entities, feature views and feature services; returns their names
    (``["entity:user", …, "feature_view:…", …, "feature_service:…"]``).

    Idempotent: when the registry already holds exactly these definitions nothing is written. Views and
    services that medallion registered earlier and that are no longer defined are removed.
    """
    # lazy: feast takes seconds to import: only where Feast's own objects are needed
    from feast import Entity, FeatureService

    objects = _desired(cfg)
    entities = [o for o in objects if isinstance(o, Entity)]
    services = [o for o in objects if isinstance(o, FeatureService)]
    views = [o for o in objects if not isinstance(o, Entity | FeatureService)]
    names = [
        *(f"entity:{e.name}" for e in entities),
        *(f"feature_view:{v.name}" for v in views),
        *(f"feature_service:{s.name}" for s in services),
    ]
    store = feature_store(cfg)
    with quiet_feast():
        registered: dict[str, Any] = {fv.name: fv for fv in store.list_feature_views()}
        current_services: dict[str, Any] = {s.name: s for s in store.list_feature_services()}
        wanted = {o.name for o in [*views, *services]}
        stale: list[Any] = [
            obj
            for obj in [*registered.values(), *current_services.values()]
            if obj.tags.get(MANAGED_BY) == "medallion" and obj.name not in wanted
        ]
        current = {e.name: e for e in store.list_entities()}
        unchanged = (
            not stale
            and all(e.name in current and _same_spec(current[e.name], e) for e in entities)
            and all(v.name in registered and _same_spec(registered[v.name], v) for v in views)
            and all(s.name in current_services and _same_spec(current_services[s.name], s) for s in services)
        )
        if unchanged:
            logger.debug("Feast registry already up to date: {names}", names=names)
            return names
        store.apply([*entities, *views, *services], objects_to_delete=stale, partial=False)
    logger.info("Registered {names} in {registry}", names=names, registry=feast_paths(cfg).registry)
    return names


def materialize(
    cfg: Config,
    end: datetime | None = None,
    start: datetime | None = None,
    *,
    full: bool = False,
    feature_views: Sequence[str] | None = None,
    progress: Progress | None = None,
    attempts: int = 5,
    max_wait_s: float = 8.0,
    max_delay_s: float = 60.0,
) -> MaterializeResult:
    """Load Gold into the online store up to ``end``: incrementally (default), in full, or from ``start``
    (see the module docstring). ``feature_views`` limits the run to those views.

    Applies the definitions first (a no-op when unchanged) and checks the online store, so a fresh
    lake or an unreachable Redis gives a clear error rather than a silent zero-view run. A Redis fault
    while writing is retried (``attempts``, waits up to ``max_wait_s``, ``max_delay_s`` in all) and then
    raised as one TransientError; the views written before it keep their new state, so a re-run
    resumes with the rest.
    """

    started = time.perf_counter()
    end = _utc(end) or end_of_today()
    start = _utc(start)
    if start is not None and start >= end:
        raise ConfigError(f"materialize: start {start.isoformat()} is not before end {end.isoformat()}.")
    if start is not None and full:
        raise UsageError("materialize: a start and a full rebuild exclude each other; pass one.")
    check_online_store(cfg, attempts=attempts, max_wait_s=max_wait_s, max_delay_s=max_delay_s)
    registered = [name.split(":", 1)[1] for name in apply(cfg) if name.startswith("feature_view:")]
    views = _selected(registered, feature_views)
    require_gold(cfg, views)

    store = feature_store(cfg)
    paths = feast_paths(cfg)
    state = _State.load(cfg)
    horizon = min(datetime.now(UTC) - timedelta(days=cfg.serving.ttl_days), end - timedelta(microseconds=1))
    writer = _writer(cfg, store, attempts=attempts, max_wait_s=max_wait_s, max_delay_s=max_delay_s)
    rows = 0
    entities: dict[str, set[str]] = {}
    starts: list[datetime] = []
    mode = "window" if start is not None else ("full" if full else "incremental")
    try:
        for name in views:
            fam = family(name)
            fingerprints = partition_fingerprints(paths.gold[name])
            previous = None if (full or start is not None) else state.view(name)
            if start is not None:
                window_start, selected = start, latest_rows(paths.gold[name], fam, start, end)
            elif previous is None:
                window_start, selected = horizon, latest_rows(paths.gold[name], fam, horizon, end)
            else:
                window_start = previous.end
                changed = {d for d, fp in fingerprints.items() if previous.partitions.get(d) != fp}
                newest = latest_rows(paths.gold[name], fam, horizon, end)
                chosen = _new_or_changed(newest, previous.end, changed)
                rewritten = sorted(d for d in changed if d in previous.partitions)
                if rewritten:
                    chosen = _or(chosen, _left_behind(cfg, fam, newest, chosen, rewritten[-1]))
                selected = newest.filter(chosen)
            if mode == "incremental" and previous is None:
                logger.info("{view}: no previous materialization into this store, loading in full", view=name)
            if progress is not None:
                progress(name, 0, selected.num_rows)
            done = 0

            def step(n: int, view: str = name, total: int = selected.num_rows) -> None:
                nonlocal done
                done += n
                if progress is not None:
                    progress(view, done, total)

            with quiet_feast(), redis_errors(cfg):
                writer(fam, selected, step)
                view = store.get_feature_view(name)
                store.registry.apply_materialization(view, store.project, window_start, end)
            state.record(name, end, fingerprints)
            rows += selected.num_rows
            keys = selected[fam.entity.join_key].to_pylist()
            entities.setdefault(fam.entity.name, set()).update(keys)
            starts.append(window_start)
    finally:
        close = getattr(writer, "close", None)
        if close is not None:
            close()
    result = MaterializeResult(
        feature_views=views,
        online_store=online_store_name(cfg),
        mode=mode,
        start=min(starts) if starts else start,
        end=end,
        rows=rows,
        entities=sum(len(v) for v in entities.values()),
        seconds=round(time.perf_counter() - started, 3),
    )
    logger.info(
        "Materialized {views} into {store} ({mode}): {rows} rows in {s:.2f}s",
        views=views,
        store=result.online_store,
        mode=mode,
        rows=rows,
        s=result.seconds,
    )
    return result


def _selected(registered: list[str], wanted: Sequence[str] | None) -> list[str]:
    if not wanted:
        return registered
    unknown = [w for w in wanted if w not in registered]
    if unknown:
        raise UsageError(
            f"Unknown feature view {', '.join(unknown)}; the feature views are: {', '.join(registered)}."
        )
    return [r for r in registered if r in wanted]


def _new_or_changed(rows: pa.Table, previous_end: datetime, changed: set[str]) -> pa.Array:

    newer = pc.greater(rows[EVENT_TIMESTAMP], pa.scalar(previous_end, UTC_US))
    rewritten = pc.is_in(rows[FEATURE_DATE], value_set=pa.array(sorted(changed), pa.string()))
    return pa.array(np.asarray(pc.or_(newer, rewritten).to_numpy(zero_copy_only=False), dtype=bool))


def _or(a: pa.Array, b: pa.Array) -> pa.Array:

    return pc.or_(a, b)


def _left_behind(cfg: Config, fam: Any, newest: pa.Table, chosen: pa.Array, last_rewritten: str) -> pa.Array:
    """Entities that left a rewritten partition: the online store still holds the row they had there.

    Candidates are the entities not chosen already whose newest row now lies before the last rewritten
    ``feature_date`` (only they can have been served from it); one pipelined read of their stored event
    time tells which hold a newer row than Gold now has, and those get their newest row written again.
    Entities with no Gold row left at all in the TTL horizon are not found here (`medallion forget`
    removes a person from the online store; a Redis key expires after ``serving.redis_key_ttl_days``).
    """

    candidate = pc.and_(pc.invert(chosen), pc.less(newest[FEATURE_DATE], pa.scalar(last_rewritten)))
    mask = np.asarray(candidate.to_numpy(zero_copy_only=False), dtype=bool)
    if not mask.any():
        return pa.array(np.zeros(len(mask), dtype=bool))
    index = np.flatnonzero(mask)
    keys = [str(k) for k in newest[fam.entity.join_key].take(pa.array(index)).to_pylist()]
    event_s = micros(newest[EVENT_TIMESTAMP].take(pa.array(index))) // 1_000_000
    group = Group(fam.entity.join_key, [wire.ts_field(fam.name)], [(fam.name, None)])
    try:
        store = open_store(cfg)
    except OnlineStoreFailed:  # no online store file yet: nothing stale in it
        return pa.array(np.zeros(len(mask), dtype=bool))
    try:
        stored = [store.event_seconds(row[0]) for row in store.read([(group, keys)])[0]]
    finally:
        store.close()
    stale = np.zeros(len(mask), dtype=bool)
    for i, held, current in zip(index, stored, event_s, strict=True):
        stale[i] = held is not None and held > current
    if stale.any():
        logger.info(
            "{view}: {n} entities left a rewritten partition; their newest row is written again",
            view=fam.name,
            n=int(stale.sum()),
        )
    return pa.array(stale)


def _writer(cfg: Config, store: FeatureStore, **retry: Any) -> Any:
    """Redis: our pipelined writer. Any other store: Feast's own ``online_write_batch`` with the rows
    converted by Feast (SQLite is the embedded default, where Feast's writer is fast enough)."""
    if cfg.serving.online_store == "redis":
        # lazy: redis loads only for a Redis online store
        from medallion.serving.redis_writer import RedisWriter

        redis_writer = RedisWriter(cfg, ttl_seconds=key_ttl_seconds(cfg), **retry)

        def write_redis(fam: Any, rows: pa.Table, step: Callable[[int], None]) -> None:
            redis_writer.write(fam, rows, step)

        write_redis.close = redis_writer.close  # type: ignore[attr-defined]
        return write_redis

    def write_with_feast(fam: Any, rows: pa.Table, step: Callable[[int], None]) -> None:
        # lazy: feast takes seconds to import: only where Feast's own objects are needed
        from feast.utils import _convert_arrow_to_proto
        from feast.value_type import ValueType

        view = store.get_feature_view(fam.name)
        provider = store._get_provider()
        for batch in rows.to_batches(max_chunksize=5_000):
            data = _convert_arrow_to_proto(batch, view, {fam.entity.join_key: ValueType.STRING})
            provider.online_write_batch(store.config, view, data, progress=None)
            step(batch.num_rows)

    return write_with_feast


@dataclass
class _ViewState:
    end: datetime
    partitions: dict[str, str]


class _State:
    """What the previous runs loaded, per view, for each online store they loaded it into."""

    def __init__(self, path: str, store: str, stores: dict[str, dict[str, Any]]) -> None:
        self.path, self.store, self.stores = path, store, stores
        self.views = stores.setdefault(store, {})

    @classmethod
    def load(cls, cfg: Config) -> _State:
        registry = feast_paths(cfg).registry
        path = f"{registry.rsplit('/', 1)[0]}/{STATE_FILE}"
        stores: dict[str, dict[str, Any]] = {}
        if lakefs.exists(path):
            try:
                stores = json.loads(lakefs.read_text(path)).get("stores", {})
            except (json.JSONDecodeError, AttributeError):
                logger.warning("{path} is not medallion's state: every view is loaded in full", path=path)
        return cls(path, online_store_name(cfg), stores)

    def view(self, name: str) -> _ViewState | None:
        saved = self.views.get(name)
        if not saved:
            return None
        return _ViewState(end=as_utc(datetime.fromisoformat(saved["end"])), partitions=saved["partitions"])

    def record(self, name: str, end: datetime, partitions: dict[str, str]) -> None:
        self.views[name] = {"end": end.isoformat(), "partitions": partitions}
        lakefs.write_text(self.path, json.dumps({"stores": self.stores}, indent=1, sort_keys=True))


def end_of_today() -> datetime:
    """The next midnight, UTC: the ``event_timestamp`` Gold gives today's (partial) row."""
    today = datetime.now(UTC).date()
    return datetime.combine(today + timedelta(days=1), datetime.min.time(), tzinfo=UTC)


def _utc(value: datetime | None) -> datetime | None:
    return None if value is None else as_utc(value)
