"""`medallion_kafka`: a Spark streaming source over confluent-kafka, with no JVM jars.

Spark's built-in ``kafka`` source needs the spark-sql-kafka and kafka-clients jars fetched from a Maven
repository at run time, the most common way such pipelines fail to start; this one needs only pip.

The design is that of Spark's own Kafka source. An offset is ``{"topic": {"partition": next_offset}}``.
Every trigger the driver lists the subscribed topics' partitions (new ones start at their log start),
finds each partition's TRUE log end (`LogOffsets.bounds`), caps it when Spark passes `ReadMaxRows`,
and plans one input partition per ``[from, until)`` offset range (large ranges split). Executors
assign (never subscribe) and read exactly that range, and yield Arrow record batches.

Usage::

    register(spark)
    spark.readStream.format("medallion_kafka").option("kafka.bootstrap.servers", "h:9092")
        .option("subscribe", "user_events").load()

Options (names are case-insensitive; those shared with Spark's kafka source mean the same):

- ``kafka.bootstrap.servers`` (required), ``subscribe`` (required, comma-separated topics);
  any other ``kafka.*`` option is a librdkafka setting (``kafka.security.protocol``, ``kafka.sasl.*``).
- ``startingOffsets``: ``latest`` (default), ``earliest`` or ``{"topic": {"0": 12, "1": -2}}`` with
  -2 = earliest and -1 = latest; partitions left out start at earliest. Only for a new checkpoint.
- ``maxOffsetsPerTrigger``: cap per micro-batch, spread fairly over partitions (also with availableNow).
- ``minPartitions``, ``maxRecordsPerPartition``: split large offset ranges into more Spark tasks.
- ``failOnDataLoss`` (default true): fail when offsets to read are gone (retention, recreated topic);
- ``dataLossLog``: a folder where each range skipped with failOnDataLoss=false is kept as a file (the
  ingest reads them into the batch's ledger record);
  false logs a warning and reads on from the log start.
- ``groupIdForLag``: also commit processed offsets to this consumer group, for lag tools only
  (``kafka-consumer-groups``, Burrow): at every trigger the start of the batch being planned, which is
  the end of the last batch written, so the group is level with the checkpoint once a run is idle.
- ``kafkaConsumer.pollTimeoutMs`` (120000), ``fetchOffset.numRetries`` (3),
  ``fetchOffset.retryIntervalMs`` (1000), ``fetchOffset.timeoutMs`` (30000), ``arrowBatchSize`` (10000).

Why one module: Spark's Python data source API asks for one reader with its partitions, offsets and commits,
and they share the handling of the broker's ListOffsets (off by one batch on Tansu).
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from functools import partial
from typing import Any, Protocol

import numpy as np
import pyarrow as pa
from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition
from loguru import logger
from pyspark.sql.datasource import DataSource, DataSourceStreamReader, InputPartition
from pyspark.sql.pandas.types import to_arrow_schema
from pyspark.sql.streaming.datasource import (
    ReadAllAvailable,
    ReadLimit,
    ReadMaxRows,
    SupportsTriggerAvailableNow,
)
from pyspark.sql.types import (
    ArrayType,
    BinaryType,
    IntegerType,
    LongType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)

from medallion.core import lakefs
from medallion.core.errors import ConfigError, MedallionError, TerminalError, TransientError
from medallion.core.retry import retry_transient
from medallion.engines.kafka.admin import (
    LIBRDKAFKA_LOGGER,
    TP,
    LogBounds,
    LogOffsets,
    recovers_by_itself,
    to_medallion_error,
)

SOURCE_NAME = "medallion_kafka"

HEADER_TYPE = StructType([StructField("key", StringType()), StructField("value", BinaryType())])
SCHEMA = StructType(
    [
        StructField("key", BinaryType()),
        StructField("value", BinaryType()),
        StructField("topic", StringType()),
        StructField("partition", IntegerType()),
        StructField("offset", LongType()),
        StructField("timestamp", TimestampType()),
        StructField("timestampType", IntegerType()),
        StructField("headers", ArrayType(HEADER_TYPE)),
    ]
)
# Spark checks a returned batch against exactly this conversion of SCHEMA.
ARROW_SCHEMA = to_arrow_schema(SCHEMA, timezone="UTC")

EARLIEST, LATEST = -2, -1  # the special offsets of a startingOffsets JSON, as in Spark

_OPTIONS = (
    "kafka.bootstrap.servers", "subscribe", "startingoffsets", "maxoffsetspertrigger", "minpartitions",
    "maxrecordsperpartition", "failondataloss", "groupidforlag", "kafkaconsumer.polltimeoutms",
    "fetchoffset.numretries", "fetchoffset.retryintervalms", "fetchoffset.timeoutms", "arrowbatchsize",
    "datalosslog",
)  # fmt: skip


@dataclass(frozen=True)
class SourceOptions:
    """The source's options, parsed once; Spark hands them over lower-cased."""

    bootstrap: str
    topics: tuple[str, ...]
    starting_offsets: str = "latest"
    max_offsets_per_trigger: int | None = None
    min_partitions: int | None = None
    max_records_per_partition: int | None = None
    fail_on_data_loss: bool = True
    group_id_for_lag: str | None = None
    poll_timeout_s: float = 120.0
    fetch_retries: int = 3
    retry_interval_s: float = 1.0
    offsets_timeout_s: float = 30.0
    arrow_batch_size: int = 10_000
    kafka: tuple[tuple[str, str], ...] = ()  # further librdkafka settings, "kafka." prefix removed
    data_loss_log: str | None = None  # a folder: each range skipped with failOnDataLoss=false, as a file

    @classmethod
    def parse(cls, options: Mapping[str, str]) -> SourceOptions:
        opts = {k.lower(): str(v) for k, v in options.items()}
        kafka = {k[6:]: v for k, v in opts.items() if k.startswith("kafka.")}
        kafka.pop("bootstrap.servers", None)
        unknown = sorted(k for k in opts if k not in _OPTIONS and not k.startswith("kafka."))
        if unknown:
            raise ConfigError(
                f"Unknown option(s) for the {SOURCE_NAME} source: {', '.join(unknown)}. "
                f"Known: {', '.join(_OPTIONS)}, and kafka.* (librdkafka settings)."
            )
        bootstrap = opts.get("kafka.bootstrap.servers", "").strip()
        topics = tuple(t.strip() for t in opts.get("subscribe", "").split(",") if t.strip())
        if not bootstrap or not topics:
            raise ConfigError(
                f"The {SOURCE_NAME} source needs the options kafka.bootstrap.servers and subscribe "
                f"(got bootstrap={bootstrap!r}, subscribe={opts.get('subscribe')!r})."
            )
        parsed = cls(
            bootstrap=bootstrap,
            topics=topics,
            starting_offsets=opts.get("startingoffsets", "latest"),
            max_offsets_per_trigger=_positive(opts, "maxoffsetspertrigger"),
            min_partitions=_positive(opts, "minpartitions"),
            max_records_per_partition=_positive(opts, "maxrecordsperpartition"),
            fail_on_data_loss=_boolean(opts, "failondataloss", True),
            group_id_for_lag=opts.get("groupidforlag") or None,
            poll_timeout_s=(_positive(opts, "kafkaconsumer.polltimeoutms") or 120_000) / 1000,
            fetch_retries=_non_negative(opts, "fetchoffset.numretries", 3),
            retry_interval_s=_non_negative(opts, "fetchoffset.retryintervalms", 1000) / 1000,
            offsets_timeout_s=(_positive(opts, "fetchoffset.timeoutms") or 30_000) / 1000,
            arrow_batch_size=_positive(opts, "arrowbatchsize") or 10_000,
            kafka=tuple(sorted(kafka.items())),
            data_loss_log=opts.get("datalosslog") or None,
        )
        parse_starting_offsets(parsed.starting_offsets, topics)  # fail early on a bad value
        return parsed


def _positive(opts: Mapping[str, str], key: str) -> int | None:
    if key not in opts:
        return None
    value = _non_negative(opts, key, 0)
    if value < 1:
        raise ConfigError(f"Option {key} must be a positive integer, got {opts[key]!r}.")
    return value


def _non_negative(opts: Mapping[str, str], key: str, default: int) -> int:
    try:
        value = int(opts.get(key, default))
    except ValueError:
        raise ConfigError(f"Option {key} must be an integer, got {opts[key]!r}.") from None
    if value < 0:
        raise ConfigError(f"Option {key} must not be negative, got {value}.")
    return value


def _boolean(opts: Mapping[str, str], key: str, default: bool) -> bool:
    value = opts.get(key, str(default)).strip().lower()
    if value not in ("true", "false"):
        raise ConfigError(f"Option {key} must be true or false, got {opts[key]!r}.")
    return value == "true"


# --- offsets: pure functions, unit-tested without Spark or Kafka ---------------------------------


def offsets_to_json(offsets: Mapping[TP, int]) -> dict[str, dict[str, int]]:
    """``{(t, p): o}`` → ``{"t": {"p": o}}``, sorted so equal offsets serialize equally."""
    out: dict[str, dict[str, int]] = {}
    for (topic, part), off in sorted(offsets.items()):
        out.setdefault(topic, {})[str(part)] = int(off)
    return out


def offsets_from_json(data: Mapping[str, Any] | None) -> dict[TP, int]:
    return {(t, int(p)): int(o) for t, parts in (data or {}).items() for p, o in parts.items()}


def parse_starting_offsets(text: str, topics: Sequence[str]) -> str | dict[TP, int]:
    """``earliest`` | ``latest`` | ``{"topic": {"0": 12, "1": -2}}`` (-2 earliest, -1 latest)."""
    value = text.strip()
    if value.lower() in ("earliest", "latest"):
        return value.lower()
    hint = 'Use earliest, latest or JSON like {"topic": {"0": 12, "1": -2}} (-2 = earliest, -1 = latest).'
    try:
        data = json.loads(value)
        offsets = offsets_from_json(data)
    except (ValueError, AttributeError, TypeError):
        raise ConfigError(f"Invalid startingOffsets {text!r}. {hint}") from None
    if not offsets or any(o < EARLIEST for o in offsets.values()):
        raise ConfigError(f"Invalid startingOffsets {text!r}. {hint}")
    stray = sorted({t for t, _ in offsets} - set(topics))
    if stray:
        raise ConfigError(f"startingOffsets names topics that are not subscribed: {', '.join(stray)}.")
    return offsets


def initial_offsets(starting: str | Mapping[TP, int], bounds: Mapping[TP, LogBounds]) -> dict[TP, int]:
    """Resolve startingOffsets against the logs; partitions a JSON value leaves out start at earliest."""
    if starting == "earliest":
        return {tp: b.start for tp, b in bounds.items()}
    if starting == "latest":
        return {tp: b.end for tp, b in bounds.items()}
    assert isinstance(starting, Mapping)
    missing = sorted(set(starting) - set(bounds))
    if missing:
        raise ConfigError(f"startingOffsets names partitions that do not exist: {missing}.")
    resolved = {}
    for tp, b in bounds.items():
        wanted = starting.get(tp, EARLIEST)
        resolved[tp] = b.start if wanted == EARLIEST else b.end if wanted == LATEST else wanted
    return resolved


def spread_limit(ranges: Mapping[TP, tuple[int, int]], max_rows: int) -> dict[TP, int]:
    """Cap the end of ``[from, until)`` ranges so that together they hold at most ``max_rows`` offsets.

    Max-min fair (water-filling): every partition with data gets an equal share, and what a small
    partition does not use goes to the others. Ends never fall below ``from`` nor exceed ``until``.
    """
    order = sorted(ranges, key=lambda tp: (ranges[tp][1] - ranges[tp][0], tp))
    remaining = max(0, max_rows)
    ends = {}
    for i, tp in enumerate(order):
        frm, until = ranges[tp]
        take = min(max(0, until - frm), remaining // (len(order) - i))
        ends[tp] = frm + take
        remaining -= take
    return ends


def data_loss(fail: bool, what: str, remedy: str) -> None:
    """Raise (failOnDataLoss=true, the default) or warn that records cannot be read any more."""
    if fail:
        raise TerminalError(
            f"Data loss: {what}. The query fails because failOnDataLoss=true; set the source option "
            f"failOnDataLoss=false to {remedy} and go on."
        )
    logger.warning("Data loss (failOnDataLoss=false, continuing): {}; will {}", what, remedy)


def plan_end(
    start: Mapping[TP, int],
    bounds: Mapping[TP, LogBounds],
    topics: Sequence[str],
    *,
    max_rows: int | None = None,
    target: Mapping[TP, int] | None = None,
    fail_on_data_loss: bool = True,
    on_skip: Callable[[SkippedRange], None] | None = None,
) -> dict[TP, int]:
    """The end offsets of the next micro-batch, given its start and the partitions' logs.

    ``bounds`` covers every current partition of ``topics``; ``target`` (trigger availableNow) is the
    end the query must not go past and excludes partitions created after it was taken. ``on_skip``
    hears of every range of offsets deleted before it was read (failOnDataLoss=false only).
    """
    end: dict[TP, int] = {}
    for tp, offset in start.items():
        if tp in bounds:
            continue
        if tp[0] not in topics:
            logger.info("topic {} is no longer subscribed; its offsets are dropped", tp[0])
        else:
            data_loss(fail_on_data_loss, f"partition {tp[0]}[{tp[1]}] is gone (was at {offset})", "drop it")
    ranges: dict[TP, tuple[int, int]] = {}
    for tp, b in bounds.items():
        if target is not None and tp not in target:
            if tp in start:
                end[tp] = start[tp]
            continue
        until = b.end if target is None else min(b.end, target[tp])
        frm = start.get(tp, b.start)
        if frm < b.start:
            reason = (
                f"{tp[0]}[{tp[1]}] needs offset {frm} but the log starts at {b.start} "
                f"(offsets {frm}..{b.start - 1} were deleted, e.g. by retention)"
            )
            data_loss(fail_on_data_loss, reason, "read on from the log start")
            if on_skip is not None:
                on_skip(SkippedRange(tp[0], tp[1], frm, b.start, reason))
            frm = b.start
        elif frm > b.end:
            data_loss(
                fail_on_data_loss,
                f"{tp[0]}[{tp[1]}] needs offset {frm} but the log ends at {b.end} "
                "(was the topic deleted and recreated?)",
                "read the partition from its log start",
            )
            frm = b.start
        ranges[tp] = (frm, max(frm, until))
    if max_rows is None:
        end.update({tp: until for tp, (_, until) in ranges.items()})
    else:
        end.update(spread_limit(ranges, max_rows))
    return dict(sorted(end.items()))


@dataclass(frozen=True)
class SkippedRange:
    """Offsets ``[from_offset, until_offset)`` of one partition, deleted before the stream read them."""

    topic: str
    partition: int
    from_offset: int
    until_offset: int
    reason: str

    @property
    def file_name(self) -> str:
        """Named by where the batch that skipped it starts: a replayed plan writes the same file."""
        return f"{self.topic}-{self.partition}-{self.from_offset}.json"


def record_skipped(folder: str, skipped: SkippedRange) -> None:
    """Keep a skipped range where the ingest's accounting finds it (the source runs in another process)."""
    lakefs.write_text(lakefs.join(folder, skipped.file_name), json.dumps(asdict(skipped)))


@dataclass(frozen=True)
class OffsetRange(InputPartition):
    """One Spark input partition: the offsets ``[from_offset, until_offset)`` of one Kafka partition."""

    topic: str
    partition: int
    from_offset: int
    until_offset: int

    @property
    def size(self) -> int:
        return self.until_offset - self.from_offset


def offset_ranges(
    start: Mapping[TP, int],
    end: Mapping[TP, int],
    log_starts: Callable[[list[TP]], Mapping[TP, int]],
    fail_on_data_loss: bool = True,
) -> list[OffsetRange]:
    """Ranges ``[start, end)`` per partition; new partitions and logs that went backwards start at
    their log start (asked of ``log_starts`` only when needed)."""
    need_start = [tp for tp in end if tp not in start or start[tp] > end[tp]]
    starts = log_starts(need_start) if need_start else {}
    ranges = []
    for tp, until in sorted(end.items()):
        frm = start.get(tp)
        if frm is not None and frm > until:
            data_loss(
                fail_on_data_loss,
                f"{tp[0]}[{tp[1]}] went back from offset {frm} to {until} (topic recreated?)",
                "read the partition from its log start",
            )
            frm = None
        if frm is None:
            frm = min(starts.get(tp, 0), until)
        if until > frm:
            ranges.append(OffsetRange(tp[0], tp[1], frm, until))
    return ranges


def split_ranges(
    ranges: Sequence[OffsetRange], min_partitions: int | None = None, max_records: int | None = None
) -> list[OffsetRange]:
    """Split big ranges for parallelism: first into pieces of at most ``max_records`` offsets, then
    (Spark's minPartitions rule) proportionally to size until there are ``min_partitions`` pieces."""
    out = [r for r in ranges if r.size > 0]
    if max_records:
        out = [piece for r in out for piece in _split(r, -(-r.size // max_records))]
    if min_partitions and len(out) < min_partitions:
        total = sum(r.size for r in out)
        out = [piece for r in out for piece in _split(r, max(round(r.size / total * min_partitions), 1))]
    return [r for r in out if r.size > 0]


def _split(r: OffsetRange, parts: int) -> list[OffsetRange]:
    pieces, frm, remaining = [], r.from_offset, r.size
    for i in range(parts):
        size = remaining // (parts - i)  # the last pieces absorb the remainder
        pieces.append(OffsetRange(r.topic, r.partition, frm, frm + size))
        frm, remaining = frm + size, remaining - size
    return pieces


# --- executors: read one offset range --------------------------------------------------------------


def reader_config(opts: SourceOptions) -> dict[str, Any]:
    conf: dict[str, Any] = {
        "fetch.wait.max.ms": 50,
        "max.partition.fetch.bytes": 8 << 20,
        "logger": LIBRDKAFKA_LOGGER,
    }
    conf.update(dict(opts.kafka))
    conf.update(
        {
            "bootstrap.servers": opts.bootstrap,
            # librdkafka wants a group id even for assign(); nothing is ever committed to it.
            "group.id": f"medallion-reader-{uuid.uuid4().hex[:12]}",
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "enable.partition.eof": True,
            "auto.offset.reset": "error",  # an offset out of range is data loss, never a silent jump
        }
    )
    return conf


def read_range(opts: SourceOptions, r: OffsetRange) -> Iterator[pa.RecordBatch]:
    """Yield the records of ``[from, until)`` as Arrow batches. Offsets may have gaps (transaction
    markers, compaction): read until the position reaches ``until``; never count records."""
    consumer = Consumer(reader_config(opts))
    try:
        consumer.assign([TopicPartition(r.topic, r.partition, r.from_offset)])
        cols = _Columns()
        pos, last_progress = r.from_offset, time.monotonic()
        while pos < r.until_offset:
            want = max(1, min(opts.arrow_batch_size - len(cols.offsets), r.until_offset - pos))
            before = pos
            for msg in consumer.consume(num_messages=want, timeout=0.2):
                err = msg.error()
                if err is not None:
                    if recovers_by_itself(err):
                        logger.debug("reading {}[{}]: {}", r.topic, r.partition, err.str())
                        continue
                    pos = _on_read_error(opts, r, consumer, err, msg.offset() or 0, pos)
                    break
                offset: int = msg.offset()  # type: ignore[assignment]  # a record always has one
                if offset >= r.until_offset:
                    pos = r.until_offset
                    break
                cols.add(msg, offset)
                pos = offset + 1
            if pos != before:
                last_progress = time.monotonic()
            elif time.monotonic() - last_progress > opts.poll_timeout_s:
                raise TransientError(
                    f"Kafka at {opts.bootstrap}: no record of {r.topic}[{r.partition}] at offset {pos} "
                    f"(reading up to {r.until_offset}) within {opts.poll_timeout_s:.0f}s"
                )
            if len(cols.offsets) >= opts.arrow_batch_size:
                yield cols.to_batch(r.topic, r.partition)
                cols = _Columns()
        if cols.offsets:
            yield cols.to_batch(r.topic, r.partition)
    finally:
        consumer.close()


def _on_read_error(
    opts: SourceOptions, r: OffsetRange, consumer: Consumer, err: KafkaError, at: int, pos: int
) -> int:
    """Handle an error event while reading; return the position to go on from."""
    where = f"{r.topic}[{r.partition}]"
    if err.code() == KafkaError._PARTITION_EOF:
        if at >= r.until_offset:
            return r.until_offset
        data_loss(
            opts.fail_on_data_loss,
            f"{where} ends at {at} but offsets up to {r.until_offset} were planned (log truncated?)",
            "skip the missing offsets",
        )
        return r.until_offset
    if err.code() in (KafkaError._AUTO_OFFSET_RESET, KafkaError.OFFSET_OUT_OF_RANGE):
        try:
            low, _ = consumer.get_watermark_offsets(TopicPartition(r.topic, r.partition), timeout=30)
        except KafkaException as exc:
            raise to_medallion_error(exc, opts.bootstrap, f"log start of {where}") from exc
        if low <= pos:  # out of range above: the log was truncated below what was planned
            data_loss(
                opts.fail_on_data_loss,
                f"{where} offset {pos} is beyond the log end (planned up to {r.until_offset})",
                "skip the missing offsets",
            )
            return r.until_offset
        data_loss(
            opts.fail_on_data_loss,
            f"{where} offset {pos} is out of range; the log starts at {low} (deleted by retention?)",
            "read on from the log start",
        )
        if low >= r.until_offset:
            return r.until_offset
        consumer.assign([TopicPartition(r.topic, r.partition, low)])
        return low
    raise to_medallion_error(KafkaException(err), opts.bootstrap, f"read {where}")


class _Columns:
    """Column lists of one Arrow batch; built column-wise, because rows through Python are slow."""

    __slots__ = ("keys", "values", "offsets", "ts_types", "ts", "headers")

    def __init__(self) -> None:
        self.keys: list[bytes | None] = []
        self.values: list[bytes | None] = []
        self.offsets: list[int] = []
        self.ts_types: list[int] = []
        self.ts: list[int] = []
        self.headers: list[Any] = []

    def add(self, msg: Any, offset: int) -> None:
        self.keys.append(msg.key())
        self.values.append(msg.value())
        self.offsets.append(offset)
        ts_type, ts = msg.timestamp()
        self.ts_types.append(ts_type)
        self.ts.append(ts)
        self.headers.append(msg.headers())

    def to_batch(self, topic: str, partition: int) -> pa.RecordBatch:
        n = len(self.offsets)
        # confluent-kafka's types are 0 none, 1 create, 2 log-append; Spark's are -1, 0, 1.
        ts_types = np.asarray(self.ts_types, dtype=np.int32)
        ts_us = np.asarray(self.ts, dtype=np.int64) * 1000
        if any(self.headers):
            entries = [[{"key": k, "value": v} for k, v in h] if h else None for h in self.headers]
            headers = pa.array(entries, ARROW_SCHEMA.field("headers").type)
        else:
            headers = pa.nulls(n, ARROW_SCHEMA.field("headers").type)
        columns = [
            pa.array(self.keys, pa.binary()),
            pa.array(self.values, pa.binary()),
            pa.repeat(pa.scalar(topic, pa.string()), n),
            pa.repeat(pa.scalar(partition, pa.int32()), n),
            pa.array(self.offsets, pa.int64()),
            pa.array(ts_us, ARROW_SCHEMA.field("timestamp").type, mask=ts_types == 0),
            pa.array(ts_types - 1, pa.int32()),
            headers,
        ]
        return pa.RecordBatch.from_arrays(columns, schema=ARROW_SCHEMA)


# --- Spark's interfaces ----------------------------------------------------------------------------


class KafkaStreamReader(DataSourceStreamReader, SupportsTriggerAvailableNow):
    """Driver side: offsets and planning (one `LogOffsets` reused across triggers); executors: `read`."""

    def __init__(self, opts: SourceOptions, decoder: Decoder | None = None) -> None:
        self.opts = opts
        self.decoder = decoder
        self._log: LogOffsets | None = None  # created on first use: executors build readers too
        self._target: dict[TP, int] | None = None
        self._latest: dict[TP, int] | None = None
        self._lag_committed: dict | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_log": None}

    @property
    def log(self) -> LogOffsets:
        if self._log is None:
            self._log = LogOffsets(self.opts.bootstrap, dict(self.opts.kafka), self.opts.offsets_timeout_s)
        return self._log

    def _retrying(self, fn: Callable[[], Any]) -> Any:
        policy = retry_transient(
            attempts=self.opts.fetch_retries + 1, max_wait_s=max(self.opts.retry_interval_s, 0.1)
        )
        return policy(fn)()

    def _bounds(self) -> dict[TP, LogBounds]:
        def fetch() -> dict[TP, LogBounds]:
            self.log.check_reachable()
            return self.log.bounds(self.log.all_partitions(self.opts.topics))

        bounds: dict[TP, LogBounds] = self._retrying(fetch)
        self._latest = {tp: b.end for tp, b in bounds.items()}
        return bounds

    def initialOffset(self) -> dict:
        bounds = self._bounds()
        missing = [t for t in self.opts.topics if t not in {tp[0] for tp in bounds}]
        if missing:
            logger.warning("topics {} do not exist yet; they are read from their start once they do", missing)
        starting = parse_starting_offsets(self.opts.starting_offsets, self.opts.topics)
        return offsets_to_json(initial_offsets(starting, bounds))

    def getDefaultReadLimit(self) -> ReadLimit:
        if self.opts.max_offsets_per_trigger:
            return ReadMaxRows(self.opts.max_offsets_per_trigger)
        return ReadAllAvailable()

    def prepareForTriggerAvailableNow(self) -> None:
        self._target = {tp: b.end for tp, b in self._bounds().items()}
        logger.info("availableNow: reading up to {}", offsets_to_json(self._target))

    def latestOffset(self, start: dict, limit: ReadLimit) -> dict:
        # Spark asks for the next batch's end once the previous batch is written (a batch planned but
        # not written before a restart is replayed from the offset log, without asking): ``start`` is
        # processed. Spark's own commit(end) comes only when it plans a further batch, one batch late.
        self.commit(start)
        end = plan_end(
            offsets_from_json(start),
            self._bounds(),
            self.opts.topics,
            max_rows=limit.max_rows if isinstance(limit, ReadMaxRows) else None,
            target=self._target,
            fail_on_data_loss=self.opts.fail_on_data_loss,
            on_skip=partial(record_skipped, self.opts.data_loss_log) if self.opts.data_loss_log else None,
        )
        return offsets_to_json(end)

    def reportLatestOffset(self) -> dict | None:
        return None if self._latest is None else offsets_to_json(self._latest)

    def partitions(self, start: dict, end: dict) -> Sequence[InputPartition]:
        ranges = offset_ranges(
            offsets_from_json(start),
            offsets_from_json(end),
            lambda tps: self._retrying(lambda: self.log.starts(tps)),
            self.opts.fail_on_data_loss,
        )
        return split_ranges(ranges, self.opts.min_partitions, self.opts.max_records_per_partition)

    def read(self, partition: InputPartition) -> Iterator[pa.RecordBatch]:
        assert isinstance(partition, OffsetRange)
        batches = read_range(self.opts, partition)
        decode = self.decoder
        return batches if decode is None else (decode(batch) for batch in batches)

    def commit(self, end: dict) -> None:
        group = self.opts.group_id_for_lag
        if not group or end == self._lag_committed:
            return
        try:
            self.log.commit_group(group, offsets_from_json(end))
            self._lag_committed = end
        except MedallionError as exc:  # lag reporting only: the checkpoint is the truth
            logger.warning("could not commit offsets to consumer group {} (lag tools only): {}", group, exc)

    def stop(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None


class Decoder(Protocol):
    """Turns each Arrow batch of Kafka records (`SCHEMA`) into rows of its own ``schema``, in the reader."""

    schema: StructType

    def __call__(self, batch: pa.RecordBatch) -> pa.RecordBatch: ...


class KafkaDataSource(DataSource):
    """``spark.readStream.format("medallion_kafka")``: Kafka records with the columns of Spark's source,
    or, in a source registered with a ``decoder``, the decoder's rows."""

    decoder: Decoder | None = None

    def __init__(self, options: dict[str, str]) -> None:
        super().__init__(options)
        SourceOptions.parse(options)  # bad options fail at load(), before the query starts

    @classmethod
    def name(cls) -> str:
        return SOURCE_NAME

    def schema(self) -> StructType:
        return SCHEMA if self.decoder is None else self.decoder.schema

    def streamReader(self, schema: StructType) -> DataSourceStreamReader:
        if schema.fieldNames() != self.schema().fieldNames():
            raise ConfigError(f"The {self.name()} source has a fixed schema; do not pass .schema(...).")
        return KafkaStreamReader(SourceOptions.parse(self.options), self.decoder)


_ERROR_IN_TRACE = re.compile(
    re.escape(MedallionError.__module__)
    + r"\.(ConfigError|TransientError|TerminalError|MedallionError): (.+?)(?: SQLSTATE:|\n|$)"
)
_ERROR_CLASSES = {c.__name__: c for c in (ConfigError, TransientError, TerminalError, MedallionError)}


def source_error(exc: BaseException) -> MedallionError | None:
    """The medallion error this source raised inside a failed query, recovered from Spark's wrapping
    (a StreamingQueryException carries it only as text at the end of a Python traceback)."""
    found = _ERROR_IN_TRACE.findall(str(exc))
    if not found:
        return None
    kind, message = found[-1]
    return _ERROR_CLASSES[kind](message.strip())


def register(spark: Any, name: str = SOURCE_NAME, decoder: Decoder | None = None) -> None:
    """Make ``format(name)`` available in this Spark session: Kafka records, or with ``decoder`` its rows.

    A decoder runs in the reader, where the records already are in Python, so per-record work costs no
    second trip between the JVM and Python. It travels to the executors inside the source class (Spark
    pickles a registered source by value), never through the options, which Spark may print.
    """
    if decoder is None and name == SOURCE_NAME:
        spark.dataSource.register(KafkaDataSource)
        return
    source = type(
        f"DecodedKafkaDataSource_{name}",
        (KafkaDataSource,),
        {"decoder": decoder, "name": classmethod(lambda cls: name), "__module__": __name__},
    )
    spark.dataSource.register(source)
