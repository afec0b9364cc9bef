"""Kafka administration: topics, the true end of a partition's log, consumer lag, checkpoint offsets.

The end of the log is found by reading, not by asking: `ListOffsets(latest)` is only a hint of where to
start reading, because the embedded broker (Tansu 0.6.0) answers it with the base offset of the newest
record batch + 1 instead of the log end. Reading from just below that hint until the partition's EOF
gives the offset the broker's Fetch path reports, which is right on Tansu and on Apache Kafka alike
(and honours ``isolation.level``: under read_committed the EOF is the last stable offset).
`LogOffsets.bounds` is that one function; the streaming source and `end_offsets` both use it.

Why one module: every question put to the broker without Spark (topics, offsets, lag, checkpoint offsets)
shares one client set-up and the one log-end rule (`LogOffsets.bounds`).
"""

from __future__ import annotations

import json
import logging
import socket
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from confluent_kafka import (
    Consumer,
    ConsumerGroupTopicPartitions,
    IsolationLevel,
    KafkaError,
    KafkaException,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient, NewPartitions, NewTopic, OffsetSpec
from loguru import logger

from medallion.core import lakefs
from medallion.core.errors import ConfigError, MedallionError, TerminalError, TransientError
from medallion.core.retry import retry_transient

TP = tuple[str, int]
"""A topic partition as a plain, hashable, picklable pair."""

_ADMIN_KEY_PREFIXES = (
    "security.", "sasl.", "ssl.", "ssl_", "client.", "socket.", "broker.", "api.version", "metadata.",
    "reconnect.", "retry.", "enable.ssl", "connections.", "debug", "log_level", "topic.metadata",
)  # fmt: skip

_UNKNOWN_TOPIC = KafkaError.UNKNOWN_TOPIC_OR_PART
# Leadership or a coordinator still moving into place: Apache Kafka answers so for a moment after a
# topic is created or grown (librdkafka does not always flag these as retriable in admin results).
_MOVING = frozenset(
    {
        KafkaError.NOT_LEADER_FOR_PARTITION,
        KafkaError.LEADER_NOT_AVAILABLE,
        KafkaError.REPLICA_NOT_AVAILABLE,
        KafkaError.NOT_COORDINATOR,
        KafkaError.COORDINATOR_NOT_AVAILABLE,
        KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
    }
)


class _ToLoguruTrace(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        logger.trace("librdkafka {}: {}", record.levelname, record.getMessage())


# librdkafka logs every refused connection, at error level, from every client and Spark worker; the
# exceptions raised here say what matters once, clearly. Its own log stays available at TRACE level.
LIBRDKAFKA_LOGGER = logging.getLogger("medallion.engines.kafka.librdkafka")
LIBRDKAFKA_LOGGER.addHandler(_ToLoguruTrace())
LIBRDKAFKA_LOGGER.propagate = False


@dataclass(frozen=True)
class LogBounds:
    """A partition's log: the first offset still stored and the offset the next record will get."""

    start: int
    end: int


def to_medallion_error(exc: BaseException, bootstrap: str, action: str) -> MedallionError:
    """Map a confluent-kafka failure to Transient (retry) or Terminal, naming the brokers."""
    err = exc.args[0] if exc.args and isinstance(exc.args[0], KafkaError) else None
    if err is None:
        return TransientError(f"Kafka at {bootstrap}: {action} failed: {exc}")
    unreachable = {KafkaError._TRANSPORT, KafkaError._ALL_BROKERS_DOWN, KafkaError._RESOLVE}
    if err.code() in unreachable:
        return TransientError(
            f"Kafka broker at {bootstrap} is unreachable ({action}: {err.str()}). "
            "Is the broker running (`medallion up` for the embedded one) and is bootstrap_servers right?"
        )
    timed_out = {KafkaError._TIMED_OUT, KafkaError.REQUEST_TIMED_OUT, KafkaError._TIMED_OUT_QUEUE}
    if err.retriable() or err.code() in timed_out or err.code() in _MOVING:
        return TransientError(f"Kafka at {bootstrap}: {action} failed: {err.str()}")
    return TerminalError(f"Kafka at {bootstrap}: {action} failed: {err.str()} ({err.name()})")


def recovers_by_itself(err: KafkaError) -> bool:
    """A consumer error event librdkafka recovers from on its own (reconnect, leader change): log it
    and keep polling; the caller's timeout bounds the wait."""
    if err.code() in (
        KafkaError._PARTITION_EOF,
        KafkaError._AUTO_OFFSET_RESET,
        KafkaError.OFFSET_OUT_OF_RANGE,
    ):
        return False
    transport = (KafkaError._TRANSPORT, KafkaError._ALL_BROKERS_DOWN, KafkaError._RESOLVE)
    return err.code() in transport or (err.retriable() and not err.fatal())


def bootstrap_addresses(bootstrap: str) -> list[tuple[str, int]]:
    """``"h1:9092,PLAINTEXT://[::1]:9093,h3"`` → ``[("h1", 9092), ("::1", 9093), ("h3", 9092)]``."""
    addresses = []
    for item in bootstrap.split(","):
        item = item.strip().split("://", 1)[-1]
        if not item:
            continue
        host, sep, port = item.rpartition(":")
        if not sep or "]" in port:  # no port given (or only an IPv6 literal)
            host, port = item, "9092"
        if not port.isdigit():
            raise ConfigError(
                f"Invalid Kafka bootstrap address {item!r} in {bootstrap!r}: expected host:port."
            )
        addresses.append((host.strip("[]"), int(port)))
    return addresses


def tcp_reachable(bootstrap: str, timeout_s: float = 2.0) -> bool:
    """Whether any bootstrap address accepts a TCP connection (cheap; says nothing about the protocol)."""
    for host, port in bootstrap_addresses(bootstrap):
        try:
            with socket.create_connection((host, port), timeout=timeout_s):
                return True
        except OSError:
            continue
    return False


def admin_config(bootstrap: str, config: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Client settings an AdminClient understands (connection and security), taken from ``config``."""
    conf: dict[str, Any] = {k: v for k, v in (config or {}).items() if k.startswith(_ADMIN_KEY_PREFIXES)}
    conf["bootstrap.servers"] = bootstrap
    # A producer-type handle (as the admin client is) would create a missing topic by asking for its metadata.
    conf["allow.auto.create.topics"] = False
    conf.setdefault("logger", LIBRDKAFKA_LOGGER)
    return conf


def end_finder_config(bootstrap: str, config: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Settings of the consumer that reads partitions to their EOF (it never joins or commits a group)."""
    conf: dict[str, Any] = {"queued.max.messages.kbytes": 16384, "logger": LIBRDKAFKA_LOGGER}
    conf.update(config or {})
    conf.update(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"medallion-offsets-{uuid.uuid4().hex[:12]}",
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "enable.partition.eof": True,
            # A fetch at the log end is held this long by the broker: it is the latency of every EOF.
            "fetch.wait.max.ms": 10,
            # Out of range only when retention moved the log start meanwhile: the end is then near.
            "auto.offset.reset": "latest",
        }
    )
    return conf


class LogOffsets:
    """Offsets of partitions' logs through one admin client and one consumer, reused across calls.

    The streaming source keeps one per query on the driver (it runs every trigger); the module-level
    functions below make a short-lived one.
    """

    def __init__(
        self, bootstrap: str, config: Mapping[str, str] | None = None, timeout_s: float = 30.0
    ) -> None:
        self.bootstrap = bootstrap
        self.timeout_s = timeout_s
        self._config = dict(config or {})
        committed = self._config.get("isolation.level", "read_committed") == "read_committed"
        self._isolation = IsolationLevel.READ_COMMITTED if committed else IsolationLevel.READ_UNCOMMITTED
        self._admin: AdminClient | None = None
        self._consumer: Consumer | None = None

    @property
    def admin(self) -> AdminClient:
        if self._admin is None:
            self._admin = AdminClient(admin_config(self.bootstrap, self._config))
        return self._admin

    @property
    def consumer(self) -> Consumer:
        if self._consumer is None:
            self._consumer = Consumer(end_finder_config(self.bootstrap, self._config))
        return self._consumer

    def close(self) -> None:
        if self._consumer is not None:
            self._consumer.close()
            self._consumer = None
        self._admin = None

    def __enter__(self) -> LogOffsets:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def check_reachable(self) -> None:
        """Fail fast, naming the brokers, when none of them accepts a connection (librdkafka would
        only say so after its full timeout)."""
        if not tcp_reachable(self.bootstrap, min(self.timeout_s, 5.0)):
            raise TransientError(
                f"Kafka broker at {self.bootstrap} is unreachable (connection refused or timed out). "
                "Is the broker running (`medallion up` for the embedded one) and is bootstrap_servers right?"
            )

    def partitions(self, topics: Iterable[str]) -> dict[str, list[int]]:
        """Partition ids of each topic that exists; a missing topic is simply absent from the result."""
        found: dict[str, list[int]] = {}
        for topic in topics:
            try:
                meta = self.admin.list_topics(topic=topic, timeout=self.timeout_s).topics.get(topic)
            except KafkaException as exc:
                raise to_medallion_error(exc, self.bootstrap, f"metadata of topic {topic!r}") from exc
            if meta is None or meta.error is not None and meta.error.code() == _UNKNOWN_TOPIC:
                continue
            if meta.error is not None:
                raise to_medallion_error(KafkaException(meta.error), self.bootstrap, f"metadata of {topic!r}")
            if meta.partitions:
                found[topic] = sorted(meta.partitions)
        return found

    def leaders_known(self, topics: Iterable[str]) -> bool:
        """Whether every partition of ``topics`` has a leader in the metadata (a new partition has none
        for a moment on Apache Kafka, and reading or listing its offsets then fails)."""
        for topic in topics:
            try:
                meta = self.admin.list_topics(topic=topic, timeout=self.timeout_s).topics.get(topic)
            except KafkaException as exc:
                raise to_medallion_error(exc, self.bootstrap, f"metadata of topic {topic!r}") from exc
            if meta is None or meta.error is not None or not meta.partitions:
                return False
            if any(p.leader < 0 or p.error is not None for p in meta.partitions.values()):
                return False
        return True

    def all_partitions(self, topics: Iterable[str]) -> list[TP]:
        return [(t, p) for t, parts in self.partitions(topics).items() for p in parts]

    def listed(self, tps: Iterable[TP], spec: str) -> dict[TP, int]:
        """What ListOffsets says ("earliest" or "latest"): exact for earliest, only a hint for latest."""
        wanted = list(tps)
        if not wanted:
            return {}
        offset_spec = OffsetSpec.earliest() if spec == "earliest" else OffsetSpec.latest()
        try:
            futures = self.admin.list_offsets(
                {TopicPartition(t, p): offset_spec for t, p in wanted},
                isolation_level=self._isolation,
                request_timeout=self.timeout_s,
            )
            return {(tp.topic, tp.partition): f.result().offset for tp, f in futures.items()}
        except KafkaException as exc:
            raise to_medallion_error(exc, self.bootstrap, f"list {spec} offsets") from exc

    def starts(self, tps: Iterable[TP]) -> dict[TP, int]:
        return self.listed(tps, "earliest")

    def bounds(self, tps: Iterable[TP]) -> dict[TP, LogBounds]:
        """Log start and TRUE log end of each partition (see the module docstring for why it reads)."""
        wanted = list(tps)
        starts = self.starts(wanted)
        hints = self.listed(wanted, "latest")
        ends = self._read_to_eof({tp: (starts[tp], hints[tp]) for tp in wanted})
        return {tp: LogBounds(starts[tp], ends[tp]) for tp in wanted}

    def _read_to_eof(self, hints: Mapping[TP, tuple[int, int]]) -> dict[TP, int]:
        ends: dict[TP, int] = {}
        assign = []
        for (topic, part), (start, hint) in hints.items():
            if hint <= start:  # empty log: nothing to fetch, on any broker
                ends[(topic, part)] = hint
            else:
                assign.append(TopicPartition(topic, part, max(hint - 1, start)))
        if not assign:
            return ends
        pending = {(tp.topic, tp.partition) for tp in assign}
        consumer = self.consumer
        consumer.assign(assign)
        deadline = time.monotonic() + self.timeout_s
        try:
            while pending:
                for msg in consumer.consume(num_messages=100_000, timeout=0.01):
                    err = msg.error()
                    if err is None:
                        continue
                    if err.code() == KafkaError._PARTITION_EOF:
                        tp = (msg.topic() or "", msg.partition() or 0)
                        if tp in pending:
                            ends[tp] = msg.offset() or 0
                            pending.discard(tp)
                    elif err.code() != KafkaError._AUTO_OFFSET_RESET and not recovers_by_itself(err):
                        raise to_medallion_error(KafkaException(err), self.bootstrap, "read to log end")
                if pending and time.monotonic() > deadline:
                    raise TransientError(
                        f"Kafka at {self.bootstrap}: no end of log for {sorted(pending)} "
                        f"within {self.timeout_s:.0f}s (is the partition leader reachable?)"
                    )
        finally:
            consumer.unassign()
        return ends

    def commit_group(self, group_id: str, offsets: Mapping[TP, int]) -> None:
        """Record ``offsets`` as a consumer group's position (only so lag tools see progress)."""
        by_topic = [TopicPartition(t, p, o) for (t, p), o in sorted(offsets.items())]
        request = [ConsumerGroupTopicPartitions(group_id, by_topic)]
        try:
            for future in self.admin.alter_consumer_group_offsets(
                request, request_timeout=self.timeout_s
            ).values():
                future.result()
        except KafkaException as exc:
            raise to_medallion_error(exc, self.bootstrap, f"commit offsets of group {group_id!r}") from exc


@retry_transient(attempts=4, max_delay_s=60)
def ensure_topics(
    bootstrap: str,
    topics: Mapping[str, int],
    replication: int = 1,
    config: Mapping[str, str] | None = None,
    timeout_s: float = 30.0,
) -> list[str]:
    """Create the topics that do not exist yet (name → partitions); return the names created.

    An existing topic is left as it is, even with another partition count (growing it changes which
    partition a key goes to: do that on purpose with `add_partitions`).
    """
    with LogOffsets(bootstrap, config, timeout_s) as lo:
        lo.check_reachable()
        existing = lo.partitions(topics)
        missing = [NewTopic(t, n, replication) for t, n in topics.items() if t not in existing]
        for topic, parts in existing.items():
            if len(parts) != topics[topic]:
                logger.warning(
                    "topic {} exists with {} partitions ({} asked for); left as it is",
                    topic, len(parts), topics[topic],
                )  # fmt: skip
        created = []
        if missing:
            for topic, future in lo.admin.create_topics(missing, request_timeout=timeout_s).items():
                try:
                    future.result()
                    created.append(topic)
                except KafkaException as exc:
                    if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:  # created concurrently
                        raise to_medallion_error(exc, bootstrap, f"create topic {topic!r}") from exc
            _wait_for_partitions(lo, {t.topic: t.num_partitions for t in missing}, timeout_s)
        return created


def _wait_for_partitions(lo: LogOffsets, counts: Mapping[str, int], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        current = lo.partitions(counts)
        if all(len(current.get(t, [])) >= n for t, n in counts.items()) and lo.leaders_known(counts):
            return
        if time.monotonic() > deadline:
            raise TransientError(f"Kafka at {lo.bootstrap}: topics {dict(counts)} not ready in {timeout_s}s")
        time.sleep(0.1)


@retry_transient(attempts=4, max_delay_s=60)
def add_partitions(
    bootstrap: str,
    topic: str,
    total: int,
    config: Mapping[str, str] | None = None,
    timeout_s: float = 30.0,
) -> bool:
    """Grow ``topic`` to ``total`` partitions; False when it already has that many."""
    with LogOffsets(bootstrap, config, timeout_s) as lo:
        lo.check_reachable()
        current = len(lo.partitions([topic]).get(topic, []))
        if current == 0:
            raise ConfigError(f"Cannot add partitions to {topic!r}: no such topic at {bootstrap}.")
        if current > total:
            raise ConfigError(f"Topic {topic!r} has {current} partitions; Kafka cannot shrink it to {total}.")
        if current == total:
            return False
        try:
            for future in lo.admin.create_partitions([NewPartitions(topic, total)]).values():
                future.result()
        except KafkaException as exc:
            if exc.args[0].code() == KafkaError._UNSUPPORTED_FEATURE:
                raise TerminalError(
                    f"The broker at {bootstrap} cannot add partitions (no CreatePartitions API; the "
                    "embedded Tansu 0.6.0 lacks it). Create the topic with more partitions instead."
                ) from exc
            raise to_medallion_error(exc, bootstrap, f"add partitions to {topic!r}") from exc
        _wait_for_partitions(lo, {topic: total}, timeout_s)
        return True


@retry_transient(attempts=4, max_delay_s=60)
def log_bounds(
    bootstrap: str, topic: str, config: Mapping[str, str] | None = None, timeout_s: float = 30.0
) -> dict[int, LogBounds]:
    """Start and true end of every partition of ``topic`` ({} when the topic does not exist)."""
    with LogOffsets(bootstrap, config, timeout_s) as lo:
        lo.check_reachable()
        bounds = lo.bounds(lo.all_partitions([topic]))
    return {p: b for (_, p), b in sorted(bounds.items())}


def end_offsets(
    bootstrap: str, topic: str, config: Mapping[str, str] | None = None, timeout_s: float = 30.0
) -> dict[int, int]:
    """The true log end (offset of the next record) of every partition of ``topic``."""
    return {p: b.end for p, b in log_bounds(bootstrap, topic, config, timeout_s).items()}


def consumer_lag(
    bootstrap: str,
    topic: str,
    committed: Mapping[int, int],
    config: Mapping[str, str] | None = None,
    timeout_s: float = 30.0,
) -> dict[int, int]:
    """Records not yet consumed per partition; a partition without a committed offset lags by its log."""
    bounds = log_bounds(bootstrap, topic, config, timeout_s)
    return {p: max(0, b.end - max(committed.get(p, b.start), b.start)) for p, b in bounds.items()}


def checkpoint_offsets(checkpoint_dir: str | Path) -> dict[str, dict[int, int]]:
    """The offsets of the newest COMMITTED micro-batch in a Spark streaming checkpoint (no Spark needed).

    ``offsets/N`` holds the end offsets planned for batch N (a version line, a metadata line, then one
    line per source); ``commits/N`` appears once batch N is written. Sources whose offsets are not
    ``{"topic": {"partition": offset}}`` (other source kinds in the same query) are ignored.
    """
    checkpoint = str(checkpoint_dir)
    committed = _batch_ids(lakefs.join(checkpoint, "commits"))
    planned = _batch_ids(lakefs.join(checkpoint, "offsets"))
    done = sorted(set(committed) & set(planned))
    if not done:
        return {}
    lines = lakefs.read_text(planned[done[-1]]).splitlines()
    result: dict[str, dict[int, int]] = {}
    for line in lines[2:]:
        try:
            parsed = json.loads(line)
        except ValueError:
            continue  # "-" marks a source with no offset yet
        if isinstance(parsed, str):  # some Spark versions store a source offset as a JSON string
            try:
                parsed = json.loads(parsed)
            except ValueError:
                continue
        for topic, parts in parsed.items() if isinstance(parsed, dict) else ():
            if isinstance(parts, dict) and all(_is_int(k) and _is_int(v) for k, v in parts.items()):
                result.setdefault(topic, {}).update({int(p): int(o) for p, o in parts.items()})
    return result


def newest_committed_batch(checkpoint_dir: str | Path) -> int | None:
    """The id of the newest micro-batch a streaming checkpoint committed (``commits/N``: Spark writes it
    after the batch's sink returned, so everything the batch wrote is in place); None before the first."""
    return max(_batch_ids(lakefs.join(str(checkpoint_dir), "commits")), default=None)


def _batch_ids(directory: str) -> dict[int, str]:
    found = {}
    for path in lakefs.list_files(directory):
        name = path.rsplit("/", 1)[-1]
        if name.isdigit():
            found[int(name)] = path
    return found


def _is_int(value: object) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return True
    return isinstance(value, str) and value.lstrip("-").isdigit()
