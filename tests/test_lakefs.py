"""The lake's small file operations on the local filesystem (the same code path as HDFS's)."""

from __future__ import annotations

from pathlib import Path

import pytest

from medallion.core import lakefs


def test_write_text_creates_the_folders_and_replaces_whole(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "record.json"
    lakefs.write_text(str(target), '{"v": 1}')
    lakefs.write_text(str(target), '{"v": 22}')

    assert target.read_text() == '{"v": 22}'
    assert lakefs.read_text(str(target)) == '{"v": 22}'
    assert sorted(p.name for p in target.parent.iterdir()) == ["record.json"]  # no temporary file left


def test_write_text_replaces_by_rename_so_an_open_reader_keeps_the_old_text(tmp_path: Path) -> None:
    target = tmp_path / "record.json"
    lakefs.write_text(str(target), "old")
    with target.open() as reader:
        lakefs.write_text(str(target), "new")
        # A rewrite in place would truncate the file under the open reader; a rename leaves it its file.
        assert reader.read() == "old"
    assert target.read_text() == "new"


def test_a_failed_write_leaves_neither_the_target_nor_a_temporary_file(tmp_path: Path) -> None:
    target = tmp_path / "taken"
    (target / "inside").mkdir(parents=True)  # a directory in the way: the rename must fail

    with pytest.raises(OSError):
        lakefs.write_text(str(target), "text")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken"]
    assert [p.name for p in target.iterdir()] == ["inside"]


def test_list_children_and_delete_file(tmp_path: Path) -> None:
    for name in ("b/x.json", "a/y.json", "top.json", "c.txt"):
        lakefs.write_text(str(tmp_path / name), name)

    assert lakefs.list_children(str(tmp_path)) == (["a", "b"], ["c.txt", "top.json"])
    assert lakefs.list_children(str(tmp_path / "missing")) == ([], [])
    assert lakefs.list_children(str(tmp_path / "top.json")) == ([], [])
    assert lakefs.delete_file(str(tmp_path / "top.json")) is True
    assert lakefs.delete_file(str(tmp_path / "top.json")) is False
    assert lakefs.list_files(str(tmp_path), suffix=".json") == [
        str(tmp_path / "a/y.json"),
        str(tmp_path / "b/x.json"),
    ]
