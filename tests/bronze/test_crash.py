"""Crash test of Kafka → Bronze (exactly once): SIGKILL the ingest process at chosen and random moments.

`medallion ingest` runs as a separate process tree (Python driver, Spark JVM, Python workers), is killed
with SIGKILL while it writes micro-batches, and is restarted; a last ``ingest --once`` drains the topic.
Then every record of the topic must be in Bronze or its DLQ exactly once by (topic, partition, offset),
read with pyarrow and with Spark, and both readers must see the same files and rows. Bronze may drop
duplicate events (same ``event_id``): a record in neither output is accepted only as such a duplicate of
an event that is in Bronze, and then Bronze holds every event once.

Knobs, to reproduce a failure or to soak longer: ``MEDALLION_CRASH_SEED`` (kill delays, data),
``MEDALLION_CRASH_EVENTS``, ``MEDALLION_CRASH_KILLS``, ``MEDALLION_CRASH_MAX_OFFSETS``.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import pyarrow.dataset as ds
import pytest

from medallion.core import catalog
from tests.conftest import CONFIG_DIR, REPO
from tests.e2e.checks import parquet, topic_records

SEED = int(os.environ.get("MEDALLION_CRASH_SEED", "4"))
EVENTS = int(os.environ.get("MEDALLION_CRASH_EVENTS", "20000"))
KILLS = int(os.environ.get("MEDALLION_CRASH_KILLS", "4"))
MAX_OFFSETS = int(os.environ.get("MEDALLION_CRASH_MAX_OFFSETS", "2000"))
STAGING = ".spark-staging-"  # where Spark's dynamic partition overwrite (the DLQ's) writes until it commits
PII_KEY = "crash-test-pii-key-0123456789"

Coord = tuple[str, int, int]


@dataclass
class Lake:
    """What the ingest process writes in the test lake, as seen from outside it."""

    bronze: Path
    dlq: Path
    checkpoint: Path

    def staging(self, out: Path) -> set[str]:
        return {p.name for p in out.iterdir() if p.name.startswith(STAGING)} if out.is_dir() else set()

    def batch_ids(self, log: str) -> list[int]:
        folder = self.checkpoint / log
        return sorted(int(p.name) for p in folder.iterdir() if p.name.isdigit()) if folder.is_dir() else []

    def snapshot(self) -> tuple[set[str], set[str], int]:
        return self.staging(self.bronze), self.staging(self.dlq), len(self.batch_ids("commits"))

    def in_flight(self) -> int | None:
        """The planned batch not committed yet, if any."""
        planned, committed = self.batch_ids("offsets"), self.batch_ids("commits")
        return planned[-1] if planned and committed[-1:] != planned[-1:] else None

    def writing_bronze(self) -> bool:
        """Whether the batch in flight has begun its Bronze write: the driver writes its hour folders
        (``dt=/hr=/batch=N``) one after another, each file under a temporary name first."""
        batch = self.in_flight()
        return batch is not None and any(self.bronze.glob(f"*/*/batch={batch}"))

    def moment(self, before: tuple[set[str], set[str], int]) -> str:
        """Where the stream is: the newest planned batch, whether it is committed, and the writes in flight
        that started after ``before`` (staging directories left by earlier kills are not in flight)."""
        planned, committed = self.batch_ids("offsets"), self.batch_ids("commits")
        if not planned:
            return "no batch planned yet"
        state = f"batch {planned[-1]} " + ("committed" if committed[-1:] == planned[-1:] else "in flight")
        writing = ["Bronze"] if self.writing_bronze() else []
        writing += ["DLQ"] if self.staging(self.dlq) - before[1] else []
        return (
            state
            + (f", writing {' and '.join(writing)}" if writing else "")
            + (f"; {len(committed) - before[2]} batch(es) committed in this run")
        )


@dataclass(frozen=True)
class Kill:
    """When to kill a run: once ``ready`` holds (given the lake and its snapshot at the run's start),
    after a random delay drawn from ``delay_s``."""

    aim: str
    ready: Callable[[Lake, tuple[set[str], set[str], int]], bool]
    delay_s: tuple[float, float]


KILL_PLAN = [
    Kill("in the Bronze write of a first attempt", lambda lake, b: lake.writing_bronze(), (0, 0.3)),
    Kill(
        "in the DLQ write of a replayed batch", lambda lake, b: bool(lake.staging(lake.dlq) - b[1]), (0, 0.3)
    ),
    Kill(
        "anywhere in the batch after the replay",
        lambda lake, b: len(lake.batch_ids("commits")) > b[2],
        (0, 3),
    ),
]


@dataclass
class Ingest:
    """`medallion ingest` as a process tree that can be killed like a crashed machine."""

    env: dict[str, str]
    log_dir: Path
    runs: int = 0
    kills: list[str] = field(default_factory=list)

    def start(self, once: bool) -> subprocess.Popen[bytes]:
        self.runs += 1
        cmd = [
            sys.executable,
            "-m",
            "medallion.cli.main",
            "--debug",
            "--config-dir",
            str(CONFIG_DIR),
            "ingest",
        ]
        log = (self.log_dir / f"ingest-{self.runs}.log").open("wb")
        return subprocess.Popen(
            [*cmd, "--once"] if once else cmd,
            cwd=REPO,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a process group of its own: the JVM dies with it
        )

    def log_tail(self, lines: int = 60) -> str:
        text = (self.log_dir / f"ingest-{self.runs}.log").read_text(errors="replace").splitlines()
        python_error = [i for i, line in enumerate(text) if "Traceback" in line]
        start = python_error[0] if python_error else max(0, len(text) - lines)
        return "\n".join(text[start : start + lines])


def kill_tree(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL the driver, the JVM and every Python worker together, as a power cut would."""
    try:
        root = psutil.Process(proc.pid)
        tree = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        tree = []
    groups = {proc.pid}  # pyspark's worker daemon puts itself and its workers in a group of their own
    for p in tree:
        with contextlib.suppress(ProcessLookupError):
            groups.add(os.getpgid(p.pid))
    for group in sorted(groups - {0, os.getpgid(0)}):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(group, signal.SIGKILL)
    proc.wait(30)
    _, alive = psutil.wait_procs(tree, timeout=30)
    assert not alive, f"processes survived SIGKILL: {alive}"


def wait_until(ready: Callable[[], bool], proc: subprocess.Popen[bytes], timeout_s: float = 180) -> bool:
    """Poll ``ready`` every 20 ms; False if the process exits first."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        if ready():
            return True
        time.sleep(0.02)
    raise AssertionError(f"ingest did not reach the kill point within {timeout_s:.0f}s")


# --- reading the lake back --------------------------------------------------------------------------


def pyarrow_view(path: Path, cols: list[str]) -> tuple[set[str], dict[str, list[Any]]]:
    """The files pyarrow reads (``_`` and ``.`` names skipped, as `tests.e2e.checks.parquet` does) and rows."""
    if not path.is_dir():
        return set(), {c: [] for c in cols}
    files = ds.dataset(str(path), format="parquet", partitioning="hive", ignore_prefixes=["_", "."]).files
    return {str(Path(f).resolve()) for f in files}, parquet(str(path)).select(cols).to_pydict()


def spark_view(spark: Any, path: Path, cols: list[str]) -> tuple[set[str], dict[str, list[Any]]]:
    if not path.is_dir():
        return set(), {c: [] for c in cols}
    df = spark.read.parquet(str(path))
    files = {str(Path(f.removeprefix("file:")).resolve()) for f in df.inputFiles()}
    rows = df.select(*cols).toPandas()
    return files, {c: rows[c].tolist() for c in cols}


def first(items: Iterable[Any], n: int = 5) -> list[Any]:
    return sorted(items)[:n]


def event_id(value: bytes | None) -> str | None:
    try:
        eid = json.loads(value or b"").get("event_id")
    except (ValueError, AttributeError):
        return None
    return eid.strip() if isinstance(eid, str) else None


BRONZE_COLS = ["_topic", "_partition", "_offset", "event_id"]
DLQ_COLS = ["source_topic", "source_partition", "source_offset"]


def assert_exactly_once(
    spark: Any, lake: Lake, records: dict[Coord, bytes | None], context: str
) -> dict[str, int]:
    """Bronze ∪ DLQ holds every record of the topic once (but dropped duplicates), for pyarrow and Spark alike."""
    seen: dict[str, tuple[list[Coord], dict[str, list[Any]]]] = {}
    for name, path, cols in (("bronze", lake.bronze, BRONZE_COLS), ("dlq", lake.dlq, DLQ_COLS)):
        pa_files, pa_rows = pyarrow_view(path, cols)
        sp_files, sp_rows = spark_view(spark, path, cols)
        assert pa_files == sp_files, (
            f"{name}: pyarrow reads {len(pa_files - sp_files)} file(s) that Spark does not, e.g. "
            f"{first(pa_files - sp_files)}; Spark reads {len(sp_files - pa_files)} that pyarrow does not, e.g. "
            f"{first(sp_files - pa_files)} ({context})"
        )
        pa_coords = list(zip(*(pa_rows[c] for c in cols[:3]), strict=True))
        sp_coords = list(zip(*(sp_rows[c] for c in cols[:3]), strict=True))
        assert len(pa_coords) == len(sp_coords), (
            f"{name}: pyarrow reads {len(pa_coords)} rows, Spark {len(sp_coords)}"
        )
        assert Counter(pa_coords) == Counter(sp_coords), (
            f"{name}: pyarrow and Spark read different rows ({context})"
        )
        seen[name] = (pa_coords, pa_rows)

    bronze, dlq = seen["bronze"][0], seen["dlq"][0]
    landed = Counter(bronze) + Counter(dlq)
    twice = {c: n for c, n in landed.items() if n > 1}
    assert not twice, f"{len(twice)} records landed more than once, e.g. {first(twice.items())} ({context})"
    unknown = set(landed) - set(records)
    assert not unknown, (
        f"{len(unknown)} rows whose coordinates are not in the topic, e.g. {first(unknown)} ({context})"
    )

    # A record in neither output must be a dropped duplicate: an event with its event_id is in Bronze.
    bronze_ids = Counter(seen["bronze"][1]["event_id"])
    missing = set(records) - set(landed)
    lost = {c for c in missing if event_id(records[c]) not in bronze_ids}
    assert not lost, (
        f"{len(lost)} records lost: in neither Bronze nor the DLQ, and no event with their event_id is in Bronze, "
        f"e.g. {first(lost)} ({context})"
    )
    if missing:  # Bronze drops duplicates, so it must hold each event once
        repeated = {e: n for e, n in bronze_ids.items() if n > 1}
        assert not repeated, (
            f"Bronze dropped {len(missing)} duplicates yet holds {len(repeated)} events more than once, "
            f"e.g. {first(repeated.items())} ({context})"
        )
    return {"bronze": len(bronze), "dlq": len(dlq), "dropped": len(missing)}


@pytest.mark.integration
@pytest.mark.timeout(420)
def test_sigkill_and_restart_lose_and_duplicate_nothing(
    kafka_broker: Any,
    make_topic: Any,
    make_config: Any,
    lake: Path,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    from medallion.bronze.job import checkpoint_path
    from medallion.core.ledger import Ledger
    from medallion.produce.producer import produce_events

    started = time.monotonic()
    topic = make_topic(4)
    cfg = make_config(
        **{"kafka.bootstrap_servers": kafka_broker.bootstrap, "kafka.topic": topic, "kafka.partitions": 4}
    )
    produced = produce_events(
        cfg,
        count=EVENTS,
        seed=SEED,
        start_date="2026-01-05",
        days=2,
        bad_ratio=0.02,
        duplicate_ratio=0.02,
        late_ratio=0.02,
        write_lookups=False,
    )
    assert produced.delivered == EVENTS and produced.duplicates > 0

    env = {k: v for k, v in os.environ.items() if not k.startswith("MEDALLION")}
    env |= {
        "MEDALLION__LAKE__ROOT": str(lake),
        "MEDALLION__KAFKA__BOOTSTRAP_SERVERS": kafka_broker.bootstrap,
        "MEDALLION__KAFKA__TOPIC": topic,
        "MEDALLION__KAFKA__EMBEDDED": "false",
        "MEDALLION__INGEST__MAX_OFFSETS_PER_TRIGGER": str(MAX_OFFSETS),
        "MEDALLION__INGEST__TRIGGER_INTERVAL": "0 seconds",  # continuous runs: batches back to back
        "MEDALLION__SPARK__MASTER": "local[2]",
        "MEDALLION__SPARK__SHUFFLE_PARTITIONS": "2",
        "MEDALLION_PII_KEY": PII_KEY,
    }
    out = Lake(Path(catalog.BRONZE.path(cfg)), Path(catalog.BRONZE_DLQ.path(cfg)), Path(checkpoint_path(cfg)))
    ingest = Ingest(env, tmp_path)
    rng = random.Random(SEED)
    context = f"seed {SEED}, {EVENTS:,} events, maxOffsetsPerTrigger {MAX_OFFSETS}"

    # The first kills aim at the two writes of a batch (the second one in the replay of the batch the first
    # kill interrupted); the later ones fall anywhere in the batch after a replay: planning, reading,
    # writing, the renames of a job commit, the state store, the checkpoint. Runs alternate continuous
    # and --once, so each resumes a checkpoint the other kind of trigger left.
    for round_ in range(KILLS):
        plan = KILL_PLAN[min(round_, len(KILL_PLAN) - 1)]
        before = out.snapshot()
        proc = ingest.start(once=round_ % 2 == 1)
        try:
            reached = wait_until(lambda: plan.ready(out, before), proc)  # noqa: B023 - called in this iteration
            assert reached, (
                f"run {ingest.runs} ended before the kill {plan.aim} ({context}):\n{ingest.log_tail()}"
            )
            time.sleep(rng.uniform(*plan.delay_s))
            moment = out.moment(before)
            assert proc.poll() is None, (
                f"run {ingest.runs} ended before the kill ({context}):\n{ingest.log_tail()}"
            )
        finally:
            kill_tree(proc)
        ingest.kills.append(f"run {ingest.runs}, aimed {plan.aim}: killed at {moment}")
    leftovers = len(out.staging(out.bronze)) + len(out.staging(out.dlq))

    proc = ingest.start(once=True)
    try:
        rc = proc.wait(300)
    finally:
        if proc.poll() is None:
            kill_tree(proc)
    kills = "\n  ".join(ingest.kills)
    context += f"; kills:\n  {kills}"
    assert rc == 0, f"the last ingest --once failed ({context}):\n{ingest.log_tail()}"
    ingested_s = time.monotonic() - started

    assert not out.staging(out.bronze) | out.staging(out.dlq), "the restart left unfinished writes behind"
    records = {(topic, p, o): v for (p, o), v in topic_records(kafka_broker.bootstrap, topic).items()}
    assert len(records) == EVENTS
    spark = request.getfixturevalue("spark")  # only now: its JVM would have competed with the ingest runs
    counts = assert_exactly_once(spark, out, records, context)

    # One ledger record per committed batch, whatever the kills hit, counting exactly what the lake holds
    # of that batch. A record still "written" belongs to a process killed after writing the batch and
    # before Spark reported it: its input is unknown, its outputs are not.
    ingest_records = [r for r in Ledger(cfg.lake.root).records("ingest") if r.inputs.get("topic") == topic]
    ledger = {r.inputs["batch_id"]: r for r in ingest_records}
    assert len(ledger) == len(ingest_records), "a batch has more than one ledger record"
    assert sorted(ledger) == out.batch_ids("commits"), (sorted(ledger), out.batch_ids("commits"), context)
    landed = Counter(parquet(str(out.bronze)).column("batch").to_pylist())
    rejected = Counter(parquet(str(out.dlq)).column("batch").to_pylist()) if out.dlq.is_dir() else Counter()
    for batch_id, record in ledger.items():
        assert record.outcome in ("succeeded", "written"), record
        assert (record.counts["output"], record.counts.get("dlq", 0)) == (
            landed[batch_id],
            rejected[batch_id],
        )
        if record.outcome == "succeeded":
            assert record.counts["input"] == sum(record.counts[k] for k in ("output", "dlq", "dropped"))
    print(  # shown with -s or -rA
        f"\ncrash test: {EVENTS:,} records → Bronze {counts['bronze']:,} + DLQ {counts['dlq']:,} + duplicates "
        f"dropped {counts['dropped']:,}; {KILLS} kills, {ingest.runs} runs; ingest {ingested_s:.0f}s, total "
        f"{time.monotonic() - started:.0f}s; staging dirs left by kills: {leftovers}; ledger: "
        f"{len(ledger)} batches, {sum(r.outcome == 'written' for r in ledger.values())} of them left "
        f"'written' by a kill\n  {kills}"
    )
