"""The one SparkSession factory: every job and the test suite get their session here."""

from __future__ import annotations

import contextlib
import ctypes.util
import logging
import os
import re
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from medallion.core.config import Config

# medallion's log level (DEBUG, INFO, WARNING, ERROR): `medallion --log-level` sets it for the sessions
# this process builds and the Python workers they start; library users may set it themselves.
LOG_LEVEL_ENV = "MEDALLION_LOG_LEVEL"
# Spark's logging, shipped in the package; the levels in it come from spark_log_levels.
LOG4J2_FILE = Path(__file__).with_name("log4j2.properties")
# PySpark logs each analysis error it raises, with the JVM's stack trace, as JSON on these loggers. The
# error itself still reaches the caller (the CLI prints it in one line): the trace is for debug.
PYSPARK_ERROR_LOGGERS = ("DataFrameQueryContextLogger", "SQLQueryContextLogger")

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
    # Streaming state, should a query keep any, in RocksDB: off the heap and bounded, a changelog per
    # commit. The ingest keeps none since its dedup became an index of its own (`bronze.dedup`); before,
    # its ids lived here (the default in-heap provider grew its JVM by about 220 MB per 200k-event batch),
    # and `bronze.dedup.adopt_spark_state` reads such a checkpoint's ids once, with the provider it records.
    "spark.sql.streaming.stateStore.providerClass": (
        "org.apache.spark.sql.execution.streaming.state.RocksDBStateStoreProvider"
    ),
    "spark.sql.streaming.stateStore.rocksdb.changelogCheckpointing.enabled": "true",
    "spark.sql.streaming.stateStore.rocksdb.boundedMemoryUsage": "true",
    "spark.ui.showConsoleProgress": "false",
    # PySpark 4 records the Python call site of every DataFrame function for error messages: four or five
    # round trips to the JVM per call. Off, stating Gold's builders took 1.0 s instead of 2.1 (2.5 s
    # instead of 3.6 in a new session); medallion's own messages say what failed.
    "spark.python.sql.dataFrameDebugging.enabled": "false",
    # The driver's also carry the logging options (session_conf). Not the executors': the file is in
    # this machine's package, and a local master's executors run in the driver's JVM anyway.
    "spark.driver.extraJavaOptions": "-Duser.timezone=UTC -XX:-DontCompileHugeMethods",
    "spark.executor.extraJavaOptions": "-Duser.timezone=UTC -XX:-DontCompileHugeMethods",
}
# -XX:-DontCompileHugeMethods: HotSpot leaves a method of more than 8,000 bytes of bytecode to the
# interpreter, and a whole-stage-generated method of a wide plan is bigger (Silver's candidate rows: the
# flatten, six broadcast joins and twelve rules in one stage). Measured on Silver's 4M-event benchmark:
# the candidate rows took 73-79 s interpreted, 22-27 s compiled.

LOCAL_CONF = {
    "spark.driver.host": "127.0.0.1",
    "spark.driver.bindAddress": "127.0.0.1",
    "spark.ui.enabled": "false",
    "spark.sql.streaming.forceDeleteTempCheckpointLocation": "true",
}


def spark_log_levels(level: str) -> dict[str, str]:
    """The log4j levels of LOG4J2_FILE for medallion's log ``level``.

    By default Spark says only what may need action: the root at WARN, and the loggers whose warnings
    are known to be benign here (listed, with why, in the file) at ERROR. ``debug`` shows everything
    from INFO up, as Spark's own default profile does; ``error`` keeps Spark to its errors.
    """
    level = level.upper()
    if level == "DEBUG":
        return {
            "medallion.spark.level": "INFO",
            "medallion.spark.benign": "INFO",
            "medallion.spark.benign.match": "NEUTRAL",
        }
    root = "ERROR" if level == "ERROR" else "WARN"
    return {
        "medallion.spark.level": root,
        "medallion.spark.benign": "ERROR",
        "medallion.spark.benign.match": "DENY",
    }


def driver_java_options(level: str) -> str:
    """``-D`` options of the driver JVM: UTC, and Spark's logging from LOG4J2_FILE at ``level``'s levels."""
    options = [
        "-Duser.timezone=UTC",
        "-XX:-DontCompileHugeMethods",  # see BASE_CONF
        f"-Dlog4j2.configurationFile={LOG4J2_FILE.as_uri()}",
    ]
    options += [f"-D{key}={value}" for key, value in spark_log_levels(level).items()]
    if os.environ.get("LOGURU_SERIALIZE") == "1":  # --log-json: Spark's lines are JSON objects too
        options.append("-Dmedallion.spark.appender=json")
    if not native_blas_available():
        # Spark ML's BLAS would try the system's libblas first and print that dlopen failed before
        # falling back to its Java implementation: go straight to the fallback it would use anyway.
        options.append("-Ddev.ludovic.netlib.blas.allowNative=false")
    return " ".join(options)


def native_blas_available() -> bool:
    """Whether this machine has the system BLAS (``libblas.so.3``) that Spark ML's native path loads."""
    return ctypes.util.find_library("blas") is not None


def current_log_level() -> str:
    """medallion's log level for the sessions of this process: ``MEDALLION_LOG_LEVEL``, else INFO."""
    return (os.environ.get(LOG_LEVEL_ENV) or "INFO").upper()


def session_conf(cfg: Config, log_level: str | None = None) -> dict[str, str]:
    """The full Spark configuration for ``cfg``: base settings, local extras, then the user's own.

    ``log_level`` is medallion's (default: ``current_log_level()``).
    """
    conf = dict(BASE_CONF)
    conf["spark.driver.extraJavaOptions"] = driver_java_options(log_level or current_log_level())
    if cfg.spark.master.startswith("local"):
        conf |= LOCAL_CONF
        conf["spark.driver.memory"] = cfg.spark.driver_memory
    partitions = cfg.spark.shuffle_partitions or local_cores(cfg.spark.master)
    if partitions:
        conf["spark.sql.shuffle.partitions"] = str(partitions)
    conf |= cfg.spark.conf
    if cfg.ingest.source == "native" and cfg.ingest.native_jars:
        conf["spark.jars"] = ",".join(_with_jars(conf.get("spark.jars", ""), cfg.ingest.native_jars))
    return conf


def _with_jars(listed: str, extra: list[str]) -> list[str]:
    """``spark.jars`` (comma-separated) plus ``extra``, local paths made absolute (executors of a cluster
    fetch them from the driver; a relative path would depend on each process's working directory)."""
    jars = [j.strip() for j in listed.split(",") if j.strip()]
    for jar in extra:
        path = jar if "://" in jar else str(Path(jar).expanduser().resolve())
        if path not in jars:
            jars.append(path)
    return jars


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
    """Return the active session or build one from ``cfg``.

    It registers no data source: a job that reads a stream registers the source it reads
    (``medallion.engines.kafka.source.register``), so the batch stages never re-register one (which Spark warns
    about) and the Kafka source's module loads only where it is used.
    """
    # Python workers must run the interpreter that has medallion installed, not whatever is on PATH.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    if cfg.spark.master.startswith("local"):
        # The driver binds to 127.0.0.1 already (LOCAL_CONF); saying so here too stops Spark from looking
        # up the host's address and warning that the hostname resolves to a loopback address.
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    # lazy: pyspark loads only when a session is made, not for this module's settings
    from pyspark.logger import PySparkLogger
    from pyspark.sql import SparkSession

    level = current_log_level()
    for name in PYSPARK_ERROR_LOGGERS:
        PySparkLogger.getLogger(name).setLevel(logging.DEBUG if level == "DEBUG" else logging.CRITICAL)
    builder = SparkSession.builder.master(cfg.spark.master).appName(cfg.spark.app_name)
    for key, value in session_conf(cfg, level).items():
        builder = builder.config(key, value)
    with _jvm_ignores_sigterm():
        return builder.getOrCreate()


@contextlib.contextmanager
def _jvm_ignores_sigterm() -> Iterator[None]:
    """Start the JVM with SIGTERM ignored, as PySpark already starts it with SIGINT ignored: a SIGTERM
    for the whole process group (``kill -TERM -PGID``, a supervisor stopping a service) then reaches
    only the Python driver, which stops cleanly (the ingest after its batch), instead of the JVM's
    shutdown hooks stopping Spark under a running batch. The JVM leaves a signal that was ignored at its
    start ignored, and still ends with the driver (PySpark ends it when its stdin closes). Only the
    child is changed (PySpark's own ``preexec_fn`` is extended), so the driver never misses a signal."""
    # lazy: pyspark loads only when a session is made, not for this module's settings
    from pyspark import java_gateway

    launch = java_gateway.Popen

    def popen(*args: Any, **kwargs: Any) -> Any:
        before = kwargs.get("preexec_fn")

        def preexec() -> None:
            if before is not None:
                before()
            signal.signal(signal.SIGTERM, signal.SIG_IGN)

        return launch(*args, **{**kwargs, "preexec_fn": preexec})

    java_gateway.Popen = popen  # type: ignore[misc,assignment]
    try:
        yield
    finally:
        java_gateway.Popen = launch  # type: ignore[misc]
