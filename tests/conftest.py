"""Shared fixtures: one Spark session for the whole run, a temporary lake and config per test."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from medallion.core.config import Config, load_config

REPO = Path(__file__).resolve().parents[1]
CONFIG_DIR = REPO / "config"


def config_dir_of(cfg: Config, folder: Path) -> Path:
    """A config folder whose base.yaml is ``cfg`` whole: for a command run in-process (``run_app``) on a
    test's config, as a user passes ``--config-dir``."""
    import yaml

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "base.yaml").write_text(yaml.safe_dump(cfg.model_dump(mode="json")))
    return folder


pytest_plugins = [
    "tests.fixtures.broker",
    "tests.fixtures.redis",
    "tests.fixtures.apache_kafka",
    "tests.fixtures.spark_cluster",
    "tests.fixtures.s3",
]


@pytest.fixture(scope="session")
def spark_config() -> Config:
    return load_config(
        "local", CONFIG_DIR, {"spark.master": "local[2]", "spark.shuffle_partitions": 2}, environ={}
    )


@pytest.fixture(scope="session")
def spark(spark_config: Config) -> Iterator[Any]:
    from medallion.engines.spark import get_spark

    session = get_spark(spark_config)
    yield session
    session.stop()


@pytest.fixture
def lake(tmp_path: Path) -> Path:
    root = tmp_path / "lake"
    root.mkdir()
    return root


@pytest.fixture
def make_config(lake: Path) -> Callable[..., Config]:
    """Config for the local environment on this test's lake, with dotted-key overrides."""

    def make(**overrides: Any) -> Config:
        merged = {"lake.root": str(lake), "spark.master": "local[2]", "spark.shuffle_partitions": 2}
        merged |= {k.replace("__", "."): v for k, v in overrides.items()}
        return load_config("local", CONFIG_DIR, merged, environ={})

    return make
