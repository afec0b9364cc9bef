"""Feast configured from our config (one source of truth for its stores and paths), the committed
feature_store.yaml, and reachability."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from medallion import serving
from medallion.core.config import Config, load_config
from medallion.core.errors import ConfigError, TransientError
from medallion.features import FAMILIES
from medallion.serving.store import feature_store_yaml, parse_redis_url
from tests.serving.conftest import CONFIG_DIR

REPO = CONFIG_DIR.parent


def test_importing_serving_does_not_import_feast() -> None:
    code = (
        "import sys, medallion.serving; "
        "print(sorted(m for m in ('feast', 'pandas', 'dask') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_repo_config_is_built_from_our_config(tmp_path: Path, serving_config: Callable[..., Config]) -> None:
    lake = tmp_path / "lake"
    config = serving.repo_config(serving_config(lake))
    assert (config.project, config.provider, config.entity_key_serialization_version) == (
        "medallion",
        "local",
        3,
    )
    assert config.registry.path == str(lake / "_feast" / "registry.db")
    assert config.offline_store.type == "file"
    assert (config.online_store.type, config.online_store.path) == (
        "sqlite",
        str(lake / "_feast" / "online.db"),
    )

    redis = serving.repo_config(
        serving_config(lake, **{"serving.online_store": "redis", "serving.redis_url": "10.0.0.5:6380,db=2"})
    )
    assert (redis.online_store.type, redis.online_store.connection_string) == ("redis", "10.0.0.5:6380,db=2")
    assert redis.online_store.skip_dedup is True
    assert redis.online_store.key_ttl_seconds == 30 * 86_400  # serving.redis_key_ttl_days: ttl_days
    never = {"serving.online_store": "redis", "serving.redis_key_ttl_days": 0}
    assert serving.repo_config(serving_config(lake, **never)).online_store.key_ttl_seconds is None


def test_relative_lake_root_is_taken_from_the_base_dir(tmp_path: Path) -> None:
    cfg = load_config("local", CONFIG_DIR, environ={})  # lake.root: ./lake
    paths = serving.feast_paths(cfg, base_dir=tmp_path)
    assert paths.registry == str(tmp_path / "lake" / "_feast" / "registry.db")
    assert paths.gold == {f.name: str(tmp_path / "lake" / "gold" / f.name) for f in FAMILIES}
    s3 = serving.feast_paths(
        load_config(
            "local",
            CONFIG_DIR,
            {"lake.root": "s3a://bucket/lake", "serving.online_store": "redis"},
            environ={},
        )
    )
    assert (s3.registry, s3.gold, s3.sqlite) == (
        "s3://bucket/lake/_feast/registry.db",
        {f.name: f"s3://bucket/lake/gold/{f.name}" for f in FAMILIES},
        None,
    )
    with pytest.raises(ConfigError, match="SQLite online store needs a local file"):
        serving.feast_paths(load_config("local", CONFIG_DIR, {"lake.root": "s3a://bucket/lake"}, environ={}))


def test_committed_feature_store_yaml_is_what_the_default_config_writes() -> None:
    cfg = load_config("local", CONFIG_DIR, environ={})
    committed = (REPO / "feature_repo" / "feature_store.yaml").read_text()
    assert feature_store_yaml(cfg, REPO / "feature_repo", base_dir=REPO) == committed


@pytest.mark.usefixtures("feast_imported")
def test_feast_reads_the_written_yaml_as_the_same_stores(
    tmp_path: Path, serving_config: Callable[..., Config]
) -> None:
    from feast.repo_config import load_repo_config

    cfg = serving_config(
        tmp_path / "lake",
        **{"serving.online_store": "redis", "serving.redis_url": "127.0.0.1:6379,db=13,password=s3cret"},
    )
    repo = tmp_path / "feature_repo"
    written = serving.write_feature_store_yaml(cfg, repo, base_dir=tmp_path)
    assert "s3cret" not in written.read_text()
    loaded = load_repo_config(repo, written)
    ours = serving.repo_config(cfg)
    assert Path(repo / loaded.registry.path).resolve() == Path(ours.registry.path)
    assert (
        loaded.online_store.connection_string == "127.0.0.1:6379,db=13,password=${MEDALLION_REDIS_PASSWORD}"
    )

    sqlite_cfg = serving_config(tmp_path / "lake")
    loaded = load_repo_config(repo, serving.write_feature_store_yaml(sqlite_cfg, repo, base_dir=tmp_path))
    assert (repo / loaded.online_store.path).resolve() == Path(
        serving.repo_config(sqlite_cfg).online_store.path
    )


@pytest.mark.parametrize(
    ("url", "host", "port", "db", "options"),
    [
        ("127.0.0.1:6379,db=13", "127.0.0.1", 6379, 13, {}),
        (
            "redis.internal:6380,db=0,password=x,ssl=true",
            "redis.internal",
            6380,
            0,
            {"password": "x", "ssl": True},
        ),
        ("localhost", "localhost", 6379, 0, {}),
    ],
)
def test_parse_redis_url(url: str, host: str, port: int, db: int, options: dict) -> None:
    address = parse_redis_url(url)
    assert (address.host, address.port, address.db, address.options) == (host, port, db, options)
    assert str(address) == f"{host}:{port} (db {db})"  # what error messages show: never the password


def test_parse_redis_url_rejects_nonsense() -> None:
    with pytest.raises(ConfigError, match="host:port"):
        parse_redis_url("db=1")
    with pytest.raises(ConfigError, match="numeric port"):
        parse_redis_url("host:port")


def _closed_port() -> int:
    import socket

    with socket.socket() as sock:  # bound, then closed: nothing listens there
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_unreachable_redis_fails_fast_with_a_clear_error(
    serving_config: Callable[..., Config], tmp_path: Path
) -> None:
    port = _closed_port()
    cfg = serving_config(
        tmp_path, **{"serving.online_store": "redis", "serving.redis_url": f"127.0.0.1:{port},db=13"}
    )
    started = time.monotonic()
    with pytest.raises(TransientError) as caught:
        serving.check_online_store(cfg, attempts=3, max_wait_s=0.05, connect_timeout_s=0.5)
    elapsed = time.monotonic() - started
    message = str(caught.value)
    assert elapsed < 5
    assert f"The Redis online store at 127.0.0.1:{port} (db 13) is unreachable after 3 attempts" in message
    assert "MEDALLION__SERVING__REDIS_URL" in message and "\n" not in message


def test_sqlite_check_prepares_its_directory(serving_config: Callable[..., Config], tmp_path: Path) -> None:
    cfg = serving_config(tmp_path / "lake")
    assert serving.check_online_store(cfg) == f"sqlite {tmp_path / 'lake' / '_feast' / 'online.db'}"
    assert (tmp_path / "lake" / "_feast").is_dir()


@pytest.mark.integration
def test_reachable_redis_passes_the_check(
    redis_server: object, redis_db: int, serving_config: Callable[..., Config], tmp_path: Path
) -> None:
    url = redis_server.url(redis_db)  # type: ignore[attr-defined]
    cfg = serving_config(tmp_path, **{"serving.online_store": "redis", "serving.redis_url": url})
    assert serving.check_online_store(cfg, attempts=1).startswith("redis ")
