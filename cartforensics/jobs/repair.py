"""Repair: rewrite cart logs so that the service's reader, as deployed, rebuilds what the writer
meant, and prove it by replaying the result.

For every cart in SRC, ``repair`` writes ``OUT/<cartId>.events.log`` such that a ``go`` replay
of OUT (the service's reader) rebuilds exactly the cart a ``lenient`` replay of SRC rebuilds
(items, deliveries, totals, checkout fields and ``lastChange``), line order kept. The rewrite is
minimal and in the writer's own bytes:

- a numeric ``ts`` becomes the RFC 3339 string Go's ``time.Time.MarshalJSON`` writes for that
  instant (UTC, nanoseconds kept); nothing else on the line changes;
- a missing final newline is added;
- lines lenient mode rejects too (their envelope does not decode) are dropped from OUT and kept
  verbatim in ``OUT/rejected/<cartId>.events.log.rejected`` (``<line>\\t<bytes>\\n``);
- lines of unknown types stay: the service skips them as before, and a later service that knows
  the type replays them;
- a line too long for the scanner (262,144 bytes or more before its ``\\n``) is re-encoded
  shorter where Go decodes the shorter text to the same message (a trailing ``\\r`` dropped,
  insignificant whitespace removed, escapes such as ``\\u003c`` written as the character); if it
  still does not fit, the cart is unrepairable and the report gives the maxLine a service-side
  fix needs.

Then OUT is replayed in ``go`` mode and compared with ``lenient`` on SRC, cart by cart; a cart
that does not match is marked (its attempt kept in ``OUT/unverified/``, the source bytes in its
place), never reported as repaired.

>>> result = repair("sample_data", "repaired")      # doctest: +SKIP
>>> print(result.summary())                         # doctest: +SKIP
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import orjson
import pandas as pd
import pyarrow as pa

from cartforensics._runtime.progress import progress_bar
from cartforensics._runtime.publish import building, exchange
from cartforensics._version import __version__
from cartforensics.go.bufio import MAX_TOKEN_SIZE
from cartforensics.go.envelope import number_to_time
from cartforensics.go.json import fold_name, unquote
from cartforensics.go.time import GoTime
from cartforensics.go.version import DEFAULT_GO_VERSION, semantics
from cartforensics.io.logs import GZ_SUFFIX, LOG_SUFFIX, find_logs, log_stem, name_text
from cartforensics.io.provenance import PROVENANCE, call_record, write_provenance
from cartforensics.io.sources import read_events
from cartforensics.model.replay import Replay, replay

REPORT_JSON = "repair.json"
REPORT_MD = "REPAIR.md"
REJECTED_DIR = "rejected"
UNVERIFIED_DIR = "unverified"
REJECTED_SUFFIX = ".events.log.rejected"
TOOL = "cartforensics repair"

STATUSES = ("repaired", "unchanged", "unrepairable")

__all__ = ["RepairError", "RepairResult", "repair", "numeric_ts_spans", "shorter_encoding"]


class RepairError(ValueError):
    """A bad argument to :func:`repair` (paths, toolchain): nothing was written."""


# =============================================================================================
# Line-level rewrites (pure functions on one scanner token; the token is valid JSON, since
# lenient mode decoded its envelope)

# a JSON string (unrolled loop: fast on long strings) or a structural character
_STRING = rb'"[^"\\]*(?:\\.[^"\\]*)*"'
_TOKENS = re.compile(_STRING + rb"|[\[\]{}:,]", re.DOTALL)
_NUMBER = re.compile(rb"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")
_WS = b" \t\r\n"
_TS_FOLD = fold_name("ts")
_INT = re.compile(rb"-?(?:0|[1-9][0-9]*)")


def _is_ts_key(key: bytes) -> bool:
    if key == b'"ts"':
        return True
    return fold_name(unquote(key)) == _TS_FOLD


# the writer's own shape: {"ts":<int>,"type":"<plain>","payload":<one JSON value>}
_WRITER = re.compile(rb'\{"ts":(-?(?:0|[1-9][0-9]*)),"type":"[^"\\]*","payload":(.*)\}',
                     re.DOTALL)


def _writer_ts_span(token: bytes) -> tuple[int, int] | None:
    """The ts span of a line in the writer's exact shape, else None. The payload part must be
    exactly one JSON value (msgspec, strict JSON, rejects trailing text), so that no other
    top-level key can hide after it."""
    m = _WRITER.fullmatch(token)
    if m is None:
        return None
    try:
        msgspec.json.decode(m.group(2))
    except (msgspec.DecodeError, RecursionError):
        return None
    return m.span(1)


def numeric_ts_spans(token: bytes) -> list[tuple[int, int]]:
    """Byte spans of every top-level ``ts`` value that is a JSON number, in order (Go decodes a
    repeated key once per occurrence; keys match case-insensitively, Go-style).

    >>> numeric_ts_spans(b'{"ts":1700000000,"type":"A","payload":{"ts":5}}')
    [(6, 16)]
    """
    fast = _writer_ts_span(token)
    if fast is not None:
        return [fast]
    spans: list[tuple[int, int]] = []
    depth = 0
    expect_key = False
    key: bytes | None = None
    for m in _TOKENS.finditer(token):
        c = token[m.start()]
        if c == 0x22:  # a string
            if depth == 1 and expect_key:
                key = m.group()
                expect_key = False
        elif c in (0x7B, 0x5B):  # { [
            depth += 1
            expect_key = depth == 1 and c == 0x7B
        elif c in (0x7D, 0x5D):  # } ]
            depth -= 1
        elif depth == 1 and c == 0x2C:  # , between members
            expect_key = True
        elif depth == 1 and c == 0x3A and key is not None:  # : after a key
            if _is_ts_key(key):
                i = m.end()
                while i < len(token) and token[i] in _WS:
                    i += 1
                num = _NUMBER.match(token, i)
                if num is not None and num.end() > i:
                    spans.append((i, num.end()))
            key = None
    return spans


def ts_text(number: bytes) -> tuple[str | None, str | None]:
    """The RFC 3339 text Go's ``time.Time.MarshalJSON`` writes for a lenient numeric ``ts``
    (UTC, nanoseconds kept), or an error when there is none.

    >>> ts_text(b"1700000000.5")
    ('2023-11-14T22:13:20.5Z', None)
    """
    if _INT.fullmatch(number) and len(number) < 12:  # the writer's own: whole seconds
        t: GoTime | None = GoTime(int(number), 0, None)
        err = None
    else:
        t, err = number_to_time(number)
    if err is not None or t is None:
        return None, err or "not a number"
    text = t.rfc3339nano()
    # MarshalJSON fails for years outside [0, 9999] ("year outside of range [0,9999]"), and
    # Go's parser reads only four-digit years: such a ts has no string form Go reads back
    if not re.fullmatch(r"[0-9]{4}-.*", text):
        return None, f"ts {number.decode('ascii', 'replace')} is {text}: Go's time.Time " \
                     "MarshalJSON writes only years 0 to 9999"
    return text, None


def rewrite_ts(token: bytes) -> tuple[bytes, list[str], str | None]:
    """The token with every numeric top-level ``ts`` written as Go's RFC 3339 string; the edits
    made (``1700000000 -> "…"``), and an error for a ts that cannot be written so."""
    spans = numeric_ts_spans(token)
    if not spans:
        return token, [], None
    out = bytearray()
    pos = 0
    edits: list[str] = []
    for a, b in spans:
        number = token[a:b]
        text, err = ts_text(number)
        if text is None:
            return token, [], err
        out += token[pos:a]
        out += b'"' + text.encode("ascii") + b'"'
        pos = b
        edits.append(f'ts {_clip(number.decode("ascii"))} -> "{text}"')
    out += token[pos:]
    return bytes(out), edits, None


_SHORT_CONTROL = {0x08: b"\\b", 0x09: b"\\t", 0x0A: b"\\n", 0x0C: b"\\f", 0x0D: b"\\r"}


def _rune_bytes(r: int) -> bytes:
    if r == 0x22:
        return b'\\"'
    if r == 0x5C:
        return b"\\\\"
    if r < 0x20:
        return _SHORT_CONTROL.get(r, b"\\u%04x" % r)
    return chr(r).encode("utf-8")


def _shorter_string(s: bytes) -> bytes:
    """A JSON string token with each escape written in its shortest form Go unquotes to the
    same text (Go's rules: a valid surrogate pair is one rune, a lone surrogate is U+FFFD, raw
    bytes are copied as they are)."""
    if b"\\" not in s:
        return s
    out = bytearray()
    i = 0
    while True:
        j = s.find(b"\\", i)
        if j < 0:
            out += s[i:]
            break
        out += s[i:j]
        c = s[j + 1]
        if c == 0x75:  # \uXXXX
            r = int(s[j + 2 : j + 6], 16)
            i = j + 6
            if 0xD800 <= r < 0xE000:
                r2 = int(s[i + 2 : i + 6], 16) if s[i : i + 2] == b"\\u" else -1
                if r < 0xDC00 and 0xDC00 <= r2 < 0xE000:
                    r = 0x10000 + ((r - 0xD800) << 10) + (r2 - 0xDC00)
                    i += 6
                else:
                    r = 0xFFFD
            out += _rune_bytes(r)
        elif c == 0x2F:  # \/
            out += b"/"
            i = j + 2
        else:
            out += s[j : j + 2]
            i = j + 2
    return bytes(out)


_STRING_OR_WS = re.compile(_STRING + rb"|[ \t\r\n]+", re.DOTALL)


def shorter_encoding(token: bytes) -> tuple[bytes, list[str]]:
    """A shorter text of the same JSON value, as Go decodes it: insignificant whitespace removed
    (step ``whitespace``), then escapes in their shortest form (step ``escapes``); each step is
    taken only when it makes the text shorter.

    >>> shorter_encoding(b'{ "a" : "\\\\u003cb\\\\u003e" }')
    (b'{"a":"<b>"}', ['whitespace', 'escapes'])
    """
    steps: list[str] = []
    # each step copies the token: taken only when a byte it could drop is in it at all
    if any(c in token for c in (b" ", b"\t", b"\r", b"\n")):
        compact = _STRING_OR_WS.sub(lambda m: b"" if m.group()[0] != 0x22 else m.group(),
                                    token)
        if len(compact) < len(token):
            steps.append("whitespace")
            token = compact
        del compact
    if b"\\" in token:
        unescaped = _STRING_OR_WS.sub(
            lambda m: _shorter_string(m.group()) if m.group()[0] == 0x22 else m.group(), token)
        if len(unescaped) < len(token):
            steps.append("escapes")
            token = unescaped
    return token, steps


def _clip(text: str, n: int = 60) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def _sha(data: bytes | bytearray) -> str:
    return hashlib.sha256(data).hexdigest()


class _Shared:
    """One object per distinct value among the texts of a repair's changes (a log of a
    million blank lines records a million changes with the same hash and detail: one text
    each, not a million).

    >>> texts = _Shared(); texts("a" + "b") is texts("ab")
    True
    """

    def __init__(self, limit: int = 1 << 16) -> None:
        self._seen: dict[Any, Any] = {}
        self._limit = limit

    def __call__(self, value: Any) -> Any:
        hit = self._seen.get(value)
        if hit is not None:
            return hit
        if len(self._seen) < self._limit:
            self._seen[value] = value
        return value

    def sha(self, data: bytes) -> str:
        """The sha256 of ``data``, shared for short (repeated) lines."""
        if len(data) > 64:
            return _sha(data)
        key = (b"sha", data)
        hit = self._seen.get(key)
        if hit is None:
            hit = _sha(data)
            if len(self._seen) < self._limit:
                self._seen[key] = hit
        return hit


# =============================================================================================
# One cart


@dataclass
class CartRepair:
    """What :func:`repair` did to one cart."""

    cart_id: str
    status: str = "unchanged"
    reason: str | None = None
    changes: list[dict[str, Any]] = field(default_factory=list)
    out_bytes: bytes | bytearray = b""
    rejected: bytes | bytearray = b""
    source_bytes: bytes | bytearray = b""
    files: list[str] = field(default_factory=list)
    stem: str = ""  # its file name on disk without the suffix ("" : the cart id)
    lines_in: int = 0
    lines_out: int = 0
    verified: bool | None = None
    too_long: list[tuple[int, int]] = field(default_factory=list)  # (line, bytes in OUT)
    problems: list[str] = field(default_factory=list)
    write: bool = True
    unfixable: bool = False  # a line lenient applies that no rewrite lets the reader apply

    def record(self) -> dict[str, Any]:
        rec: dict[str, Any] = {
            "status": self.status, "reason": self.reason, "verified": self.verified,
            "lines_in": self.lines_in, "lines_out": self.lines_out,
            "files": self.files, "out_sha256": _sha(self.out_bytes) if self.write else None,
        }
        if self.too_long:
            rec["max_line_needed"] = max(n for _, n in self.too_long) + 1
        if self.problems:
            rec["problems"] = self.problems
        rec["changes"] = self.changes
        return rec


def _repair_cart(cid: str, rows: list[int], cols: dict[str, list[Any]], outcome: list[str],
                 files: list[dict[str, Any]], problems: list[str],
                 shared: _Shared | None = None) -> CartRepair:
    """Rewrite one cart's lines; ``rows`` are its rows in ``cols`` and ``outcome``, in file
    order; ``shared`` keeps one copy of each repeated text of the changes."""
    shared = shared if shared is not None else _Shared()
    cr = CartRepair(cid, files=[name_text(Path(f["path"]).name) for f in files],
                    problems=problems,
                    stem=(log_stem(Path(files[0]["path"]).name) or "") if files else "")
    raws = cols["raw"]
    line_nos = cols["line"]
    newline = cols["newline"]
    go_err = cols["envelope_error"]
    # which source file each row comes from (a cart with several files is read as one log)
    file_of: list[str] = []
    for f in files:
        file_of += [name_text(Path(f["path"]).name)] * int(f["lines"])
    merged = len(files) > 1
    out = bytearray()
    rejected = bytearray()
    source = bytearray()
    out_line = 0
    cr.lines_in = len(rows)
    for k, r in enumerate(rows):
        raw = bytes(raws[r])
        line = int(line_nos[r])
        source += raw
        if newline[r]:
            source += b"\n"
        if merged and not newline[r] and k + 1 < len(rows):
            source += b"\n"  # one log from two files: the next file's first line is its own
        changes: list[dict[str, Any]] = []
        where = {"file": file_of[k]} if merged and k < len(file_of) else {}

        def change(action: str, detail: str, after: dict[str, Any] | None,
                   where: dict[str, Any] = where, raw: bytes = raw, line: int = line,
                   changes: list[dict[str, Any]] = changes) -> None:
            changes.append({"line": line, **where, "action": action,
                            "before_sha256": shared.sha(raw), "after": after,
                            "detail": shared(detail)})

        oc = outcome[r]
        if oc == "malformed":  # lenient rejects it too: the writer's intent is not in it
            rejected += b"%d\t" % line
            rejected += raw
            rejected += b"\n"
            why = _clip(str(cols["lenient_error"][r]), 120)
            change("dropped", f"rejected in lenient mode too: {why}; kept in "
                   f"{REJECTED_DIR}/{cid}{REJECTED_SUFFIX}", None)
            cr.changes += changes
            continue
        cr_ = raw.endswith(b"\r")
        token = raw[:-1] if cr_ else raw
        new = raw
        if isinstance(go_err[r], str):  # the service's reader rejects the envelope
            token2, edits, err = rewrite_ts(token)
            if err is not None:
                change("kept_unrepaired", err, {})
                if oc == "applied":
                    cr.unfixable = True
                    cr.status = "unrepairable"
                    cr.reason = cr.reason or f"line {line}: {err}"
            elif edits:
                token = token2
                new = token + (b"\r" if cr_ else b"")
                for e in edits:
                    change("ts_rfc3339", e, {})
        if len(new) >= MAX_TOKEN_SIZE:
            before = len(new)
            steps: list[str] = []
            if cr_:
                new = token
                steps.append("trailing \\r")
            if len(new) >= MAX_TOKEN_SIZE:
                new, more = shorter_encoding(token)
                steps += more
            if len(new) < MAX_TOKEN_SIZE:
                change("shortened", f"{before:,} -> {len(new):,} bytes ({', '.join(steps)}): "
                       f"the scanner's limit is {MAX_TOKEN_SIZE:,}", {})
            elif oc != "applied":
                rejected += b"%d\t" % line
                rejected += raw
                rejected += b"\n"
                change("dropped_too_long",
                       f"{len(new):,} bytes even at its shortest, over the scanner's limit "
                       f"({MAX_TOKEN_SIZE:,}), and not applied in lenient mode either "
                       f"({oc}): kept in {REJECTED_DIR}/{cid}{REJECTED_SUFFIX}, since in OUT "
                       "it would stop the service's reader", None)
                for c in changes:
                    c["after"] = None
                cr.changes += changes
                continue
            else:
                cr.too_long.append((line, len(new)))
                change("too_long", f"{len(new):,} bytes even at its shortest ({before:,} "
                       f"before); the service's scanner stops at {MAX_TOKEN_SIZE:,}", {})
                cr.status = "unrepairable"
                cr.reason = cr.reason or (
                    f"line {line} is {len(new):,} bytes even at its shortest encoding, over "
                    f"the scanner's limit of {MAX_TOKEN_SIZE:,} bytes: the service needs "
                    f"maxLine >= {len(new) + 1:,}")
        if not newline[r]:
            change("newline_added", "the final line had no newline", {})
        out_line += 1
        out += new
        out += b"\n"
        after = {"out_line": out_line, "sha256": shared.sha(new), "bytes": len(new)}
        for c in changes:
            if c["after"] is not None:
                c["after"] = after
        cr.changes += changes
    cr.out_bytes, cr.rejected, cr.source_bytes = out, rejected, source  # no copies
    cr.lines_out = out_line
    if cr.status != "unrepairable":
        cr.status = "unchanged" if cr.out_bytes == cr.source_bytes else "repaired"
    return cr


# =============================================================================================
# Paths: refuse what could touch SRC, replace OUT atomically


def _inside(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def _is_repair_output(out: Path) -> bool:
    try:
        rec = orjson.loads((out / REPORT_JSON).read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return False
    return isinstance(rec, dict) and rec.get("tool") == TOOL


def _foreign_entries(out: Path) -> list[str]:
    """Entries of a previous repair output that repair did not write (replacing OUT would lose
    them)."""
    ours = {REPORT_JSON, REPORT_MD, REJECTED_DIR, UNVERIFIED_DIR, PROVENANCE}
    bad = []
    for p in out.iterdir():
        if p.name in ours or (p.is_file() and p.name.endswith(LOG_SUFFIX)):
            continue
        bad.append(p.name)
    return sorted(bad)


def _check_paths(src: Path, out: Path, force: bool) -> str:
    """Validate SRC and OUT; return what OUT is now: ``new``, ``empty`` or ``previous``."""
    if not src.exists():
        raise RepairError(f"SRC {src}: no such file or directory")
    real_src = Path(os.path.realpath(src))
    real_out = Path(os.path.realpath(out))
    if real_out == real_src:
        raise RepairError(f"OUT {out} is SRC itself: repair never writes into its source; "
                          "choose a new directory outside SRC")
    if real_src.is_dir() and _inside(real_out, real_src):
        raise RepairError(f"OUT {out} is inside SRC {src}: repair never writes into its "
                          "source; choose a directory outside SRC")
    if _inside(real_src, real_out):
        raise RepairError(f"SRC {src} is inside OUT {out}: replacing OUT would remove the "
                          "source; choose another OUT")
    if out.is_symlink():
        raise RepairError(f"OUT {out} is a symbolic link: give the directory it points to, or "
                          "a new one")
    if not out.exists():
        return "new"
    if not out.is_dir():
        raise RepairError(f"OUT {out} exists and is not a directory: choose a new directory")
    if not any(out.iterdir()):
        return "empty"
    if not _is_repair_output(out):
        raise RepairError(f"OUT {out} exists, is not empty and is not a previous repair "
                          "output: choose a new or empty directory")
    if not force:
        raise RepairError(f"OUT {out} holds a previous repair output: pass force=True "
                          "(--force) to replace it")
    foreign = _foreign_entries(out)
    if foreign:
        raise RepairError(f"OUT {out} is a previous repair output but also holds files repair "
                          f"did not write ({', '.join(foreign[:3])}): move them away first")
    return "previous"


def _install(tmp: Path, out: Path, state: str) -> None:
    """Move the finished output into place."""
    if state in ("new", "empty"):
        os.replace(tmp, out)  # onto an empty directory too (rename(2) replaces it)
        return
    if exchange(tmp, out):
        shutil.rmtree(tmp)  # now the previous output
        return
    old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
    os.replace(out, old / "x")
    try:
        os.replace(tmp, out)
    except OSError:
        os.replace(old / "x", out)  # put the previous output back
        shutil.rmtree(old, ignore_errors=True)
        raise
    shutil.rmtree(old)


# =============================================================================================
# The toolchain option


def _check_toolchain(go_version: Any) -> None:
    """A RepairError unless ``go_version`` is one :func:`cartforensics.go.version.semantics`
    knows."""
    try:
        semantics(go_version)
    except (TypeError, ValueError) as err:
        raise RepairError(str(err)) from None


# =============================================================================================
# The run


@dataclass
class RepairResult:
    """What :func:`repair` wrote: ``out`` (the directory), ``report`` (``repair.json`` as a
    dict), ``carts`` (one row per cart: status, verified, reason, lines in and out)."""

    out: Path
    report: dict[str, Any]
    carts: pd.DataFrame

    @property
    def counts(self) -> dict[str, int]:
        return dict(self.report["counts"])

    @property
    def verified(self) -> int:
        return int(self.report["verified"])

    def summary(self) -> str:
        """The short human summary (also the head of ``REPAIR.md``)."""
        return _summary_text(self.report, self.out)

    def __str__(self) -> str:
        return self.summary()


def repair(src: str | os.PathLike[str], out: str | os.PathLike[str],
           go_version: str = DEFAULT_GO_VERSION, force: bool = False,
           progress: bool | None = None) -> RepairResult:
    """Rewrite the cart logs of ``src`` (a directory of ``<cartId>.events.log[.gz]`` files, or
    one such file) into ``out`` so that the service's reader rebuilds what the writer meant;
    replay the result to verify it, cart by cart.

    ``out`` must not exist, be empty, or be a previous repair output (then ``force=True``
    replaces it atomically); it may not be or lie inside ``src``. ``src`` is only read.
    ``.gz`` logs are written back as plain ``<cartId>.events.log`` (the service reads only
    those). Raises :class:`RepairError` (a ``ValueError``) for a bad argument.

    >>> r = repair("sample_data", "repaired")        # doctest: +SKIP
    >>> r.counts                                      # doctest: +SKIP
    {'repaired': 165, 'unchanged': 133, 'unrepairable': 2}
    """
    began = time.perf_counter()
    started = time.time()
    _check_toolchain(go_version)
    src_p = Path(src)
    out_p = Path(out)
    state = _check_paths(src_p, out_p, force)
    logs = find_logs(src_p)  # NoLogsError for a directory without logs
    out_p.parent.mkdir(parents=True, exist_ok=True)
    with building(out_p, "repair") as tmp:  # mode 0o777 less the umask, as OUT will be
        report, table = _build(src_p, logs, tmp, go_version, progress)
        report["seconds"] = round(time.perf_counter() - began, 3)
        _write_reports(tmp, report)
        write_provenance(
            tmp, inputs=[log.path for log in logs],
            input_root=src_p if src_p.is_dir() else src_p.parent, started=started,
            call=call_record("repair", src=src, out=out, go_version=go_version,
                             force=force or None),
            details={"go_version": semantics(go_version).spec, "modes": ["go", "lenient"]})
        _install(tmp, out_p, state)
    return RepairResult(out_p, report, table)


def _file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


_REPAIR_COLUMNS = ("raw", "line", "newline", "envelope_error", "lenient_error")


class _ColumnTaker:
    """``column.iloc[rows].tolist()`` of a column, without the index lookups of ``iloc``:
    category codes read through their categories, Arrow values taken in Arrow.

    >>> _ColumnTaker(pd.Series(["a", None, "a"], dtype="category"))(np.array([2, 1]))
    ['a', None]
    >>> take = _ColumnTaker(pd.Series(["a", None, "c", "d"], dtype="string[pyarrow]"))
    >>> take(np.array([1, 2, 3])), take(np.array([3, 0]))
    ([None, 'c', 'd'], ['d', 'a'])
    """

    def __init__(self, col: pd.Series) -> None:
        self._cats: np.ndarray | None = None
        self._arrow: pa.ChunkedArray | None = None
        self._values: np.ndarray | None = None
        if isinstance(col.dtype, pd.CategoricalDtype):
            self._cats = np.array([*col.cat.categories.tolist(), None], dtype=object)
            self._values = np.asarray(col.cat.codes.to_numpy(), dtype=np.intp)  # -1: None
        elif hasattr(col.array, "__arrow_array__"):
            self._arrow = pa.chunked_array(col.array.__arrow_array__())
        else:
            self._values = col.to_numpy()

    def __call__(self, rows: np.ndarray) -> list[Any]:
        if self._cats is not None:
            return self._cats[self._values[rows]].tolist()  # type: ignore[index]
        if self._arrow is not None:
            n = len(rows)
            if n and rows[-1] - rows[0] == n - 1 and (n < 3 or bool(np.all(np.diff(rows) == 1))):
                # a cart's lines are one run of rows: a slice is a view; a take over the
                # whole chunked column costs the column, once per cart (quadratic in a fleet)
                return self._arrow.slice(int(rows[0]), n).to_pylist()
            return self._arrow.take(pa.array(rows, pa.int64())).to_pylist()
        return self._values[rows].tolist()  # type: ignore[index]


def _build(src: Path, logs: list[Any], tmp: Path, go_version: str,
           progress: bool | None) -> tuple[dict[str, Any], pd.DataFrame]:
    source_files = []
    for log in logs:
        try:
            digest: str | None = _file_digest(log.path)
        except OSError:
            digest = None
        source_files.append({"path": name_text(os.path.abspath(log.path)), "cart_id": log.cart_id,
                             "sha256": digest, "gzip": log.path.name.endswith(GZ_SUFFIX)})
    events = read_events([str(log.path) for log in logs], progress=progress,
                         go_version=go_version)
    lenient = replay(events, mode="lenient", go_version=go_version)
    attrs = events.attrs
    plain = events.copy(deep=False)
    plain.attrs = {}  # pandas deep-copies attrs (a record per file) on every column access
    # each cart's values are made when it is repaired (a Python object per line of the
    # whole log at once would cost more than the log)
    columns = {c: _ColumnTaker(plain[c]) for c in _REPAIR_COLUMNS}
    outcomes = _ColumnTaker(lenient.outcomes["outcome"])  # categories: the outcome names
    shared = _Shared()
    files_of: dict[str, list[dict[str, Any]]] = {}
    for f in attrs.get("files", []):
        files_of.setdefault(f["cart_id"], []).append(f)
    problems_of: dict[str, list[str]] = {}
    for p in attrs.get("problems", []):
        problems_of.setdefault(p["cart_id"], []).append(p["error"])
    unreadable = {p["cart_id"] for p in attrs.get("problems", [])
                  if str(p["error"]).startswith("cannot read")}
    cart_ids = list(dict.fromkeys([log.cart_id for log in logs]))
    iterator: Iterable[str] = cart_ids
    if progress is None:  # more than 200 carts: a bar when stderr is a terminal
        progress = None if len(cart_ids) > 200 else False
    if progress is not False:
        iterator = progress_bar(cart_ids, desc="repairing", unit="cart", enabled=progress)
    results: dict[str, CartRepair] = {}
    replayed = set(lenient.cart_ids)
    for cid in iterator:
        rows = lenient.rows_of(cid) if cid in replayed else []
        at = np.asarray(rows, dtype=np.int64)
        cols = {c: take(at) for c, take in columns.items()}
        outcome = outcomes(at)
        cr = _repair_cart(cid, list(range(len(rows))), cols, outcome, files_of.get(cid, []),
                          problems_of.get(cid, []), shared)
        del cols
        if cid in unreadable:
            cr.status = "unrepairable"
            cr.reason = f"the source cannot be read whole: {problems_of[cid][0]}"
            cr.write = False if not rows else cr.write
        elif any(p.startswith("broken gzip") for p in cr.problems):
            cr.status = "unrepairable"
            cr.reason = (f"{cr.problems[0]}: what follows cannot be read; OUT holds the "
                         "readable part, repaired" + (f"; {cr.reason}" if cr.reason else ""))
        results[cid] = cr
        if cr.write:
            (tmp / f"{cr.stem or cid}{LOG_SUFFIX}").write_bytes(cr.out_bytes)
        if cr.rejected:
            (tmp / REJECTED_DIR).mkdir(exist_ok=True)
            (tmp / REJECTED_DIR / f"{cr.stem or cid}{REJECTED_SUFFIX}").write_bytes(cr.rejected)
    _verify(tmp, results, lenient, go_version)
    counts = {s: sum(1 for c in results.values() if c.status == s) for s in STATUSES}
    verified = sum(1 for c in results.values() if c.status in ("repaired", "unchanged"))
    actions: dict[str, int] = {}
    for c in results.values():
        for ch in c.changes:
            actions[ch["action"]] = actions.get(ch["action"], 0) + 1
    needed = [n for c in results.values() for _, n in c.too_long]
    report = {
        "tool": TOOL,
        "version": __version__,
        "created": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "source": os.path.abspath(src),
        "go_version": go_version,
        "semantics": (
            f"OUT replayed as the service's reader does (go mode: Go {go_version}'s "
            f"encoding/json, time and bufio.Scanner with maxLine {MAX_TOKEN_SIZE:,}) rebuilds "
            "the carts a lenient replay of SRC rebuilds (numeric ts read as Unix seconds, no "
            "line limit)"),
        "gz": "A .gz log is written back as a plain <cartId>.events.log (the service reads "
              "only those)",
        "carts_total": len(results),
        "counts": counts,
        "verified": verified,
        "lines_in": sum(c.lines_in for c in results.values()),
        "lines_out": sum(c.lines_out for c in results.values()),
        "actions": dict(sorted(actions.items())),
        "max_line_needed": max(needed) + 1 if needed else None,
        "source_files": source_files,
        "carts": {cid: c.record() for cid, c in results.items()},
    }
    table = pd.DataFrame(
        [{"cart_id": cid, "status": c.status, "verified": c.verified, "reason": c.reason,
          "lines_in": c.lines_in, "lines_out": c.lines_out, "changes": len(c.changes)}
         for cid, c in results.items()],
        columns=["cart_id", "status", "verified", "reason", "lines_in", "lines_out", "changes"],
    )
    return report, table


def _states(r: Replay, carts: Iterable[str]) -> dict[str, dict[str, Any]]:
    have = set(r.cart_ids)
    return {c: r.final_state(c) for c in carts if c in have}


def _verify(tmp: Path, results: dict[str, CartRepair], lenient: Replay,
            go_version: str) -> None:
    """Replay OUT in go mode; compare with lenient on SRC cart by cart; mark what differs."""
    written = [c for c, cr in results.items() if cr.write]
    if not written:
        return
    events = read_events([str(tmp / f"{results[c].stem or c}{LOG_SUFFIX}") for c in written],
                         progress=False,
                         go_version=go_version)
    go = replay(events, mode="go", go_version=go_version)
    want = _states(lenient, written)
    got = _states(go, written)
    del go
    unlimited: dict[str, dict[str, Any]] = {}
    long_carts = [c for c in written if results[c].too_long]
    if long_carts:  # the claim for a service fix: with a larger maxLine, OUT is right
        mine = events["cart_id"].isin(long_carts)
        # a shallow copy when every cart is one (its huge lines are not copied again)
        ev = events.copy(deep=False) if mine.all() else events[mine].copy()
        ev.attrs = {}
        ev["too_long"] = False
        unlimited = _states(replay(ev, mode="go", go_version=go_version), long_carts)
    for cid in written:
        cr = results[cid]
        a = got.get(cid)
        b = want.get(cid)
        cr.verified = a == b
        if cr.too_long and not cr.unfixable:
            if unlimited.get(cid) == b:
                cr.reason = f"{cr.reason}; with that maxLine OUT rebuilds as the writer meant " \
                            "(checked)"
            else:
                _mark_mismatch(tmp, cr, "even with an unlimited line length OUT does not "
                               "rebuild as the writer meant")
            continue
        if cr.status == "unrepairable":
            continue
        if not cr.verified:
            _mark_mismatch(tmp, cr, _difference(a, b))


def _difference(a: dict[str, Any] | None, b: dict[str, Any] | None) -> str:
    if a is None or b is None:
        return "the cart is missing from one of the replays"
    keys = [k for k in b if a.get(k) != b.get(k)]
    return "fields differ: " + ", ".join(keys[:6])


def _mark_mismatch(tmp: Path, cr: CartRepair, why: str) -> None:
    """A cart the replay does not confirm: its attempt goes to unverified/, the source bytes
    take its place in OUT (the service then rebuilds it as it did from SRC)."""
    (tmp / UNVERIFIED_DIR).mkdir(exist_ok=True)
    (tmp / UNVERIFIED_DIR / f"{cr.stem or cr.cart_id}{LOG_SUFFIX}").write_bytes(cr.out_bytes)
    (tmp / f"{cr.stem or cr.cart_id}{LOG_SUFFIX}").write_bytes(cr.source_bytes)
    cr.out_bytes = cr.source_bytes
    cr.status = "unrepairable"
    cr.verified = False
    cr.reason = (f"verification failed: go replay of the repaired log differs from lenient "
                 f"replay of SRC ({why}); the attempt is in {UNVERIFIED_DIR}/, OUT holds the "
                 "source bytes")


# =============================================================================================
# Reports


def _md(text: Any) -> str:
    """Untrusted text (cart ids, reasons quoting log content) for Markdown: escaped."""
    s = str(text)
    for a, b in (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;"), ("|", "&#124;"), ("`", "&#96;"),
                 ("*", "&#42;"), ("[", "&#91;"), ("]", "&#93;")):
        s = s.replace(a, b)
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in s)


def _term(text: Any) -> str:
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in str(text))


def _summary_text(report: dict[str, Any], out: Path | str, limit: int = 10) -> str:
    c = report["counts"]
    a = report["actions"]
    lines = [
        f"repair: {report['carts_total']:,} carts from {_term(report['source'])} -> "
        f"{_term(out)} (the service's reader: Go {report['go_version']})",
        f"  repaired {c['repaired']:,}, unchanged {c['unchanged']:,}, unrepairable "
        f"{c['unrepairable']:,}",
        f"  lines: {report['lines_in']:,} in, {report['lines_out']:,} out; ts rewritten "
        f"{a.get('ts_rfc3339', 0):,}, dropped "
        f"{a.get('dropped', 0) + a.get('dropped_too_long', 0):,} "
        f"(kept in {REJECTED_DIR}/), newlines added {a.get('newline_added', 0):,}, shortened "
        f"{a.get('shortened', 0):,}",
    ]
    bad = [(cid, rec) for cid, rec in report["carts"].items() if rec["status"] == "unrepairable"]
    if bad:
        lines.append("  unrepairable:")
        for cid, rec in bad[:limit]:
            lines.append(f"    {_term(cid)}: {_term(rec['reason'])}")
        if len(bad) > limit:
            lines.append(f"    … and {len(bad) - limit:,} more (see {REPORT_JSON})")
    if report["max_line_needed"]:
        lines.append(f"  a service-side fix: scanner.Buffer(buf, {report['max_line_needed']:,}) "
                     f"or more (now {MAX_TOKEN_SIZE:,})")
    lines.append(f"verified: {report['verified']:,} of {report['carts_total']:,} carts rebuild "
                 "as the writer meant")
    return "\n".join(lines)


def _write_reports(tmp: Path, report: dict[str, Any]) -> None:
    (tmp / REPORT_JSON).write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2) + b"\n")
    c = report["counts"]
    md = [
        "# Repair",
        "",
        f"Source {_md(report['source'])}, {report['carts_total']:,} carts, written "
        f"{report['created']} by cartforensics {report['version']}.",
        "",
        f"**verified: {report['verified']:,} of {report['carts_total']:,} carts rebuild as the "
        "writer meant** — " + _md(report["semantics"]) + ".",
        "",
        "| status | carts |",
        "|---|---:|",
        *[f"| {s} | {c[s]:,} |" for s in STATUSES],
        "",
        "| change | count |",
        "|---|---:|",
        *[f"| {_md(k)} | {v:,} |" for k, v in report["actions"].items()],
        "",
        f"Lines: {report['lines_in']:,} in SRC, {report['lines_out']:,} in OUT. Dropped lines "
        f"are kept verbatim in `{REJECTED_DIR}/<cartId>{REJECTED_SUFFIX}` as `<line>` TAB "
        "`<bytes>`; every change, with the sha256 of the line before and after, is in "
        f"`{REPORT_JSON}`, with the sha256 of every source file. " + _md(report["gz"]) + ".",
        "",
    ]
    bad = [(cid, rec) for cid, rec in report["carts"].items() if rec["status"] == "unrepairable"]
    if bad:
        md += ["## Unrepairable carts", "", "| cart | reason |", "|---|---|"]
        md += [f"| {_md(cid)} | {_md(rec['reason'])} |" for cid, rec in bad]
        md.append("")
    if report["max_line_needed"]:
        md += [f"A service-side fix for the long lines: a scanner buffer of at least "
               f"{report['max_line_needed']:,} bytes (`scanner.Buffer(buf, "
               f"{report['max_line_needed']})`; now {MAX_TOKEN_SIZE:,}).", ""]
    (tmp / REPORT_MD).write_text("\n".join(md), encoding="utf-8")


# =============================================================================================
# The command
