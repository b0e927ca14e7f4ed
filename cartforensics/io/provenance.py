"""A record of what was analysed (chain of custody): ``provenance.json`` in an output directory.

It holds the sha256 and byte count of every input file and of every output file beside it, the
tool's version, the call that made the output (command line or function and arguments), and its
start and end time. :func:`verify` recomputes the outputs' hashes (and, given the source, the
inputs') and names every file that differs by one byte, is missing, or was added.

>>> import tempfile, pathlib
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> _ = (d / "report.md").write_text("# report")
>>> _ = write_provenance(d, inputs=[], call={"function": "example"}, started=0.0)
>>> verify(d).ok
True
>>> _ = (d / "report.md").write_text("# rep0rt")
>>> [p.path for p in verify(d).problems]
['report.md']
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cartforensics._runtime.publish import write_atomic
from cartforensics._version import __version__
from cartforensics.io.chain import check_chain, is_chained
from cartforensics.io.logs import open_regular

__all__ = ["PROVENANCE", "Discrepancy", "ProvenanceError", "Verification", "call_record",
           "file_record", "verify", "write_provenance"]

PROVENANCE = "provenance.json"
"""The record's file name inside the directory it describes."""
FORMAT = "cartforensics-provenance/1"
_CHUNK = 1 << 20


class ProvenanceError(ValueError):
    """A directory without a readable provenance record, or a record that is not one."""


def file_record(path: str | os.PathLike[str]) -> dict[str, Any]:
    """``{"sha256": ..., "bytes": ...}`` of one regular file, read in 1 MiB pieces; OSError
    when it is not one or cannot be read."""
    h = hashlib.sha256()
    n = 0
    with open_regular(path) as f:  # never waits on a FIFO
        while chunk := f.read(_CHUNK):
            h.update(chunk)
            n += len(chunk)
    return {"sha256": h.hexdigest(), "bytes": n}


def call_record(function: str, **arguments: Any) -> dict[str, Any]:
    """How an output was made: the library function, its arguments (as text; None left out)
    and the process's command line (the command itself when the CLI made it).

    >>> call_record("write_report", src="sample_data", freq=None)["arguments"]
    {'src': 'sample_data'}
    """
    return {"function": function,
            "arguments": {k: str(v) for k, v in arguments.items() if v is not None},
            "argv": list(sys.argv)}


def _iso(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1000):03d}Z"


def _files_under(root: Path) -> list[str]:
    """Regular files under ``root`` (relative, ``/``-separated, sorted), not following
    symlinks, leaving out the record itself."""
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in filenames:
            p = Path(dirpath) / name
            rel = p.relative_to(root).as_posix()
            if rel != PROVENANCE and stat.S_ISREG(os.lstat(p).st_mode):
                out.append(rel)
    return sorted(out)


def _input_name(path: Path, root: Path | None) -> str:
    """Relative to ``root`` when under it; otherwise absolute (a notes file kept elsewhere)."""
    if root is not None:
        try:
            return path.relative_to(root).as_posix()
        except ValueError:
            pass
    return str(path.absolute())


def write_provenance(out_dir: str | os.PathLike[str], *,
                     inputs: Iterable[str | os.PathLike[str] | dict[str, Any]],
                     call: dict[str, Any], started: float,
                     input_root: str | os.PathLike[str] | None = None,
                     details: dict[str, Any] | None = None,
                     read: dict[str, dict[str, Any] | None] | None = None) -> dict[str, Any]:
    """Write ``out_dir/provenance.json`` (atomically) for the files now in ``out_dir``.

    ``inputs``: the files that were read (named relative to ``input_root`` when they lie under
    it), or their records already made (``{"path", "sha256", "bytes"}``); ``call``: how the
    output was made (:func:`call_record`); ``started``: ``time.time()`` when the work began;
    ``details``: more facts to keep (``go_version``, engine, modes, ...); ``read``: by path
    (``str`` of an input), the ``sha256`` and ``bytes`` of what the work read of it, recorded
    instead of hashing the file again (which would be a second read, of bytes that may have
    changed since). Returns the record."""
    out = Path(out_dir)
    root = Path(input_root) if input_root is not None else None
    ins = []
    for p in inputs:
        if isinstance(p, dict):  # hashed already by the caller: path, sha256, bytes
            ins.append({"path": str(p["path"]), "sha256": p["sha256"], "bytes": p["bytes"]})
            continue
        path = Path(p)
        done = (read or {}).get(str(p))
        if done is not None:
            ins.append({"path": _input_name(path, root), "sha256": done["sha256"],
                        "bytes": done["bytes"]})
            continue
        try:
            ins.append({"path": _input_name(path, root), **file_record(path)})
        except OSError as e:  # vanished or replaced while the work ran: it says so
            ins.append({"path": _input_name(path, root), "sha256": None, "bytes": None,
                        "error": f"cannot read: {e.strerror or e}"})
    outs = [{"path": rel, **file_record(out / rel)} for rel in _files_under(out)]
    record = {
        "format": FORMAT,
        "tool": "cartforensics",
        "version": __version__,
        "call": call,
        **(details or {}),
        "started": _iso(started),
        "ended": _iso(time.time()),
        "input_root": str(root.resolve()) if root is not None else None,
        "inputs": ins,
        "outputs": outs,
    }
    write_atomic(out / PROVENANCE,
                 (json.dumps(record, indent=1) + "\n").encode("ascii"))  # \u escapes: any name
    return record


@dataclass(frozen=True)
class Discrepancy:
    """One file that does not match the record: ``what`` is ``changed``, ``missing``,
    ``unreadable`` or ``added``; ``side`` is ``output`` or ``input``."""

    side: str
    path: str
    what: str

    def __str__(self) -> str:
        return f"{self.side} {self.path!r} {self.what}"


@dataclass(frozen=True)
class Verification:
    """What :func:`verify` found: ``ok`` when nothing differs."""

    directory: str
    checked: int
    problems: Sequence[Discrepancy] = field(default_factory=tuple)

    @property
    def ok(self) -> bool:
        return not self.problems


def _read_record(directory: Path) -> dict[str, Any]:
    path = directory / PROVENANCE
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ProvenanceError(f"{directory} has no {PROVENANCE}: it was not written by "
                              "cartforensics, or the record was removed") from None
    except OSError as e:
        raise ProvenanceError(f"cannot read {path}: {e.strerror}") from None
    try:
        record = json.loads(raw)
    except (ValueError, RecursionError):
        raise ProvenanceError(f"{path} is not JSON") from None
    ok = (isinstance(record, dict) and record.get("format") == FORMAT
          and all(isinstance(record.get(k), list) for k in ("inputs", "outputs")))
    entries = (record.get("inputs") or []) + (record.get("outputs") or []) if ok else []
    if not ok or not all(isinstance(e, dict) and isinstance(e.get("path"), str)
                         and isinstance(e.get("sha256"), str | None) for e in entries):
        raise ProvenanceError(f"{path} is not a {FORMAT} record")
    return record


def _inside(root: Path, rel: str, absolute_ok: bool = False) -> Path | None:
    """``root / rel`` when ``rel`` names a path inside ``root`` (no ``..``; an absolute path
    only where ``absolute_ok``: inputs kept outside the source)."""
    p = Path(rel)
    if ".." in p.parts or (p.is_absolute() and not absolute_ok):
        return None
    return root / p


def _compare(side: str, root: Path, entries: list[dict[str, Any]]) -> list[Discrepancy]:
    problems = []
    for e in entries:
        path = _inside(root, e["path"], absolute_ok=side == "input")
        if e["sha256"] is None:  # unreadable when recorded: still so, or it changed
            readable = path is not None and path.is_file() and not path.is_symlink()
            if readable:
                problems.append(Discrepancy(side, e["path"], "changed"))
            continue
        if path is None or not path.is_file() or path.is_symlink():
            problems.append(Discrepancy(side, e["path"], "missing"))
            continue
        try:
            now = file_record(path)
        except OSError:
            problems.append(Discrepancy(side, e["path"], "unreadable"))
            continue
        if now != {"sha256": e["sha256"], "bytes": e.get("bytes")}:
            problems.append(Discrepancy(side, e["path"], "changed"))
    return problems


_NEVER_CHAINED = (".events.log", ".events.log.gz", ".parquet")  # inputs that are never notes


def _check_chains(side: str, root: Path | None, entries: list[dict[str, Any]]
                  ) -> list[Discrepancy]:
    """Every hash-chained input (a notes file, :mod:`cartforensics.io.chain`) that can be
    found now (absolute, or under ``root``) checked link by link."""
    problems = []
    for e in entries:
        if e["path"].endswith(_NEVER_CHAINED):
            continue
        path = _inside(root, e["path"], absolute_ok=True) if root is not None \
            else Path(e["path"]) if Path(e["path"]).is_absolute() else None
        if path is None or not is_chained(path):
            continue
        problems += _check_chain_file(side, path, e["path"])
    return problems


def _check_chain_file(side: str, path: Path, name: str) -> list[Discrepancy]:
    try:
        broken = check_chain(path)
    except OSError:
        return [Discrepancy(side, name, "unreadable")]
    return [] if broken is None else [Discrepancy(side, name, f"hash chain broken: {broken}")]


def verify(directory: str | os.PathLike[str] | None,
           against: str | os.PathLike[str] | None = None,
           notes: Iterable[str | os.PathLike[str]] = ()) -> Verification:
    """Recompute the hashes recorded in ``directory/provenance.json``: every output file (and
    no file added), with ``against`` (the source that was analysed) every input file, and
    the hash chain of every notes file among the inputs that is there to read (found under
    ``against``, or else under the record's ``input_root``, or by its absolute path).
    ``notes``: notes files to check the chains of as well (``directory`` None: only those).
    Raises :class:`ProvenanceError` when there is no readable record."""
    notes = [Path(f) for f in notes]
    extra = []
    for f in notes:
        if not f.is_file():
            raise ProvenanceError(f"{f} is not a notes file (no regular file there)")
        extra += _check_chain_file("notes", f, str(f))
    if directory is None:
        return Verification("", len(notes), tuple(extra))
    d = Path(directory)
    record = _read_record(d)
    problems = _compare("output", d, record["outputs"])
    listed = {e["path"] for e in record["outputs"]}
    problems += [Discrepancy("output", rel, "added") for rel in _files_under(d)
                 if rel not in listed]
    checked = len(record["outputs"])
    if against is not None:
        src = Path(against)
        if src.is_file():
            entries = record["inputs"]
            problems += _compare("input", src.parent, [
                {**e, "path": src.name} if len(entries) == 1 else e for e in entries])
        else:
            problems += _compare("input", src, record["inputs"])
        checked += len(record["inputs"])
    root = Path(against) if against is not None else (
        Path(record["input_root"]) if isinstance(record.get("input_root"), str) else None)
    if root is not None and root.is_file():
        root = root.parent
    problems += _check_chains("input", root, record["inputs"])
    return Verification(str(d), checked + len(notes), tuple(problems + extra))
