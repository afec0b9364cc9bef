"""Two runs of one stage at once: the second stops at once naming the holder; a dead holder's lock is taken."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from medallion.errors import LockHeld
from medallion.locks import lock_dir, stage_lock
from tests.conftest import REPO

HOLD = """
import sys, time
from medallion.config import load_config
from medallion.locks import stage_lock
cfg = load_config("local", sys.argv[1], {"lake.root": sys.argv[2]}, environ={})
with stage_lock(cfg, "silver"):
    print("held", flush=True)
    time.sleep(120)
"""


def _holder(lake: Path) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(REPO / "config"), str(lake)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


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
            stage_lock(cfg, "silver"),
        ):
            pass
        with stage_lock(cfg, "gold"):  # another stage is not blocked
            pass
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    with stage_lock(cfg, "silver"):  # the dead holder's lock is simply taken
        assert (lock_dir(cfg) / "silver.lock").read_text().startswith('{"pid": ' + str(os.getpid()))


def test_a_remote_lake_locks_on_this_machine(make_config: Any) -> None:
    cfg = make_config(**{"lake.root": "s3a://bucket/lake"})
    assert not str(lock_dir(cfg)).startswith("s3")
    # The same process holds it; a second open file description still conflicts under flock.
    with stage_lock(cfg, "silver"), pytest.raises(LockHeld), stage_lock(cfg, "silver"):
        pass


def test_an_overlapping_cron_run_exits_75_with_one_line(make_config: Any, lake: Path) -> None:
    from tests.cli.test_cli import medallion

    proc = _holder(lake)
    try:
        done = medallion("silver", "--incremental", env={"MEDALLION__LAKE__ROOT": str(lake)})
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    assert done.returncode == 75, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: silver is already running for this lake: pid ")
