"""The one SparkSession factory: every job and the test suite get their session here."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

from medallion.config import Config

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

# Settings every medallion session needs, whatever the master: UTC everywhere, AQE, idempotent partition
# overwrites, and timestamps that pyarrow, DuckDB and Feast read as they are.
BASE_CONF = {
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.adaptive.enabled": "true",
    "spark.sql.adaptive.coalescePartitions.enabled": "true",
    "spark.sql.sources.partitionOverwriteMode": "dynamic",
    "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    "spark.sql.streaming.stopGracefullyOnShutdown": "true",
    "spark.ui.showConsoleProgress": "false",
    "spark.driver.extraJavaOptions": "-Duser.timezone=UTC",
    "spark.executor.extraJavaOptions": "-Duser.timezone=UTC",
}

LOCAL_CONF = {
    "spark.driver.host": "127.0.0.1",
    "spark.driver.bindAddress": "127.0.0.1",
    "spark.ui.enabled": "false",
    "spark.sql.streaming.forceDeleteTempCheckpointLocation": "true",
}


def session_conf(cfg: Config) -> dict[str, str]:
    """The full Spark configuration for ``cfg``: base settings, local extras, then the user's own."""
    conf = dict(BASE_CONF)
    if cfg.spark.master.startswith("local"):
        conf |= LOCAL_CONF
        conf["spark.driver.memory"] = cfg.spark.driver_memory
    conf["spark.sql.shuffle.partitions"] = str(cfg.spark.shuffle_partitions)
    conf |= cfg.spark.conf
    return conf


def get_spark(cfg: Config) -> SparkSession:
    """Return the active session or build one from ``cfg``, with medallion's Kafka source registered."""
    # Python workers must run the interpreter that has medallion installed, not whatever is on PATH.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.master(cfg.spark.master).appName(cfg.spark.app_name)
    for key, value in session_conf(cfg).items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    from medallion.kafka.source import register

    register(spark)
    return spark
