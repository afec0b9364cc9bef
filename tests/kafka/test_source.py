"""The medallion_kafka streaming source: pure offset logic, then real Spark against the embedded broker."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from medallion.core.errors import ConfigError, TerminalError, TransientError
from medallion.engines.kafka.admin import LogBounds, checkpoint_offsets, end_offsets, ensure_topics
from medallion.engines.kafka.source import (
    ARROW_SCHEMA,
    OffsetRange,
    SourceOptions,
    _Columns,
    initial_offsets,
    offset_ranges,
    offsets_from_json,
    offsets_to_json,
    parse_starting_offsets,
    plan_end,
    read_range,
    register,
    source_error,
    split_ranges,
    spread_limit,
)
from tests.fixtures.broker import EmbeddedKafka, produce

T = "t"

# --- options and startingOffsets ------------------------------------------------------------------


@pytest.mark.unit
def test_options_are_read_case_insensitively_and_kafka_settings_pass_through() -> None:
    opts = SourceOptions.parse(
        {
            "kafka.bootstrap.servers": "h:9092",
            "subscribe": "a, b",
            "maxoffsetspertrigger": "500",  # as Spark hands it over
            "failOnDataLoss": "False",
            "kafka.security.protocol": "SASL_SSL",
        }
    )
    assert opts.topics == ("a", "b")
    assert opts.max_offsets_per_trigger == 500
    assert opts.fail_on_data_loss is False
    assert dict(opts.kafka) == {"security.protocol": "SASL_SSL"}


@pytest.mark.unit
@pytest.mark.parametrize(
    "options, message",
    [
        ({"subscribe": "a"}, "kafka.bootstrap.servers"),
        ({"kafka.bootstrap.servers": "h:1"}, "subscribe"),
        (
            {"kafka.bootstrap.servers": "h:1", "subscribe": "a", "maxOffsetPerTrigger": "5"},
            "maxoffsetpertrigger",
        ),
        ({"kafka.bootstrap.servers": "h:1", "subscribe": "a", "maxOffsetsPerTrigger": "0"}, "positive"),
        ({"kafka.bootstrap.servers": "h:1", "subscribe": "a", "failOnDataLoss": "maybe"}, "true or false"),
        ({"kafka.bootstrap.servers": "h:1", "subscribe": "a", "startingOffsets": "{bad"}, "startingOffsets"),
    ],
)
def test_bad_options_are_config_errors(options: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        SourceOptions.parse(options)


@pytest.mark.unit
def test_starting_offsets_parse() -> None:
    assert parse_starting_offsets(" Earliest ", [T]) == "earliest"
    assert parse_starting_offsets("latest", [T]) == "latest"
    assert parse_starting_offsets('{"t": {"0": 12, "1": -2}}', [T]) == {(T, 0): 12, (T, 1): -2}
    with pytest.raises(ConfigError, match="not subscribed"):
        parse_starting_offsets('{"other": {"0": 1}}', [T])
    with pytest.raises(ConfigError):
        parse_starting_offsets('{"t": {"0": -3}}', [T])
    with pytest.raises(ConfigError):
        parse_starting_offsets('{"t": 5}', [T])


@pytest.mark.unit
def test_initial_offsets_resolve_against_the_logs() -> None:
    bounds = {(T, 0): LogBounds(5, 50), (T, 1): LogBounds(0, 10), (T, 2): LogBounds(3, 7)}
    assert initial_offsets("earliest", bounds) == {(T, 0): 5, (T, 1): 0, (T, 2): 3}
    assert initial_offsets("latest", bounds) == {(T, 0): 50, (T, 1): 10, (T, 2): 7}
    # -2 earliest, -1 latest, a partition left out starts at earliest
    assert initial_offsets({(T, 0): 20, (T, 1): -1}, bounds) == {(T, 0): 20, (T, 1): 10, (T, 2): 3}
    with pytest.raises(ConfigError, match="do not exist"):
        initial_offsets({(T, 9): 0}, bounds)


@pytest.mark.unit
def test_offsets_json_round_trip_is_sorted_with_string_partitions() -> None:
    offsets = {("b", 10): 1, ("a", 2): 7, ("a", 1): 3}
    as_json = offsets_to_json(offsets)
    assert json.dumps(as_json) == '{"a": {"1": 3, "2": 7}, "b": {"10": 1}}'
    assert offsets_from_json(json.loads(json.dumps(as_json))) == offsets


# --- the cap and the plan -------------------------------------------------------------------------


@pytest.mark.unit
def test_spread_limit_is_fair_and_gives_unused_share_to_others() -> None:
    ranges = {(T, 0): (0, 1000), (T, 1): (100, 1100), (T, 2): (0, 10)}
    ends = spread_limit(ranges, 300)
    assert ends[(T, 2)] == 10  # small partition drains fully
    assert ends[(T, 0)] - 0 + ends[(T, 1)] - 100 == 290  # the rest is split between the others
    assert abs((ends[(T, 0)] - 0) - (ends[(T, 1)] - 100)) <= 1


@pytest.mark.unit
@given(
    st.dictionaries(
        st.integers(0, 20),
        st.tuples(st.integers(0, 10_000), st.integers(0, 10_000)),
        max_size=12,
    ),
    st.integers(0, 50_000),
)
def test_spread_limit_laws(raw: dict[int, tuple[int, int]], limit: int) -> None:
    ranges = {(T, p): (a, a + n) for p, (a, n) in raw.items()}
    ends = spread_limit(ranges, limit)
    available = sum(u - f for f, u in ranges.values())
    assert sum(ends[tp] - ranges[tp][0] for tp in ranges) == min(limit, available)
    assert all(ranges[tp][0] <= ends[tp] <= ranges[tp][1] for tp in ranges)


@pytest.mark.unit
def test_plan_end_reads_everything_without_a_cap_and_new_partitions_from_log_start() -> None:
    bounds = {(T, 0): LogBounds(0, 100), (T, 1): LogBounds(40, 60)}
    assert plan_end({(T, 0): 10}, bounds, [T]) == {(T, 0): 100, (T, 1): 60}
    capped = plan_end({(T, 0): 10}, bounds, [T], max_rows=30)
    assert capped == {(T, 0): 25, (T, 1): 55}  # 15 + 15, the new partition counted from 40


@pytest.mark.unit
def test_plan_end_with_available_now_target_excludes_later_partitions() -> None:
    bounds = {(T, 0): LogBounds(0, 100), (T, 1): LogBounds(0, 60), (T, 2): LogBounds(0, 5)}
    target = {(T, 0): 80, (T, 1): 60}
    assert plan_end({(T, 0): 10, (T, 1): 60}, bounds, [T], target=target) == {(T, 0): 80, (T, 1): 60}


@pytest.mark.unit
def test_plan_end_data_loss_below_log_start() -> None:
    bounds = {(T, 0): LogBounds(50, 100)}
    with pytest.raises(TerminalError, match=r"t\[0\].*10.*50.*failOnDataLoss=false"):
        plan_end({(T, 0): 10}, bounds, [T])
    assert plan_end({(T, 0): 10}, bounds, [T], max_rows=20, fail_on_data_loss=False) == {(T, 0): 70}


@pytest.mark.unit
def test_plan_end_data_loss_beyond_log_end_and_gone_partitions() -> None:
    bounds = {(T, 0): LogBounds(0, 5)}
    with pytest.raises(TerminalError, match="recreated"):
        plan_end({(T, 0): 90}, bounds, [T])
    with pytest.raises(TerminalError, match="gone"):
        plan_end({(T, 0): 5, (T, 1): 7}, bounds, [T])
    # a topic no longer subscribed is dropped, not data loss
    assert plan_end({(T, 0): 5, ("old", 0): 7}, bounds, [T]) == {(T, 0): 5}
    lenient = plan_end({(T, 0): 90, (T, 1): 7}, bounds, [T], fail_on_data_loss=False)
    assert lenient == {(T, 0): 5}


@pytest.mark.unit
def test_offset_ranges_new_and_reset_partitions_start_at_log_start() -> None:
    asked: list[list[Any]] = []

    def starts(tps: list[Any]) -> dict[Any, int]:
        asked.append(tps)
        return {tp: 3 for tp in tps}

    ranges = offset_ranges({(T, 0): 10, (T, 1): 4}, {(T, 0): 20, (T, 1): 4, (T, 2): 9}, starts)
    assert ranges == [OffsetRange(T, 0, 10, 20), OffsetRange(T, 2, 3, 9)]
    assert asked == [[(T, 2)]]
    with pytest.raises(TerminalError, match="went back"):
        offset_ranges({(T, 0): 50}, {(T, 0): 9}, starts)
    assert offset_ranges({(T, 0): 50}, {(T, 0): 9}, starts, fail_on_data_loss=False) == [
        OffsetRange(T, 0, 3, 9)
    ]


@pytest.mark.unit
def test_split_ranges_by_size_and_min_partitions() -> None:
    big, small = OffsetRange(T, 0, 0, 1000), OffsetRange(T, 1, 0, 10)
    assert split_ranges([big, small]) == [big, small]
    by_size = split_ranges([big, small], max_records=300)
    assert [r.size for r in by_size] == [250, 250, 250, 250, 10]
    by_count = split_ranges([big, small], min_partitions=4)
    assert len(by_count) >= 4 and sum(r.size for r in by_count) == 1010
    assert [r for r in by_count if r.partition == 1] == [small]


@pytest.mark.unit
@given(st.integers(0, 5000), st.integers(0, 5000), st.integers(1, 9), st.integers(1, 700))
def test_split_ranges_cover_each_range_contiguously(a: int, n: int, min_parts: int, max_rec: int) -> None:
    r = OffsetRange(T, 0, a, a + n)
    for pieces in (split_ranges([r], min_partitions=min_parts), split_ranges([r], max_records=max_rec)):
        frm = a
        for piece in pieces:
            assert piece.from_offset == frm and piece.size > 0
            frm = piece.until_offset
        assert frm == a + n


@pytest.mark.unit
def test_arrow_batch_matches_the_declared_schema() -> None:
    class Msg:
        def __init__(self, offset: int, headers: Any, ts: tuple[int, int]) -> None:
            self._o, self._h, self._ts = offset, headers, ts

        def key(self) -> bytes | None:
            return None if self._o == 0 else b"k"

        def value(self) -> bytes:
            return b"v%d" % self._o

        def timestamp(self) -> tuple[int, int]:
            return self._ts

        def headers(self) -> Any:
            return self._h

    cols = _Columns()
    for m in (
        Msg(0, None, (1, 1_700_000_000_123)),
        Msg(3, [("h", b"x"), ("n", None)], (2, 5)),
        Msg(4, None, (0, -1)),
    ):
        cols.add(m, m._o)
    batch = cols.to_batch(T, 7)
    assert batch.schema.equals(ARROW_SCHEMA)
    rows = batch.to_pylist()
    assert [r["offset"] for r in rows] == [0, 3, 4]
    assert [r["timestampType"] for r in rows] == [0, 1, -1]
    assert rows[0]["timestamp"].timestamp() == pytest.approx(1_700_000_000.123)
    assert rows[2]["timestamp"] is None
    assert rows[1]["headers"] == [{"key": "h", "value": b"x"}, {"key": "n", "value": None}]
    assert rows[0]["headers"] is None and rows[0]["key"] is None
    assert {r["topic"] for r in rows} == {T} and {r["partition"] for r in rows} == {7}
    assert pa.RecordBatch.from_pylist([], schema=ARROW_SCHEMA).schema.equals(batch.schema)


# --- real Spark, real broker ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def spark(spark: Any) -> Any:
    """The test session with ``format("medallion_kafka")`` registered, as a job that reads a stream does
    (``get_spark`` registers no source)."""
    register(spark)
    return spark


def _options(broker: EmbeddedKafka, topics: str, **extra: str) -> dict[str, str]:
    return {
        "kafka.bootstrap.servers": broker.bootstrap,
        "subscribe": topics,
        "startingOffsets": "earliest",
    } | extra


def _collecting_sink(rows: list[dict]) -> Callable[[Any, int], None]:
    """A foreachBatch function that keeps the rows (unlike the memory sink, it survives a restart)."""

    def sink(batch: Any, batch_id: int) -> None:
        rows.extend(r.asDict() for r in batch.collect())

    return sink


def _run_available_now(spark: Any, options: dict[str, str], checkpoint: Path) -> tuple[list[dict], Any]:
    """Run one availableNow query from ``checkpoint``; return (the rows it read, the query)."""
    rows: list[dict] = []
    df = spark.readStream.format("medallion_kafka").options(**options).load()
    query = (
        df.writeStream.foreachBatch(_collecting_sink(rows))
        .option("checkpointLocation", str(checkpoint))
        .trigger(availableNow=True)
        .start()
    )
    try:
        query.awaitTermination(120)
        assert not query.isActive, "availableNow query did not finish"
    finally:
        query.stop()
    return rows, query


def _records(n: int, partitions: int, prefix: str = "v") -> list[tuple[int, bytes, bytes]]:
    return [(i % partitions, b"k%d" % i, f"{prefix}{i}".encode()) for i in range(n)]


def _by_position(rows: list[dict]) -> dict[tuple[int, int], bytes]:
    positions = [(r["partition"], r["offset"]) for r in rows]
    assert len(positions) == len(set(positions)), "a record was read twice"
    return {(r["partition"], r["offset"]): bytes(r["value"]) for r in rows}


@pytest.mark.integration
def test_available_now_reads_to_the_true_log_end(
    spark: Any, kafka_broker: EmbeddedKafka, kafka_topic: str, tmp_path: Path
) -> None:
    produce(kafka_broker.bootstrap, kafka_topic, _records(5000, 3))
    rows, query = _run_available_now(spark, _options(kafka_broker, kafka_topic), tmp_path / "ck")

    got = _by_position(rows)
    # every record, once, at the offset it was written to (a partition gets records in send order)
    expected = {(p, i // 3): f"v{i}".encode() for i in range(5000) for p in [i % 3]}
    assert got == expected
    assert {r["topic"] for r in rows} == {kafka_topic}
    assert {r["timestampType"] for r in rows} == {0}
    assert checkpoint_offsets(tmp_path / "ck") == {kafka_topic: {0: 1667, 1: 1667, 2: 1666}}


@pytest.mark.integration
def test_max_offsets_per_trigger_caps_each_batch_and_available_now_still_reads_all(
    spark: Any, kafka_broker: EmbeddedKafka, kafka_topic: str, tmp_path: Path
) -> None:
    produce(kafka_broker.bootstrap, kafka_topic, _records(2500, 3))
    options = _options(kafka_broker, kafka_topic, maxOffsetsPerTrigger="1000")
    rows, query = _run_available_now(spark, options, tmp_path / "ck")

    sizes = [p["numInputRows"] for p in query.recentProgress if p["numInputRows"]]
    assert sizes == [1000, 1000, 500]
    assert len(_by_position(rows)) == 2500


@pytest.mark.integration
def test_starting_offsets_latest_then_restart_reads_only_new_records(
    spark: Any, kafka_broker: EmbeddedKafka, kafka_topic: str, tmp_path: Path
) -> None:
    bootstrap, ck = kafka_broker.bootstrap, tmp_path / "ck"
    produce(bootstrap, kafka_topic, _records(300, 3, "old"))
    options = _options(
        kafka_broker, kafka_topic, startingOffsets="latest", groupIdForLag=f"lag-{kafka_topic}"
    )

    first, _ = _run_available_now(spark, options, ck)
    assert first == []

    produce(bootstrap, kafka_topic, _records(90, 3, "new"))
    second, _ = _run_available_now(spark, options, ck)
    assert sorted(bytes(r["value"]) for r in second) == sorted(f"new{i}".encode() for i in range(90))
    assert all(r["offset"] >= 100 for r in second)

    produce(bootstrap, kafka_topic, _records(30, 3, "newer"))
    third, _ = _run_available_now(spark, options, ck)
    assert sorted(bytes(r["value"]) for r in third) == sorted(f"newer{i}".encode() for i in range(30))
    ends = end_offsets(bootstrap, kafka_topic)
    assert checkpoint_offsets(ck) == {kafka_topic: ends} == {kafka_topic: {0: 140, 1: 140, 2: 140}}
    # The lag group is level with the checkpoint once the run is idle (Spark's own commit(end) would
    # leave it one batch behind: it comes only when a further batch is planned).
    assert _group_offsets(bootstrap, f"lag-{kafka_topic}", kafka_topic) == ends


def _group_offsets(bootstrap: str, group: str, topic: str) -> dict[int, int]:
    from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": bootstrap})
    request = [ConsumerGroupTopicPartitions(group, [TopicPartition(topic, p) for p in range(3)])]
    result = next(iter(admin.list_consumer_group_offsets(request).values())).result()
    return {tp.partition: tp.offset for tp in result.topic_partitions}


@pytest.mark.integration
def test_explicit_starting_offsets_json(
    spark: Any, kafka_broker: EmbeddedKafka, kafka_topic: str, tmp_path: Path
) -> None:
    produce(kafka_broker.bootstrap, kafka_topic, _records(300, 3))  # 100 per partition
    starting = json.dumps({kafka_topic: {"0": 95, "1": -1, "2": -2}})
    rows, _ = _run_available_now(
        spark, _options(kafka_broker, kafka_topic, startingOffsets=starting), tmp_path
    )
    got = sorted((r["partition"], r["offset"]) for r in rows)
    assert got == [(0, o) for o in range(95, 100)] + [(2, o) for o in range(100)]


@pytest.mark.integration
def test_topics_and_partitions_that_appear_while_the_stream_runs_are_read_from_their_start(
    spark: Any, kafka_broker: EmbeddedKafka, make_topic: Callable[..., str], tmp_path: Path
) -> None:
    # Tansu 0.6.0 has no CreatePartitions, so new partitions arrive here as a new subscribed topic;
    # the source treats both the same way (a partition absent from the start offsets).
    bootstrap = kafka_broker.bootstrap
    first = make_topic(2)
    later = f"{first}_later"
    produce(bootstrap, first, _records(40, 2))
    rows: list[dict] = []
    df = (
        spark.readStream.format("medallion_kafka")
        .options(**_options(kafka_broker, f"{first},{later}"))
        .load()
    )
    query = (
        df.writeStream.foreachBatch(_collecting_sink(rows)).option("checkpointLocation", str(tmp_path / "ck"))
        .trigger(processingTime="200 milliseconds").start()
    )  # fmt: skip
    try:
        _wait_for_rows(rows, 40)
        ensure_topics(bootstrap, {later: 3})
        produce(bootstrap, later, _records(60, 3, "late"))
        produce(bootstrap, first, _records(10, 2, "more"))
        _wait_for_rows(rows, 110)
    finally:
        query.stop()
    late = sorted((r["partition"], r["offset"]) for r in rows if r["topic"] == later)
    assert late == sorted((p, o) for p in range(3) for o in range(20))
    assert len({(r["topic"], r["partition"], r["offset"]) for r in rows}) == 110


def _wait_for_rows(rows: list[dict], n: int, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while len(rows) < n and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(rows) == n


@pytest.mark.integration
def test_a_recreated_topic_is_data_loss_unless_fail_on_data_loss_is_false(
    spark: Any, kafka_broker: EmbeddedKafka, kafka_topic: str, tmp_path: Path
) -> None:
    from confluent_kafka.admin import AdminClient

    bootstrap, ck = kafka_broker.bootstrap, tmp_path / "ck"
    produce(bootstrap, kafka_topic, _records(300, 3))
    rows, _ = _run_available_now(spark, _options(kafka_broker, kafka_topic), ck)
    assert len(rows) == 300

    # Delete and recreate: the checkpoint's offsets (100) are now beyond the new log end (4).
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.delete_topics([kafka_topic]).values():
        future.result()
    ensure_topics(bootstrap, {kafka_topic: 3})
    produce(bootstrap, kafka_topic, _records(12, 3, "reborn"))

    with pytest.raises(
        Exception, match=rf"(?s)Data loss.*{kafka_topic}\[\d\].*failOnDataLoss=false"
    ) as failure:
        _run_available_now(spark, _options(kafka_broker, kafka_topic), ck)
    assert isinstance(source_error(failure.value), TerminalError)

    lenient = _options(kafka_broker, kafka_topic, failOnDataLoss="false")
    rows, _ = _run_available_now(spark, lenient, ck)
    assert sorted(bytes(r["value"]) for r in rows) == sorted(f"reborn{i}".encode() for i in range(12))
    assert checkpoint_offsets(ck) == {kafka_topic: {0: 4, 1: 4, 2: 4}}


@pytest.mark.integration
def test_headers_keys_and_split_ranges_come_through(
    spark: Any, kafka_broker: EmbeddedKafka, kafka_topic: str, tmp_path: Path
) -> None:
    produce(kafka_broker.bootstrap, kafka_topic, _records(600, 3), headers=[("source", b"test")])
    options = _options(kafka_broker, kafka_topic, maxRecordsPerPartition="64", arrowBatchSize="50")
    rows, _ = _run_available_now(spark, options, tmp_path)
    assert len(_by_position(rows)) == 600
    assert all(r["headers"][0].asDict() == {"key": "source", "value": bytearray(b"test")} for r in rows)
    assert {bytes(r["key"]) for r in rows} == {b"k%d" % i for i in range(600)}


@pytest.mark.integration
def test_unreachable_broker_fails_naming_the_address(spark: Any, tmp_path: Path) -> None:
    from medallion.engines.embedded import find_free_port

    bootstrap = f"127.0.0.1:{find_free_port()}"
    options = {"kafka.bootstrap.servers": bootstrap, "subscribe": "x", "fetchOffset.numRetries": "0"}
    with pytest.raises(Exception, match=rf"(?s)Kafka broker at {bootstrap} is unreachable") as failure:
        _run_available_now(spark, options, tmp_path / "ck")
    error = source_error(failure.value)
    assert isinstance(error, TransientError) and str(error).startswith(f"Kafka broker at {bootstrap}")


@pytest.mark.integration
def test_read_range_reads_exactly_its_range_and_reports_a_log_shorter_than_planned(
    kafka_broker: EmbeddedKafka, kafka_topic: str
) -> None:
    produce(kafka_broker.bootstrap, kafka_topic, [(0, None, b"%d" % i) for i in range(10)])
    base = {"kafka.bootstrap.servers": kafka_broker.bootstrap, "subscribe": kafka_topic}
    opts = SourceOptions.parse(base)

    batches = list(read_range(opts, OffsetRange(kafka_topic, 0, 5, 8)))
    assert [r["offset"] for b in batches for r in b.to_pylist()] == [5, 6, 7]

    # The plan says 15 but the log ends at 10 (truncated, or recreated, between planning and reading).
    with pytest.raises(TerminalError, match=r"ends at 10 but offsets up to 15.*failOnDataLoss"):
        list(read_range(opts, OffsetRange(kafka_topic, 0, 0, 15)))
    lenient = SourceOptions.parse(base | {"failOnDataLoss": "false"})
    rows = [r for b in read_range(lenient, OffsetRange(kafka_topic, 0, 0, 15)) for r in b.to_pylist()]
    assert [r["value"] for r in rows] == [b"%d" % i for i in range(10)]


@pytest.mark.integration
def test_bad_options_fail_at_load(spark: Any) -> None:
    with pytest.raises(Exception, match="needs the options kafka.bootstrap.servers and subscribe"):
        spark.readStream.format("medallion_kafka").option("subscribe", "x").load()
