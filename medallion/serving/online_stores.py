"""What the online reader reads: Feast's online stores, Redis and SQLite, without Feast.

Both answer the same question: for each group (one join key, the hash fields wanted, and the distinct
entity values), one row per entity holding, field by field, the serialized ``Value`` (or ``None``) and
the view's event time. The reader (`medallion.serving.reader`) turns those rows into Feast's answer.

- **Redis** (Feast's layout, see `medallion.serving.codec`): one ``HMGET`` per distinct entity key, every
  group's commands in one pipelined write and one read of the replies.
- **SQLite** (Feast's ``sqlite`` store: a table ``<project>_<view>`` of ``entity_key, feature_name,
  value, event_ts``, the key being Feast's serialized entity key): one ``SELECT ... WHERE entity_key IN``
  per view, on a read-only connection per thread.

Failures are answers too: an unreachable Redis, or one still loading its data (``LOADING``), is an
``OnlineStoreUnavailable`` (retry later: HTTP 503); an error reply such as ``WRONGTYPE`` (a key that is
not Feast's hash), or an unreadable SQLite file, an ``OnlineStoreFailed`` (HTTP 500). ``kind`` names it
for the server's metrics. The connection of a failed pipelined read is dropped, never reused half-read.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from medallion.core.config import Config
from medallion.core.errors import TerminalError, TransientError
from medallion.serving import wire
from medallion.serving.store import parse_redis_url, unreachable_message

EPOCH = "1970-01-01T00:00:00Z"
SQLITE_MAX_PARAMS = 900  # below SQLite's oldest default limit of bound parameters per statement


class OnlineStoreUnavailable(TransientError):
    def __init__(self, message: str, kind: str) -> None:
        super().__init__(message)
        self.kind = kind


class OnlineStoreFailed(TerminalError):
    def __init__(self, message: str, kind: str) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True)
class Group:
    """The fields to read for one join key: Redis hash fields, and per field (view, feature or None for
    the view's event time)."""

    join_key: str
    fields: list[bytes] = field(default_factory=list)
    refs: list[tuple[str, str | None]] = field(default_factory=list)


Rows = list[list[Any]]  # per distinct entity, per field: the raw value (and the raw event time)


class OnlineStore(Protocol):
    description: str

    def read(self, wanted: list[tuple[Group, list[str]]]) -> list[Rows]: ...

    def timestamp_text(self, raw: Any) -> str: ...

    def event_seconds(self, raw: Any) -> int | None: ...

    def close(self) -> None: ...


def timestamp_text(seconds: int, nanos: int) -> str:
    """Feast's JSON spelling of an event time (UTC, ``Z``, fractional digits only as needed)."""
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


class _CachedTimestamps:
    """Event times repeat (one per materialized day): spell each raw value once."""

    def __init__(self) -> None:
        self._texts: dict[Any, str] = {}

    def timestamp_text(self, raw: Any) -> str:
        text = self._texts.get(raw)
        if text is None:
            text = self._spell(raw)
            if len(self._texts) < 4096:
                self._texts[raw] = text
        return text

    def _spell(self, raw: Any) -> str:
        raise NotImplementedError


class RedisStore(_CachedTimestamps):
    def __init__(self, cfg: Config) -> None:
        # lazy: redis loads only for a Redis online store
        from medallion.serving.redis_writer import redis_client

        super().__init__()
        self.project = cfg.serving.project.encode()
        self.address = parse_redis_url(cfg.serving.redis_url)
        self.description = f"redis {self.address}"
        self._client = redis_client(cfg, timeout_s=5.0)
        # Connections for reads, one per concurrent reader, taken and given back whole. redis-py's pool
        # does the same with a health check (a poll per read), a lock and event hooks: a sixth of a
        # small request's CPU in the server. list.pop/append are atomic, so threads share it unlocked.
        self._idle: list[Any] = []
        self._packed_fields: dict[tuple[bytes, ...], tuple[bytes, bytes]] = {}
        self._made: list[Any] = []

    def close(self) -> None:
        for connection in self._made:
            connection.disconnect()
        self._client.close()

    def _spell(self, raw: Any) -> str:
        return timestamp_text(*wire.decode_timestamp(raw))

    def event_seconds(self, raw: Any) -> int | None:
        """The stored event time (whole seconds since the epoch), None when nothing is stored."""
        return wire.decode_timestamp(raw)[0] if raw else None

    def read(self, wanted: list[tuple[Group, list[str]]]) -> list[Rows]:
        commands: list[bytes] = []
        for group, values in wanted:
            prefix = wire.entity_key_prefix(group.join_key)
            header, packed_fields = self._packed(group)
            for value in values:
                raw = value.encode()
                key = prefix + len(raw).to_bytes(4, "little") + raw + self.project
                commands.append(header + b"$%d\r\n%s\r\n" % (len(key), key) + packed_fields)
        replies = self._round_trip(b"".join(commands), len(commands))
        out, offset = [], 0
        for _, values in wanted:
            out.append(replies[offset : offset + len(values)])
            offset += len(values)
        return out

    def _packed(self, group: Group) -> tuple[bytes, bytes]:
        """The ``HMGET`` command's head and its fields in Redis's protocol, packed once per field list
        (a request shape asks for the same fields every time: packing them was 5 % of the server's CPU)."""
        fields = tuple(group.fields)
        packed = self._packed_fields.get(fields)
        if packed is None:
            packed = (
                b"*%d\r\n$5\r\nHMGET\r\n" % (2 + len(fields)),
                b"".join(b"$%d\r\n%s\r\n" % (len(f), f) for f in fields),
            )
            if len(self._packed_fields) < 1024:
                self._packed_fields[fields] = packed
        return packed

    def _round_trip(self, payload: bytes, replies: int) -> list[list[Any]]:
        # lazy: redis loads only for a Redis online store
        import redis

        connection = None
        try:
            try:
                connection = self._idle.pop()
            except IndexError:
                connection = self._client.connection_pool.make_connection()
                self._made.append(connection)
            connection.send_packed_command([payload], check_health=False)
            return [connection.read_response() for _ in range(replies)]
        except redis.exceptions.BusyLoadingError as exc:
            self._drop(connection)
            raise OnlineStoreUnavailable(
                f"The Redis online store at {self.address} is loading its data into memory ({exc}); "
                "retry in a moment.",
                "loading",
            ) from None
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError) as exc:
            self._drop(connection)
            raise OnlineStoreUnavailable(unreachable_message(self.address, exc), "unreachable") from None
        except redis.exceptions.RedisError as exc:
            self._drop(connection)
            raise OnlineStoreFailed(
                f"The Redis online store at {self.address} answered an error ({exc}): a key of this "
                "project is not the hash Feast writes; re-run `medallion materialize` or check what "
                "else writes to this database.",
                "error_reply",
            ) from None
        finally:
            if connection is not None:
                self._idle.append(connection)

    @staticmethod
    def _drop(connection: Any) -> None:
        # The replies after an error are still on the wire: a reused connection would read them next.
        if connection is not None:
            connection.disconnect()


class SqliteStore(_CachedTimestamps):
    def __init__(self, cfg: Config) -> None:
        # lazy: Feast's repository code loads only for a store that needs it
        from medallion.serving.store import feast_paths

        super().__init__()
        path = feast_paths(cfg).sqlite
        assert path is not None
        self.path = path
        self.project = cfg.serving.project
        self.description = f"sqlite {path}"
        if not Path(path).is_file():
            raise OnlineStoreFailed(
                f"The SQLite online store {path} does not exist yet: run `medallion materialize` first "
                "(or point serving.sqlite_path at it).",
                "missing",
            )
        self._local = threading.local()

    def close(self) -> None:
        connection = getattr(self._local, "connection", None)
        if connection is not None:
            connection.close()
            self._local.connection = None

    def _connection(self) -> sqlite3.Connection:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=5.0)
            self._local.connection = connection
        return connection

    def event_seconds(self, raw: Any) -> int | None:
        if raw is None:
            return None
        return int(self._moment(raw).timestamp())

    def _spell(self, raw: Any) -> str:
        if raw is None:
            return EPOCH
        moment = self._moment(raw)
        seconds = int((moment - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)) // dt.timedelta(seconds=1))
        return timestamp_text(seconds, moment.microsecond * 1000)

    @staticmethod
    def _moment(raw: Any) -> dt.datetime:
        if isinstance(raw, int):
            # Feast's writer stores int(naive_utc.timestamp()): the UTC wall time read as local time,
            # whole seconds. Its reader undoes it with fromtimestamp(); so do we, to answer the same.
            return dt.datetime.fromtimestamp(raw).replace(tzinfo=dt.UTC)
        moment = dt.datetime.fromisoformat(str(raw))  # older Feast: ISO text
        return moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment.astimezone(dt.UTC)

    def read(self, wanted: list[tuple[Group, list[str]]]) -> list[Rows]:
        try:
            return [self._read_group(group, values) for group, values in wanted]
        except sqlite3.Error as exc:
            raise OnlineStoreFailed(
                f"Reading the SQLite online store {self.path} failed: {exc}.", "sqlite"
            ) from None

    def _read_group(self, group: Group, values: list[str]) -> Rows:
        keys = [wire.entity_key(group.join_key, value, "") for value in values]
        found: dict[tuple[str, bytes], dict[str | None, Any]] = {}
        for view in dict.fromkeys(view for view, _ in group.refs):
            table = f'"{self.project}_{view}"'.replace("\x00", "")
            for start in range(0, len(keys), SQLITE_MAX_PARAMS):
                chunk = keys[start : start + SQLITE_MAX_PARAMS]
                try:
                    cursor = self._connection().execute(
                        f"SELECT entity_key, feature_name, value, event_ts FROM {table} "  # noqa: S608
                        f"WHERE entity_key IN ({','.join('?' * len(chunk))})",
                        chunk,
                    )
                except sqlite3.OperationalError as exc:
                    if "no such table" in str(exc):
                        break  # the view was never materialized: its features are null, as in Redis
                    raise
                for key, name, value, event_ts in cursor:
                    held = found.setdefault((view, key), {})
                    held[name] = value
                    held[None] = event_ts
        return [[found.get((view, key), {}).get(name) for view, name in group.refs] for key in keys]


def open_store(cfg: Config) -> OnlineStore:
    """The reader's access to the online store ``cfg`` names."""
    if cfg.serving.online_store == "redis":
        return RedisStore(cfg)
    return SqliteStore(cfg)
