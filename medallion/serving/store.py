"""Feast configured from medallion's config: one source of truth for stores and paths.

``repo_config(cfg)`` is the Feast ``RepoConfig`` every medallion call uses; ``write_feature_store_yaml``
writes the same settings into ``feature_repo/feature_store.yaml`` for the ``feast`` CLI (paths relative
to the repo directory there, so the committed file works in any checkout). Defaults:

- registry: ``<lake>/_feast/registry.db`` (``serving.registry_path`` overrides);
- offline store: Feast's ``file`` store (dask) over the Gold Parquet tables;
- online store: SQLite at ``<lake>/_feast/online.db`` (``serving.sqlite_path``), or Redis at
  ``serving.redis_url`` (Feast's ``host:port,db=N,password=...`` form).

Feast is imported inside the functions only: ``import feast`` takes about 3 s.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from loguru import logger

from medallion.core import catalog
from medallion.core.config import Config
from medallion.core.errors import ConfigError, TerminalError, TransientError
from medallion.core.retry import retry_transient
from medallion.features import FAMILIES

if TYPE_CHECKING:
    from feast import FeatureStore
    from feast.repo_config import RepoConfig

# Feast's current entity key serialisation (0.38+); older versions are deprecated.
ENTITY_KEY_SERIALIZATION_VERSION = 3
REDIS_PASSWORD_ENV = "MEDALLION_REDIS_PASSWORD"
_REMOTE_REGISTRY_SCHEMES = ("s3://", "gs://", "az://")


@dataclass(frozen=True)
class FeastPaths:
    """Where Feast's files are, resolved: absolute local paths, or URIs as Feast spells them."""

    registry: str
    gold: dict[str, str]  # feature family -> its Gold table
    sqlite: str | None  # None when the online store is Redis


def _resolve(path: str, base_dir: Path) -> str:
    if "://" in path and not path.startswith("file://"):
        # lazy: pyarrow (through lakefs) stays out of the start-up of an online lookup
        from medallion.core import lakefs

        return lakefs.pyarrow_uri(path)
    local = Path(path.removeprefix("file://")).expanduser()
    return str(local if local.is_absolute() else (base_dir / local).resolve())


def feast_paths(cfg: Config, base_dir: Path | None = None) -> FeastPaths:
    """The registry, Gold and SQLite paths for ``cfg``; relative local paths are taken from ``base_dir``
    (the working directory by default, where ``medallion`` runs)."""
    base = Path.cwd() if base_dir is None else base_dir
    serving = cfg.serving
    registry = _resolve(catalog.FEAST_REGISTRY.path(cfg), base)
    if "://" in registry and not registry.startswith(_REMOTE_REGISTRY_SCHEMES):
        raise ConfigError(
            f"Feast cannot keep its registry at {registry}: it needs a local path, s3://, gs:// or az://. "
            "Set serving.registry_path (or MEDALLION__SERVING__REGISTRY_PATH)."
        )
    sqlite = None
    if serving.online_store == "sqlite":
        sqlite = _resolve(catalog.FEAST_ONLINE_SQLITE.path(cfg), base)
        if "://" in sqlite:
            raise ConfigError(
                f"The SQLite online store needs a local file, not {sqlite}: set serving.sqlite_path "
                "(or MEDALLION__SERVING__SQLITE_PATH), or use serving.online_store: redis."
            )
    gold = {f.name: _resolve(catalog.gold_table(f.name).path(cfg), base) for f in FAMILIES}
    return FeastPaths(registry=registry, gold=gold, sqlite=sqlite)


def feast_settings(
    cfg: Config, base_dir: Path | None = None, relative_to: Path | None = None
) -> dict[str, Any]:
    """The ``RepoConfig`` settings for ``cfg`` as plain data (what ``feature_store.yaml`` holds).

    With ``relative_to``, local paths are written relative to that directory (Feast resolves them
    against the repo directory it runs in), so a generated ``feature_store.yaml`` is portable.
    """
    paths = feast_paths(cfg, base_dir)

    def local(path: str) -> str:
        if relative_to is None or "://" in path:
            return path
        return os.path.relpath(path, relative_to.resolve())

    online: dict[str, Any]
    if cfg.serving.online_store == "redis":
        # skip_dedup: Feast's Redis writer otherwise drops a row whose event_timestamp is not newer than
        # the stored one, so a Gold re-run of a date (same event_timestamp, corrected values, newer
        # created_timestamp) would never reach Redis while SQLite takes it: with it both stores are
        # last-write-wins, and materialization already writes only the latest row per user.
        online = {"type": "redis", "connection_string": cfg.serving.redis_url, "skip_dedup": True}
        if key_ttl_seconds(cfg):
            online["key_ttl_seconds"] = key_ttl_seconds(cfg)
    else:
        assert paths.sqlite is not None
        online = {"type": "sqlite", "path": local(paths.sqlite)}
    return {
        "project": cfg.serving.project,
        "provider": "local",
        "registry": {"registry_type": "file", "path": local(paths.registry)},
        "offline_store": {"type": "file"},
        "online_store": online,
        "entity_key_serialization_version": ENTITY_KEY_SERIALIZATION_VERSION,
    }


def key_ttl_seconds(cfg: Config) -> int | None:
    """Redis key expiry (``serving.redis_key_ttl_days``, default ``ttl_days``); None when keys never expire.

    Feast's writer and ours both set it after every write of a key, so a key lives that long after its
    entity's last materialized row, whichever view wrote it.
    """
    days = cfg.serving.redis_key_ttl_days
    days = cfg.serving.ttl_days if days is None else days
    return days * 86_400 if days > 0 else None


def repo_config(cfg: Config, base_dir: Path | None = None) -> RepoConfig:
    """Feast's ``RepoConfig`` for ``cfg`` (absolute paths: it does not depend on a repo directory)."""
    # lazy: feast takes seconds to import: only where Feast's own objects are needed
    from feast.repo_config import RepoConfig

    settings = feast_settings(cfg, base_dir)
    for path in (settings["registry"]["path"], settings["online_store"].get("path")):
        if path and "://" not in path:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
    try:
        return RepoConfig(**settings)
    except Exception as exc:  # pydantic's ValidationError, whichever pydantic Feast was built with
        raise ConfigError(f"Feast rejected the serving settings derived from the config: {exc}") from None


def feature_store(cfg: Config, base_dir: Path | None = None) -> FeatureStore:
    """A Feast ``FeatureStore`` on the stores ``cfg`` names. Hold on to it for repeated online reads."""
    # lazy: feast takes seconds to import: only where Feast's own objects are needed
    from feast import FeatureStore

    from medallion.serving import _feast_compat

    _feast_compat.install()
    return FeatureStore(config=repo_config(cfg, base_dir))


def gold_paths(cfg: Config, base_dir: Path | None = None) -> dict[str, str]:
    """Feature view name -> the Gold directory it reads."""
    return feast_paths(cfg, base_dir).gold


def feature_store_yaml(cfg: Config, repo_dir: str | Path, base_dir: Path | None = None) -> str:
    """The text of ``feature_store.yaml`` for ``cfg`` in ``repo_dir`` (see write_feature_store_yaml)."""

    settings = feast_settings(cfg, base_dir, relative_to=Path(repo_dir))
    online = settings["online_store"]
    if "connection_string" in online:
        online["connection_string"] = _without_password(online["connection_string"])
    header = (
        f"# Generated by medallion.serving.write_feature_store_yaml from config (env {cfg.env}): the stores\n"
        "# `medallion materialize` uses. Do not edit; regenerate it as feature_repo/README.md says.\n"
    )
    return header + yaml.safe_dump(settings, sort_keys=False)


def write_feature_store_yaml(cfg: Config, repo_dir: str | Path, base_dir: Path | None = None) -> Path:
    """Write ``<repo_dir>/feature_store.yaml`` with the stores of ``cfg``, for the ``feast`` CLI there.

    Local paths are relative to ``repo_dir`` (relative lake roots are taken from ``base_dir``, the
    working directory by default). A Redis password is never written: it becomes
    ``${MEDALLION_REDIS_PASSWORD}``, which Feast expands from the environment when it reads the file.
    """
    repo = Path(repo_dir)
    text = feature_store_yaml(cfg, repo, base_dir)
    repo.mkdir(parents=True, exist_ok=True)
    target = repo / "feature_store.yaml"
    target.write_text(text)
    return target


def _without_password(connection_string: str) -> str:
    parts = connection_string.split(",")
    return ",".join(
        f"password=${{{REDIS_PASSWORD_ENV}}}" if p.strip().startswith("password=") else p for p in parts
    )


# --- online store reachability ---------------------------------------------------------------------


@dataclass(frozen=True)
class RedisAddress:
    """A parsed Feast Redis connection string (the first node; Feast's own parser keeps the rest)."""

    host: str
    port: int
    db: int = 0
    options: dict[str, Any] = field(default_factory=dict, hash=False)

    def __str__(self) -> str:  # never shows the password
        return f"{self.host}:{self.port} (db {self.db})"


def parse_redis_url(url: str) -> RedisAddress:
    """``host:port,db=N,password=...,ssl=true`` → RedisAddress (values decoded as JSON, as Feast does)."""
    nodes = [p.strip() for p in url.split(",") if p.strip() and "=" not in p]
    if not nodes:
        raise ConfigError(
            f"serving.redis_url has no host:port ({url.split(',')[0]!r}): use the form host:port,db=N."
        )
    host, _, port = nodes[0].rpartition(":") if ":" in nodes[0] else (nodes[0], "", "6379")
    options: dict[str, Any] = {}
    for part in url.split(","):
        if "=" in part:
            key, value = part.split("=", 1)
            try:
                options[key.strip()] = json.loads(value)
            except json.JSONDecodeError:
                options[key.strip()] = value
    try:
        return RedisAddress(host=host, port=int(port), db=int(options.pop("db", 0)), options=options)
    except ValueError:
        raise ConfigError(
            f"serving.redis_url {nodes[0]!r} is not host:port with a numeric port (and db=N numeric)."
        ) from None


def online_store_name(cfg: Config, base_dir: Path | None = None) -> str:
    """A one-line description of the online store, without secrets: ``redis 127.0.0.1:6379 (db 0)``."""
    if cfg.serving.online_store == "redis":
        return f"redis {parse_redis_url(cfg.serving.redis_url)}"
    return f"sqlite {feast_paths(cfg, base_dir).sqlite}"


def unreachable_message(
    address: RedisAddress, cause: object, attempts: int | None = None, seconds: float | None = None
) -> str:
    tried = f" after {attempts} attempts in {seconds:.1f} s" if attempts and seconds is not None else ""
    return (
        f"The Redis online store at {address} is unreachable{tried} ({cause}). Start Redis there "
        "(`medallion up` in the embedded setting, `docker compose up -d redis` in the docker one), "
        "or point serving.redis_url (in config/<env>.yaml, or MEDALLION__SERVING__REDIS_URL) at a "
        "running server."
    )


def check_online_store(
    cfg: Config,
    *,
    attempts: int = 5,
    max_wait_s: float = 8.0,
    max_delay_s: float = 60.0,
    connect_timeout_s: float = 2.0,
    base_dir: Path | None = None,
) -> str:
    """Make sure the online store can be used; returns its description (``online_store_name``).

    Redis is pinged, and an unreachable server is retried (``retry_transient``: ``attempts``, waits up
    to ``max_wait_s``, ``max_delay_s`` in all) before one clear TransientError naming the address.
    A refused password is a ConfigError at once. For SQLite the directory of the file is created.
    """
    if cfg.serving.online_store == "sqlite":
        sqlite = feast_paths(cfg, base_dir).sqlite
        assert sqlite is not None
        Path(sqlite).parent.mkdir(parents=True, exist_ok=True)
        return f"sqlite {sqlite}"

    # lazy: redis loads only for a Redis online store
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    address = parse_redis_url(cfg.serving.redis_url)
    options = {k: v for k, v in address.options.items() if k in ("password", "username", "ssl")}

    failures: list[BaseException] = []

    @retry_transient(attempts=attempts, max_wait_s=max_wait_s, max_delay_s=max_delay_s)
    def ping() -> None:
        client = redis.Redis(
            host=address.host,
            port=address.port,
            db=address.db,
            socket_connect_timeout=connect_timeout_s,
            socket_timeout=connect_timeout_s,
            # redis-py (6+) retries a refused connection 3 times with backoff on its own, ~7 s per
            # attempt: only our policy retries here, so the bound is the one the caller asked for.
            retry=Retry(NoBackoff(), 0),
            **options,
        )
        try:
            client.ping()
        except redis.exceptions.AuthenticationError as exc:
            raise ConfigError(
                f"The Redis online store at {address} refused the credentials ({exc}): check password= "
                "in serving.redis_url."
            ) from None
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError) as exc:
            failures.append(exc)
            raise TransientError(unreachable_message(address, exc)) from None
        finally:
            client.close()

    started = time.monotonic()
    try:
        ping()
    except TransientError:
        elapsed = time.monotonic() - started
        raise TransientError(unreachable_message(address, failures[-1], len(failures), elapsed)) from None
    return f"redis {address}"


def require_gold(cfg: Config, names: list[str] | None = None, base_dir: Path | None = None) -> None:
    """Fail with a clear TerminalError when a feature view's Gold table has no partition yet."""
    # lazy: pyarrow (through lakefs) stays out of the start-up of an online lookup
    from medallion.core import lakefs

    for name, path in gold_paths(cfg, base_dir).items():
        if names is not None and name not in names:
            continue
        if not lakefs.list_partitions(path, catalog.FEATURE_DATE):
            raise TerminalError(
                f"Feature view {name} has no Gold data: {path} holds no feature_date=... partition. "
                "Run `medallion gold --start-date D1 --end-date D2` first."
            )


@contextlib.contextmanager
def quiet_feast() -> Iterator[None]:
    """Feast prints progress to stdout and dask warns about pandas deprecations: keep both to the log."""
    out = io.StringIO()
    with warnings.catch_warnings(), contextlib.redirect_stdout(out):
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            yield
        finally:
            if out.getvalue().strip():
                logger.debug("feast: {text}", text=out.getvalue().strip())


@contextlib.contextmanager
def redis_errors(cfg: Config) -> Iterator[None]:
    """A Redis that goes away mid-run becomes the same clear TransientError as the up-front check."""
    if cfg.serving.online_store != "redis":
        yield
        return
    # lazy: redis loads only for a Redis online store
    import redis

    try:
        yield
    except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as exc:
        raise TransientError(unreachable_message(parse_redis_url(cfg.serving.redis_url), exc)) from None
