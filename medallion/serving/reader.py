"""The fast online reader: one pipelined round trip to Redis per request, Feast's response shape.

Feast's SDK resolves the request against its registry, builds protobuf entity keys and ``Value``
objects, reads one feature view at a time and assembles a protobuf response; for 100 entities × 50
features that is about 15 ms at the median and 100 ms at p99 here. This reader knows the views from the
declarations (`medallion.features`, the same ones Feast's registry is built from), so it needs neither
Feast nor its registry: per request it builds the Redis keys, sends one ``HMGET`` per distinct entity
key (all the fields of every requested view of that entity at once) in one pipelined write, and decodes
the replies straight into Python values (`medallion.serving.codec`).

The answer is what Feast's ``/get-online-features`` returns for the same Redis (a test compares them):
``metadata.feature_names`` = the join keys, then the features; ``results`` = one column per name with
``values``, ``statuses`` and ``event_timestamps``. Like Feast 0.67's Redis store, a missing entity or
view gives ``PRESENT`` with a null value and the epoch as its timestamp. Feast orders features within a
view by a Python set (it varies between processes); here they keep the order asked for.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from medallion.config import Config
from medallion.errors import ConfigError, TransientError, UsageError
from medallion.features import FAMILIES, FeatureFamily
from medallion.features.services import SERVICES
from medallion.serving import codec
from medallion.serving.store import parse_redis_url, unreachable_message

EPOCH = "1970-01-01T00:00:00Z"


@dataclass(frozen=True)
class _Field:
    view: str
    name: str  # as it appears in the response
    field: bytes  # its Redis hash field


@dataclass(frozen=True)
class _Plan:
    """What to read for one request shape: per entity, the hash fields (and which are timestamps)."""

    names: list[str]  # the response's feature names, join keys first
    join_keys: list[str]
    groups: list[tuple[str, list[bytes], list[tuple[str, int, int]]]]
    # per join key: the fields to HMGET, and per output feature (name, value index, timestamp index)


def _timestamp_text(raw: bytes | None) -> str:
    seconds, nanos = codec.decode_timestamp(raw)
    if seconds == 0 and nanos == 0:
        return EPOCH
    base = dt.datetime.fromtimestamp(seconds, tz=dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")
    if nanos == 0:
        return base + "Z"
    if nanos % 1_000_000 == 0:
        return f"{base}.{nanos // 1_000_000:03d}Z"
    if nanos % 1_000 == 0:
        return f"{base}.{nanos // 1_000:06d}Z"
    return f"{base}.{nanos:09d}Z"


class OnlineReader:
    """Online features from the Redis online store; safe to share between threads."""

    def __init__(self, cfg: Config, families: Sequence[FeatureFamily] = FAMILIES) -> None:
        if cfg.serving.online_store != "redis":
            raise ConfigError(
                "The fast online reader reads Redis; serving.online_store is "
                f"{cfg.serving.online_store}. Use medallion.serving.online_features (Feast's SDK) for it, "
                "or set serving.online_store: redis."
            )
        from medallion.serving.redis_writer import redis_client

        self.project = cfg.serving.project
        self.address = parse_redis_url(cfg.serving.redis_url)
        self._client = redis_client(cfg, timeout_s=5.0)
        self._families = {f.name: f for f in families}
        self._services = {s.name: s for s in SERVICES if all(name in self._families for name in s.families)}
        self._plans: dict[tuple[Any, ...], _Plan] = {}
        self._ts_text: dict[bytes | None, str] = {}

    def close(self) -> None:
        self._client.close()

    # --- request resolution ------------------------------------------------------------------------

    def refs(self, features: Sequence[str] | None = None, service: str | None = None) -> list[str]:
        """``view:feature`` references for a service, a list of references, or every feature."""
        if service is not None:
            if service not in self._services:
                raise UsageError(
                    f"Unknown feature service {service!r}; known: {', '.join(sorted(self._services))}."
                )
            return [
                f"{view}:{name}"
                for view in self._services[service].families
                for name in self._families[view].feature_names
            ]
        if not features:
            return [f"{f.name}:{n}" for f in self._families.values() for n in f.feature_names]
        refs = []
        for ref in features:
            view, _, name = ref.partition(":")
            fam = self._families.get(view)
            if fam is None or name not in fam.feature_names:
                raise UsageError(
                    f"Unknown feature reference {ref!r}: use view:feature, with a view among "
                    f"{', '.join(self._families)}."
                )
            refs.append(ref)
        return refs

    def _plan(self, refs: Sequence[str], join_keys: Sequence[str], full_names: bool) -> _Plan:
        cache_key = (tuple(refs), tuple(join_keys), full_names)
        plan = self._plans.get(cache_key)
        if plan is not None:
            return plan
        by_key: dict[str, tuple[list[bytes], dict[bytes, int], list[tuple[str, int, int]]]] = {}
        names: list[str] = list(join_keys)
        for ref in refs:
            view, _, name = ref.partition(":")
            fam = self._families[view]
            key = fam.entity.join_key
            if key not in join_keys:
                raise UsageError(
                    f"Feature {ref} needs {key} in the entities; the request has {', '.join(join_keys)}."
                )
            fields, index, outputs = by_key.setdefault(key, ([], {}, []))
            for wanted in (codec.ts_field(view), codec.field_name(view, name)):
                if wanted not in index:
                    index[wanted] = len(fields)
                    fields.append(wanted)
            out = f"{view}__{name}" if full_names else name
            outputs.append((out, index[codec.field_name(view, name)], index[codec.ts_field(view)]))
            names.append(out)
        groups = [(key, fields, outputs) for key, (fields, _, outputs) in by_key.items()]
        plan = _Plan(names=names, join_keys=list(join_keys), groups=groups)
        if len(self._plans) < 1024:
            self._plans[cache_key] = plan
        return plan

    # --- reads ------------------------------------------------------------------------------------

    def get_online_features(
        self,
        entities: Mapping[str, Sequence[Any]],
        features: Sequence[str] | None = None,
        *,
        feature_service: str | None = None,
        full_feature_names: bool = False,
    ) -> dict[str, Any]:
        """Feast's ``/get-online-features`` answer for ``entities`` (``{join_key: [values]}``)."""
        columns = self.read_columns(
            entities, features, feature_service=feature_service, full_feature_names=full_feature_names
        )
        names, values, stamps = columns
        results = []
        n = len(next(iter(entities.values()), []))
        for name in names:
            if name in entities:
                results.append(
                    {
                        "values": list(entities[name]),
                        "statuses": ["PRESENT"] * n,
                        "event_timestamps": [EPOCH] * n,
                    }
                )
            else:
                results.append(
                    {"values": values[name], "statuses": ["PRESENT"] * n, "event_timestamps": stamps[name]}
                )
        return {"results": results, "metadata": {"feature_names": names}}

    def online_dict(
        self,
        entities: Mapping[str, Sequence[Any]],
        features: Sequence[str] | None = None,
        *,
        feature_service: str | None = None,
        full_feature_names: bool = False,
    ) -> dict[str, list[Any]]:
        """Like Feast's ``get_online_features(...).to_dict()``: ``{name: [value per entity row]}``."""
        names, values, _ = self.read_columns(
            entities, features, feature_service=feature_service, full_feature_names=full_feature_names
        )
        return {name: list(entities[name]) if name in entities else values[name] for name in names}

    def read_columns(
        self,
        entities: Mapping[str, Sequence[Any]],
        features: Sequence[str] | None = None,
        *,
        feature_service: str | None = None,
        full_feature_names: bool = False,
    ) -> tuple[list[str], dict[str, list[Any]], dict[str, list[str]]]:
        if not entities:
            raise UsageError('The request names no entities: give e.g. {"user_id": ["u_000042"]}.')
        lengths = {len(v) for v in entities.values()}
        if len(lengths) != 1:
            raise UsageError("Every entity column of the request must have the same number of values.")
        n = lengths.pop()
        plan = self._plan(self.refs(features, feature_service), list(entities), full_feature_names)

        commands: list[bytes] = []
        layout: list[tuple[list[tuple[str, int, int]], list[int], int]] = []
        for key, fields, outputs in plan.groups:
            prefix = codec.entity_key_prefix(key)
            tail = self.project.encode()
            packed_fields = b"".join(b"$%d\r\n%s\r\n" % (len(f), f) for f in fields)
            header = b"*%d\r\n$5\r\nHMGET\r\n" % (2 + len(fields))
            distinct: dict[str, int] = {}
            rows = []
            for value in entities[key]:
                text = str(value)
                slot = distinct.get(text)
                if slot is None:
                    slot = distinct[text] = len(distinct)
                    raw = text.encode()
                    redis_key = prefix + len(raw).to_bytes(4, "little") + raw + tail
                    commands.append(header + b"$%d\r\n%s\r\n" % (len(redis_key), redis_key) + packed_fields)
                rows.append(slot)
            layout.append((outputs, rows, len(distinct)))
        replies = self._round_trip(b"".join(commands), len(commands))

        values: dict[str, list[Any]] = {}
        stamps: dict[str, list[str]] = {}
        decode, ts_text = codec.decode_value, self._timestamp
        offset = 0
        for outputs, rows, count in layout:
            group = replies[offset : offset + count]
            offset += count
            spread = count != n  # some entity repeats: fan the distinct reads out to every row
            per_view: dict[int, list[str]] = {}  # one timestamp per entity and view, shared by its features
            for name, value_index, ts_index in outputs:
                decoded = [decode(reply[value_index]) for reply in group]
                texts = per_view.get(ts_index)
                if texts is None:
                    texts = per_view[ts_index] = [ts_text(reply[ts_index]) for reply in group]
                values[name] = [decoded[r] for r in rows] if spread else decoded
                stamps[name] = [texts[r] for r in rows] if spread else texts
        return plan.names, values, stamps

    def _timestamp(self, raw: bytes | None) -> str:
        text = self._ts_text.get(raw)
        if text is None:
            text = _timestamp_text(raw)
            if len(self._ts_text) < 4096:
                self._ts_text[raw] = text
        return text

    def _round_trip(self, payload: bytes, replies: int) -> list[list[bytes | None]]:
        import redis

        pool = self._client.connection_pool
        connection = None
        try:
            connection = pool.get_connection()
            connection.send_packed_command([payload], check_health=False)
            out = [connection.read_response() for _ in range(replies)]
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError) as exc:
            if connection is not None:
                connection.disconnect()
            raise TransientError(unreachable_message(self.address, exc)) from None
        finally:
            if connection is not None:
                pool.release(connection)
        return out


def read_online(
    cfg: Config,
    entities: Mapping[str, Sequence[Any]],
    features: Sequence[str] | None = None,
    *,
    service: str | None = None,
) -> dict[str, list[Any]]:
    """``{name: [value per entity row]}`` (join keys first) from whichever online store ``cfg`` names:
    the fast reader for Redis, Feast's SDK for SQLite. Features are ``view:feature`` references; by
    default every feature of the views whose join keys ``entities`` has."""
    keys = set(entities)
    if features is None and service is None:
        features = [f"{f.name}:{n}" for f in FAMILIES if f.entity.join_key in keys for n in f.feature_names]
        if not features:
            known = sorted({f.entity.join_key for f in FAMILIES})
            raise UsageError(
                f"No feature view is keyed by {', '.join(sorted(keys))}; join keys: {', '.join(known)}."
            )
    if cfg.serving.online_store == "redis":
        reader = OnlineReader(cfg)
        try:
            return reader.online_dict(entities, features, feature_service=service)
        finally:
            reader.close()
    from medallion.serving.store import feature_store, quiet_feast

    store = feature_store(cfg)
    rows = [dict(zip(entities, values, strict=True)) for values in zip(*entities.values(), strict=True)]
    with quiet_feast():
        wanted: Any = store.get_feature_service(service) if service is not None else list(features or [])
        return dict(store.get_online_features(features=wanted, entity_rows=rows).to_dict())
