"""Small file operations on the lake that work for a local path, s3a:// and hdfs:// alike (pyarrow.fs).

Used by the parts that must not start Spark: the ledger, `status`, the dev key. Spark reads and writes
the data itself.
"""

from __future__ import annotations

import contextlib
import uuid
from pathlib import Path

from pyarrow import fs


def pyarrow_uri(path: str) -> str:
    """A lake path as pyarrow, Feast and dask spell it: Hadoop's ``s3a://`` is plain ``s3://`` there."""
    return "s3://" + path[len("s3a://") :] if path.startswith("s3a://") else path


def _split(path: str) -> tuple[fs.FileSystem, str]:
    if "://" not in path:
        return fs.LocalFileSystem(), path
    return fs.FileSystem.from_uri(pyarrow_uri(path))


def filesystem_and_path(path: str) -> tuple[fs.FileSystem, str]:
    """The pyarrow filesystem and the path inside it, for pyarrow.dataset and friends."""
    return _split(path)


def local_path(path: str) -> Path:
    """A local lake path as a Path (``file://`` stripped); only for the embedded mode's own state."""
    return Path(path.removeprefix("file://"))


def join(*parts: str) -> str:
    return "/".join([parts[0].rstrip("/"), *(p.strip("/") for p in parts[1:])])


# Filesystems where a file appears while it is written and a rename within a directory is atomic. Object
# stores (s3, gcs, abfs) are not among them: there one PUT is atomic already, since an object becomes
# visible only once complete and a second PUT replaces it whole, and a rename would be a copy.
_RENAME_ATOMIC = ("local", "hdfs")


def write_text(path: str, text: str) -> None:
    """Write ``path`` whole or not at all (`write_bytes`)."""
    write_bytes(path, text.encode())


def write_bytes(path: str, data: bytes) -> None:
    """Write ``path`` whole or not at all: no reader, and no crash, ever sees part of the data.

    Where files grow in place (local disk, HDFS) the text goes to a hidden temporary file in the same
    directory (``.<name>.<random>.tmp``: Spark, pyarrow and ``list_files(suffix=...)`` skip it), which
    is then renamed over ``path``; a crash can leave only such a temporary file behind. On an object
    store the data is one PUT.
    """
    filesystem, inner = _split(path)
    parent, _, name = inner.rpartition("/")
    if parent:
        filesystem.create_dir(parent, recursive=True)
    if filesystem.type_name not in _RENAME_ATOMIC:
        with filesystem.open_output_stream(inner) as out:
            out.write(data)
        return
    temporary = f"{parent}/.{name}.{uuid.uuid4().hex}.tmp" if parent else f".{name}.{uuid.uuid4().hex}.tmp"
    try:
        with filesystem.open_output_stream(temporary) as out:
            out.write(data)
        if filesystem.type_name == "hdfs" and filesystem.get_file_info(inner).type == fs.FileType.File:
            # HDFS's rename does not replace a file: readers may miss it for a moment, never see half.
            filesystem.delete_file(inner)
        filesystem.move(temporary, inner)
    except BaseException:
        with contextlib.suppress(OSError):
            filesystem.delete_file(temporary)
        raise


def delete_file(path: str) -> bool:
    """Delete the file at ``path``; False when there was none."""
    filesystem, inner = _split(path)
    try:
        filesystem.delete_file(inner)
    except FileNotFoundError:
        return False
    return True


def read_text(path: str) -> str:
    return read_bytes(path).decode()


def read_bytes(path: str) -> bytes:
    filesystem, inner = _split(path)
    with filesystem.open_input_stream(inner) as src:
        return bytes(src.read())


def exists(path: str) -> bool:
    filesystem, inner = _split(path)
    return filesystem.get_file_info(inner).type != fs.FileType.NotFound


def list_files(path: str, suffix: str = "") -> list[str]:
    """Files below ``path`` (recursive), as paths usable with the other functions here."""
    filesystem, inner = _split(path)
    if filesystem.get_file_info(inner).type != fs.FileType.Directory:
        return []
    infos = filesystem.get_file_info(fs.FileSelector(inner, recursive=True))
    prefix = path[: len(path) - len(inner)] if "://" in path else ""
    return sorted(
        prefix + info.path for info in infos if info.type == fs.FileType.File and info.path.endswith(suffix)
    )


def list_children(path: str) -> tuple[list[str], list[str]]:
    """Names of the directories and of the files directly below ``path``, each sorted (none: not a dir)."""
    filesystem, inner = _split(path)
    try:
        infos = filesystem.get_file_info(fs.FileSelector(inner, allow_not_found=True))
    except (FileNotFoundError, NotADirectoryError):
        return [], []
    dirs = sorted(i.base_name for i in infos if i.type == fs.FileType.Directory)
    return dirs, sorted(i.base_name for i in infos if i.type == fs.FileType.File)


def _subdirs(path: str) -> tuple[fs.FileSystem, list[fs.FileInfo]]:
    """The directories directly below ``path`` (none when it is not a directory), and their filesystem."""
    filesystem, inner = _split(path)
    if filesystem.get_file_info(inner).type != fs.FileType.Directory:
        return filesystem, []
    infos = filesystem.get_file_info(fs.FileSelector(inner))
    return filesystem, [info for info in infos if info.type == fs.FileType.Directory]


def list_partitions(path: str, column: str) -> list[str]:
    """Values of a hive partition column directly below ``path`` (``column=value`` directories)."""
    _, dirs = _subdirs(path)
    return sorted(d.base_name.split("=", 1)[1] for d in dirs if d.base_name.startswith(f"{column}="))


def remove_dirs(path: str, prefix: str) -> list[str]:
    """Delete the directories directly below ``path`` whose names start with ``prefix``; their names."""
    filesystem, dirs = _subdirs(path)
    removed = [d for d in dirs if d.base_name.startswith(prefix)]
    for d in removed:
        filesystem.delete_dir(d.path)
    return [d.base_name for d in removed]
