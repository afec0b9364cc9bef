from __future__ import annotations

import ctypes.util
import logging
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import medallion
from medallion.core.config import load_config
from medallion.engines.spark import (
    LOG4J2_FILE,
    LOG_LEVEL_ENV,
    PYSPARK_ERROR_LOGGERS,
    local_cores,
    session_conf,
    spark_log_levels,
)
from tests.conftest import CONFIG_DIR, REPO


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


# --- Spark's logging -------------------------------------------------------------------------------

LOG4J_LINE = re.compile(r"^\S+ \S+ (WARN|INFO) |^\d\d:\d\d:\d\d (WARN|INFO) +spark ", re.MULTILINE)


def _java_options(level: str | None) -> str:
    cfg = load_config("local", CONFIG_DIR, environ={})
    return session_conf(cfg, log_level=level)["spark.driver.extraJavaOptions"]


def test_driver_gets_the_packaged_log4j_file_and_keeps_utc() -> None:
    options = _java_options("INFO").split()
    assert "-Duser.timezone=UTC" in options
    assert "-XX:-DontCompileHugeMethods" in options  # wide generated methods are JIT-compiled too
    files = [o.removeprefix("-Dlog4j2.configurationFile=") for o in options if "configurationFile" in o]
    assert files == [LOG4J2_FILE.as_uri()]
    assert LOG4J2_FILE.is_file() and LOG4J2_FILE.parent == Path(medallion.__file__).parent / "engines"
    # Spark ML's native BLAS is tried only where the system has one (else it prints a dlopen failure).
    blas_off = "-Ddev.ludovic.netlib.blas.allowNative=false" in options
    assert blas_off == (ctypes.util.find_library("blas") is None)


@pytest.mark.parametrize(
    ("level", "root", "benign"),
    [
        ("DEBUG", "INFO", "INFO"),
        ("debug", "INFO", "INFO"),
        ("INFO", "WARN", "ERROR"),
        ("WARNING", "WARN", "ERROR"),
        ("ERROR", "ERROR", "ERROR"),
    ],
)
def test_spark_levels_follow_our_log_level(level: str, root: str, benign: str) -> None:
    options = _java_options(level).split()
    assert f"-Dmedallion.spark.level={root}" in options
    assert f"-Dmedallion.spark.benign={benign}" in options
    assert spark_log_levels(level) == {
        "medallion.spark.level": root,
        "medallion.spark.benign": benign,
        "medallion.spark.benign.match": "NEUTRAL" if level.upper() == "DEBUG" else "DENY",
    }


def test_the_level_comes_from_the_environment_unless_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(LOG_LEVEL_ENV, "DEBUG")
    assert "-Dmedallion.spark.level=INFO" in _java_options(None).split()
    monkeypatch.delenv(LOG_LEVEL_ENV)
    assert "-Dmedallion.spark.level=WARN" in _java_options(None).split()


def test_the_sessions_jvm_compiles_huge_methods(spark: Any) -> None:
    """A wide stage's generated method is over HotSpot's 8,000-byte limit: the JVM must compile it anyway."""
    jvm = spark.sparkContext._jvm
    arguments = list(jvm.java.lang.management.ManagementFactory.getRuntimeMXBean().getInputArguments())
    assert "-XX:-DontCompileHugeMethods" in arguments


def test_every_logger_the_log4j_file_names_is_a_class_spark_has(spark: Any) -> None:
    # A renamed class would leave its warnings at the root level, silently: check the names against the JVM.
    names = re.findall(r"^logger\.\w+\.name = (\S+)$", LOG4J2_FILE.read_text(), re.MULTILINE)
    assert len(names) >= 5
    for name in names:
        spark._jvm.java.lang.Class.forName(name)  # raises when there is no such class


def test_the_session_logs_at_the_files_levels(spark: Any) -> None:
    log_manager = spark._jvm.org.apache.logging.log4j.LogManager
    assert str(log_manager.getRootLogger().getLevel()) == "WARN"
    assert str(log_manager.getLogger("org.apache.hadoop.util.NativeCodeLoader").getLevel()) == "ERROR"


@pytest.mark.integration
def test_sessions_start_quietly_and_register_no_source() -> None:
    # In a fresh process, as a command builds its session: twice (the stages of `medallion run` each ask),
    # then a reader registers the Kafka source once. No log4j line, no "replaced ... data source".
    probe = (
        "from medallion.core.config import load_config\n"
        "from medallion.engines.kafka.source import register\n"
        "from medallion.engines.spark import get_spark\n"
        f"cfg = load_config('local', {str(CONFIG_DIR)!r}, {{'spark.master': 'local[1]'}}, environ={{}})\n"
        "spark = get_spark(cfg)\n"
        "manager = get_spark(cfg)._jsparkSession.sessionState().dataSourceManager()\n"
        "print('before', manager.dataSourceExists('medallion_kafka'))\n"
        "register(spark)\n"
        "print('after', manager.dataSourceExists('medallion_kafka'))\n"
        "spark.range(3).count()\n"
        "try:\n"
        "    spark.range(1).select('no_such_column')\n"
        "except Exception as exc:\n"
        "    print('raised', type(exc).__name__)\n"
        "spark.stop()\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEDALLION")}
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=180, env=env, cwd=REPO
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["before", "False", "after", "True", "raised", "AnalysisException"]
    assert "no_such_column" not in out.stderr  # PySpark's JSON log of the error, with the JVM's trace
    assert "replaced a previously registered" not in out.stderr
    assert "Using Spark's default log4j profile" not in out.stderr
    assert "Setting default log level" not in out.stderr
    assert "StatusLogger" not in out.stderr  # log4j's complaints about its configuration file
    assert not LOG4J_LINE.findall(out.stderr), out.stderr


def test_pyspark_logs_no_analysis_error_traces_below_debug(spark: Any) -> None:
    from pyspark.logger import PySparkLogger

    for name in PYSPARK_ERROR_LOGGERS:  # the session fixture's get_spark set them (at the default level)
        assert not PySparkLogger.getLogger(name).isEnabledFor(logging.CRITICAL - 1)
