from __future__ import annotations

import os

import pytest

from medallion.config import load_config
from medallion.spark import local_cores, session_conf
from tests.conftest import CONFIG_DIR


@pytest.mark.parametrize(
    ("master", "cores"),
    [("local", 1), ("local[3]", 3), ("local[3,2]", 3), ("local[*]", os.cpu_count()), ("yarn", None)],
)
def test_local_cores(master: str, cores: int | None) -> None:
    assert local_cores(master) == cores


def test_shuffle_partitions_follow_a_local_master_unless_set() -> None:
    def conf(**overrides: object) -> dict[str, str]:
        return session_conf(load_config("local", CONFIG_DIR, overrides, environ={}))

    assert conf(**{"spark.master": "local[3]"})["spark.sql.shuffle.partitions"] == "3"
    assert (
        conf(**{"spark.master": "local[3]", "spark.shuffle_partitions": 12})["spark.sql.shuffle.partitions"]
        == "12"
    )
    assert "spark.sql.shuffle.partitions" not in conf(**{"spark.master": "spark://h:7077"})
    assert conf()["spark.sql.inMemoryColumnarStorage.compressed"] == "false"
