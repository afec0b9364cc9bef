"""One run of a stage at a time per lake: an overlapping cron line stops at once, saying who holds the lock.

The lock is an advisory ``flock`` on a file, held for the run's life. The kernel releases it when the
holder dies however it dies (SIGKILL included), so a lock left by a dead process is simply taken by the
next run: there is no stale lock to clean up and no pid to guess about. The file also holds who took
it (pid, host, command, since), which the second run prints.

Where: `catalog.LOCKS` below a local lake. A lake on an object store cannot hold an flock, so its locks
live on this machine (the temporary directory, one folder per lake): that serializes the runs started
on one host, which is where one crontab starts them; runs on several hosts need the scheduler to keep
them apart.
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
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from medallion import catalog, lakefs
from medallion.errors import LockHeld

if TYPE_CHECKING:
    from medallion.config import Config


def lock_dir(cfg: Config) -> Path:
    if cfg.lake.is_local:
        return lakefs.local_path(catalog.LOCKS.path(cfg))
    digest = hashlib.sha256(cfg.lake.root.encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / "medallion-locks" / digest


@contextmanager
def stage_lock(cfg: Config, stage: str) -> Iterator[None]:
    """Hold ``stage``'s lock for the block; `LockHeld` at once when another live run holds it."""
    folder = lock_dir(cfg)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{stage}.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd)
            raise LockHeld(
                f"{stage} is already running for this lake: pid {holder.get('pid', '?')} on "
                f"{holder.get('host', '?')} since {holder.get('since', '?')} "
                f"({holder.get('command', '?')}). This run did nothing; the next one will go ahead "
                f"once that one ends (lock: {path})."
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(_me()).encode(), 0)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _me() -> dict[str, Any]:
    return {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "since": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": " ".join(os.path.basename(a) if i == 0 else a for i, a in enumerate(sys.argv))[:200],
    }


def _holder(fd: int) -> dict[str, Any]:
    try:
        data = os.pread(fd, 4096, 0)
        holder = json.loads(data.decode() or "{}")
        return holder if isinstance(holder, dict) else {}
    except (OSError, ValueError):
        return {}
