"""Publishing outputs: renameat2's exchange swaps two directories, and a file written
atomically holds its old content or its new one whatever fails while it is written."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from cartforensics._runtime import publish
from cartforensics._runtime.publish import (
    build_directory,
    exchange,
    publish_directory,
    remove_abandoned,
    write_atomic,
)


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="renameat2 is Linux's")
def test_exchange_swaps_two_directories(tmp_path: Path):
    a, b = tmp_path / "new", tmp_path / "out"
    (a / "sub").mkdir(parents=True)
    (a / "sub" / "x.log").write_bytes(b"new x")
    b.mkdir()
    (b / "y.log").write_bytes(b"old y")
    inode_a, inode_b = a.stat().st_ino, b.stat().st_ino
    if not exchange(a, b):
        pytest.skip("this file system has no RENAME_EXCHANGE")
    assert _tree(b) == {"sub/x.log": b"new x"}
    assert _tree(a) == {"y.log": b"old y"}
    assert (b.stat().st_ino, a.stat().st_ino) == (inode_a, inode_b)  # renamed, not copied
    assert sorted(p.name for p in tmp_path.iterdir()) == ["new", "out"]


def test_exchange_is_false_and_changes_nothing_when_a_path_is_missing(tmp_path: Path):
    a = tmp_path / "a"
    a.mkdir()
    (a / "f").write_bytes(b"f")
    assert exchange(a, tmp_path / "missing") is False
    assert _tree(a) == {"f": b"f"} and not (tmp_path / "missing").exists()


def test_exchange_is_false_without_renameat2(tmp_path: Path, monkeypatch):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    (a / "f").write_bytes(b"a")
    monkeypatch.setattr(publish, "_renameat2", lambda: None)
    assert exchange(a, b) is False
    assert _tree(a) == {"f": b"a"} and _tree(b) == {}


def test_write_atomic_writes_bytes_and_keeps_the_mode(tmp_path: Path):
    path = tmp_path / "f.json"
    write_atomic(path, b"one")
    assert path.read_bytes() == b"one"
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask  # not mkstemp's 0600
    path.chmod(0o640)
    write_atomic(path, lambda fh: fh.write(b"two"), sync=False)
    assert path.read_bytes() == b"two"
    assert path.stat().st_mode & 0o777 == 0o640
    assert [p.name for p in tmp_path.iterdir()] == ["f.json"]


def test_write_atomic_keeps_the_old_file_when_the_writer_fails_midway(tmp_path: Path):
    path = tmp_path / "f.parquet"
    path.write_bytes(b"old content")
    inode = path.stat().st_ino

    def writer(fh):
        fh.write(b"half of the new")
        fh.flush()
        raise RuntimeError("writer died")

    with pytest.raises(RuntimeError, match="writer died"):
        write_atomic(path, writer)
    assert path.read_bytes() == b"old content" and path.stat().st_ino == inode
    assert [p.name for p in tmp_path.iterdir()] == ["f.parquet"]  # no temporary left


def test_write_atomic_keeps_the_old_file_when_the_rename_fails(tmp_path: Path, monkeypatch):
    path = tmp_path / "notes.json"
    path.write_bytes(b"old")
    seen: list[bytes] = []

    def broken_replace(src, dst):
        seen.append(Path(src).read_bytes())  # the new content was complete in the temporary
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        write_atomic(path, b"new")
    monkeypatch.undo()
    assert seen == [b"new"]
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["notes.json"]


def test_write_atomic_creates_a_new_file(tmp_path: Path):
    path = tmp_path / "new.bin"
    write_atomic(path, b"\x00\xff")
    assert path.read_bytes() == b"\x00\xff"


def _dead_pid() -> int:
    import subprocess

    p = subprocess.Popen(["true"])
    p.wait()
    return p.pid


def test_build_directory_is_new_each_time_beside_its_destination(tmp_path: Path):
    a = build_directory(tmp_path / "out", "report")
    b = build_directory(tmp_path / "out", "report")
    assert a != b and a.parent == b.parent == tmp_path
    assert a.name.startswith(f".out.report-{os.getpid()}-") and not any(a.iterdir())


@pytest.mark.parametrize("with_exchange", [True, False])
def test_publish_directory_replaces_the_old_one_whole_and_keeps_its_mode(
        tmp_path: Path, monkeypatch, with_exchange: bool):
    if not with_exchange:
        monkeypatch.setattr(publish, "_renameat2", lambda: None)
    out = tmp_path / "out"
    first = build_directory(out, "report")
    (first / "a.txt").write_bytes(b"first")
    publish_directory(first, out)  # nothing there yet: a rename
    assert _tree(out) == {"a.txt": b"first"}
    out.chmod(0o750)
    second = build_directory(out, "report")
    (second / "b.txt").write_bytes(b"second")
    publish_directory(second, out)
    assert _tree(out) == {"b.txt": b"second"}  # the old one's files are gone with it
    assert out.stat().st_mode & 0o777 == 0o750
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # nothing left beside it


def test_remove_abandoned_removes_only_dead_processes_directories(tmp_path: Path):
    out = tmp_path / "out"
    mine = build_directory(out, "report")
    dead = tmp_path / f".out.report-{_dead_pid()}-0123456789ab"
    (dead / "sub").mkdir(parents=True)
    (dead / "sub" / "f").write_bytes(b"x")
    other_what = tmp_path / f".out.convert-{_dead_pid()}-0123456789ab"
    other_what.mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep").write_bytes(b"keep")
    planted = tmp_path / f".out.report-{_dead_pid()}-ba9876543210"
    planted.symlink_to(outside, target_is_directory=True)
    assert remove_abandoned(out, "report") == [dead]
    assert mine.is_dir() and other_what.is_dir() and planted.is_symlink()
    assert _tree(outside) == {"keep": b"keep"}


def test_publish_directory_without_exchange_puts_the_old_one_back_when_it_fails(
        tmp_path: Path, monkeypatch):
    monkeypatch.setattr(publish, "_renameat2", lambda: None)
    out = tmp_path / "out"
    out.mkdir()
    (out / "old.txt").write_bytes(b"old")
    built = build_directory(out, "report")
    (built / "new.txt").write_bytes(b"new")
    real_rename = os.rename

    def rename(src, dst):
        if Path(src) == built:
            raise OSError("disk gone")
        real_rename(src, dst)

    monkeypatch.setattr(os, "rename", rename)
    with pytest.raises(OSError, match="disk gone"):
        publish_directory(built, out)
    monkeypatch.undo()
    assert _tree(out) == {"old.txt": b"old"}


def test_an_exception_as_the_build_directory_is_made_leaves_nothing(tmp_path: Path,
                                                                    monkeypatch) -> None:
    """A SIGTERM's handler raising just as ``mkdir`` returns (before the caller holds the
    path): the directory made goes too."""
    real = Path.mkdir

    def made_then_terminated(self, *args, **kwargs):
        real(self, *args, **kwargs)
        raise SystemExit(128 + 15)  # what the CLI's SIGTERM handler raises

    monkeypatch.setattr(Path, "mkdir", made_then_terminated)
    with pytest.raises(SystemExit):
        with publish.building(tmp_path / "out", "report"):
            pytest.fail("the block ran")
    monkeypatch.undo()
    assert list(tmp_path.iterdir()) == []
