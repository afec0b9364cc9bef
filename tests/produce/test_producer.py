"""The producer against the real embedded broker: everything sent is readable; failures are bounded,
explained, and leave every undelivered record in the dead-letter file."""

from __future__ import annotations

import base64
import json
import os
import signal
import time
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaError, TopicPartition

from medallion.core.config import Config
from medallion.core.contract import BAD_RECORD_HEADER, EVENT_TYPES
from medallion.core.errors import ConfigError, TransientError
from medallion.engines.embedded import find_free_port, start_broker, stop_broker
from medallion.produce import ProduceFailed, produce_events
from medallion.produce.producer import time_range
from tests.fixtures.broker import EmbeddedKafka

NOW = datetime(2026, 11, 25, 15, 30, tzinfo=UTC)


Read = tuple[bytes | None, bytes, dict[str, bytes]]


def read_all(bootstrap: str, topic: str, partitions: int) -> list[Read]:
    """Every record of ``topic``: assign each partition from the start and read to its end."""
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": f"t-{uuid.uuid4().hex}", "enable.partition.eof": True,
         "enable.auto.commit": False}
    )  # fmt: skip
    consumer.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    out: list[Read] = []
    at_end: set[int] = set()
    deadline = time.monotonic() + 60
    try:
        while len(at_end) < partitions and time.monotonic() < deadline:
            for msg in consumer.consume(10_000, timeout=1.0):
                err = msg.error()
                if err is not None:
                    assert err.code() == KafkaError._PARTITION_EOF, err
                    at_end.add(msg.partition() or 0)
                    continue
                at_end.discard(msg.partition() or 0)
                raw = msg.headers() or []
                pairs = raw.items() if isinstance(raw, dict) else raw
                headers = {k: v for k, v in pairs if isinstance(v, bytes)}
                out.append((msg.key(), msg.value() or b"", headers))
    finally:
        consumer.close()
    assert len(at_end) == partitions, "did not reach the end of every partition"
    return out


@pytest.mark.integration
def test_every_record_produced_is_readable(
    make_config: Callable[..., Config], kafka_broker: EmbeddedKafka
) -> None:
    topic = f"produce_{uuid.uuid4().hex[:8]}"
    cfg = make_config(
        kafka__bootstrap_servers=kafka_broker.bootstrap, kafka__topic=topic, kafka__partitions=3
    )
    seen: list[int] = []
    result = produce_events(
        cfg, count=6000, seed=4, start_date="2026-06-01", days=2, bad_ratio=0.03, duplicate_ratio=0.02,
        late_ratio=0.05, progress=seen.append,
    )  # fmt: skip
    assert (result.sent, result.delivered, result.failed, result.dead_letter_path) == (6000, 6000, 0, None)
    assert result.sent == sum(result.by_event_type.values()) + result.duplicates + sum(
        result.by_bad_class.values()
    )
    assert set(result.by_event_type) == set(EVENT_TYPES)
    assert result.lookups["users"] == cfg.produce.users
    assert seen[-1] == 6000

    records = read_all(kafka_broker.bootstrap, topic, 3)
    assert len(records) == 6000
    tags = Counter(h[BAD_RECORD_HEADER].decode() for _, _, h in records if BAD_RECORD_HEADER in h)
    assert dict(tags) == result.by_bad_class
    for key, value, headers in records:
        if not headers:
            assert key == json.loads(value)["user_id"].encode()
    ids = Counter(json.loads(v)["event_id"] for _, v, h in records if not h)
    assert sum(n - 1 for n in ids.values()) == result.duplicates


@pytest.mark.integration
def test_live_run_without_count_stops_cleanly_on_ctrl_c(
    make_config: Callable[..., Config], kafka_broker: EmbeddedKafka
) -> None:
    topic = f"live_{uuid.uuid4().hex[:8]}"
    cfg = make_config(
        kafka__bootstrap_servers=kafka_broker.bootstrap, kafka__topic=topic, kafka__partitions=2
    )

    pressed: list[int] = []

    def press_ctrl_c(sent: int) -> None:
        if sent >= 3000 and not pressed:
            pressed.append(sent)
            raise KeyboardInterrupt

    started = datetime.now(UTC)
    result = produce_events(
        cfg, count=0, rate=20_000, duplicate_ratio=0.05, progress=press_ctrl_c, write_lookups=False
    )
    assert result.interrupted and result.failed == 0 and result.sent >= 3000
    assert result.sent == sum(result.by_event_type.values()) + result.duplicates
    records = read_all(kafka_broker.bootstrap, topic, 2)
    assert len(records) == result.sent
    times = [datetime.fromisoformat(json.loads(v)["event_time"]) for _, v, _ in records]
    assert all(started - timedelta(seconds=1) <= t <= datetime.now(UTC) for t in times)


@pytest.mark.integration
def test_broker_dying_mid_run_fails_in_bounded_time_with_a_dead_letter_file(
    make_config: Callable[..., Config], tmp_path: Path
) -> None:
    state = tmp_path / "own-broker"
    handle = start_broker("127.0.0.1", find_free_port(), state, wait_s=30)
    try:
        cfg = make_config(kafka__bootstrap_servers=handle.bootstrap, kafka__topic="dies")
        killed_at: list[float] = []

        def kill_soon(sent: int) -> None:
            # Late enough that deliveries have begun (an idempotent producer's first takes ~1 s on Tansu).
            if sent >= 75_000 and not killed_at:
                os.kill(handle.pid, signal.SIGKILL)
                killed_at.append(time.monotonic())

        with pytest.raises(ProduceFailed) as failure:
            produce_events(
                cfg, count=5_000_000, rate=50_000, seed=1, delivery_timeout_s=3, progress=kill_soon,
                write_lookups=False,
            )  # fmt: skip
        elapsed = time.monotonic() - killed_at[0]
    finally:
        stop_broker(state)
    assert elapsed < 15, f"took {elapsed:.1f}s after the broker died"
    result = failure.value.result
    assert result.delivered > 0 and result.failed > 0
    assert result.sent == result.delivered + result.failed < 5_000_000
    message = str(failure.value)
    assert handle.bootstrap in message and str(result.dead_letter_path) in message
    assert not isinstance(failure.value, TransientError)  # a retry would resend what was delivered
    lines = [json.loads(line) for line in Path(str(result.dead_letter_path)).read_text().splitlines()]
    assert len(lines) == result.failed
    for line in lines[:: max(1, len(lines) // 50)]:
        assert line["stage"] == "produce" and line["topic"] == "dies" and line["error_class"]
        value = base64.b64decode(line["value_b64"])
        assert line["headers"] or json.loads(value)["user_id"] == line["key"]


def test_unreachable_broker_is_retried_then_named(make_config: Callable[..., Config]) -> None:
    address = f"127.0.0.1:{find_free_port()}"
    cfg = make_config(kafka__bootstrap_servers=address, kafka__connect_timeout_s=1)
    started = time.monotonic()
    with pytest.raises(TransientError, match=f"Kafka broker at {address} is unreachable"):
        produce_events(cfg, count=10, connect_attempts=2, write_lookups=False)
    assert time.monotonic() - started < 10


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"count": 0, "start_date": "2026-01-01"}, "needs live event times"),
        ({"rate": -1}, "--rate must be"),
        ({"start_date": "yesterday"}, "is not a date"),
        ({"start_date": "2090-01-01"}, "in the future"),
        ({"start_date": "2026-01-01", "days": 0}, "--days must be at least 1"),
        ({"bad_ratio": 2.0}, "bad_ratio must be between 0 and 1"),
    ],
)
def test_bad_arguments_are_config_errors(
    make_config: Callable[..., Config], kwargs: dict, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        produce_events(make_config(), write_lookups=False, **kwargs)


def test_time_range() -> None:
    assert time_range(date(2026, 3, 1), 2, now=NOW) == (
        datetime(2026, 3, 1, tzinfo=UTC),
        datetime(2026, 3, 3, tzinfo=UTC),
    )
    assert time_range("2026-11-23", 3, now=NOW) == (datetime(2026, 11, 23, tzinfo=UTC), NOW)
    assert time_range(datetime(2026, 11, 25, 9), 1, now=NOW)[0] == datetime(2026, 11, 25, tzinfo=UTC)
    assert time_range(None, 3, now=NOW) == (None, None)
