"""Fixtures of the serving tests: a local config on a test's own lake, stores and Redis database.

Fake Gold for every declared family is written by ``tests.serving.families_gold`` (no Spark needed).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from medallion.core.config import Config, load_config

CONFIG_DIR = Path(__file__).resolve().parents[2] / "config"


@pytest.fixture(scope="session")
def serving_config() -> Callable[..., Config]:
    """``serving_config(lake, **{"serving.online_store": "redis"})``: local config on that lake."""

    def make(lake: Path, **overrides: Any) -> Config:
        return load_config("local", CONFIG_DIR, {"lake.root": str(lake), **overrides}, environ={})

    return make


@pytest.fixture
def store_config(
    request: pytest.FixtureRequest, tmp_path: Path, serving_config: Callable[..., Config]
) -> Callable[..., Config]:
    """``store_config(lake, "sqlite"|"redis", **overrides)``: a config with this test's own registry and
    online store (Redis: the test database of the session's server, flushed around the test)."""

    def make(lake: Path, online_store: str, **extra: Any) -> Config:
        overrides: dict[str, Any] = {
            "serving.registry_path": str(tmp_path / "registry.db"),
            "serving.sqlite_path": str(tmp_path / "online.db"),
            "serving.online_store": online_store,
        }
        if online_store == "redis":
            overrides["serving.redis_url"] = request.getfixturevalue("redis_db").url
        return serving_config(lake, **{**overrides, **extra})

    return make


@pytest.fixture(scope="session")
def feast_imported() -> None:
    """Import Feast once, up front, so the first test does not carry the 3 s alone in its timing."""
    import feast  # noqa: F401
