"""Kafka administration against both real brokers (Tansu, Apache Kafka), and checkpoint reading without Spark."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from medallion.core.errors import ConfigError, TerminalError, TransientError
from medallion.engines.embedded import find_free_port
from medallion.engines.kafka.admin import (
    LogOffsets,
    add_partitions,
    bootstrap_addresses,
    checkpoint_offsets,
    consumer_lag,
    end_offsets,
    ensure_topics,
)
from tests.fixtures.broker import EmbeddedKafka, produce


@pytest.mark.integration
def test_ensure_topics_is_idempotent(kafka_broker: EmbeddedKafka, request: pytest.FixtureRequest) -> None:
    name = f"ensure_{request.node.name[-20:]}_{find_free_port()}".replace("[", "_").replace("]", "")
    assert ensure_topics(kafka_broker.bootstrap, {name: 4}) == [name]
    assert ensure_topics(kafka_broker.bootstrap, {name: 4}) == []
    with LogOffsets(kafka_broker.bootstrap) as lo:
        assert lo.partitions([name, "no_such_topic_here"]) == {name: [0, 1, 2, 3]}


@pytest.mark.integration
def test_end_offsets_is_the_true_log_end_not_the_listed_latest(
    kafka_broker: EmbeddedKafka, kafka_topic: str
) -> None:
    bootstrap = kafka_broker.bootstrap
    # Three sends, each flushed, so each partition's log holds several record batches.
    for start in (0, 900, 1800):
        produce(bootstrap, kafka_topic, [(i % 3, None, b"x") for i in range(start, start + 900)])
    ends = end_offsets(bootstrap, kafka_topic)
    assert ends == {0: 900, 1: 900, 2: 900}

    with LogOffsets(bootstrap) as lo:
        listed = lo.listed(lo.all_partitions([kafka_topic]), "latest")
        bounds = lo.bounds(listed)
    # ListOffsets(latest) is only a hint: on Tansu 0.6.0 it is the newest batch's base offset + 1.
    assert all(listed[tp] <= bounds[tp].end == ends[tp[1]] for tp in listed)
    assert {b.start for b in bounds.values()} == {0}


@pytest.mark.integration
def test_end_offsets_of_empty_and_missing_topics(kafka_broker: EmbeddedKafka, kafka_topic: str) -> None:
    assert end_offsets(kafka_broker.bootstrap, kafka_topic) == {0: 0, 1: 0, 2: 0}
    assert end_offsets(kafka_broker.bootstrap, f"{kafka_topic}_missing") == {}


@pytest.mark.integration
def test_consumer_lag(kafka_broker: EmbeddedKafka, kafka_topic: str) -> None:
    produce(kafka_broker.bootstrap, kafka_topic, [(i % 3, None, b"x") for i in range(300)])
    lag = consumer_lag(kafka_broker.bootstrap, kafka_topic, {0: 100, 1: 40})
    assert lag == {0: 0, 1: 60, 2: 100}


@pytest.mark.integration
def test_add_partitions(
    kafka_broker: EmbeddedKafka, kafka_topic: str, request: pytest.FixtureRequest
) -> None:
    bootstrap = kafka_broker.bootstrap
    assert add_partitions(bootstrap, kafka_topic, 3) is False  # already that many
    with pytest.raises(ConfigError, match="cannot shrink"):
        add_partitions(bootstrap, kafka_topic, 2)
    with pytest.raises(ConfigError, match="no such topic"):
        add_partitions(bootstrap, f"{kafka_topic}_missing", 2)
    if request.node.callspec.params["kafka_broker"] == "tansu":
        # Tansu 0.6.0 has no CreatePartitions: the error says so and names the broker.
        with pytest.raises(TerminalError, match=rf"(?s){bootstrap} cannot add partitions.*CreatePartitions"):
            add_partitions(bootstrap, kafka_topic, 5)
        return
    assert add_partitions(bootstrap, kafka_topic, 5) is True
    assert len(end_offsets(bootstrap, kafka_topic)) == 5


@pytest.mark.integration
def test_unreachable_broker_is_a_transient_error_naming_it() -> None:
    bootstrap = f"127.0.0.1:{find_free_port()}"
    with pytest.raises(TransientError, match=f"Kafka broker at {bootstrap} is unreachable"):
        LogOffsets(bootstrap).check_reachable()


@pytest.mark.unit
def test_bootstrap_addresses() -> None:
    assert bootstrap_addresses("h1:9093, PLAINTEXT://h2:19092,[::1]:9094,h4") == [
        ("h1", 9093),
        ("h2", 19092),
        ("::1", 9094),
        ("h4", 9092),
    ]


def _write_checkpoint(root: Path, offsets: dict[int, list[str]], commits: list[int]) -> None:
    (root / "offsets").mkdir(parents=True)
    (root / "commits").mkdir()
    for batch, sources in offsets.items():
        meta = json.dumps({"batchWatermarkMs": 0, "batchTimestampMs": 1, "conf": {}})
        (root / "offsets" / str(batch)).write_text("\n".join(["v1", meta, *sources]))
        (root / "offsets" / f".{batch}.crc").write_text("crc")
    for batch in commits:
        (root / "commits" / str(batch)).write_text('v1\n{"nextBatchWatermarkMs":0}')


@pytest.mark.unit
def test_checkpoint_offsets_reads_the_newest_committed_batch(tmp_path: Path) -> None:
    _write_checkpoint(
        tmp_path,
        {
            0: ['{"t": {"0": 5, "1": 7}}'],
            1: ['{"t": {"0": 9, "1": 7}}', "-", '{"logOffset": 3}'],
            2: ['{"t": {"0": 20, "1": 30}}'],  # planned, not committed: not counted
        },
        commits=[0, 1],
    )
    assert checkpoint_offsets(tmp_path) == {"t": {0: 9, 1: 7}}
    assert checkpoint_offsets(str(tmp_path)) == {"t": {0: 9, 1: 7}}


@pytest.mark.unit
def test_checkpoint_offsets_of_a_new_or_missing_checkpoint(tmp_path: Path) -> None:
    assert checkpoint_offsets(tmp_path / "nothing") == {}
    _write_checkpoint(tmp_path, {0: ['{"t": {"0": 5}}']}, commits=[])
    assert checkpoint_offsets(tmp_path) == {}
