"""The lake's locks: which stages may run at once on one lake, enforced, never waited for.

The model (stages declare it in `medallion.core.stages`; `Stage.lock_scope` derives the scope):

- A run holds its stage's own lock, exclusive: one run of a stage at a time per lake, so an
  overlapping cron line stops at once (`LockHeld`, exit 75) saying who holds it.
- It holds a lock per catalogue dataset it touches: **exclusive** on what it replaces in place
  (Silver's and Gold's date partitions, the lookups, the online store), **shared** on what it reads
  or only adds files to. Shared locks coexist, an exclusive one excludes every other. So ingest, which
  adds new ``batch=`` partitions to Bronze, runs beside Silver, which reads Bronze; Gold cannot start
  while Silver replaces partitions (or the reverse), nor materialize while Gold rewrites its tables.
- **Rewriters beside an appender**: a stage that rewrites what is already there while another only
  adds new files (`compact`, `retention` and `forget` on Bronze and its DLQ, beside the ingest) takes a
  shared lock on the dataset, so the appender runs on, and an exclusive one on the dataset's *readers*
  lock (``<dataset>.readers.lock``), which every stage that reads the dataset holds shared: Silver does
  not read Bronze while `compact` swaps its hour folders, and the ingest is not held up. An appender
  (a stage that writes a dataset it does not read) takes no readers lock.
- A reader of a stage's output therefore never sees a half-replaced partition: a replace (delete the
  old files, move the new ones in) happens only while no stage that reads the dataset runs. Readers
  outside the stages (a notebook, DuckDB) take no lock and can see a partition between the two steps.

Each lock is an advisory ``flock`` on a file, held for the run's life. The kernel releases it when the
holder dies however it dies (SIGKILL included), so a lock left by a dead process is simply taken by the
next run: there is no stale lock to clean up and no pid to guess about. A stage's own lock file holds
who took it and what it holds (pid, host, command, since, datasets), which a refused run prints. Locks
are tried without blocking, in one order: a run that cannot have them all did nothing and says so.

Where: `catalog.LOCKS` below a local lake (``<stage>.lock``, and ``datasets/<dataset>.lock``). A lake on
an object store cannot hold an flock, so its locks live on this machine (the temporary directory, one
folder per lake): that serializes the runs started on one host, which is where one crontab starts
them; runs on several hosts need the scheduler to keep them apart.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import socket
import sys
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from medallion.core import catalog, lakefs
from medallion.core.errors import LockHeld

if TYPE_CHECKING:
    from medallion.core.config import Config

DATASETS = "datasets"
READERS = ".readers"  # ``datasets/<dataset>.readers.lock``: held shared by readers, exclusive by rewriters


def lock_dir(cfg: Config) -> Path:
    if cfg.lake.is_local:
        return lakefs.local_path(catalog.LOCKS.path(cfg))
    digest = hashlib.sha256(cfg.lake.root.encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / "medallion-locks" / digest


@dataclass(frozen=True)
class LockScope:
    """What one run locks: its own name (one run of a stage at a time), and catalogue datasets, exclusive
    (it replaces them in place) or shared (it reads them, or only adds files beside what is there)."""

    owner: str
    exclusive: tuple[str, ...] = ()
    shared: tuple[str, ...] = ()
    appends: tuple[str, ...] = ()  # of ``shared``, those it only adds files to (it does not read them)
    rewrites: tuple[str, ...] = ()  # rewritten beside an appender: readers excluded, appenders not


@contextmanager
def hold(cfg: Config, scope: LockScope) -> Iterator[None]:
    """Hold ``scope``'s locks for the block; `LockHeld` at once, naming the holder, when one is taken.

    Never waits: the locks are tried without blocking, in one order, so two runs cannot deadlock, and a
    run that cannot have them all did nothing and says who is in the way.
    """
    folder = lock_dir(cfg)
    (folder / DATASETS).mkdir(parents=True, exist_ok=True)
    with ExitStack() as held:
        own = folder / f"{scope.owner}.lock"
        fd = held.enter_context(_locked(own, exclusive=True))
        if fd is None:
            holder = _holder(own)
            raise LockHeld(
                f"{scope.owner} is already running for this lake: {_describe(holder)}. This run did "
                f"nothing; the next one will go ahead once that one ends (lock: {own})."
            )
        os.ftruncate(fd, 0)
        holds = {"exclusive": scope.exclusive, "shared": scope.shared, "rewrites": scope.rewrites}
        os.pwrite(fd, json.dumps({**_me(), **holds}).encode(), 0)
        held.callback(os.ftruncate, fd, 0)
        wanted = {name: False for name in (*scope.shared, *scope.rewrites)} | dict.fromkeys(
            scope.exclusive, True
        )
        readers = {name for name in scope.shared if name not in scope.appends}
        wanted |= {name + READERS: False for name in readers} | {
            name + READERS: True for name in scope.rewrites
        }
        for name in sorted(wanted):
            path = folder / DATASETS / f"{name}.lock"
            if held.enter_context(_locked(path, exclusive=wanted[name])) is None:
                raise LockHeld(_conflict(folder, scope.owner, name.removesuffix(READERS), path))
        yield


@contextmanager
def _locked(path: Path, *, exclusive: bool) -> Iterator[int | None]:
    """The open, flock-ed file descriptor of ``path`` for the block; None when another holds it."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB)
        except BlockingIOError:
            yield None
            return
        try:
            yield fd
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _conflict(folder: Path, owner: str, dataset: str, path: Path) -> str:
    """Why ``owner`` cannot lock ``dataset``: the live runs that hold it, and how."""
    holders = []
    for other in sorted(folder.glob("*.lock")):
        if other.stem == owner:
            continue
        info = _holder(other) if _is_held(other) else {}
        if dataset in info.get("exclusive", ()):
            holders.append(f"being replaced by {other.stem} ({_describe(info)})")
        elif dataset in info.get("rewrites", ()):
            holders.append(f"being rewritten by {other.stem} ({_describe(info)})")
        elif dataset in info.get("shared", ()):
            holders.append(f"in use by {other.stem} ({_describe(info)})")
    who = "; ".join(holders) or "locked by another run"
    return (
        f"{owner} cannot run now: {dataset} is {who}. This run did nothing; run it again once that one "
        f"ends (lock: {path})."
    )


def _is_held(path: Path) -> bool:
    try:
        with _locked(path, exclusive=True) as fd:
            return fd is None
    except OSError:
        return False


def _describe(holder: dict[str, Any]) -> str:
    return (
        f"pid {holder.get('pid', '?')} on {holder.get('host', '?')} since {holder.get('since', '?')} "
        f"({holder.get('command', '?')})"
    )


def _me() -> dict[str, Any]:
    return {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "since": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": " ".join(os.path.basename(a) if i == 0 else a for i, a in enumerate(sys.argv))[:200],
    }


def _holder(path: Path) -> dict[str, Any]:
    try:
        holder = json.loads(path.read_text() or "{}")
        return holder if isinstance(holder, dict) else {}
    except (OSError, ValueError):
        return {}
