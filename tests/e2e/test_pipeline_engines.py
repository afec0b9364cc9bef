"""The pipeline on the real engines a user outgrows a laptop for, without Docker.

One run puts every such engine together, as ``--env prod`` with the addresses in the environment (as
config/prod.yaml expects): Apache Kafka (KRaft, from Maven's jars), ``ingest.source: native`` (Spark's own
``kafka`` format, its connector from Maven), a standalone Spark cluster (master + worker from pyspark's
jars: executors in other processes than the driver), and the lake at ``s3a://bucket/lake`` on a local S3
endpoint (moto; hadoop-aws from Maven for Spark, the AWS variables for pyarrow, boto3 and Feast).

The pipeline runs as the ``medallion`` command, in its own process and working directory (one process
has one SparkContext, and the test session's is local), and is checked from this process without Spark:
`tests.e2e.checks`, ``status``, the ledger and Feast's reads, all through pyarrow's S3 filesystem.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.dataset as ds
import pytest

from medallion import serving
from medallion.core import catalog, lakefs
from medallion.core.config import Config, load_config
from medallion.features import USER_FEATURES
from medallion.operations.status import collect
from tests.conftest import CONFIG_DIR
from tests.e2e import checks
from tests.fixtures import jvm
from tests.fixtures.apache_kafka import ApacheKafka, kafka_tool

PII_KEY = "engines-test-key-0123456789abcdef"


def _parquet(path: str) -> Any:
    """`checks.parquet` for any lake: pyarrow's filesystem for the path (``s3a://`` is ``s3://`` there)."""
    filesystem, inner = lakefs.filesystem_and_path(path)
    return ds.dataset(
        inner, filesystem=filesystem, format="parquet", partitioning="hive", ignore_prefixes=["_", "."]
    ).to_table()


def _medallion(args: list[str], environ: dict[str, str], cwd: Path, timeout_s: float = 900) -> str:
    script = Path(sys.executable).with_name("medallion")
    done = subprocess.run(
        [str(script), "--debug", "--config-dir", str(CONFIG_DIR), "--env", "prod", *args],
        env=environ,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, (
        f"medallion {' '.join(args)} exited {done.returncode}:\n{done.stdout[-4000:]}\n{done.stderr[-8000:]}"
    )
    return done.stdout


def _prod_environ(settings: dict[str, Any], base: dict[str, str]) -> dict[str, str]:
    """The process environment of a prod run: config/prod.yaml's variables and MEDALLION__ overrides."""
    environ = dict(base)
    for dotted, value in settings.items():
        name = "MEDALLION__" + dotted.upper().replace(".", "__")
        environ[name] = value if isinstance(value, str) else json.dumps(value)
    return environ


@pytest.mark.e2e
def test_pipeline_on_apache_kafka_native_source_spark_cluster_and_s3a_lake(
    apache_kafka: ApacheKafka,
    spark_cluster: Any,
    s3_endpoint: Any,
    redis_db: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bucket = s3_endpoint.make_bucket()
    connector = [str(j) for j in jvm.jars("spark-kafka")]
    spark_conf = s3_endpoint.spark_conf() | {
        "spark.driver.host": "127.0.0.1",
        "spark.driver.bindAddress": "127.0.0.1",
        "spark.executor.memory": "2g",
        "spark.cores.max": str(spark_cluster.cores),
        "spark.ui.enabled": "false",
    }
    environ = _prod_environ(
        {
            "kafka.topic": "engines_events",
            "kafka.partitions": 3,
            "kafka.replication_factor": 1,
            "spark.shuffle_partitions": 2,
            "spark.conf": spark_conf,
            "ingest.source": "native",
            "ingest.native_jars": connector,
            "ingest.max_offsets_per_trigger": 1500,  # several micro-batches
        },
        dict(os.environ)
        | s3_endpoint.environ
        | {
            "MEDALLION_LAKE_ROOT": f"s3a://{bucket}/lake",
            "MEDALLION_KAFKA_BOOTSTRAP": apache_kafka.bootstrap,
            "MEDALLION_SPARK_MASTER": spark_cluster.master,
            "MEDALLION_REDIS_URL": redis_db.url,
            "MEDALLION_PII_KEY": PII_KEY,
            "SPARK_LOCAL_IP": "127.0.0.1",  # the driver, as the cluster's daemons, on the loopback
        },
    )
    workdir = tmp_path / "elsewhere"  # the run's working directory holds nothing it needs
    workdir.mkdir()
    _medallion(["run", "--count", "4000", "--seed", "7", "--bad-ratio", "0.02"], environ, workdir)

    # This process reads the same lake without Spark, from the same configuration.
    for name, value in s3_endpoint.environ.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("MEDALLION_PII_KEY", PII_KEY)
    monkeypatch.setattr(checks, "parquet", _parquet)
    cfg: Config = load_config("prod", CONFIG_DIR, {}, environ=environ)
    assert cfg.lake.root == f"s3a://{bucket}/lake" and cfg.spark.master == spark_cluster.master

    counts = checks.assert_pipeline_correct(cfg)
    assert counts["records"] == 4000 and counts["dlq"] > 0 and counts["bronze"] > 0
    users = sorted(
        set(_parquet(catalog.gold_table(USER_FEATURES.name).path(cfg)).column("user_id").to_pylist())
    )
    checks.assert_pipeline_correct(cfg, serving.online_features(cfg, users[:25]))

    # The executors were other processes than the driver: the worker started them, and they ran tasks.
    executors = [p for p in (spark_cluster.work_dir / "work").glob("app-*/*") if p.is_dir()]
    assert executors, "no executor ran on the worker"
    assert any(
        "Finished task" in (e / "stderr").read_text(errors="replace")
        for e in executors
        if (e / "stderr").exists()
    )

    # `status` (pyarrow on s3://, no Spark) sees the lake, the ledger and no lag.
    report = collect(cfg)
    rows = {table.table: table.rows for table in report.tables}
    assert rows[catalog.BRONZE.name] == counts["bronze"] and rows[catalog.BRONZE_DLQ.name] == counts["dlq"]
    assert rows[catalog.SILVER.name] == counts["silver"]
    assert report.broker.reachable and report.kafka.lag == 0
    assert {r.stage for r in report.runs} >= {"ingest", "silver", "gold", "materialize"}
    assert lakefs.list_files(catalog.LEDGER.path(cfg), suffix=".json")

    # Feast's offline store reads Gold on s3:// too: a point-in-time training set at each sampled user's
    # newest Gold row gives exactly that row's features.
    gold = _parquet(catalog.gold_table(USER_FEATURES.name).path(cfg)).to_pandas()
    latest = (
        gold.sort_values("event_timestamp").groupby("user_id").tail(1).set_index("user_id").loc[users[:10]]
    )
    entity = pd.DataFrame({"user_id": users[:10], "event_timestamp": list(latest["event_timestamp"])})
    refs = [f"{USER_FEATURES.name}:{name}" for name in USER_FEATURES.feature_names]
    training = serving.historical_features(cfg, entity, refs).set_index("user_id")
    for name in USER_FEATURES.feature_names:
        got, want = list(training.loc[users[:10], name]), list(latest[name])
        assert len(got) == len(want) and all(map(checks.same_value, got, want)), (name, got, want)

    # Re-running is safe: nothing new in the topic, so nothing changes.
    _medallion(["run", "--count", "0"], environ, workdir)
    assert checks.assert_pipeline_correct(cfg) == counts


@pytest.mark.integration
def test_kafka_consumer_groups_shows_the_lag_that_status_reports(
    spark: Any, apache_kafka: ApacheKafka, make_config: Any
) -> None:
    from medallion.engines.kafka.admin import ensure_topics
    from medallion.operations import pipeline
    from tests.fixtures.broker import produce

    topic = "lag_tool_events"
    cfg = make_config(
        **{"kafka.bootstrap_servers": apache_kafka.bootstrap, "kafka.topic": topic, "kafka.embedded": False}
    )
    ensure_topics(apache_kafka.bootstrap, {topic: 3})
    pipeline.produce(cfg, count=600, seed=3)
    pipeline.ingest(cfg, once=True)
    produce(apache_kafka.bootstrap, topic, [(p, None, b"{}") for p in (0, 0, 1) for _ in range(10)])

    status = collect(cfg).kafka
    assert status.lag == 30
    described = kafka_tool(
        apache_kafka,
        "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand",
        "--bootstrap-server", apache_kafka.bootstrap, "--describe", "--group", f"medallion-bronze-{topic}",
    )  # fmt: skip
    tool = {}
    for line in described.splitlines():
        fields = line.split()
        if len(fields) >= 6 and fields[1] == topic:  # GROUP TOPIC PARTITION CURRENT-OFFSET LOG-END-OFFSET LAG
            tool[int(fields[2])] = {
                "committed": int(fields[3]),
                "log_end": int(fields[4]),
                "lag": int(fields[5]),
            }
    assert tool == {
        p.partition: {"committed": p.committed, "log_end": p.log_end, "lag": p.lag} for p in status.partitions
    }
