"""The one SparkSession factory: every job and the test suite get their session here."""

from __future__ import annotations

import os
import re
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
    # A cached DataFrame here lives for one micro-batch or one job: compressing its columns costs CPU the
    # cache never pays back (measured on ingest, with 2 shuffle partitions: 0.129 → 0.145 of the baseline).
    "spark.sql.inMemoryColumnarStorage.compressed": "false",
    # Streaming state (the ingest's dedup keeps every event id seen within its watermark) in RocksDB, off
    # the heap and bounded, not in the default provider's in-heap maps, which grow with the ids: on the
    # ingest benchmark its JVM grew by about 220 MB per 200k-event batch. Each commit writes a changelog,
    # not a snapshot. A checkpoint keeps the provider it was started with (Spark records it there).
    "spark.sql.streaming.stateStore.providerClass": (
        "org.apache.spark.sql.execution.streaming.state.RocksDBStateStoreProvider"
    ),
    "spark.sql.streaming.stateStore.rocksdb.changelogCheckpointing.enabled": "true",
    "spark.sql.streaming.stateStore.rocksdb.boundedMemoryUsage": "true",
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
    partitions = cfg.spark.shuffle_partitions or local_cores(cfg.spark.master)
    if partitions:
        conf["spark.sql.shuffle.partitions"] = str(partitions)
    conf |= cfg.spark.conf
    return conf


def local_cores(master: str) -> int | None:
    """The cores a local master uses (``local``, ``local[4]``, ``local[*]``, ``local[4,2]``); None otherwise.

    A local session gets as many shuffle partitions as cores: each partition of the ingest's dedup is a
    state store that every micro-batch loads and commits, and more of them than cores only adds that
    fixed cost (measured: 8 → 2 on 2 cores, about 10% more events/s).
    """
    if master == "local":
        return 1
    match = re.fullmatch(r"local\[(\*|\d+)(?:,\d+)?\]", master)
    if not match:
        return None
    return (os.cpu_count() or 1) if match.group(1) == "*" else int(match.group(1))


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
