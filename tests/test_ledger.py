"""The run ledger: newest-first reads that stop, one record per key across replays, atomic writes."""

from __future__ import annotations

import datetime as dt
import json
import multiprocessing
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from loguru import logger

from medallion.core import lakefs
from medallion.core.ledger import Ledger, RunRecord, record_location

T0 = dt.datetime(2026, 1, 5, 22, 0, tzinfo=dt.UTC)


def record(stage: str, run_id: str, at: dt.datetime, outcome: str = "succeeded", **metrics: Any) -> RunRecord:
    r = RunRecord(stage=stage, run_id=run_id, started_at=at.isoformat(timespec="milliseconds"))
    r.outcome, r.metrics = outcome, metrics
    return r


def json_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*.json") if not p.name.startswith("."))


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Every path the ledger reads, in order (a spy on the lake's file layer; the files are real)."""
    seen: list[str] = []
    real = lakefs.read_text

    def spy(path: str) -> str:
        seen.append(path)
        return real(path)

    monkeypatch.setattr(lakefs, "read_text", spy)
    yield seen


def test_records_land_in_day_and_hour_folders_of_their_utc_start(lake: Path) -> None:
    ledger = Ledger(str(lake))
    path = ledger.write(
        record(
            "silver", "s1", dt.datetime(2026, 1, 5, 1, 30, 0, 7000, tzinfo=dt.timezone(dt.timedelta(hours=2)))
        )
    )

    assert path.endswith("/_ledger/silver/2026-01-04/23/20260104T233000.007Z-s1.json")
    assert json.loads(Path(path).read_text())["run_id"] == "s1"
    keyed = record("ingest", "r-b3", T0)
    assert record_location(keyed, "user_events-abc-b00000003") == (
        "2026-01-05/22/20260105T220000.000Z~user_events-abc-b00000003.json"
    )
    with pytest.raises(ValueError, match="without '/'"):
        ledger.write(keyed, key="a/b")
    with pytest.raises(ValueError, match="not an ISO 8601 time"):
        ledger.write(RunRecord(stage="gold", run_id="g", started_at="yesterday"))


def test_last_is_the_newest_start_even_where_keys_do_not_sort_by_time(lake: Path) -> None:
    ledger = Ledger(str(lake))
    # An old checkpoint whose id sorts last, then a new checkpoint whose id sorts first, across midnight.
    for batch in range(3):
        at = T0 + dt.timedelta(hours=1, minutes=batch)
        ledger.write(record("ingest", f"old-b{batch}", at), key=f"user_events-zzzz9999-b{batch:08d}")
    for batch in range(2):
        at = T0 + dt.timedelta(hours=3, minutes=batch)
        ledger.write(record("ingest", f"new-b{batch}", at), key=f"user_events-aaaa0000-b{batch:08d}")
    ledger.write(
        record("ingest", "new-b2", T0 + dt.timedelta(hours=3, minutes=2), "written"),
        key="user_events-aaaa0000-b00000002",
    )

    assert ledger.last("ingest", outcome=None).run_id == "new-b2"  # type: ignore[union-attr]
    assert ledger.last("ingest").run_id == "new-b1"  # type: ignore[union-attr]
    assert [r.run_id for r in ledger.records("ingest")] == [
        "old-b0", "old-b1", "old-b2", "new-b0", "new-b1", "new-b2",
    ]  # fmt: skip
    assert ledger.last("silver") is None


def test_last_reads_newest_first_and_stops(lake: Path, reads: list[str]) -> None:
    ledger = Ledger(str(lake))
    for i in range(300):  # 300 records over 25 hours
        at = T0 + dt.timedelta(minutes=5 * i)
        ledger.write(
            record("ingest", f"b{i}", at, "failed" if i == 297 else "succeeded"), key=f"t-c-b{i:08d}"
        )
    ledger.write(record("silver", "s1", T0))
    reads.clear()

    assert ledger.last("ingest", outcome=None).run_id == "b299"  # type: ignore[union-attr]
    assert len(reads) == 1
    reads.clear()
    assert ledger.last("ingest", outcome="failed").run_id == "b297"  # type: ignore[union-attr]
    assert len(reads) == 3
    reads.clear()

    # records(stage) lists and reads that stage's folder only.
    assert [r.run_id for r in ledger.records("silver")] == ["s1"]
    assert reads == [str(lake / "_ledger/silver/2026-01-05/22/20260105T220000.000Z-s1.json")]


def test_a_replayed_batch_replaces_the_earlier_attempts_record(lake: Path) -> None:
    ledger = Ledger(str(lake))
    key = "user_events-abcd1234-b00000007"
    ledger.write(
        record("ingest", "r1-b6", T0 - dt.timedelta(seconds=10)), key="user_events-abcd1234-b00000006"
    )
    # The first attempt is written and killed before Spark reports it; the replay, after midnight, writes
    # the batch's record twice (written, then succeeded), as Bronze's job does.
    first = ledger.write(record("ingest", "r1-b7", T0, "written"), key=key)
    replay_at = T0 + dt.timedelta(hours=2, seconds=30)
    ledger.write(record("ingest", "r2-b7", replay_at, "written"), key=key)
    replay = ledger.write(record("ingest", "r2-b7", replay_at, "succeeded"), key=key)

    assert not Path(first).exists()
    assert [p.name for p in json_files(lake) if key in p.name] == [Path(replay).name]
    assert [(r.run_id, r.outcome) for r in ledger.records("ingest")] == [
        ("r1-b6", "succeeded"),
        ("r2-b7", "succeeded"),
    ]
    assert ledger.last("ingest", outcome="written") is None
    assert ledger.last("ingest").run_id == "r2-b7"  # type: ignore[union-attr]


def test_a_crash_between_the_replays_record_and_the_cleanup_shows_the_batch_once(lake: Path) -> None:
    ledger = Ledger(str(lake))
    key = "user_events-abcd1234-b00000007"
    stale = ledger.write(record("ingest", "r1-b7", T0, "written"), key=key)
    # What a writer killed right after writing the replay's record leaves: both files, _keys not updated.
    replay = record("ingest", "r2-b7", T0 + dt.timedelta(minutes=3), "written")
    lakefs.write_text(
        lakefs.join(ledger.stage_path("ingest"), record_location(replay, key)), json.dumps(replay.__dict__)
    )
    assert len(json_files(lake)) == 2

    assert [r.run_id for r in ledger.records("ingest")] == ["r2-b7"]
    assert ledger.last("ingest", outcome=None).run_id == "r2-b7"  # type: ignore[union-attr]
    assert ledger.last("ingest", outcome="written").run_id == "r2-b7"  # type: ignore[union-attr]

    # The replay's second write finds the stale file through _keys and removes it.
    replay.outcome = "succeeded"
    ledger.write(replay, key=key)
    assert not Path(stale).exists()
    assert [(r.run_id, r.outcome) for r in ledger.records()] == [("r2-b7", "succeeded")]


def test_records_of_the_flat_layout_are_read_as_older_than_the_folders(lake: Path) -> None:
    flat = lake / "_ledger" / "ingest"
    flat.mkdir(parents=True)
    for name, run_id, at, outcome in (
        ("user_events-abcd1234-b00000001", "r0-b1", T0, "succeeded"),
        ("user_events-abcd1234-b00000002", "r0-b2", T0 + dt.timedelta(seconds=10), "written"),
    ):
        (flat / f"{name}.json").write_text(json.dumps(record("ingest", run_id, at, outcome).__dict__))
    ledger = Ledger(str(lake))
    assert ledger.last("ingest", outcome=None).run_id == "r0-b2"  # type: ignore[union-attr]

    # Batch 2 replayed under the new layout: it supersedes its flat record.
    ledger.write(
        record("ingest", "r1-b2", T0 + dt.timedelta(minutes=1)), key="user_events-abcd1234-b00000002"
    )
    assert [r.run_id for r in ledger.records()] == ["r0-b1", "r1-b2"]
    assert ledger.last("ingest", outcome="written") is None
    assert ledger.last("ingest").run_id == "r1-b2"  # type: ignore[union-attr]


def test_the_run_context_records_failures_too(lake: Path) -> None:
    ledger = Ledger(str(lake))
    with ledger.run("gold", run_id="g1", start_date=dt.date(2026, 1, 5)) as rec:
        rec.count(input=3, output=3)
    with pytest.raises(RuntimeError), ledger.run("gold", run_id="g2"):
        raise RuntimeError("no silver")

    runs = ledger.records("gold")
    assert [(r.run_id, r.outcome, r.error) for r in runs] == [
        ("g1", "succeeded", None),
        ("g2", "failed", "RuntimeError: no silver"),
    ]
    assert runs[0].inputs == {"start_date": "2026-01-05"}
    assert ledger.last("gold").run_id == "g1"  # type: ignore[union-attr]


def _write_many(root: str, stage: str, writer: int, count: int) -> None:
    ledger = Ledger(root)
    for i in range(count):
        # Writers of one stage share start times on purpose: their files differ only by run id.
        at = T0 + dt.timedelta(seconds=i)
        if stage == "ingest":
            ledger.write(record(stage, f"w{writer}-{i}", at, n=i), key=f"t-w{writer}-b{i:08d}")
        else:
            ledger.write(record(stage, f"w{writer}-{i}", at, n=i))


def test_concurrent_writers_of_two_stages_lose_nothing(lake: Path) -> None:
    count = 150
    context = multiprocessing.get_context("spawn")
    procs = [
        context.Process(target=_write_many, args=(str(lake), stage, writer, count))
        for stage in ("ingest", "silver")
        for writer in (1, 2)
    ]
    for p in procs:
        p.start()
    # Read while they write: every record seen is whole (the ledger logs and skips any that is not).
    ledger, reads = Ledger(str(lake)), 0
    warnings: list[Any] = []
    sink = logger.add(warnings.append, level="WARNING")
    try:
        while any(p.is_alive() for p in procs):
            for r in ledger.records():
                assert r.metrics["n"] == int(r.run_id.rsplit("-", 1)[1])
                reads += 1
    finally:
        logger.remove(sink)
    for p in procs:
        p.join(60)
        assert p.exitcode == 0

    assert reads > 0
    assert warnings == []
    for stage in ("ingest", "silver"):
        runs = {r.run_id: r.metrics["n"] for r in ledger.records(stage)}
        assert runs == {f"w{w}-{i}": i for w in (1, 2) for i in range(count)}
    assert not [p for p in lake.rglob("*") if p.name.endswith(".tmp")]


def test_a_reader_never_sees_a_record_half_rewritten(lake: Path) -> None:
    ledger = Ledger(str(lake))
    key = "user_events-abcd1234-b00000001"
    payload = "x" * 2_000_000  # large enough that a non-atomic rewrite is visibly empty or partial
    ledger.write(record("ingest", "r-0", T0, "written", blob=payload), key=key)
    stop, failures, reads = threading.Event(), [], 0

    def rewrite() -> None:
        for i in range(1, 60):
            ledger.write(record("ingest", f"r-{i}", T0, "written", blob=payload), key=key)
        stop.set()

    writer = threading.Thread(target=rewrite)
    writer.start()
    while not stop.is_set():
        last = ledger.last("ingest", outcome=None)
        reads += 1
        if last is None or last.metrics.get("blob") != payload:
            failures.append(last.run_id if last else None)
    writer.join()
    assert reads > 0
    assert failures == []
    assert ledger.last("ingest", outcome=None).run_id == "r-59"  # type: ignore[union-attr]


KILLED_WRITER = """
import datetime as dt, sys
from medallion.core.ledger import Ledger, RunRecord
ledger, i = Ledger(sys.argv[1]), 0
print("ready", flush=True)
while True:
    i += 1
    r = RunRecord(stage="silver", run_id=f"r{i}", started_at="2026-01-05T00:00:00.000+00:00", outcome="succeeded")
    r.metrics = {"blob": "y" * 4_000_000, "i": i}
    ledger.write(r, key="the-one")
"""


def test_a_writer_killed_mid_write_leaves_the_previous_record_whole(lake: Path) -> None:
    proc_count, intact = 8, []
    for attempt in range(proc_count):
        proc = subprocess.Popen(
            [sys.executable, "-c", KILLED_WRITER, str(lake)], stdout=subprocess.PIPE, text=True
        )
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        time.sleep(0.3 + 0.07 * attempt)  # several writes in, and the kill lands at varying points
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        files = [p for p in json_files(lake) if p.parent.name != "_keys"]
        assert len(files) == 1, files
        data = json.loads(files[0].read_text())  # a torn file would not parse
        intact.append(data["metrics"]["blob"] == "y" * 4_000_000)
    assert all(intact)
    assert Ledger(str(lake)).last("silver") is not None


def test_records_since_a_time_read_no_older_day(lake: Path, reads: list[str]) -> None:
    ledger = Ledger(str(lake))
    for i in range(12):  # every 6 hours over 3 days
        ledger.write(record("silver", f"s{i}", T0 + dt.timedelta(hours=6 * i)))
    reads.clear()

    since = T0 + dt.timedelta(days=1, hours=7)  # 2026-01-07 05:00 UTC; s5 ran at 04:00 that day
    assert [r.run_id for r in ledger.records("silver", since=since)] == [f"s{i}" for i in range(6, 12)]
    assert all("/2026-01-05/" not in p and "/2026-01-06/" not in p for p in reads)
    assert len(reads) == 7  # the two days from `since` on: s5 read and left out, s6..s11
