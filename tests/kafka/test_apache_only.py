"""What only a real Apache Kafka can show the source: partitions added while it runs, transactions,
compaction and DeleteRecords (the embedded Tansu 0.6.0 has none of them)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from medallion.core.errors import TerminalError
from medallion.engines.kafka.admin import (
    add_partitions,
    checkpoint_offsets,
    end_offsets,
    ensure_topics,
    log_bounds,
)
from medallion.engines.kafka.source import register, source_error
from tests.fixtures.apache_kafka import ApacheKafka
from tests.fixtures.broker import produce


@pytest.fixture(scope="module")
def spark(spark: Any) -> Any:
    register(spark)
    return spark


@pytest.fixture
def topic_name(request: pytest.FixtureRequest) -> str:
    return "".join(c if c.isalnum() else "_" for c in request.node.name)[:60] + f"_{time.time_ns() % 10**9}"


def _options(broker: ApacheKafka, topic: str, **extra: str) -> dict[str, str]:
    return {
        "kafka.bootstrap.servers": broker.bootstrap,
        "subscribe": topic,
        "startingOffsets": "earliest",
    } | extra


def _run_available_now(spark: Any, options: dict[str, str], checkpoint: Path) -> list[dict]:
    rows: list[dict] = []

    def sink(batch: Any, batch_id: int) -> None:
        rows.extend(r.asDict() for r in batch.collect())

    query = (
        spark.readStream.format("medallion_kafka").options(**options).load()
        .writeStream.foreachBatch(sink).option("checkpointLocation", str(checkpoint))
        .trigger(availableNow=True).start()
    )  # fmt: skip
    try:
        query.awaitTermination(120)
        assert not query.isActive, "availableNow query did not finish"
    finally:
        query.stop()
    return rows


def _positions(rows: list[dict]) -> list[tuple[int, int]]:
    positions = sorted((r["partition"], r["offset"]) for r in rows)
    assert len(positions) == len(set(positions)), "a record was read twice"
    return positions


def _visible(bootstrap: str, topic: str, partition: int) -> dict[int, bytes]:
    """Every record a plain read_committed consumer sees in the partition, by offset (the truth)."""
    ends = end_offsets(bootstrap, topic)
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"truth-{time.time_ns()}",
            "enable.partition.eof": True,
            "isolation.level": "read_committed",
        }
    )
    consumer.assign([TopicPartition(topic, partition, 0)])
    seen: dict[int, bytes] = {}
    try:
        if ends[partition] == 0:
            return seen
        while True:
            msg = consumer.poll(10)
            assert msg is not None, f"{topic}[{partition}] stalled"
            if msg.error():
                break  # partition EOF
            seen[msg.offset()] = msg.value()
    finally:
        consumer.close()
    return seen


@pytest.mark.integration
def test_partitions_added_while_the_stream_runs_are_ingested(
    spark: Any, apache_kafka: ApacheKafka, topic_name: str, tmp_path: Path
) -> None:
    bootstrap = apache_kafka.bootstrap
    ensure_topics(bootstrap, {topic_name: 2})
    produce(bootstrap, topic_name, [(i % 2, None, b"old%d" % i) for i in range(40)])
    rows: list[dict] = []
    query = (
        spark.readStream.format("medallion_kafka").options(**_options(apache_kafka, topic_name)).load()
        .writeStream.foreachBatch(lambda b, _: rows.extend(r.asDict() for r in b.collect()))
        .option("checkpointLocation", str(tmp_path / "ck")).trigger(processingTime="200 milliseconds").start()
    )  # fmt: skip
    try:
        _wait_for(lambda: len(rows) >= 40, "the first 40 records")
        assert add_partitions(bootstrap, topic_name, 4) is True  # CreatePartitions, while the query runs
        produce(bootstrap, topic_name, [(2 + i % 2, None, b"new%d" % i) for i in range(60)])
        produce(bootstrap, topic_name, [(i % 2, None, b"more%d" % i) for i in range(10)])
        _wait_for(lambda: len(rows) >= 110, "the records of the new partitions")
        time.sleep(1)  # a duplicate would arrive in a later batch
    finally:
        query.stop()
    got = _positions(rows)
    assert [pos for pos in got if pos[0] >= 2] == [(p, o) for p in (2, 3) for o in range(30)]
    assert len(got) == 110
    assert checkpoint_offsets(tmp_path / "ck") == {topic_name: {0: 25, 1: 25, 2: 30, 3: 30}}


def _wait_for(condition: Any, what: str, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


@pytest.mark.integration
def test_transactions_committed_are_read_through_their_markers_aborted_never_and_open_ones_wait(
    spark: Any, apache_kafka: ApacheKafka, topic_name: str, tmp_path: Path
) -> None:
    bootstrap, ck = apache_kafka.bootstrap, tmp_path / "ck"
    ensure_topics(bootstrap, {topic_name: 1})
    producer = Producer({"bootstrap.servers": bootstrap, "transactional.id": f"tx-{topic_name}"})
    producer.init_transactions(30)

    def transaction(prefix: str, n: int, commit: bool) -> None:
        producer.begin_transaction()
        for i in range(n):
            producer.produce(topic_name, value=f"{prefix}{i}".encode(), partition=0)
        producer.flush(30)
        if commit:
            producer.commit_transaction(30)
        else:
            producer.abort_transaction(30)

    transaction("a", 50, commit=True)  # offsets 0..49, commit marker at 50
    transaction("x", 30, commit=False)  # 51..80 aborted, abort marker at 81
    transaction("b", 20, commit=True)  # 82..101, marker at 102: the log ends at 103
    producer.begin_transaction()  # an open transaction: 103..107, not yet stable
    for i in range(5):
        producer.produce(topic_name, value=f"c{i}".encode(), partition=0)
    producer.flush(30)

    rows = _run_available_now(spark, _options(apache_kafka, topic_name), ck)
    values = [bytes(r["value"]).decode() for r in sorted(rows, key=lambda r: r["offset"])]
    assert values == [f"a{i}" for i in range(50)] + [f"b{i}" for i in range(20)]
    assert [r["offset"] for r in rows if bytes(r["value"]).startswith(b"b")][0] == 82  # the gaps are there
    # read_committed: the stream stops at the last stable offset, before the open transaction
    assert checkpoint_offsets(ck) == {topic_name: {0: 103}}

    producer.commit_transaction(30)  # 103..107 become visible, marker at 108
    rows = _run_available_now(spark, _options(apache_kafka, topic_name), ck)
    assert sorted(bytes(r["value"]) for r in rows) == [b"c%d" % i for i in range(5)]
    assert (
        checkpoint_offsets(ck) == {topic_name: {0: 109}} == {topic_name: end_offsets(bootstrap, topic_name)}
    )


@pytest.mark.integration
def test_a_compacted_topics_gaps_are_read_through(
    spark: Any, apache_kafka: ApacheKafka, topic_name: str, tmp_path: Path
) -> None:
    bootstrap = apache_kafka.bootstrap
    admin = AdminClient({"bootstrap.servers": bootstrap})
    compact = {
        "cleanup.policy": "compact",
        "segment.ms": "100",  # a segment rolls at the first record 100 ms after it opened
        "min.cleanable.dirty.ratio": "0.01",
        "min.compaction.lag.ms": "0",
        "delete.retention.ms": "100",
    }
    for future in admin.create_topics([NewTopic(topic_name, 1, 1, config=compact)]).values():
        future.result()
    ensure_topics(bootstrap, {topic_name: 1})  # waits until the partition has a leader
    for round_ in range(5):  # 10 keys written 5 times over, each round in its own segment
        produce(bootstrap, topic_name, [(0, b"k%d" % k, b"r%d-k%d" % (round_, k)) for k in range(10)])
        time.sleep(0.3)
    deadline = time.monotonic() + 60
    # Offset 0 (round 0's k0, superseded by round 4) is gone once the cleaner has run. Waiting for the
    # count to change instead raced: the first "roll" record changes it before anything is cleaned.
    while 0 in (truth := _visible(bootstrap, topic_name, 0)):
        assert time.monotonic() < deadline, "the log cleaner did not compact the topic within 60 s"
        produce(bootstrap, topic_name, [(0, b"roll", b"roll")])  # rolls the active segment
        time.sleep(0.5)

    rows = _run_available_now(spark, _options(apache_kafka, topic_name), tmp_path / "ck")
    after = _visible(bootstrap, topic_name, 0)
    # The cleaner may go on while the query reads (later rounds, older "roll" records): what the
    # source read lies between what was visible before it and what is visible after it.
    assert after.items() <= {r["offset"]: bytes(r["value"]) for r in rows}.items() <= truth.items()
    (bounds,) = log_bounds(bootstrap, topic_name).values()
    assert bounds.start < min(truth) and len(truth) < bounds.end - bounds.start  # gaps, read through
    latest = {bytes(r["key"]): bytes(r["value"]) for r in sorted(rows, key=lambda r: r["offset"])}
    assert {k: v for k, v in latest.items() if k != b"roll"} == {b"k%d" % k: b"r4-k%d" % k for k in range(10)}
    assert checkpoint_offsets(tmp_path / "ck") == {topic_name: end_offsets(bootstrap, topic_name)}


def delete_records(bootstrap: str, topic: str, before: dict[int, int]) -> None:
    """Kafka's DeleteRecords: move each partition's log start up to ``before[partition]``."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    request = [TopicPartition(topic, p, o) for p, o in before.items()]
    for future in admin.delete_records(request, request_timeout=30).values():
        future.result()


@pytest.mark.integration
def test_records_deleted_before_the_stream_read_them_fail_the_query_or_are_skipped(
    spark: Any, apache_kafka: ApacheKafka, topic_name: str, tmp_path: Path
) -> None:
    bootstrap, ck = apache_kafka.bootstrap, tmp_path / "ck"
    ensure_topics(bootstrap, {topic_name: 3})
    produce(bootstrap, topic_name, [(i % 3, None, b"%d" % i) for i in range(300)])
    assert len(_run_available_now(spark, _options(apache_kafka, topic_name), ck)) == 300

    produce(bootstrap, topic_name, [(i % 3, None, b"%d" % i) for i in range(300, 600)])
    delete_records(bootstrap, topic_name, {0: 150})  # 100..149 of partition 0 go before they are read

    with pytest.raises(
        Exception,
        match=rf"(?s)Data loss: {topic_name}\[0\] needs offset 100 but the log starts at 150 "
        r"\(offsets 100\.\.149 were deleted.*failOnDataLoss=false",
    ) as failure:
        _run_available_now(spark, _options(apache_kafka, topic_name), ck)
    assert isinstance(source_error(failure.value), TerminalError)
    assert checkpoint_offsets(ck) == {topic_name: {0: 100, 1: 100, 2: 100}}  # nothing was skipped

    loss = tmp_path / "data_loss"
    options = _options(apache_kafka, topic_name, failOnDataLoss="false", dataLossLog=str(loss))
    rows = _run_available_now(spark, options, ck)
    assert _positions(rows) == [(0, o) for o in range(150, 200)] + [
        (p, o) for p in (1, 2) for o in range(100, 200)
    ]
    assert checkpoint_offsets(ck) == {topic_name: {0: 200, 1: 200, 2: 200}}
    # The skipped range is kept where the ingest's accounting reads it into that batch's ledger record.
    (kept,) = [json.loads(p.read_text()) for p in loss.iterdir()]
    assert (kept["topic"], kept["partition"], kept["from_offset"], kept["until_offset"]) == (
        topic_name,
        0,
        100,
        150,
    )
