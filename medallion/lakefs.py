"""Small file operations on the lake that work for a local path, s3a:// and hdfs:// alike (pyarrow.fs).

Used by the parts that must not start Spark: the ledger, `status`, the dev key. Spark reads and writes
the data itself.
"""

from __future__ import annotations

from pathlib import Path

from pyarrow import fs


def _split(path: str) -> tuple[fs.FileSystem, str]:
    if "://" not in path:
        return fs.LocalFileSystem(), path
    # Hadoop's s3a:// is plain s3:// to pyarrow.
    return fs.FileSystem.from_uri(path.replace("s3a://", "s3://", 1))


def filesystem_and_path(path: str) -> tuple[fs.FileSystem, str]:
    """The pyarrow filesystem and the path inside it, for pyarrow.dataset and friends."""
    return _split(path)


def local_path(path: str) -> Path:
    """A local lake path as a Path (``file://`` stripped); only for the embedded mode's own state."""
    return Path(path.removeprefix("file://"))


def join(*parts: str) -> str:
    return "/".join([parts[0].rstrip("/"), *(p.strip("/") for p in parts[1:])])


def write_text(path: str, text: str) -> None:
    filesystem, inner = _split(path)
    filesystem.create_dir(inner.rsplit("/", 1)[0], recursive=True)
    with filesystem.open_output_stream(inner) as out:
        out.write(text.encode())


def read_text(path: str) -> str:
    filesystem, inner = _split(path)
    with filesystem.open_input_stream(inner) as src:
        return bytes(src.read()).decode()


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
