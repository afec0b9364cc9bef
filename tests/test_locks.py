"""The lake's lock model: one run of a stage at a time; a stage that replaces partitions excludes the stages
that read them (and the reverse); ingest runs beside the batch stages; a dead holder's lock is taken;
a reader racing a writer never sees a half-replaced partition."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from medallion.core import catalog, stages
from medallion.core.errors import LockHeld
from medallion.core.locks import LockScope, hold, lock_dir
from tests.conftest import REPO

HOLD = """
import sys, time
from medallion.core import stages
from medallion.core.config import load_config
from medallion.core.locks import hold
cfg = load_config("local", sys.argv[1], {"lake.root": sys.argv[2]}, environ={})
with hold(cfg, stages.stage(sys.argv[3]).lock_scope):
    print("held", flush=True)
    time.sleep(120)
"""


def _holder(lake: Path, stage: str = "silver") -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(REPO / "config"), str(lake), stage],
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


def _stop(proc: subprocess.Popen[str]) -> None:
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()


def test_a_second_run_stops_at_once_naming_the_holder_and_a_killed_holder_frees_it(
    make_config: Any, lake: Path
) -> None:
    cfg = make_config()
    proc = _holder(lake)
    try:
        # Non-blocking: were it waiting for the holder (asleep for 120 s), this would not return.
        with (
            pytest.raises(
                LockHeld, match=rf"silver is already running for this lake: pid {proc.pid} on .* since "
            ),
            hold(cfg, stages.SILVER.lock_scope),
        ):
            pass
    finally:
        _stop(proc)
    with hold(cfg, stages.SILVER.lock_scope):  # the dead holder's lock is simply taken
        assert (lock_dir(cfg) / "silver.lock").read_text().startswith('{"pid": ' + str(os.getpid()))


def test_stages_that_replace_what_another_reads_exclude_each_other_and_ingest_runs_beside_them(
    make_config: Any, lake: Path
) -> None:
    cfg = make_config()
    proc = _holder(lake, "silver")
    try:
        # Gold reads Silver, which the holder is replacing: refused, naming the dataset and the holder.
        with (
            pytest.raises(
                LockHeld,
                match=rf"gold cannot run now: {catalog.SILVER.name} is being replaced by silver \(pid {proc.pid} ",
            ),
            hold(cfg, stages.GOLD.lock_scope),
        ):
            pass
        # Validate reads it too; ingest (adds batches to Bronze, which Silver only reads) and materialize
        # (reads Gold) do not touch it.
        with pytest.raises(LockHeld), hold(cfg, stages.VALIDATE.lock_scope):
            pass
        with hold(cfg, stages.INGEST.lock_scope), hold(cfg, stages.MATERIALIZE.lock_scope):
            pass  # neither touches what Silver replaces
    finally:
        _stop(proc)

    proc = _holder(lake, "gold")  # the reverse: a reader holds Silver, so Silver may not replace it
    try:
        with (
            pytest.raises(LockHeld, match=rf"in use by gold \(pid {proc.pid} "),
            hold(cfg, stages.SILVER.lock_scope),
        ):
            pass
        with (
            pytest.raises(LockHeld, match="being replaced by gold"),
            hold(cfg, stages.MATERIALIZE.lock_scope),
        ):
            pass
    finally:
        _stop(proc)


def test_every_stage_declares_catalogue_datasets_and_only_ingest_keeps_its_own_records() -> None:
    known = {d.name for d in catalog.CATALOG}
    for s in stages.STAGES:
        assert s.datasets <= known, s.name
        scope = s.lock_scope
        assert not set(scope.exclusive) & set(scope.shared), s.name
        assert not set(scope.rewrites) & (set(scope.shared) | set(scope.exclusive)), s.name
    assert [s.name for s in stages.STAGES if not s.records] == ["ingest"]
    # Every dataset a stage replaces is one some catalogue entry says that stage writes (maintenance
    # rewrites what the others write).
    for s in stages.STAGES:
        for name in s.replaces if s not in stages.MAINTENANCE else ():
            assert s.name in catalog.CATALOG.get(name).writer, (s.name, name)


def test_a_remote_lake_locks_on_this_machine(make_config: Any) -> None:
    cfg = make_config(**{"lake.root": "s3a://bucket/lake"})
    assert not str(lock_dir(cfg)).startswith("s3")
    # The same process holds it; a second open file description still conflicts under flock.
    scope = stages.SILVER.lock_scope
    with hold(cfg, scope), pytest.raises(LockHeld), hold(cfg, scope):
        pass


def test_an_overlapping_cron_run_exits_75_with_one_line(make_config: Any, lake: Path) -> None:
    from tests.cli.test_cli import medallion

    proc = _holder(lake)
    try:
        done = medallion("silver", "--incremental", env={"MEDALLION__LAKE__ROOT": str(lake)})
    finally:
        _stop(proc)
    assert done.returncode == 75, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: silver is already running for this lake: pid ")


WRITER = """
import sys, time
from pathlib import Path
from medallion.core.config import load_config
from medallion.core.errors import LockHeld
from medallion.core.locks import LockScope, hold
cfg = load_config("local", sys.argv[1], {"lake.root": sys.argv[2]}, environ={})
part, files = Path(sys.argv[3]), int(sys.argv[4])
scope = LockScope("writer", exclusive=("table",))
print("ready", flush=True)
version = 0
deadline = time.monotonic() + float(sys.argv[5])
while time.monotonic() < deadline:
    try:
        with hold(cfg, scope):
            # A replace as a writer does it: the old files go, then the new ones come, one by one.
            version += 1
            for old in part.glob("*.txt"):
                old.unlink()
            for i in range(files):
                (part / f"{i}.txt").write_text(str(version))
                time.sleep(0.002)
    except LockHeld:
        pass
    time.sleep(0.003)
print(version, flush=True)
"""


def test_a_reader_racing_a_writer_never_sees_a_half_replaced_partition(make_config: Any, lake: Path) -> None:
    cfg = make_config()
    part, files = lake / "table" / "date=2026-11-01", 5
    part.mkdir(parents=True)
    for i in range(files):
        (part / f"{i}.txt").write_text("0")
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(REPO / "config"), str(lake), str(part), str(files), "4"],
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    assert writer.stdout is not None and writer.stdout.readline().strip() == "ready"
    reads, refused, versions = 0, 0, set()
    try:
        while writer.poll() is None:
            try:
                with hold(cfg, LockScope("reader", shared=("table",))):
                    seen = sorted((p.name, p.read_text()) for p in part.glob("*.txt"))
            except LockHeld:
                refused += 1
                time.sleep(0.001)
                continue
            reads += 1
            # Whole: every file there, all of one version.
            assert [name for name, _ in seen] == [f"{i}.txt" for i in range(files)], seen
            assert len({v for _, v in seen}) == 1, seen
            versions.add(seen[0][1])
            time.sleep(0.002)
    finally:
        if writer.poll() is None:
            _stop(writer)
    written = int((writer.stdout.read() or "0").strip() or 0)
    # The two really raced: the writer replaced the partition many times, and the reader read between
    # replaces (several versions) and was refused while one was under way.
    assert written > 10 and reads > 10 and refused > 0 and len(versions) > 2, (
        written,
        reads,
        refused,
        versions,
    )
