"""Benchmark: Kafka → Bronze (the real ingest job) against a bare consume → Parquet loop, on one topic, in one run.

    python bench/bench_ingest.py [--case both|live|backlog] [--count 500000] [--max-offsets 100000]
                                 [--partitions 4] [--cores 2] [--compare-decoder GIT_REV]
                                 [--source python|native]

Two cases, each in its own process with its own embedded broker (``--case both``, the default, runs one
after the other and prints both ratios at the end):

- **live**: event times are the wall clock as the events are produced (all within the last hour), as
  production sees them: a micro-batch touches one or two hours of Bronze;
- **backlog**: three days of history from 2026-01-05: a micro-batch touches a few dozen hours.

One topic of ``--count`` synthetic events (1% bad records, 1% duplicates, 2% late: what
`medallion produce --bad-ratio 0.01` sends). First, in a fresh process, **the decoder alone**: Bronze's
per-record work (`BronzeDecoder`, the whole contract) on the topic's first records as the Kafka source
reads them, on one core, in µs per record (a cold pass, then a second pass with the worker's memoized
scrubbing warm); ``--compare-decoder REV`` measures the decoder of that git revision on the same batches.
Then, on that same topic:

- **baseline**, run before and after the ingest, each in a fresh process (the median of the two is
  compared): the least any ingester must do. One confluent-kafka consumer assigned to every partition
  reads the topic from its start to its end, collects key, value, topic, partition, offset and timestamp
  column-wise, and writes a Parquet file (pyarrow, snappy) every ``--max-offsets`` records. No parsing,
  no validation, no PII work.
- **medallion**: `medallion.operations.pipeline.ingest(cfg, once=True)`: the job `medallion ingest --once` runs (the
  Python Kafka source, parse, contract rules, dedup, PII scrubbing, Bronze + DLQ writes, checkpoint,
  ledger), with ``maxOffsetsPerTrigger = --max-offsets`` and the configuration's other defaults
  (``local[--cores]``, whatever ``config/`` says). Its figure is the **steady state**: the records of every
  micro-batch after the first divided by the wall time from the start of the second micro-batch to the end
  of the last one, as Spark's own progress reports time them (a listener on the session). Spark's start-up
  and the first micro-batch (JIT, Python workers, first plans) are left out and printed apart, with the
  end-to-end figure that includes them.

Then four reference queries in the same session over the same topic, measured the same way: ``source``
(the Kafka source alone into Spark's ``noop`` sink), ``spark copy`` (the same → Parquet: what Spark
itself costs), ``decode`` (the job's source with Bronze's decoder into ``noop``) and ``decode + dedup``
(the job's streaming plan into ``noop``: the per-record work with no write). Printed fastest first with
the job among them, they show where the time goes, piece by piece.

Memory: the proportional set size (PSS) of the whole process tree (this Python driver, the Spark JVM, its
Python workers), sampled every 0.25 s, reported as its peak during each micro-batch: with the cap it should
stay flat while the topic holds many batches. PSS splits a page that forked workers share among them, so
the sum is what the tree really holds (a sum of RSS would count each shared page once per worker).

Targets: medallion >= 0.5 x the baseline in both cases, with the whole contract enforced; memory roughly
flat across micro-batches.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import datetime as dt
import importlib.util
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import pyarrow as pa
import pyarrow.parquet as pq
from confluent_kafka import Consumer, TopicPartition

from medallion.core.config import Config, load_config
from medallion.engines.embedded import find_free_port, start_broker, stop_broker
from medallion.engines.kafka.admin import LIBRDKAFKA_LOGGER, end_offsets
from medallion.produce.producer import produce_events

REPO = Path(__file__).resolve().parents[1]
START_DATE = "2026-01-05"  # historical event times: the same events in every run of one seed
BACKLOG_DAYS = 3
BENCH_PII_KEY = "bench-ingest-not-a-secret-key"
DECODER_RECORDS = 200_000


# --- the decoder alone --------------------------------------------------------------------------------


def decoder_apart(bootstrap: str, topic: str, records: int, compare: str | None) -> dict[str, Any]:
    """`decoder_rate` in a fresh process: its caches must not stay in the memory measured for the job."""
    spawn = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(1, mp_context=spawn) as pool:
        return pool.submit(decoder_rate, bootstrap, topic, records, compare).result()


def _decoder_of_revision(rev: str) -> Any:
    """``BronzeDecoder`` as ``medallion/bronze/records.py`` was at git revision ``rev``."""
    source = subprocess.run(
        ["git", "show", f"{rev}:medallion/bronze/records.py"],
        cwd=REPO,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    path = Path(tempfile.mkdtemp(prefix="bench-decoder-")) / "records_then.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("records_then", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module.BronzeDecoder


def decoder_rate(bootstrap: str, topic: str, records: int, compare: str | None) -> dict[str, Any]:
    """µs per record of Bronze's decoder on the topic's first ``records`` (spread over its partitions), as
    the source's reader hands them over (Arrow batches), on one core: a cold pass, then a warm one."""
    from medallion.bronze.records import BronzeDecoder
    from medallion.engines.kafka.source import OffsetRange, SourceOptions, read_range

    opts = SourceOptions.parse({"kafka.bootstrap.servers": bootstrap, "subscribe": topic})
    ends = end_offsets(bootstrap, topic)
    share = records // len(ends)
    batches = [
        b for p, end in ends.items() for b in read_range(opts, OffsetRange(topic, p, 0, min(share, end)))
    ]
    n = sum(b.num_rows for b in batches)
    out: dict[str, Any] = {"records": n}
    decoders = {"now": BronzeDecoder}
    if compare:
        decoders[compare] = _decoder_of_revision(compare)
    for name, cls in decoders.items():
        decoder = cls(BENCH_PII_KEY.encode())
        passes = []
        for _ in range(2):
            started = time.process_time()  # CPU time: the machine may be shared
            decoded = [decoder(b) for b in batches]
            passes.append((time.process_time() - started) / n * 1e6)
        valid = sum(d.column("error_class").null_count for d in decoded)
        out[name] = {"cold_us": passes[0], "warm_us": passes[1], "valid": valid}
    return out


# --- the baseline ---------------------------------------------------------------------------------------


def baseline_apart(bootstrap: str, topic: str, out_dir: Path, rows_per_file: int) -> tuple[int, float]:
    """`baseline` in a fresh process: its Python lists must not stay in the memory measured for the job."""
    spawn = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(1, mp_context=spawn) as pool:
        return pool.submit(baseline, bootstrap, topic, out_dir, rows_per_file).result()


def baseline(bootstrap: str, topic: str, out_dir: Path, rows_per_file: int) -> tuple[int, float]:
    """Records and seconds of the bare loop: consume the whole topic → pyarrow tables → Parquet files."""
    out_dir.mkdir(parents=True)
    started = time.monotonic()
    ends = end_offsets(bootstrap, topic)
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "bench-baseline",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            "fetch.wait.max.ms": 50,
            "max.partition.fetch.bytes": 8 << 20,
            "logger": LIBRDKAFKA_LOGGER,
        }
    )
    consumer.assign([TopicPartition(topic, p, 0) for p in ends])
    cols: dict[str, list[Any]] = {k: [] for k in ("key", "value", "partition", "offset", "timestamp")}
    done = {p for p, end in ends.items() if end == 0}
    total, files = 0, 0

    def flush() -> None:
        nonlocal files
        n = len(cols["offset"])
        table = pa.table(
            {
                "key": pa.array(cols["key"], pa.binary()),
                "value": pa.array(cols["value"], pa.binary()),
                "topic": pa.repeat(pa.scalar(topic), n),
                "partition": pa.array(cols["partition"], pa.int32()),
                "offset": pa.array(cols["offset"], pa.int64()),
                "timestamp": pa.array(cols["timestamp"], pa.timestamp("ms", tz="UTC")),
            }
        )
        pq.write_table(table, out_dir / f"part-{files:05d}.parquet", compression="snappy")
        files += 1
        for values in cols.values():
            values.clear()

    while len(done) < len(ends):
        for msg in consumer.consume(num_messages=10_000, timeout=1.0):
            if msg.error():
                done.add(msg.partition())  # partition EOF (enable.partition.eof)
                continue
            cols["key"].append(msg.key())
            cols["value"].append(msg.value())
            cols["partition"].append(msg.partition())
            cols["offset"].append(msg.offset())
            cols["timestamp"].append(msg.timestamp()[1])
            total += 1
            if len(cols["offset"]) >= rows_per_file:
                flush()
    if cols["offset"]:
        flush()
    consumer.close()
    return total, time.monotonic() - started


# --- the ingest job, watched --------------------------------------------------------------------------


@dataclass
class Batch:
    batch_id: int
    rows: int
    start: float  # epoch seconds
    seconds: float
    durations_ms: dict[str, int]
    peak_pss: int = 0
    peak_jvm: int = 0

    @property
    def end(self) -> float:
        return self.start + self.seconds


@dataclass
class Watch:
    """Spark's progress reports of one query (through a listener) and memory samples of the process tree."""

    query: str
    batches: list[Batch] = field(default_factory=list)
    samples: list[tuple[float, int, int]] = field(default_factory=list)  # (time, tree PSS, JVM PSS)
    stop: threading.Event = field(default_factory=threading.Event)

    def listener(self) -> Any:
        from pyspark.sql.streaming import StreamingQueryListener

        watch = self

        class Progress(StreamingQueryListener):
            def onQueryStarted(self, event: Any) -> None:
                pass

            def onQueryProgress(self, event: Any) -> None:
                p = json.loads(event.progress.json)
                if p.get("name") != watch.query:
                    return
                started = dt.datetime.fromisoformat(p["timestamp"].replace("Z", "+00:00")).timestamp()
                durations = {k: int(v) for k, v in p.get("durationMs", {}).items()}
                watch.batches.append(
                    Batch(
                        p["batchId"],
                        int(p["numInputRows"]),
                        started,
                        durations.get("triggerExecution", 0) / 1000,
                        durations,
                    )
                )

            def onQueryIdle(self, event: Any) -> None:
                pass

            def onQueryTerminated(self, event: Any) -> None:
                pass

        return Progress()

    def sample_forever(self, every_s: float = 0.25) -> None:
        me = psutil.Process()
        while not self.stop.is_set():
            tree, jvm = 0, 0
            for p in [me, *me.children(recursive=True)]:
                try:
                    pss = p.memory_full_info().pss  # Linux
                    tree += pss
                    if p.name() == "java":
                        jvm += pss
                except psutil.NoSuchProcess:
                    pass
            self.samples.append((time.time(), tree, jvm))
            self.stop.wait(every_s)

    def assign_peaks(self) -> None:
        for b in self.batches:
            inside = [(pss, jvm) for t, pss, jvm in self.samples if b.start <= t <= b.end]
            b.peak_pss = max((pss for pss, _ in inside), default=0)
            b.peak_jvm = max((jvm for _, jvm in inside), default=0)

    def steady_batches(self) -> list[Batch]:
        """Every micro-batch with data after the first: the steady state."""
        steady = [b for b in self.batches if b.rows > 0][1:]
        if not steady:
            raise SystemExit(
                "only one micro-batch: raise --count or lower --max-offsets to measure a steady state"
            )
        return steady

    def steady(self) -> tuple[int, float]:
        """Records and wall seconds of the steady state."""
        steady = self.steady_batches()
        return sum(b.rows for b in steady), steady[-1].end - steady[0].start


def run_ingest(cfg: Config) -> tuple[Watch, float, float, Any]:
    """Start Spark (timed apart), then run the ingest job to the end of the topic while watching it."""
    from medallion.engines.spark import get_spark
    from medallion.operations import pipeline

    watch = Watch(query=f"bronze_{cfg.kafka.topic}")
    sampler = threading.Thread(target=watch.sample_forever, daemon=True)
    sampler.start()
    t = time.monotonic()
    spark = get_spark(cfg)
    spark_start_s = time.monotonic() - t
    listener = watch.listener()
    spark.streams.addListener(listener)
    t = time.monotonic()
    result = pipeline.ingest(cfg, once=True)
    ingest_s = time.monotonic() - t
    time.sleep(1.0)  # the listener's last events arrive asynchronously
    spark.streams.removeListener(listener)
    watch.stop.set()
    sampler.join()
    watch.batches.sort(key=lambda b: b.batch_id)
    watch.assign_peaks()
    return watch, spark_start_s, ingest_s, result


# --- reference queries: where the job's time goes ----------------------------------------------------


def dedup_only(index: Any) -> Any:
    """``foreachBatch``: what the job does before it writes: the batch to the driver, duplicates dropped."""
    from medallion.bronze.dedup import with_id_hash

    def process(batch: Any, batch_id: int) -> None:
        index.commit(index.decide(with_id_hash(batch).toArrow(), batch_id))

    return process


def run_references(cfg: Config, work: Path) -> dict[str, tuple[int, float]]:
    """Four availableNow queries in the job's session over the same topic with the same cap, each from
    the topic's start with its own checkpoint: steady-state records and seconds of

    - ``source``: the Kafka source with no decoder into Spark's ``noop`` sink: reading the topic;
    - ``spark copy``: the same → unpartitioned Parquet (append): the baseline's work done through Spark,
      i.e. what the engine itself costs;
    - ``decode``: the job's source with Bronze's decoder (parsing, the contract rules, PII scrubbing)
      into ``noop``: the per-record Python work, nothing written;
    - ``decode + dedup``: the job's own streaming plan (`checked_stream`) and, in ``foreachBatch``, the
      batch brought to the driver as the job brings it, its duplicates found by the job's dedup index
      (`medallion.bronze.dedup`) and dropped: the per-record work with the duplicates, no write at all.

    Read in that order they are a waterfall: each adds one piece of the job; what the job takes beyond
    the last is its counts and the two partitioned writes.
    """
    from medallion.bronze.dedup import DedupIndex, window_ms
    from medallion.bronze.stream import checked_stream, decoded_stream, source_options
    from medallion.engines.kafka.source import register
    from medallion.engines.spark import get_spark

    spark = get_spark(cfg)
    register(spark)  # the plain source (``medallion_kafka``), beside the job's decoding one
    options = {k: v for k, v in source_options(cfg).items() if k != "groupIdForLag"}
    copy_to = str(work / "copy")

    def plain() -> Any:
        return spark.readStream.format("medallion_kafka").options(**options).load()

    plans = {
        "source": plain().writeStream.format("noop"),
        "spark copy": plain().writeStream.foreachBatch(
            lambda df, _: df.write.mode("append").parquet(copy_to)
        ),
        "decode": decoded_stream(spark, cfg, BENCH_PII_KEY.encode()).writeStream.format("noop"),
        "decode + dedup": checked_stream(spark, cfg, BENCH_PII_KEY.encode()).writeStream.foreachBatch(
            dedup_only(DedupIndex(str(work / "dedup"), window_ms(cfg.ingest.dedup_watermark)))
        ),
    }
    rates = {}
    for n, (name, writer) in enumerate(plans.items()):
        watch = Watch(query=f"reference_{n}")
        listener = watch.listener()
        spark.streams.addListener(listener)
        query = (
            writer.queryName(watch.query)
            .option("checkpointLocation", str(work / f"checkpoint-{n}"))
            .trigger(availableNow=True)
            .start()
        )
        query.awaitTermination()
        time.sleep(1.0)
        spark.streams.removeListener(listener)
        rates[name] = watch.steady()
    return rates


# --- main ------------------------------------------------------------------------------------------------


def mb(n: float) -> str:
    return f"{n / 2**20:,.0f} MB"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--count", type=int, default=500_000, help="events in the topic")
    parser.add_argument(
        "--max-offsets", type=int, default=100_000, help="maxOffsetsPerTrigger (and baseline file size)"
    )
    parser.add_argument("--partitions", type=int, default=4, help="partitions of the topic")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--cores", type=int, default=2, help="Spark's local master: local[CORES] (the baseline uses one loop)"
    )
    parser.add_argument(
        "--spark-conf", nargs="*", default=[], metavar="KEY=VALUE", help="extra Spark settings"
    )
    parser.add_argument(
        "--case",
        choices=("both", "live", "backlog"),
        default="both",
        help="live: event times now; backlog: three days of history; both: one process each, in turn",
    )
    parser.add_argument(
        "--compare-decoder", metavar="GIT_REV", help="also time the decoder of this git revision (before)"
    )
    parser.add_argument(
        "--source",
        choices=("python", "native"),
        default="python",
        help="ingest.source: native reads with Spark's kafka format, its jars from tests/jvm/lib/spark-kafka "
        "(bash tests/jvm/resolve.sh)",
    )
    args = parser.parse_args()
    if args.case == "both":
        return run_both(sys.argv[1:])

    os.environ.setdefault("MEDALLION_PII_KEY", BENCH_PII_KEY)
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
        state = Path(tmp) / "broker"
        handle = start_broker("127.0.0.1", find_free_port(), state, wait_s=30)
        try:
            cfg = load_config(
                "local",
                REPO / "config",
                {
                    "lake.root": str(Path(tmp) / "lake"),
                    "kafka.bootstrap_servers": handle.bootstrap,
                    "kafka.embedded": False,
                    "kafka.topic": f"bench_ingest_{args.case}",
                    "kafka.partitions": args.partitions,
                    "spark.master": f"local[{args.cores}]",
                    "spark.conf": dict(kv.split("=", 1) for kv in args.spark_conf),
                    "ingest.max_offsets_per_trigger": args.max_offsets,
                    "ingest.source": args.source,
                    "ingest.native_jars": native_jars() if args.source == "native" else [],
                },
                environ={},
            )
            produced = produce_events(
                cfg,
                count=args.count,
                seed=args.seed,
                start_date=START_DATE if args.case == "backlog" else None,
                days=BACKLOG_DAYS,
                bad_ratio=0.01,
                duplicate_ratio=0.01,
                late_ratio=0.02,
                write_lookups=False,
            )
            size = sum(produced.by_event_type.values())
            print(
                f"embedded broker at {handle.bootstrap}; topic {cfg.kafka.topic}: {produced.delivered:,} records "
                f"in {args.partitions} partitions ({size:,} events, {produced.duplicates:,} duplicates, "
                f"{sum(produced.by_bad_class.values()):,} bad); case {args.case}; {psutil.cpu_count()} CPUs, "
                f"load average {os.getloadavg()[0]:.1f}\n"
            )
            decoder = decoder_apart(handle.bootstrap, cfg.kafka.topic, DECODER_RECORDS, args.compare_decoder)
            for name, d in decoder.items():
                if name != "records":
                    print(
                        f"decoder ({name}) on {decoder['records']:,} records, one core: "
                        f"{d['cold_us']:.2f} CPU µs/record cold, {d['warm_us']:.2f} warm; {d['valid']:,} valid"
                    )
            print(flush=True)

            base = [
                baseline_apart(handle.bootstrap, cfg.kafka.topic, Path(tmp) / "baseline-1", args.max_offsets)
            ]
            print(
                f"baseline 1: {base[0][0]:,} records in {base[0][1]:.2f}s = {base[0][0] / base[0][1]:,.0f}/s",
                flush=True,
            )
            watch, spark_start_s, ingest_s, result = run_ingest(cfg)
            references = run_references(cfg, Path(tmp) / "references")
            base.append(
                baseline_apart(handle.bootstrap, cfg.kafka.topic, Path(tmp) / "baseline-2", args.max_offsets)
            )
            print(
                f"baseline 2: {base[1][0]:,} records in {base[1][1]:.2f}s = {base[1][0] / base[1][1]:,.0f}/s\n"
            )
            assert all(n == produced.delivered for n, _ in base), "the baseline did not read the whole topic"
            report(args, watch, spark_start_s, ingest_s, result, base, produced.delivered, references)
        finally:
            stop_broker(state)
    return 0


def native_jars() -> list[str]:
    """Spark's kafka format's jars as `tests/jvm/resolve.sh` leaves them; a clear exit when absent."""
    jars = sorted(str(p) for p in (REPO / "tests" / "jvm" / "lib" / "spark-kafka").glob("*.jar"))
    if not jars:
        sys.exit("--source native needs Spark's kafka jars: run `bash tests/jvm/resolve.sh` first")
    return jars


def run_both(argv: list[str]) -> int:
    """Each case in its own process (its own broker, Spark and memory), then both verdicts together."""
    argv = [a for i, a in enumerate(argv) if a != "--case" and (i == 0 or argv[i - 1] != "--case")]
    verdicts = []
    for case in ("live", "backlog"):
        print(f"===== case {case} =====", flush=True)
        lines = []
        with subprocess.Popen(
            [sys.executable, __file__, "--case", case, *argv], stdout=subprocess.PIPE, text=True
        ) as child:
            assert child.stdout is not None
            for line in child.stdout:
                print(line, end="", flush=True)
                lines.append(line)
        if child.returncode:
            return child.returncode
        verdicts += [f"{case}: {line.rstrip()}" for line in lines if line.startswith(("steady", "decoder"))]
    print("===== both cases =====")
    print("\n".join(verdicts))
    return 0


def report(
    args: Any,
    watch: Watch,
    spark_start_s: float,
    ingest_s: float,
    result: Any,
    base: list[tuple[int, float]],
    records: int,
    references: dict[str, tuple[int, float]],
) -> None:
    data = [b for b in watch.batches if b.rows > 0]
    print("medallion ingest, per micro-batch (Spark's progress reports; durations in seconds):")
    print(
        f"{'batch':>5} {'rows':>8} {'seconds':>8} {'rows/s':>8} {'addBatch':>9} {'latestOff':>9} "
        f"{'planning':>9} {'walCommit':>9} {'commit':>7} {'peak PSS':>10} {'of it JVM':>10}"
        f" | {'read':>6} {'bronze':>6} {'dlq':>6}"
    )
    phases = {m.batch_id: m.phases for m in result.batches}
    for b in watch.batches:
        d = b.durations_ms
        p = phases.get(b.batch_id, {})
        print(
            f"{b.batch_id:>5} {b.rows:>8,} {b.seconds:>8.2f} {b.rows / b.seconds if b.seconds else 0:>8,.0f} "
            f"{d.get('addBatch', 0) / 1000:>9.2f} {d.get('latestOffset', 0) / 1000:>9.2f} "
            f"{d.get('queryPlanning', 0) / 1000:>9.2f} {d.get('walCommit', 0) / 1000:>9.2f} "
            f"{d.get('commitOffsets', 0) / 1000:>7.2f} {mb(b.peak_pss):>10} {mb(b.peak_jvm):>10}"
            f" | {p.get('read', 0):>6.2f} {p.get('bronze', 0):>6.2f} {p.get('dlq', 0):>6.2f}"
        )
    ingested = result.total("input")
    assert ingested == records, f"ingest read {ingested:,} of {records:,} records"
    steady = watch.steady_batches()
    steady_rows, steady_s = watch.steady()
    ours = steady_rows / steady_s
    bare = statistics.median(n / s for n, s in base)
    print(
        f"\nSpark start-up {spark_start_s:.1f}s; first micro-batch {data[0].rows:,} rows in {data[0].seconds:.1f}s; "
        f"end to end (start-up excluded) {records:,} records in {ingest_s:.1f}s = {records / ingest_s:,.0f}/s"
    )
    peaks = [b.peak_pss for b in steady]
    half = len(peaks) // 2
    print(
        f"memory (driver + JVM + workers, PSS): peak {mb(max(peaks))} over {len(data)} micro-batches of "
        f"{args.max_offsets:,} while the topic held {records / args.max_offsets:.0f}x that; steady batches' "
        f"peaks {mb(min(peaks))}..{mb(max(peaks))}"
        + (
            f", first half max {mb(max(peaks[:half]))}, second half max {mb(max(peaks[half:]))}"
            if half
            else ""
        )
    )
    print(
        f"\nsteady state: medallion {ours:,.0f} events/s ({steady_rows:,} records in {len(steady)} micro-batches, "
        f"{steady_s:.1f}s); baseline {bare:,.0f} events/s (median of {len(base)}); "
        f"ratio {ours / bare:.3f} (target >= 0.5)"
    )
    print(
        "\nreference queries, same session, topic and cap (steady state; ratio to the baseline; "
        f"seconds per micro-batch of {args.max_offsets:,}):"
    )
    rows_of = {"medallion ingest": (steady_rows, steady_s), **references}
    for name, (rows, seconds) in sorted(rows_of.items(), key=lambda kv: -kv[1][0] / kv[1][1]):
        rate = rows / seconds
        print(
            f"  {name:<16} {rate:>9,.0f} events/s  ratio {rate / bare:.3f}  {args.max_offsets / rate:>5.2f} s"
        )


if __name__ == "__main__":
    sys.exit(main())
