"""Hash-chained JSON Lines: records that are tamper-evident (the analyst's notes use them).

Every chained record is one JSON object on one line that ends with two keys::

    {..., "prev_record": "<hash of the record before it, or null>", "record_sha256": "<hash>"}

``record_sha256`` is the sha256 of the line's bytes before ``,"record_sha256":`` (so it covers
``prev_record`` and every other byte of the record); ``prev_record`` is the ``record_sha256`` of
the record before it. A byte edited anywhere in a record changes its hash; a record re-hashed
after an edit no longer matches the ``prev_record`` of the record after it; a record removed or
moved breaks the links too. The chain of a file ``F`` runs through its history
(:func:`history_path`: the records a compaction moved out of ``F``, in order), then ``F``;
records written before the chain began (files of older versions) carry no hash, are read as
they are, and are not checked.

>>> import tempfile, pathlib
>>> f = pathlib.Path(tempfile.mkdtemp()) / "notes.json"
>>> one = chained_line({"note": "a"}, None)
>>> _ = f.write_bytes(one + chained_line({"note": "b"}, record_hash(one)))
>>> check_chain(f) is None
True
>>> _ = f.write_bytes(f.read_bytes().replace(b'"b"', b'"c"'))
>>> print(check_chain(f))
notes.json line 2: its bytes do not match its record_sha256 (edited)
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cartforensics.io.logs import open_regular

__all__ = ["HASH_KEY", "PREV_KEY", "ChainBreak", "chained_line", "check_chain", "history_path",
           "is_chained", "record_hash"]

PREV_KEY = "prev_record"
HASH_KEY = "record_sha256"
_HASH_AT_END = re.compile(rb',"' + HASH_KEY.encode() + rb'":"([0-9a-f]{64})"}$')


def history_path(path: str | os.PathLike[str]) -> Path:
    """Where the records a compaction moved out of ``path`` are kept: beside it, the same name
    with ``.history.jsonl`` added (``notes.json`` -> ``notes.json.history.jsonl``)."""
    p = Path(path)
    return p.with_name(p.name + ".history.jsonl")


def _dumps(obj: dict[str, Any]) -> bytes:
    """``obj`` as one line (no newline): UTF-8, ``\\u`` escapes only for what UTF-8 cannot
    hold (a lone surrogate)."""
    try:
        return json.dumps(obj, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(obj, ensure_ascii=True).encode("ascii")


def chained_line(obj: dict[str, Any], prev: str | None) -> bytes:
    """``obj`` as a chained record following the record whose hash is ``prev`` (None: the
    first of a chain), newline included. Its hash is :func:`record_hash` of the line."""
    body = _dumps({k: v for k, v in obj.items() if k not in (PREV_KEY, HASH_KEY)}
                  | {PREV_KEY: prev})
    head = body[:-1]  # without the closing brace
    digest = hashlib.sha256(head).hexdigest()
    return head + b',"' + HASH_KEY.encode() + b'":"' + digest.encode() + b'"}\n'


def record_hash(line: bytes) -> str | None:
    """The hash a chained record states for itself (None: the line is not chained)."""
    m = _HASH_AT_END.search(line)
    return m.group(1).decode() if m else None


@dataclass(frozen=True)
class ChainBreak:
    """The first record of a chain that fails: ``path`` and ``line`` (1-based) say where,
    ``record`` is what the line holds (None when it is not a JSON object), ``reason`` why."""

    path: str
    line: int
    record: dict[str, Any] | None
    reason: str

    def __str__(self) -> str:
        rec = self.record or {}
        named = ", ".join(f"{k} {rec[k]!r}" for k in ("id", "cart_id", "line") if k in rec)
        which = f" (note {named})" if named else ""
        return f"{Path(self.path).name} line {self.line}{which}: {self.reason}"


def is_chained(path: str | os.PathLike[str], head: int = 1 << 16) -> bool:
    """True when ``path`` is a regular file holding chained records (one in its first
    ``head`` bytes) or has a history beside it; False for anything else, unreadable too."""
    p = Path(path)
    try:
        with open_regular(p) as f:  # never waits on a FIFO
            data = f.read(head)
    except OSError:
        return False
    return b'"' + HASH_KEY.encode() + b'":"' in data or history_path(p).is_file()


def _parsed(raw: bytes) -> dict[str, Any] | None:
    try:
        rec = json.loads(raw)
    except (ValueError, RecursionError):
        return None
    return rec if isinstance(rec, dict) else None


def _read(path: Path) -> bytes:
    with open_regular(path) as f:
        return f.read()


def check_chain(path: str | os.PathLike[str]) -> ChainBreak | None:
    """The first record of ``path``'s chain (its history, then the file) that is edited, out
    of place, or missing its hash once the chain has begun; None when every link holds.
    OSError when the file cannot be read."""
    p = Path(path)
    hist = history_path(p)
    parts = [(hist, _read(hist))] if hist.is_file() else []
    parts.append((p, _read(p)))
    prev: str | None = None
    started = False
    before: tuple[Path, int, bytes] | None = None  # the last line before the chain began
    for where, data in parts:
        lines = data.split(b"\n")
        cut = lines.pop() if lines else b""
        if cut.strip():  # the last line has no newline: cut short
            lines.append(cut)
        for k, raw in enumerate(lines, start=1):
            m = _HASH_AT_END.search(raw)
            if m is None:
                if started:
                    why = "is empty" if not raw.strip() else "carries no record_sha256"
                    return ChainBreak(str(where), k, _parsed(raw), f"{why}: the chain is broken")
                before = (where, k, raw)
                continue  # written before the chain began (or its hash was edited away)
            digest = m.group(1).decode()
            rec = _parsed(raw)
            if hashlib.sha256(raw[:m.start()]).hexdigest() != digest or rec is None:
                return ChainBreak(str(where), k, rec,
                                  f"its bytes do not match its {HASH_KEY} (edited)")
            if k == len(lines) and raw is cut:
                return ChainBreak(str(where), k, rec, "cut short (no newline)")
            link = rec.get(PREV_KEY)
            if started and link != prev:
                return ChainBreak(str(where), k, rec, "does not follow the record before it "
                                  "(a record before it was removed, moved or re-hashed)")
            if not started and link is not None and before is not None:
                return ChainBreak(str(before[0]), before[1], _parsed(before[2]),
                                  f"the record after it follows a record, but it has no valid "
                                  f"{HASH_KEY} (edited)")
            if not started and link is not None:
                missing = "" if parts[0][0] == hist else f": {hist.name} is missing"
                return ChainBreak(str(where), k, rec, "continues records that are not there"
                                  + missing)
            started, prev = True, digest
    return None
