"""Benchmark: `produce_events` against a bare confluent-kafka loop, on one embedded broker, in one run.

The bare loop sends pre-serialized payloads taken from the generator itself (same sizes, same
compressibility, same keys) with the same producer settings, so the ratio is the cost of generating
realistic events in Python. Rounds alternate the two, so that load from other programs on the machine
hits both alike; the medians are compared.

    python bench/bench_produce.py [--count 500000] [--rounds 3] [--compression lz4 zstd]

Defaults are those of `medallion produce` (no bad records, 1% duplicates, 2% late events).
Targets: >= 50,000 events/s on 2 cores, and >= 0.5 of the bare loop.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from confluent_kafka import Producer

from medallion.core.config import Config, load_config
from medallion.engines.embedded import find_free_port, start_broker, stop_broker
from medallion.engines.kafka.admin import LIBRDKAFKA_LOGGER, ensure_topics
from medallion.produce.generator import EventStream
from medallion.produce.lookups import build_world
from medallion.produce.producer import GUARANTEES, PRODUCER_SETTINGS, produce_events, time_range

REPO = Path(__file__).resolve().parents[1]
START_DATE = "2026-01-05"  # historical event times: the same events in every round of one seed


def bare_loop(
    bootstrap: str, topic: str, payloads: list[tuple[bytes, bytes]], count: int, compression: str
) -> float:
    """Events/s of the simplest fast producer: produce() of ready bytes, poll(0) every 1024, flush."""
    conf = {
        **PRODUCER_SETTINGS,
        **GUARANTEES,
        "bootstrap.servers": bootstrap,
        "compression.type": compression,
    }
    producer = Producer({**conf, "logger": LIBRDKAFKA_LOGGER})
    produce, poll, n = producer.produce, producer.poll, len(payloads)
    started = time.monotonic()
    for i in range(count):
        key, value = payloads[i % n]
        while True:
            try:
                produce(topic, value, key)
                break
            except BufferError:
                poll(0.01)
        if not i & 1023:
            poll(0)
    left = producer.flush(120)
    seconds = time.monotonic() - started
    if left:
        raise SystemExit(f"bare loop: {left} records not delivered")
    return count / seconds


def sample_payloads(cfg: Config, seed: int, n: int) -> list[tuple[bytes, bytes]]:
    start, end = time_range(START_DATE, cfg.produce.days)
    world = build_world(seed, cfg.produce.users)
    stream = EventStream(world, count=n, seed=seed, start=start, end=end)
    return [(key, value) for key, value, _ in stream]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--count", type=int, default=500_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--compression", nargs="+", default=["zstd", "lz4"])
    parser.add_argument("--bad-ratio", type=float, default=0.0)
    parser.add_argument("--duplicate-ratio", type=float, default=0.01)
    parser.add_argument("--late-ratio", type=float, default=0.02)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-produce-") as tmp:
        state = Path(tmp) / "broker"
        handle = start_broker("127.0.0.1", find_free_port(), state, wait_s=30)
        try:
            print(
                f"embedded broker at {handle.bootstrap}; {args.count:,} records per run, {args.rounds} rounds"
            )
            print(f"ratios: bad {args.bad_ratio}, duplicate {args.duplicate_ratio}, late {args.late_ratio}\n")
            for compression in args.compression:
                cfg = load_config(
                    "local",
                    REPO / "config",
                    {
                        "lake.root": str(Path(tmp) / "lake"),
                        "kafka.bootstrap_servers": handle.bootstrap,
                        "kafka.topic": f"bench_medallion_{compression}",
                        "kafka.client": {"compression.type": compression},
                    },
                    environ={},
                )
                bare_topic = f"bench_bare_{compression}"
                ensure_topics(handle.bootstrap, {bare_topic: cfg.kafka.partitions})
                payloads = sample_payloads(cfg, cfg.produce.seed, 20_000)
                size = sum(len(v) for _, v in payloads) / len(payloads)
                bare_loop(handle.bootstrap, bare_topic, payloads, 50_000, compression)  # warm-up
                ours, bare = [], []
                for round_ in range(args.rounds):
                    result = produce_events(
                        cfg,
                        count=args.count,
                        seed=cfg.produce.seed + round_,
                        start_date=START_DATE,
                        bad_ratio=args.bad_ratio,
                        duplicate_ratio=args.duplicate_ratio,
                        late_ratio=args.late_ratio,
                        write_lookups=round_ == 0,
                    )
                    ours.append(result.events_per_second)
                    bare.append(bare_loop(handle.bootstrap, bare_topic, payloads, args.count, compression))
                    print(f"  {compression} round {round_ + 1}: medallion {ours[-1]:>9,.0f}/s", end="")
                    print(f"   bare {bare[-1]:>9,.0f}/s")
                mine, base = statistics.median(ours), statistics.median(bare)
                print(
                    f"{compression}: payload {size:.0f} B; medallion produce {mine:,.0f} events/s (median), "
                    f"bare loop {base:,.0f} events/s; ratio {mine / base:.2f}\n"
                )
        finally:
            stop_broker(state)
    return 0


if __name__ == "__main__":
    sys.exit(main())
