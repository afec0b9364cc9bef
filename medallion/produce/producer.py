"""Sending the synthetic events to Kafka: `produce_events`, the library behind `medallion produce`.

Delivery is at-least-once and never silent: the producer is idempotent with ``acks=all``; librdkafka
reports only failed deliveries (one Python callback per record would cost a tenth of the throughput),
so ``delivered = sent - failed`` once the queue is flushed. Every record that fails is written to a
local dead-letter file (JSON lines: the error, the key, the base64 value and headers) and the run
raises `ProduceFailed` with the counts. Time is bounded: a broker that is down at the start is retried
with backoff and then named in a `TransientError`; one that dies mid-run stops the run after
``delivery_timeout_s`` (what is still queued then is purged into the dead-letter file).

Why one module: the delivery accounting (sent, acknowledged, spooled, purged, dead-lettered) is one state kept
by one class, and must balance in one place; the generator and the synthetic world live apart (`generator.py`,
`lookups.py`).
"""

from __future__ import annotations

import base64
import json
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message, Producer
from confluent_kafka.admin import AdminClient
from loguru import logger
from pyarrow import fs

from medallion.core import catalog, lakefs, stages
from medallion.core.config import Config
from medallion.core.errors import ConfigError, MedallionError, TerminalError, TransientError
from medallion.core.ledger import new_run_id
from medallion.core.retry import retry_transient
from medallion.engines.kafka.admin import (
    LIBRDKAFKA_LOGGER,
    admin_config,
    ensure_topics,
    tcp_reachable,
    to_medallion_error,
)
from medallion.produce.generator import EventStream, Record
from medallion.produce.lookups import DEFAULT_ITEMS, build_world, write_world_lookups

PRODUCER_SETTINGS: dict[str, Any] = {
    # Throughput: big batches, a short linger. zstd puts less than half of lz4's bytes on the wire and on
    # the broker (7.5% of the JSON against 17%) at the same events/s here, where the Python thread that
    # makes the events is the bottleneck, not librdkafka's compression (bench/bench_produce.py).
    "compression.type": "zstd",
    "linger.ms": 25,
    "batch.size": 1_000_000,
    "batch.num.messages": 10_000,
    "queue.buffering.max.messages": 500_000,
    "queue.buffering.max.kbytes": 512 * 1024,
    "delivery.report.only.error": True,
}
GUARANTEES: dict[str, Any] = {"acks": "all", "enable.idempotence": True}
"""Settings a user's ``kafka.client`` cannot override: they are what "never silently dropped" rests on."""


@dataclass
class ProduceResult:
    """What a produce run did. ``sent = delivered + failed``; ``sent = sum(by_event_type) + duplicates +
    sum(by_bad_class)``; the failed records are in ``dead_letter_path``."""

    topic: str
    sent: int = 0
    delivered: int = 0
    failed: int = 0
    by_event_type: dict[str, int] = field(default_factory=dict)
    by_bad_class: dict[str, int] = field(default_factory=dict)
    duplicates: int = 0
    late: int = 0
    seconds: float = 0.0
    dead_letter_path: str | None = None
    lookups: dict[str, int] = field(default_factory=dict)
    interrupted: bool = False

    @property
    def events_per_second(self) -> float:
        return self.sent / self.seconds if self.seconds > 0 else 0.0


class ProduceFailed(MedallionError):
    """Some records were not delivered (they are in the dead-letter file); ``result`` has the counts.

    Not a TransientError on purpose: retrying the whole run would send the delivered records again.
    """

    def __init__(self, message: str, result: ProduceResult) -> None:
        super().__init__(message)
        self.result = result


PRODUCE_DLQ_SCRATCH = "produce-dead-letters"  # local scratch folder before the copy to the lake


class DeadLetterFile:
    """Undeliverable records as JSON lines, opened on the first one. For a lake on an object store the
    file is written locally and copied next to the lake's state when closed."""

    def __init__(self, cfg: Config, run_id: str, topic: str) -> None:
        self.run_id, self.topic, self.count = run_id, topic, 0
        name = f"{run_id}.jsonl"
        folder = catalog.PRODUCE_DLQ.path(cfg)
        if cfg.lake.is_local:
            self.local = lakefs.local_path(folder) / name
            self.remote: str | None = None
        else:
            self.local = Path(tempfile.gettempdir()) / "medallion" / PRODUCE_DLQ_SCRATCH / name
            self.remote = lakefs.join(folder, name)
        self._out: Any = None

    @property
    def path(self) -> str | None:
        return None if self.count == 0 else self.remote or str(self.local)

    def write(
        self, error: KafkaError | str, key: bytes | None, value: bytes | str | None, headers: Any
    ) -> None:
        if self._out is None:
            self.local.parent.mkdir(parents=True, exist_ok=True)
            self._out = self.local.open("a", encoding="utf-8")
        raw = value.encode() if isinstance(value, str) else value
        record = {
            "failed_at": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "stage": stages.PRODUCE.name,
            "run_id": self.run_id,
            "topic": self.topic,
            "error_class": error.name() if isinstance(error, KafkaError) else "NOT_SENT",
            "error_message": error.str() if isinstance(error, KafkaError) else error,
            # a purged in-flight record may have reached the broker after all: replaying it may duplicate
            "possibly_delivered": isinstance(error, KafkaError)
            and error.code() == KafkaError._PURGE_INFLIGHT,
            "key": key.decode("utf-8", "replace") if key is not None else None,
            "value_b64": base64.b64encode(raw).decode() if raw is not None else None,
            "headers": {
                k: v.decode("utf-8", "replace") if isinstance(v, bytes) else v for k, v in headers or ()
            },
        }
        self._out.write(json.dumps(record) + "\n")
        self.count += 1

    def close(self) -> None:
        if self._out is None:
            return
        self._out.close()
        self._out = None
        if self.remote is not None:
            fs.copy_files(str(self.local), lakefs.pyarrow_uri(self.remote))


class _Reports:
    """librdkafka's callbacks: failed deliveries (to the dead-letter file) and client-level errors."""

    def __init__(self, dlq: DeadLetterFile) -> None:
        self.dlq = dlq
        self.failed = 0
        self.timed_out = False
        self.brokers_down = False
        self.fatal: KafkaError | None = None
        self.last_error: KafkaError | None = None

    def on_delivery(self, err: KafkaError | None, msg: Message) -> None:
        if err is None:
            return
        self.failed += 1
        self.timed_out |= err.code() == KafkaError._MSG_TIMED_OUT
        self.last_error = err
        self.dlq.write(err, msg.key(), msg.value(), msg.headers())

    def on_error(self, err: KafkaError) -> None:
        self.last_error = err
        if err.fatal():
            self.fatal = err
        elif err.code() == KafkaError._ALL_BROKERS_DOWN:
            self.brokers_down = True
        logger.debug("kafka producer: {}", err.str())


def producer_config(cfg: Config, reports: _Reports, delivery_timeout_s: float) -> dict[str, Any]:
    """Our throughput defaults, then the user's client settings, then the delivery guarantees."""
    conf: dict[str, Any] = {**PRODUCER_SETTINGS, **cfg.kafka.client, **GUARANTEES}
    conf["bootstrap.servers"] = cfg.kafka.bootstrap_servers
    conf["message.timeout.ms"] = int(delivery_timeout_s * 1000)
    conf["on_delivery"] = reports.on_delivery
    conf["error_cb"] = reports.on_error
    conf["logger"] = LIBRDKAFKA_LOGGER  # librdkafka's own log lines go to trace level; errors surface as ours
    return conf


def wait_for_broker(cfg: Config, attempts: int = 5) -> None:
    """Return once a broker answers at ``kafka.bootstrap_servers``; retry with backoff, then name it."""
    bootstrap, timeout = cfg.kafka.bootstrap_servers, cfg.kafka.connect_timeout_s

    @retry_transient(attempts=attempts)
    def attempt() -> None:
        if not tcp_reachable(bootstrap, min(timeout, 5.0)):
            raise TransientError(
                f"Kafka broker at {bootstrap} is unreachable (connection refused or timed out). Is the "
                "broker running (`medallion up` for the embedded one) and is kafka.bootstrap_servers right?"
            )
        try:
            AdminClient(admin_config(bootstrap, cfg.kafka.client)).list_topics(timeout=timeout)
        except KafkaException as exc:
            raise to_medallion_error(exc, bootstrap, "connect") from exc

    attempt()


def time_range(
    start_date: date | datetime | str | None, days: int, now: datetime | None = None
) -> tuple[datetime | None, datetime | None]:
    """The historical range ``[start, end)`` of event times, or ``(None, None)`` for live times.

    A start date gives ``days`` whole days from its midnight (UTC), cut at ``now``: events never lie in
    the future, so a range reaching today ends now (and depends on when it runs). No start date: live.
    """
    if start_date is None:
        return None, None
    now = now or datetime.now(UTC)
    if days < 1:
        raise ConfigError(f"--days must be at least 1, not {days}.")
    if isinstance(start_date, str):
        try:
            start_date = date.fromisoformat(start_date)
        except ValueError:
            raise ConfigError(f"--start-date {start_date!r} is not a date: use YYYY-MM-DD.") from None
    day = start_date.date() if isinstance(start_date, datetime) else start_date
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    if start >= now:
        raise ConfigError(f"--start-date {day} is in the future: event times must lie in the past (UTC).")
    return start, min(start + timedelta(days=days), now.replace(microsecond=now.microsecond // 1000 * 1000))


def produce_events(
    cfg: Config,
    *,
    count: int | None = None,
    seed: int | None = None,
    rate: float = 0.0,
    start_date: date | datetime | str | None = None,
    days: int | None = None,
    bad_ratio: float = 0.0,
    duplicate_ratio: float = 0.0,
    late_ratio: float = 0.0,
    users: int | None = None,
    items: int = DEFAULT_ITEMS,
    write_lookups: bool = True,
    delivery_timeout_s: float = 30.0,
    connect_attempts: int = 5,
    progress: Callable[[int], None] | None = None,
) -> ProduceResult:
    """Generate ``count`` records (default ``produce.count``; 0 = until interrupted, live only) and send
    them to ``kafka.topic``, creating the topic if missing; write the lookup tables first.

    Event times are historical from ``start_date`` for ``days`` (default ``produce.days``; see
    `time_range`), or live (the wall clock) without a start date. ``rate`` caps records/s (0 = as fast
    as possible). ``progress(sent)`` is called about ten times a second. Ctrl-C stops generating,
    flushes, and returns with ``interrupted=True``. Raises `TransientError` when no broker answers,
    `ProduceFailed` (with ``.result``, the counts) when any record was not delivered.
    """
    count = cfg.produce.count if count is None else count
    seed = cfg.produce.seed if seed is None else seed
    users = cfg.produce.users if users is None else users
    if rate < 0:
        raise ConfigError(f"--rate must be 0 (as fast as possible) or positive, not {rate}.")
    if count == 0 and start_date is not None:
        raise ConfigError("--count 0 (produce until interrupted) needs live event times (no --start-date).")
    start, end = time_range(start_date, cfg.produce.days if days is None else days)
    world = build_world(seed, users, items, as_of=(start or datetime.now(UTC)).date())
    try:
        stream = EventStream(
            world, count=count, seed=seed, start=start, end=end, bad_ratio=bad_ratio,
            duplicate_ratio=duplicate_ratio, late_ratio=late_ratio, live_rate=rate,
        )  # fmt: skip
    except ValueError as exc:
        raise ConfigError(f"Cannot produce: {exc}.") from None
    topic = cfg.kafka.topic
    result = ProduceResult(topic=topic)
    if write_lookups:
        result.lookups = write_world_lookups(world, cfg.lake.root)
    wait_for_broker(cfg, connect_attempts)
    ensure_topics(
        cfg.kafka.bootstrap_servers, {topic: cfg.kafka.partitions}, cfg.kafka.replication_factor,
        config=cfg.kafka.client, timeout_s=cfg.kafka.connect_timeout_s,
    )  # fmt: skip
    dlq = DeadLetterFile(cfg, new_run_id(), topic)
    reports = _Reports(dlq)
    producer = Producer(producer_config(cfg, reports, delivery_timeout_s))
    started = time.monotonic()
    try:
        result.sent, failure, result.interrupted = _send(
            producer, topic, stream, reports, rate, delivery_timeout_s, progress
        )
        failure = _finish(producer, reports, delivery_timeout_s, failure)
    finally:
        dlq.close()
    stats = stream.stats()
    result.seconds = time.monotonic() - started
    result.failed = reports.failed
    result.delivered = result.sent - result.failed
    result.by_event_type, result.by_bad_class = stats.by_event_type, stats.by_bad_class
    result.duplicates, result.late = stats.duplicates, stats.late
    result.dead_letter_path = dlq.path
    if progress is not None:
        progress(result.sent)
    if failure is not None or result.failed:
        reason = failure or f"last error: {reports.last_error.str() if reports.last_error else 'unknown'}"
        raise ProduceFailed(
            f"{result.failed} of {result.sent} records were not delivered to topic {topic} at "
            f"{cfg.kafka.bootstrap_servers} ({reason}); they are in the dead-letter file "
            f"{result.dead_letter_path}.",
            result,
        )
    return result


def _send(
    producer: Producer,
    topic: str,
    stream: EventStream,
    reports: _Reports,
    rate: float,
    delivery_timeout_s: float,
    progress: Callable[[int], None] | None,
) -> tuple[int, str | None, bool]:
    """The hot loop: hand every record to librdkafka. Returns (records sent, why it stopped early, whether
    Ctrl-C stopped it). A stop never leaves a record of a yielded batch unaccounted: the rest of the batch
    is sent (Ctrl-C) or written to the dead-letter file (queue stuck), so ``sent`` matches the stream's
    stats."""
    produce, poll = producer.produce, producer.poll
    batch_size = 1024 if rate <= 0 else max(1, min(1024, int(rate / 50)))
    sent = done = 0
    batch: list[Record] | None = None
    started = last_report = time.monotonic()
    try:
        for batch in stream.batches(batch_size):
            done = 0
            try:
                for key, value, headers in batch:
                    if headers is None:
                        produce(topic, value, key)
                    else:
                        produce(topic, value, key, headers=headers)
                    done += 1
            except BufferError:
                done = _send_slowly(producer, topic, batch, done, delivery_timeout_s)
            sent += done
            if done < len(batch):
                stuck = f"the local producer queue stayed full for {delivery_timeout_s:.0f}s"
                return sent + _dead_letter(reports, batch[done:], f"not sent: {stuck}"), stuck, False
            batch = None
            poll(0)
            if reports.brokers_down or reports.timed_out or reports.fatal:
                why = _broker_trouble(producer, reports, delivery_timeout_s)
                if why:
                    return sent, why, False
            if rate > 0:
                while (ahead := started + sent / rate - time.monotonic()) > 0:
                    poll(min(ahead, 0.1))
            if progress is not None and (now := time.monotonic()) - last_report >= 0.1:
                last_report = now
                progress(sent)
    except KeyboardInterrupt:
        if batch is not None:  # interrupted while sending it: send the rest, so the counts stay whole
            sent += _send_slowly(producer, topic, batch, done, delivery_timeout_s) - done
        return sent, None, True
    return sent, None, False


def _send_slowly(producer: Producer, topic: str, batch: list[Record], start: int, timeout_s: float) -> int:
    """Send ``batch[start:]`` one by one, waiting while librdkafka's queue is full (at most ``timeout_s``
    for each record); returns the index of the first record not sent (``len(batch)`` when all were)."""
    done = start
    for key, value, headers in batch[start:]:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                producer.produce(topic, value, key, headers=headers)
                break
            except BufferError:
                if time.monotonic() > deadline:
                    return done
                producer.poll(0.05)
        done += 1
    return done


def _dead_letter(reports: _Reports, records: list[Record], why: str) -> int:
    for key, value, headers in records:
        reports.failed += 1
        reports.dlq.write(why, key, value, headers)
    return len(records)


def _broker_trouble(producer: Producer, reports: _Reports, timeout_s: float) -> str | None:
    """After a broker-level error: wait (bounded) for the queue to drain; a reason to stop, or None."""
    if reports.fatal is not None:
        return f"fatal producer error: {reports.fatal.str()}"
    failed_before = reports.failed
    logger.warning("Kafka brokers unreachable; waiting up to {:.0f}s for them to come back", timeout_s)
    left = producer.flush(timeout_s)
    if left == 0 and reports.failed == failed_before and not reports.timed_out:
        reports.brokers_down = False
        return None
    return f"the broker stopped answering (no delivery within {timeout_s:.0f}s)"


def _finish(producer: Producer, reports: _Reports, timeout_s: float, failure: str | None) -> str | None:
    """Flush what is queued (bounded); purge the rest into the DLQ. Returns why the run failed, if it did."""
    left = producer.flush(1.0 if failure else timeout_s + 5.0)
    if left:
        failure = failure or f"{left} records still queued after {timeout_s + 5:.0f}s"
        producer.purge(in_queue=True, in_flight=True, blocking=False)
        left = producer.flush(5.0)
    if left:  # not even a purge report: count them lost rather than delivered
        reports.failed += left
        failure = f"{failure}; {left} records in an unknown state"
    if reports.fatal is not None and failure is None:
        raise TerminalError(f"Kafka producer failed: {reports.fatal.str()}")
    return failure
