"""How `compact` puts a partition's merged files in place of its old ones: journaled, so that a crash at
any point is completed or rolled back by the next `compact`, and on a local disk in one atomic step.

**Exchange** (a local lake, the default): the complete new partition folder is built in a staging folder
beside the journal (``_state/compaction/<run_id>-<n>``, outside every table: DuckDB's ``**`` glob lists
hidden names too, so a hidden sibling of the partition would show a reader the staged rows), then the
two folders trade places in one system call, Linux's ``renameat2(..., RENAME_EXCHANGE)`` (both on the
lake's filesystem). A reader that lists the partition sees the old file set or the new one, never both
and never neither. What it cannot do: a reader that listed the old files *before* the exchange and opens
one *after* it finds it gone (it now lives in the staging folder, deleted next) and fails with a
missing-file error; it never reads a wrong set of rows. (A reader that already holds a file open reads
on: on POSIX an unlinked file lives until it is closed.) Keeping the old folder for a while would not
help such a reader, as its files are no longer at the paths it listed, so it is deleted at once.

For Bronze the swapped unit is an hour folder, which a running ingest may still add a ``batch=`` folder
to (a late event of that hour): one that lands in the old folder between the listing and the exchange
is moved back into the live one before the old folder is deleted (`_return_strays`).

**Move** (an object store, HDFS, or a local filesystem without ``RENAME_EXCHANGE``; only with
``--exclusive``): there is no atomic rename of a folder. The merged files are written to the staging
prefix, moved into the partition one by one (an object store copies), and the old files deleted after;
between those steps a reader sees both sets. So it runs only when the user says no reader outside
medallion's locks (a notebook, DuckDB, a BI tool) reads the table meanwhile (``--exclusive``).

**The journal** (`catalog.COMPACTION_JOURNAL`, ``<run_id>.json``) is written before anything is staged
(the partition, its old files, the staging folder) and completed once the new files are staged (their
names: unique, with the run id). At the start of every `compact`, a journal left by a crash is settled
by what is on disk: all its new files in the live partition → the swap happened: roll forward (strays
returned, old files and staging deleted); otherwise roll back (staging deleted; in move mode also the
new files already moved). Either way every row is in the partition exactly once afterwards.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import json
import os
import platform
import shutil
import uuid
from dataclasses import asdict, dataclass, field

from pyarrow import fs

from medallion.core import catalog, lakefs
from medallion.core.catalog import HIDDEN_PREFIXES
from medallion.core.config import Config

PROBE = ".probe-"
EXCHANGE, MOVE = "exchange", "move"
STEPS = ("intent", "staged", "swapped", "old-deleted")
"""The points after which a test may stop a run (`after_step`); the journal is deleted after the last."""


def after_step(step: str) -> None:
    """Called after each step with its name: the tests replace it to simulate a crash at that point."""


class ExchangeUnsupported(OSError):
    """This system or filesystem cannot exchange two folders atomically."""


_AT_FDCWD = -100
_RENAME_EXCHANGE = 2
_SYS_RENAMEAT2 = {"x86_64": 316, "aarch64": 276}


def exchange(a: str, b: str) -> None:
    """Swap the local folders ``a`` and ``b`` in one step (``renameat2(RENAME_EXCHANGE)``), through libc's
    wrapper or, where libc is older than 2.28, the raw system call."""
    libc = ctypes.CDLL(None, use_errno=True)
    path_a, path_b = os.fsencode(a), os.fsencode(b)
    wrapper = getattr(libc, "renameat2", None)
    if wrapper is not None:
        wrapper.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
        done = wrapper(_AT_FDCWD, path_a, _AT_FDCWD, path_b, _RENAME_EXCHANGE)
    else:
        number = _SYS_RENAMEAT2.get(platform.machine())
        if number is None:
            raise ExchangeUnsupported(f"no renameat2 on {platform.machine()}")
        done = libc.syscall(
            ctypes.c_long(number),
            ctypes.c_int(_AT_FDCWD),
            ctypes.c_char_p(path_a),
            ctypes.c_int(_AT_FDCWD),
            ctypes.c_char_p(path_b),
            ctypes.c_uint(_RENAME_EXCHANGE),
        )
    if done != 0:
        code = ctypes.get_errno()
        if code in (errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
            raise ExchangeUnsupported(code, os.strerror(code), a)
        raise OSError(code, os.strerror(code), a)


def exchange_works(folder: str) -> bool:
    """Whether two folders below the local ``folder`` can be exchanged atomically (tried on two empty ones)."""
    probe = os.path.join(folder, f"{PROBE}{uuid.uuid4().hex}")
    os.makedirs(probe + "-a")
    os.makedirs(probe + "-b")
    try:
        exchange(probe + "-a", probe + "-b")
    except ExchangeUnsupported:
        return False
    finally:
        for side in ("-a", "-b"):
            shutil.rmtree(probe + side, ignore_errors=True)
    return True


@dataclass
class Journal:
    """One partition's swap in progress (paths relative to ``live``; staged files sit at the same relative
    paths below ``staging`` until the swap)."""

    run_id: str
    dataset: str
    mode: str  # exchange | move
    live: str  # the partition folder (for Bronze: the hour folder)
    staging: str  # where the new folder is built (exchange: where the old one goes)
    old: list[str]  # the data files replaced
    entries: list[str]  # the names directly below ``live`` when it was listed (exchange: strays are the rest)
    new: list[str] | None = None  # the merged files, once staged
    extra: dict[str, str] = field(default_factory=dict)

    def path(self, cfg: Config) -> str:
        return lakefs.join(catalog.COMPACTION_JOURNAL.path(cfg), f"{self.run_id}.json")

    def save(self, cfg: Config) -> None:
        lakefs.write_text(self.path(cfg), json.dumps(asdict(self), indent=1))


def staging_for(cfg: Config, run_id: str, n: int) -> str:
    """The staging folder of a run's ``n``-th partition: beside the journal, outside every table."""
    return lakefs.join(catalog.COMPACTION_JOURNAL.path(cfg), f"{run_id}-{n:05d}")


def pending(cfg: Config) -> list[Journal]:
    """Journals a crashed run left behind, oldest first."""
    folder = catalog.COMPACTION_JOURNAL.path(cfg)
    names = lakefs.list_children(folder)[1]
    found = [n for n in names if n.endswith(".json") and not n.startswith(HIDDEN_PREFIXES)]
    return [Journal(**json.loads(lakefs.read_text(lakefs.join(folder, n)))) for n in found]


def swap(cfg: Config, journal: Journal) -> None:
    """Steps (c)-(e) for a journal whose new files are staged: put them in place, delete the old files,
    delete the journal."""
    assert journal.new is not None
    if journal.mode == EXCHANGE:
        exchange(_local(journal.staging), _local(journal.live))
    else:
        filesystem, _ = lakefs.filesystem_and_path(journal.live)
        for rel in journal.new:
            target = _inner(journal.live, rel)
            filesystem.create_dir(target.rpartition("/")[0], recursive=True)
            filesystem.move(_inner(journal.staging, rel), target)
    after_step("swapped")
    _finish(cfg, journal)


def _finish(cfg: Config, journal: Journal) -> None:
    """Roll forward from a done swap: strays back, old files (and staging) gone, journal gone."""
    if journal.mode == EXCHANGE:
        _return_strays(journal)
        _delete_dir(journal.staging)
    else:
        for rel in journal.old:
            _delete_data_file(journal.live, rel)
        _prune_empty(journal.live, keep={r.split("/")[0] for r in journal.new or []})
        _delete_dir(journal.staging)
    after_step("old-deleted")
    lakefs.delete_file(journal.path(cfg))


def _roll_back(cfg: Config, journal: Journal) -> None:
    if journal.mode == MOVE:
        for rel in journal.new or []:
            _delete_data_file(journal.live, rel)
    _delete_dir(journal.staging)
    lakefs.delete_file(journal.path(cfg))


def recover(cfg: Config, datasets: set[str]) -> list[str]:
    """Settle what crashed runs left on ``datasets`` (the ones this run holds the locks of); say what."""
    said = []
    for journal in pending(cfg):
        if journal.dataset not in datasets:
            continue
        swapped = journal.new is not None and all(_exists(journal.live, rel) for rel in journal.new)
        if swapped:
            _finish(cfg, journal)
        else:
            _roll_back(cfg, journal)
        said.append(f"{journal.live}: {'completed' if swapped else 'rolled back'} (run {journal.run_id})")
    return said


def _return_strays(journal: Journal) -> None:
    """Entries that appeared in the old folder after it was listed (a batch an ingest added meanwhile) go
    back to the live one; each is one rename."""
    staging = _local(journal.staging)
    if not os.path.isdir(staging):
        return
    for name in sorted(os.listdir(staging)):
        if name in journal.entries or name.startswith(HIDDEN_PREFIXES):
            continue
        target = os.path.join(_local(journal.live), name)
        if not os.path.exists(target):
            os.rename(os.path.join(staging, name), target)


def _local(path: str) -> str:
    return str(lakefs.local_path(path))


def _inner(folder: str, rel: str) -> str:
    return lakefs.filesystem_and_path(lakefs.join(folder, rel))[1]


def _exists(folder: str, rel: str) -> bool:
    return lakefs.exists(lakefs.join(folder, rel))


def _delete_data_file(folder: str, rel: str) -> None:
    """A data file and Hadoop's checksum file beside it (``.<name>.crc``)."""
    head, _, name = rel.rpartition("/")
    for victim in (rel, f"{head}/.{name}.crc" if head else f".{name}.crc"):
        lakefs.delete_file(lakefs.join(folder, victim))


def _delete_dir(path: str) -> None:
    filesystem, inner = lakefs.filesystem_and_path(path)
    with contextlib.suppress(FileNotFoundError):
        if filesystem.get_file_info(inner).type == fs.FileType.Directory:
            filesystem.delete_dir(inner)


def _prune_empty(live: str, keep: set[str]) -> None:
    """Sub-folders of ``live`` left with no data file (Bronze's merged batches), except ``keep``."""
    filesystem, inner = lakefs.filesystem_and_path(live)
    for info in filesystem.get_file_info(fs.FileSelector(inner, allow_not_found=True)):
        if info.type != fs.FileType.Directory or info.base_name in keep:
            continue
        if not any(f.base_name.endswith(".parquet") for f in _files_below(filesystem, info.path)):
            filesystem.delete_dir(info.path)


def _files_below(filesystem: fs.FileSystem, path: str) -> list[fs.FileInfo]:
    infos = filesystem.get_file_info(fs.FileSelector(path, recursive=True))
    return [i for i in infos if i.type == fs.FileType.File]
