"""Publishing an output so that a reader sees the old one or the new one, never half of one.

- :func:`exchange` swaps two paths in one step (Linux ``renameat2(RENAME_EXCHANGE)``): a
  finished directory built beside the destination takes the destination's place, and the
  old one is left under the temporary name to be removed. Callers keep their own fallback
  for systems without it.
- :func:`write_atomic` writes one file through a temporary file in the same directory,
  synced, then renamed over the old file.
- :func:`build_directory` makes the directory an output is built in, beside its destination;
  :func:`publish_directory` puts it in the destination's place (by :func:`exchange`, else two
  renames); :func:`remove_abandoned` removes what a killed run left of such a directory.
"""

from __future__ import annotations

import ctypes
import functools
import os
import re
import secrets
import shutil
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO

__all__ = ["build_directory", "exchange", "publish_directory", "remove_abandoned",
           "write_atomic"]

_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


@functools.cache
def _renameat2() -> Any:
    """The C library's ``renameat2``, None where there is none (not Linux, an old glibc)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        fn = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return None
    # int renameat2(int olddirfd, const char *oldpath, int newdirfd, const char *newpath,
    #               unsigned int flags)
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    fn.restype = ctypes.c_int
    return fn


def exchange(a: str | os.PathLike[str], b: str | os.PathLike[str]) -> bool:
    """Swap the paths ``a`` and ``b`` in one step: afterwards each names what the other named.
    False, with nothing changed, when the system cannot (not Linux, no ``renameat2``, a file
    system without ``RENAME_EXCHANGE``) or either path is missing."""
    fn = _renameat2()
    if fn is None:
        return False
    return fn(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0


def write_atomic(path: str | os.PathLike[str], data: bytes | Callable[[BinaryIO], Any], *,
                 sync: bool = True) -> None:
    """Make ``path`` hold ``data`` (bytes, or a function that writes to the binary file it is
    given) in one step: a reader, or the file after a crash, has the old content or the new,
    never part of it. The temporary file (``.<name>.<random>.tmp`` in the same directory) is
    removed when writing fails; the file keeps its permission bits (a new one gets the
    umask's). ``sync``: flush the file and then the directory to disk before returning. The
    directory must exist."""
    path = Path(path)
    directory = path.parent
    try:
        mode: int | None = path.stat().st_mode & 0o777
    except OSError:
        mode = None  # a new file: the kernel applies the umask to 0o666 as the file is made
    fd, tmp = _create_temporary(directory, path.name)
    try:
        if mode is not None:
            os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as fh:
            if callable(data):
                data(fh)
            else:
                fh.write(data)
            if sync:
                fh.flush()
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    if sync:
        _sync_directory(directory)


def _create_temporary(directory: Path, name: str) -> tuple[int, str]:
    """A new file ``.<name>.<random>.tmp`` in ``directory``, opened for writing, made with
    mode 0o666 less the umask (mkstemp's 0600 would stick to the published file; reading the
    umask with ``os.umask`` would change it for every thread for a moment)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    while True:
        tmp = os.path.join(directory, f".{name}.{secrets.token_hex(6)}.tmp")
        try:
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:
            continue


def _sync_directory(directory: Path) -> None:
    """The rename itself survives a crash once the directory is synced (where it can be)."""
    try:
        dfd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dfd)
    except OSError:
        pass
    finally:
        os.close(dfd)


def _build_name(dst: Path, what: str) -> Path:
    """A name beside ``dst`` nobody made before (it holds the pid and 48 random bits)."""
    return dst.parent / f".{dst.name}.{what}-{os.getpid()}-{secrets.token_hex(6)}"


def build_directory(dst: str | os.PathLike[str], what: str) -> Path:
    """A new, empty directory ``.<name>.<what>-<pid>-<random>`` beside ``dst``, where an
    output is built before :func:`publish_directory` puts it at ``dst``. Made by ``mkdir``
    (mode 0o777 less the umask), under a name nobody made before: a planted file or link
    of a guessed name is never used.

    >>> import tempfile; base = Path(tempfile.mkdtemp())
    >>> build_directory(base / "out", "report").name.startswith(".out.report-")
    True
    >>> import shutil; shutil.rmtree(base)
    """
    return _make_build_directory(Path(dst), what, [])


def _make_build_directory(dst: Path, what: str, made: list[Path]) -> Path:
    """:func:`build_directory`, its name put in ``made`` before ``mkdir`` (so that whatever
    lands as ``mkdir`` returns, the caller knows what to remove)."""
    while True:
        made[:] = [_build_name(dst, what)]
        try:
            made[0].mkdir()
            return made[0]
        except FileExistsError:
            made.clear()


@contextmanager
def building(dst: str | os.PathLike[str], what: str) -> Iterator[Path]:
    """:func:`build_directory` for the block, removed with what it holds when the block
    raises. The name is chosen before the directory is made, so an exception that lands as
    ``mkdir`` returns (a SIGTERM's or SIGINT's handler runs between any two steps, in any
    thread's stead) still removes it.

    >>> import tempfile; base = Path(tempfile.mkdtemp())
    >>> try:
    ...     with building(base / "out", "report") as b:
    ...         raise OSError("disk full")
    ... except OSError:
    ...     pass
    >>> b.exists(), list(base.iterdir())
    (False, [])
    >>> import shutil; shutil.rmtree(base)
    """
    made: list[Path] = []
    try:
        yield _make_build_directory(Path(dst), what, made)
    except BaseException:
        if made:
            shutil.rmtree(made[0], ignore_errors=True)
        raise


def remove_abandoned(dst: str | os.PathLike[str], what: str) -> list[Path]:
    """Remove the directories :func:`build_directory` made beside ``dst`` for ``what`` in
    processes that no longer run (killed before they could clean up); the ones removed.
    A directory of a running process (this one's too) is left alone."""
    dst = Path(dst)
    pattern = re.compile(rf"\.{re.escape(dst.name)}\.{re.escape(what)}-(\d+)-[0-9a-f]{{12}}")
    removed = []
    try:
        names = os.listdir(dst.parent)
    except OSError:
        return removed
    for name in names:
        m = pattern.fullmatch(name)
        if m is None or _running(int(m.group(1))):
            continue
        path = dst.parent / name
        if path.is_symlink() or not path.is_dir():
            continue  # not one we made
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path)
    return removed


def _running(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # (PermissionError: another user's process)
        return True
    return True


def publish_directory(built: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
    """Make the directory ``built`` (from :func:`build_directory`) be ``dst``: a rename when
    nothing is at ``dst``; else an :func:`exchange` with the old directory, which is then
    removed (where there is no exchange: the old one is renamed aside first, so a crash in
    between leaves it under a name beside ``dst``). The published directory keeps the old
    one's permission bits. A reader of ``dst`` sees the old output or the new, never a mix.
    ``dst`` must not be a symbolic link (resolve it first)."""
    built, dst = Path(built), Path(dst)
    try:
        mode: int | None = dst.stat().st_mode & 0o7777
    except FileNotFoundError:
        mode = None
    if mode is not None:
        os.chmod(built, mode)
        if exchange(built, dst):
            shutil.rmtree(built, ignore_errors=True)  # it now holds the old directory
            _sync_directory(dst.parent)
            return
        old = build_directory(dst, "old")
        os.rename(dst, old)  # onto the empty directory just made (POSIX allows this)
        try:
            os.rename(built, dst)
        except BaseException:
            os.rename(old, dst)  # the old one back in its place
            raise
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.rename(built, dst)
    _sync_directory(dst.parent)
