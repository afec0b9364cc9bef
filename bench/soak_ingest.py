"""Soak: continuous Kafka → Bronze at a fixed rate for a long time; does anything grow?

    python bench/soak_ingest.py [--rate 1000] [--minutes 30] [--partitions 4] [--cores 2]

One embedded broker, one topic. A producer thread sends live events (event time = now, 1% bad records, 1%
duplicates) at ``--rate`` per second for ``--minutes``; meanwhile the continuous ingest job runs as
`medallion ingest` does (``job.run(once=False)``) with the configuration's default trigger, dedup window
and batch cap. Every minute it prints, from Spark's progress reports (a listener) and the machine:

- batch: micro-batches in the minute, their mean and longest duration (s), records/s ingested;
- lag: the topic's log end minus the offsets the last batch read to (records), at the minute's end;
- dedup: event ids the dedup index holds (`medallion.bronze.dedup`), and the driver's time on it per batch
  (lookups, expiry, the batch's file);
- checkpoint: bytes of the checkpoint folder on disk (offsets, commits, the dedup index's files);
- memory: RSS of the whole process tree (this driver, the Spark JVM, its Python workers) and the JVM's;
- load: the machine's 1-minute load average (the machine may be shared: read every figure with it).

At the end, the slope of each series over the run (first minute left out: start-up), per 10 minutes and
as a share of its mean, and a verdict: **flat** when the fitted change over the run stays within
``--tolerance`` of the mean (noise), else **growing**. The ids held must grow until the window is full
(rate × window ids), so their verdict is only meaningful past the window; the per-batch cost is what
must stay flat.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import psutil  # noqa: E402

from medallion.core.config import Config, load_config  # noqa: E402
from medallion.engines.embedded import find_free_port, start_broker, stop_broker  # noqa: E402
from medallion.engines.kafka.admin import end_offsets  # noqa: E402

SOAK_PII_KEY = "soak-ingest-not-a-secret-key"


@dataclass
class Progress:
    at: float  # epoch seconds, end of the batch
    seconds: float
    rows: int
    read_to: int  # sum over partitions of the offsets the batch read up to
    batch_id: int


@dataclass
class Soak:
    query: str
    progress: list[Progress] = field(default_factory=list)
    dedup: dict[int, tuple[int, float]] = field(default_factory=dict)  # batch → ids held, dedup seconds
    lock: threading.Lock = field(default_factory=threading.Lock)

    def on_batch(self, metrics: Any) -> None:
        with self.lock:
            self.dedup[metrics.batch_id] = (metrics.ids_held, metrics.phases.get("dedup", 0.0))

    def listener(self) -> Any:
        from pyspark.sql.streaming import StreamingQueryListener

        soak = self

        class Listener(StreamingQueryListener):
            def onQueryStarted(self, event: Any) -> None:
                pass

            def onQueryProgress(self, event: Any) -> None:
                p = json.loads(event.progress.json)
                if p.get("name") != soak.query:
                    return
                started = dt.datetime.fromisoformat(p["timestamp"].replace("Z", "+00:00")).timestamp()
                seconds = int(p.get("durationMs", {}).get("triggerExecution", 0)) / 1000
                entry = Progress(
                    started + seconds,
                    seconds,
                    int(p["numInputRows"]),
                    sum(_offsets(s.get("endOffset")) for s in p.get("sources", [])),
                    int(p["batchId"]),
                )
                with soak.lock:
                    soak.progress.append(entry)

            def onQueryIdle(self, event: Any) -> None:
                pass

            def onQueryTerminated(self, event: Any) -> None:
                pass

        return Listener()


def _offsets(value: Any) -> int:
    """Sum of the offsets in a source's offset JSON (``{"topic": {"0": 12, ...}}`` or flat)."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return 0
    if isinstance(value, dict):
        return sum(_offsets(v) for v in value.values())
    return int(value) if isinstance(value, int | float) else 0


def tree_rss() -> tuple[int, int]:
    """RSS of this process and its descendants, and of the JVM among them."""
    me = psutil.Process()
    total = jvm = 0
    for p in [me, *me.children(recursive=True)]:
        try:
            rss = p.memory_info().rss
        except psutil.NoSuchProcess:
            continue
        total += rss
        if p.name() == "java":
            jvm += rss
    return total, jvm


def folder_bytes(path: str) -> int:
    return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file())


@dataclass
class Minute:
    minute: int
    batches: int
    mean_s: float
    max_s: float
    rate: float
    lag: int
    ids_held: int
    dedup_ms: float
    checkpoint: int
    rss: int
    jvm: int
    load: float


def produce_thread(cfg: Config, rate: int, seconds: int, done: threading.Event) -> threading.Thread:
    from medallion.produce.producer import produce_events

    def run() -> None:
        try:
            produce_events(
                cfg,
                count=rate * seconds,
                rate=rate,
                bad_ratio=0.01,
                duplicate_ratio=0.01,
                write_lookups=False,
            )
        finally:
            done.set()

    thread = threading.Thread(target=run, name="soak-producer", daemon=True)
    thread.start()
    return thread


def mb(n: float) -> str:
    return f"{n / 2**20:,.0f} MB"


def slope_line(name: str, xs: list[float], ys: list[float], tolerance: float, unit: str = "") -> str:
    """The least-squares slope per 10 minutes, the change it implies over the run as a share of the mean,
    and the verdict."""
    if len(xs) < 3 or statistics.fmean(ys) == 0:
        return f"{name:<22} too few points"
    slope, _ = statistics.linear_regression(xs, ys)
    mean = statistics.fmean(ys)
    change = slope * (xs[-1] - xs[0]) / mean
    verdict = "flat" if abs(change) <= tolerance else ("growing" if change > 0 else "shrinking")
    return f"{name:<22} {slope * 10:>+14,.2f}{unit} per 10 min  {change:>+7.1%} over the run  → {verdict}"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rate", type=int, default=1000, help="events per second sent")
    parser.add_argument("--minutes", type=float, default=30, help="how long to produce and ingest")
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--cores", type=int, default=2, help="Spark's local master: local[CORES]")
    parser.add_argument(
        "--tolerance",
        type=float,
        default=0.2,
        help="change over the run, as a share of the mean, taken as noise",
    )
    parser.add_argument(
        "--broker",
        choices=("apache", "embedded"),
        default="apache",
        help="Apache Kafka from the Maven jars (tests/jvm/resolve.sh), or the embedded broker",
    )
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="config overrides")
    args = parser.parse_args()
    os.environ.setdefault("MEDALLION_PII_KEY", SOAK_PII_KEY)
    seconds = int(args.minutes * 60)

    with tempfile.TemporaryDirectory(prefix="soak-ingest-") as tmp:
        bootstrap, stop_broker_ = broker(args.broker, Path(tmp) / "broker")
        try:
            overrides: dict[str, Any] = {
                "lake.root": str(Path(tmp) / "lake"),
                "kafka.bootstrap_servers": bootstrap,
                "kafka.embedded": False,
                "kafka.topic": "soak_ingest",
                "kafka.partitions": args.partitions,
                "spark.master": f"local[{args.cores}]",
            }
            overrides.update(kv.split("=", 1) for kv in args.set)
            cfg = load_config("local", REPO / "config", overrides, environ={})
            return soak(cfg, args, seconds)
        finally:
            stop_broker_()


def broker(kind: str, work_dir: Path) -> tuple[str, Any]:
    """Start the soak's broker; return its bootstrap address and how to stop it.

    Apache Kafka (the default) is what an hour-long run needs: the embedded broker keeps every record in
    memory and has stopped accepting connections after a few minutes at 500 events/s."""
    work_dir.mkdir(parents=True)
    if kind == "embedded":
        handle = start_broker("127.0.0.1", find_free_port(), work_dir, wait_s=30)
        return handle.bootstrap, lambda: stop_broker(work_dir)
    from tests.fixtures.apache_kafka import start_apache_kafka

    kafka = start_apache_kafka(work_dir)
    return kafka.bootstrap, kafka.process.stop


def soak(cfg: Config, args: Any, seconds: int) -> int:
    from medallion.bronze import job
    from medallion.core.ledger import Ledger
    from medallion.engines.spark import get_spark
    from medallion.pii.keys import pii_key

    print(
        f"soak: {args.rate:,} events/s for {args.minutes:g} min into {cfg.kafka.topic} ({args.partitions} "
        f"partitions); trigger {cfg.ingest.trigger_interval}, dedup window {cfg.ingest.dedup_watermark}, "
        f"cap {cfg.ingest.max_offsets_per_trigger}; {psutil.cpu_count()} CPUs, load average "
        f"{os.getloadavg()[0]:.1f}",
        flush=True,
    )
    produced = threading.Event()
    producer = produce_thread(cfg, args.rate, seconds, produced)
    time.sleep(2)  # the topic exists before the query looks for it
    spark = get_spark(cfg)
    watch = Soak(query=f"bronze_{cfg.kafka.topic}")
    spark.streams.addListener(watch.listener())
    stop = threading.Event()
    failure: list[BaseException] = []
    restarts: list[str] = []

    def ingest() -> None:
        """The job as a supervisor runs it: restarted from its checkpoint when it fails (a restart is
        counted and printed; under heavy load Spark's 10-second wait for a new Python worker can fail a
        batch), given up after five failures in a row without progress."""
        in_a_row = 0
        while not stop.is_set():
            done = len(watch.progress)
            try:
                job.run(
                    spark,
                    cfg,
                    pii_key=pii_key(cfg),
                    run_id="soak",
                    ledger=Ledger(cfg.lake.root),
                    once=False,
                    stop_event=stop,
                    on_batch=watch.on_batch,
                )
            except Exception as exc:
                restarts.append(f"{time.strftime('%H:%M:%S')} {str(exc).splitlines()[0][:160]}")
                print(f"ingest failed, restarting from the checkpoint: {restarts[-1]}", flush=True)
                in_a_row = 0 if len(watch.progress) > done else in_a_row + 1
                if in_a_row >= 5:
                    failure.append(exc)
                    return

    runner = threading.Thread(target=ingest, name="soak-ingest", daemon=True)
    runner.start()
    checkpoint = job.checkpoint_path(cfg)
    start = time.time()
    minutes: list[Minute] = []
    print(
        f"\n{'min':>4} {'batches':>7} {'mean s':>7} {'max s':>6} {'rows/s':>8} {'lag':>9} {'ids held':>11} "
        f"{'dedup ms':>9} {'checkpoint':>11} {'RSS tree':>10} {'RSS JVM':>9} {'load':>5}",
        flush=True,
    )
    try:
        while not failure:
            minute_end = start + 60 * (len(minutes) + 1)
            time.sleep(max(0.0, minute_end - time.time()))
            with watch.lock:
                inside = [p for p in watch.progress if minute_end - 60 < p.at <= minute_end and p.rows]
                last = watch.progress[-1] if watch.progress else None
            try:
                log_end = sum(
                    end_offsets(cfg.kafka.bootstrap_servers, cfg.kafka.topic, timeout_s=20).values()
                )
            except Exception as exc:  # the broker gone: say so, and stop (nothing more can be measured)
                print(f"no log end from the broker ({str(exc).splitlines()[0][:120]}): stopping", flush=True)
                break
            rss, jvm = tree_rss()
            m = Minute(
                len(minutes) + 1,
                len(inside),
                statistics.fmean([p.seconds for p in inside]) if inside else 0.0,
                max((p.seconds for p in inside), default=0.0),
                sum(p.rows for p in inside) / 60,
                log_end - (last.read_to if last else 0),
                watch.dedup.get(last.batch_id, (0, 0.0))[0] if last else 0,
                statistics.fmean([watch.dedup.get(p.batch_id, (0, 0.0))[1] * 1000 for p in inside])
                if inside
                else 0.0,
                folder_bytes(checkpoint),
                rss,
                jvm,
                os.getloadavg()[0],
            )
            minutes.append(m)
            print(
                f"{m.minute:>4} {m.batches:>7} {m.mean_s:>7.2f} {m.max_s:>6.2f} {m.rate:>8,.0f} {m.lag:>9,} "
                f"{m.ids_held:>11,} {m.dedup_ms:>9.0f} {mb(m.checkpoint):>11} {mb(m.rss):>10} "
                f"{mb(m.jvm):>9} {m.load:>5.1f}",
                flush=True,
            )
            if produced.is_set() and m.lag <= 0:
                break
            if time.time() - start > seconds + 600:
                print("the ingest did not catch up within 10 minutes of the producer's end")
                break
    except KeyboardInterrupt:
        print("interrupted")
    stop.set()
    runner.join(timeout=900)
    producer.join(timeout=5)
    if failure:
        print(f"ingest failed: {failure[0]}")
        return 1
    report(minutes[1:], args.tolerance)
    print(f"restarts of the ingest after a failure: {len(restarts)}")
    return 0


def report(minutes: list[Minute], tolerance: float) -> None:
    """Slopes and verdicts over the run, the start-up minute left out."""
    live = [m for m in minutes if m.batches]
    if len(live) < 3:
        print("\ntoo short for slopes: run longer")
        return
    xs = [float(m.minute) for m in live]
    print(
        f"\nslopes over minutes {live[0].minute}-{live[-1].minute} (tolerance ±{tolerance:.0%} of the mean):"
    )
    print(slope_line("batch duration (s)", xs, [m.mean_s for m in live], tolerance))
    print(slope_line("lag (records)", xs, [float(m.lag) for m in live], tolerance))
    print(slope_line("dedup, driver (ms)", xs, [m.dedup_ms for m in live], tolerance))
    print(slope_line("ids held", xs, [float(m.ids_held) for m in live], tolerance))
    print(slope_line("checkpoint (bytes)", xs, [float(m.checkpoint) for m in live], tolerance))
    print(slope_line("RSS tree (bytes)", xs, [float(m.rss) for m in live], tolerance))
    print(slope_line("RSS JVM (bytes)", xs, [float(m.jvm) for m in live], tolerance))
    loads = [m.load for m in live]
    print(
        f"load average over the run: {min(loads):.1f}-{max(loads):.1f} (mean {statistics.fmean(loads):.1f})"
    )


if __name__ == "__main__":
    raise SystemExit(main())
