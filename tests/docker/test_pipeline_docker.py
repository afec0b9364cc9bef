"""The same pipeline against docker-compose's Apache Kafka and Redis (`--env docker`)."""

from __future__ import annotations

from typing import Any

import pytest

from medallion import serving
from medallion.core import catalog
from medallion.core.config import load_config
from medallion.features import USER_FEATURES
from medallion.operations import pipeline
from tests.conftest import CONFIG_DIR
from tests.e2e.checks import assert_pipeline_correct, parquet


@pytest.mark.docker
def test_docker_pipeline_end_to_end(
    spark: Any, compose_services: dict[str, str], lake: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # docker is not the local environment: it must refuse to start without a key, so the test sets one.
    monkeypatch.setenv("MEDALLION_PII_KEY", "docker-test-key-0123456789")
    cfg = load_config(
        "docker",
        CONFIG_DIR,
        {
            "lake.root": str(lake),
            "kafka.bootstrap_servers": compose_services["kafka"],
            "kafka.topic": "docker_e2e_events",
            "serving.redis_url": compose_services["redis"],
            "pii.allow_dev_key": False,
        },
        environ={},
    )
    pipeline.run_all(cfg, count=3000, seed=11, bad_ratio=0.02)
    gold = parquet(catalog.gold_table(USER_FEATURES.name).path(cfg))
    users = sorted(set(gold.column(USER_FEATURES.entity.join_key).to_pylist()))[:25]
    assert_pipeline_correct(cfg, serving.online_features(cfg, users))
