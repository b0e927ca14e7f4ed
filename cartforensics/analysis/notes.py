"""Analyst notes: annotations on log lines, kept in one JSON Lines file next to the logs.

The file holds one JSON object a line: a header, then the notes as they were added, an update
as the note again (the last line with an ``id`` wins) and a removal as ``{"removed": id}``::

    {"cartforensics_notes": 1, "generation": "9a0c…", "prev_record": null, "record_sha256": "…"}
    {"id": "3f9c…", "cart_id": "cart-1164", "line": 4, "tags": ["root cause"],
     "note": "first numeric ts", "author": null, "created": "2025-…Z", "updated": "…Z",
     "prev_record": "…", "record_sha256": "…"}
    {"removed": "3f9c…", "prev_record": "…", "record_sha256": "…"}

The records form a hash chain (:mod:`cartforensics.io.chain`): each carries the sha256 of its
own bytes and that of the record before it, so a note edited, removed or moved by hand is
found by :meth:`Notes.verify` (and ``cartforensics verify``), which names it. An update is a
new record: the note's earlier text stays in the file (or its history).

A change appends one line (one ``write``, synced; undone when it fails), so adding a note
costs the same on a file of fifty notes or fifty thousand. When updates and removals make the
file more than twice as long as its notes, it is compacted: the records it holds are appended
to its history, ``notes.json.history.jsonl`` beside it (synced first), then it is written
again, one line per note sorted by cart and line, atomically (a temporary file in the same
directory, synced, renamed over the old one, under a new ``generation``), its header chained
to the last record moved to the history: history and file are one chain. Writers take an
exclusive ``flock`` on the file and readers a shared one, so two processes, or two threads,
adding at once keep every note; before each change the lines other writers appended are read
(only those). A notes file written as one JSON array, or as JSON Lines without hashes (the
formats of earlier versions), is read as it is; its first change compacts it, and the chain
starts there (the lines without hashes go to the history as they are, and are not checked).
Keys a note carries beyond these are kept as they are; their values may nest at most
:data:`MAX_DEPTH` levels.

Note text is the analyst's, but untrusted all the same: every view (widgets, report) escapes
it. A note may name a line that the logs no longer hold (a log rotated, a path changed): it is
kept, and :meth:`Notes.missing` lists such notes.

>>> notes = cf.Notes("notes.json")                                           # doctest: +SKIP
>>> notes.add("cart-1164", 4, "the writer's numeric ts", tags=["root cause"]) # doctest: +SKIP
>>> notes.to_frame()                                                         # doctest: +SKIP
"""

from __future__ import annotations

import bisect
import contextlib
import datetime as dt
import json
import operator
import os
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import pandas as pd

from cartforensics._runtime.publish import write_atomic
from cartforensics.io.chain import (
    HASH_KEY,
    PREV_KEY,
    ChainBreak,
    chained_line,
    check_chain,
    history_path,
    record_hash,
)

try:
    import fcntl
except ImportError:  # pragma: no cover  (not POSIX: one writing process at a time)
    fcntl = None  # type: ignore[assignment]

if TYPE_CHECKING:
    from cartforensics.model.replay import Replay

__all__ = ["MAX_DEPTH", "STANDARD_TAGS", "ChainBreak", "Notes", "NotesError"]

STANDARD_TAGS = ("evidence", "root cause", "question", "false positive")
NOTE_COLUMNS = ["id", "cart_id", "line", "tags", "note", "author", "created", "updated"]
MAX_TAG = 60
MAX_DEPTH = 32  # levels a note's values may nest (a list in a dict in ...)
HEADER_KEY = "cartforensics_notes"
FORMAT = 1
REMOVED_KEY = "removed"
_COMPACT_SLACK = 64  # lines a file may hold beyond twice its notes before it is compacted

class NotesError(ValueError):
    """A notes file that cannot be read as notes, or a bad argument to a note."""


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _clean_tags(tags: Iterable[str] | str | None) -> list[str]:
    if tags is None:
        return []
    if isinstance(tags, str):
        tags = tags.split(",")
    out: list[str] = []
    for t in tags:
        if not isinstance(t, str):
            raise NotesError(f"a tag is text, not {type(t).__name__}")
        t = " ".join(t.split())
        if not t:
            continue
        if len(t) > MAX_TAG:
            raise NotesError(f"tag {t[:20]!r}… is longer than {MAX_TAG} characters")
        if t not in out:
            out.append(t)
    return out


def _check_line(line: Any) -> int:
    if not isinstance(line, bool):
        try:
            v = operator.index(line)
        except TypeError:
            pass
        else:
            if v >= 1:
                return v
    raise NotesError(f"line must be a line number (1 or more), not {line!r}")


def _too_deep(value: Any, limit: int = MAX_DEPTH) -> bool:
    """True when ``value`` nests lists or objects more than ``limit`` levels (walked without
    recursion, so any depth is answered)."""
    stack = [(value, 1)]
    while stack:
        v, depth = stack.pop()
        if isinstance(v, dict):
            items: Iterable[Any] = v.values()
        elif isinstance(v, (list, tuple)):
            items = v
        else:
            continue
        if depth > limit:
            return True
        stack.extend((x, depth + 1) for x in items)
    return False


def _valid(entry: Any, label: str) -> dict[str, Any]:
    """``entry`` checked as a note; ``label`` says where it is (``path: entry 3``)."""
    if not isinstance(entry, dict):
        raise NotesError(f"{label} is not an object")
    cart = entry.get("cart_id")
    line = entry.get("line")
    if not isinstance(cart, str) or not cart:
        raise NotesError(f"{label} has no cart_id (text)")
    if isinstance(line, bool) or not isinstance(line, int) or line < 1:
        raise NotesError(f"{label} has no line (a number, 1 or more)")
    note = entry.get("note", "")
    if not isinstance(note, str):
        raise NotesError(f"{label}: note is not text")
    tags = entry.get("tags", [])
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise NotesError(f"{label}: tags is not a list of text")
    if any(isinstance(v, (dict, list)) and k != "tags" and _too_deep(v)
           for k, v in entry.items()):
        raise NotesError(f"{label}: a value nests deeper than {MAX_DEPTH} levels; flatten it "
                         "or move the file")
    out = dict(entry)
    out["id"] = str(out["id"]) if "id" in out else uuid.uuid4().hex[:12]
    out["note"] = note
    out["tags"] = list(tags)
    return out


def _loads(text: str | bytes, where: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise NotesError(f"{where}: not JSON ({e}); fix or move the file") from None
    except RecursionError:
        raise NotesError(f"{where}: nested deeper than {MAX_DEPTH} levels; fix or move the "
                         "file") from None


def _order(n: dict[str, Any]) -> tuple[str, int, str, str]:
    return (n["cart_id"], n["line"], str(n.get("created", "")), n["id"])


@contextlib.contextmanager
def _locked(path: Path, exclusive: bool) -> Iterator[IO[bytes]]:
    """``path`` open (appending when ``exclusive``, created if missing) under a ``flock``,
    exclusive or shared; the file the path names when the lock is held (a writer that
    compacted it meanwhile renamed a new one over it: that one is locked instead)."""
    while True:
        fh = open(path, "a+b" if exclusive else "rb")  # noqa: SIM115  (closed below)
        try:
            if fcntl is not None:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
            try:
                current = os.stat(path).st_ino == os.fstat(fh.fileno()).st_ino
            except FileNotFoundError:
                current = False
            if current:
                yield fh
                return
        finally:
            fh.close()  # and the lock with it


class Notes:
    """Notes on lines, stored in the JSON Lines file ``path`` (created at the first change;
    None: kept in memory only). ``author``: written into every note added through this
    object. Safe to share between threads, and the file between processes.

    >>> notes = Notes("notes.json")                                     # doctest: +SKIP
    >>> n = notes.add("cart-1002", 5, "stale ChangeQuantity", tags=["evidence"])  # doctest: +SKIP
    >>> notes.on("cart-1002", 5)                                        # doctest: +SKIP
    """

    def __init__(self, path: str | os.PathLike[str] | None = None, author: str | None = None):
        self.path = Path(path) if path is not None else None
        self.author = author
        self._notes: list[dict[str, Any]] = []  # sorted by _order
        self._by_id: dict[str, dict[str, Any]] = {}
        self._lock = threading.RLock()
        # what of the file is read: its inode and generation, the bytes and lines read, and
        # whether it is the old JSON array (rewritten at the first change)
        self._ino: int | None = None
        self._generation: str | None = None
        self._offset = 0
        self._records = 0
        self._array = False
        self._tip: str | None = None  # the hash of the file's last record (None: unchained)
        if self.path is not None and self.path.is_dir():
            raise NotesError(f"{self.path}: is a directory, not a notes file")
        if self.path is not None and self.path.exists() and not self.path.is_file():
            raise NotesError(f"{self.path}: is not a regular file (a FIFO, socket or device "
                             "is never opened): give a notes file")
        self.reload()

    # -- reading ---------------------------------------------------------------------------
    def reload(self) -> None:
        """Read the file again, whole (what another writer changed shows up)."""
        with self._lock:
            if self.path is None:
                return
            try:
                with _locked(self.path, exclusive=False) as fh:
                    self._read_all(fh)
            except FileNotFoundError:
                self._set([], None, None, 0, 0, False, None)
            except (OSError, UnicodeDecodeError) as e:
                raise NotesError(f"{self.path}: cannot read the notes file: {e}") from None

    def _set(self, notes: Iterable[dict[str, Any]], ino: int | None, generation: str | None,
             offset: int, records: int, array: bool, tip: str | None) -> None:
        self._notes = sorted(notes, key=_order)
        self._by_id = {n["id"]: n for n in self._notes}
        self._ino, self._generation = ino, generation
        self._offset, self._records, self._array = offset, records, array
        self._tip = tip

    def _read_all(self, fh: IO[bytes]) -> None:
        where = str(self.path)
        fh.seek(0)
        data = fh.read()
        ino = os.fstat(fh.fileno()).st_ino
        text = data.decode("utf-8")
        if text.lstrip().startswith("["):  # the JSON array format
            entries = _loads(text, where)
            if not isinstance(entries, list):
                raise NotesError(f"{where}: a notes file in the array format is a JSON array")
            notes = [_valid(e, f"{where}: entry {k}") for k, e in enumerate(entries)]
            by_id = {n["id"]: n for n in notes}
            self._set(by_id.values(), ino, None, len(data), len(notes), True, None)
            return
        if text.strip() and not text.lstrip().startswith("{"):
            raise NotesError(f"{where}: not JSON Lines of notes (nor a JSON array of them); "
                             "fix or move the file")
        by_id: dict[str, dict[str, Any]] = {}
        generation, records, tip = self._apply_lines(data, 0, by_id, None)
        self._set(by_id.values(), ino, generation, len(data), records, False, tip)

    def _apply_lines(self, data: bytes, first: int, by_id: dict[str, dict[str, Any]],
                     on_change: Callable[[dict[str, Any] | None, dict[str, Any] | None], None]
                     | None) -> tuple[str | None, int, str | None]:
        """Apply the records of ``data`` (whole lines; ``first``: the number of lines before
        them) to ``by_id``; ``on_change(old, new)`` hears each note replaced, added or
        removed. Returns the generation a header names (or None), the lines applied and the
        hash of the last (None: it is not chained)."""
        where = str(self.path)
        generation = None
        lines = data.split(b"\n")
        if lines and lines[-1] == b"":
            lines.pop()
        numbered = [(k, raw) for k, raw in enumerate(lines, start=first + 1) if raw.strip()]
        try:  # one parse for all the lines; line by line to say which one is bad
            records = json.loads(b"[" + b",".join(raw for _, raw in numbered) + b"]")
        except (ValueError, RecursionError):
            records = []
        if len(records) != len(numbered):  # a bad line (or two values on one)
            records = [_loads(raw, f"{where}: line {k}") for k, raw in numbered]
        for (k, _), rec in zip(numbered, records, strict=True):
            if isinstance(rec, dict):  # the chain's keys are the file's, not the note's
                rec.pop(PREV_KEY, None)
                rec.pop(HASH_KEY, None)
            if isinstance(rec, dict) and HEADER_KEY in rec:
                generation = str(rec.get("generation"))
                continue
            if isinstance(rec, dict) and list(rec) == [REMOVED_KEY]:
                old = by_id.pop(str(rec[REMOVED_KEY]), None)
                if on_change is not None and old is not None:
                    on_change(old, None)
                continue
            note = _valid(rec, f"{where}: line {k}")
            old = by_id.get(note["id"])
            by_id[note["id"]] = note
            if on_change is not None:
                on_change(old, note)
        return generation, len(lines), record_hash(lines[-1]) if lines else None

    def _catch_up(self, fh: IO[bytes]) -> None:
        """Under the writers' lock: read what other writers did since this object last read
        (the lines appended since, or the whole file when it was compacted meanwhile)."""
        st = os.fstat(fh.fileno())
        if (st.st_ino != self._ino or st.st_size < self._offset or self._array
                or self._header(fh) != self._generation):
            self._read_all(fh)
            return
        if st.st_size == self._offset:
            return
        fh.seek(self._offset)
        data = fh.read()
        if not data.endswith(b"\n"):
            raise NotesError(f"{self.path}: its last line is cut short (no newline); fix or "
                             "move the file")
        _, n, self._tip = self._apply_lines(data, self._records, self._by_id, self._replace)
        self._offset += len(data)
        self._records += n

    @staticmethod
    def _header(fh: IO[bytes]) -> str | None:
        head = os.pread(fh.fileno(), 1024, 0).split(b"\n", 1)[0]
        try:
            rec = json.loads(head)
        except (ValueError, RecursionError):
            return None
        return str(rec.get("generation")) if isinstance(rec, dict) and HEADER_KEY in rec \
            else None

    def _replace(self, old: dict[str, Any] | None, new: dict[str, Any] | None) -> None:
        """Keep the sorted list in step with one note replaced, added or removed."""
        if old is not None:
            i = bisect.bisect_left(self._notes, _order(old), key=_order)
            if i < len(self._notes) and self._notes[i] is old:
                del self._notes[i]
            else:  # pragma: no cover  (equal keys: find it by identity)
                self._notes = [n for n in self._notes if n is not old]
            if new is None:
                self._by_id.pop(old["id"], None)
        if new is not None:
            bisect.insort(self._notes, new, key=_order)
            self._by_id[new["id"]] = new

    def verify(self) -> ChainBreak | None:
        """The first record of the file's hash chain (its history, then the file) that was
        edited, removed or moved by hand, naming its note; None when every link holds, and
        for notes in memory or not written yet. Records written before the chain began (files
        of older versions, until their first change) are not checked.

        >>> Notes().verify() is None
        True
        """
        with self._lock:
            if self.path is None:
                return None
            try:
                with _locked(self.path, exclusive=False):
                    return check_chain(self.path)
            except FileNotFoundError:
                return None
            except OSError as e:
                raise NotesError(f"{self.path}: cannot read the notes file: {e}") from None

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter([dict(n) for n in self._notes])

    def __len__(self) -> int:
        return len(self._notes)

    def __repr__(self) -> str:
        where = str(self.path) if self.path is not None else "in memory"
        return f"Notes({where!r}, {len(self)} notes)"

    def get(self, note_id: str) -> dict[str, Any]:
        """The note with this id (KeyError when there is none)."""
        n = self._by_id.get(note_id)
        if n is None:
            raise KeyError(f"no note {note_id!r}")
        return dict(n)

    def on(self, cart_id: str, line: int) -> list[dict[str, Any]]:
        """The notes on one line, oldest first."""
        return [dict(n) for n in self._notes if n["cart_id"] == cart_id and n["line"] == line]

    def of_cart(self, cart_id: str) -> list[dict[str, Any]]:
        """The notes on one cart, by line."""
        return [dict(n) for n in self._notes if n["cart_id"] == cart_id]

    def lines(self, cart_id: str) -> list[int]:
        """The cart's noted lines, ascending, each once."""
        return sorted({n["line"] for n in self._notes if n["cart_id"] == cart_id})

    def to_frame(self) -> pd.DataFrame:
        """One row per note: id, cart_id, line, tags (a list), note, author, created, updated
        (and any other keys the notes carry)."""
        rows = [dict(n) for n in self._notes]
        extra = sorted({k for n in rows for k in n} - set(NOTE_COLUMNS))
        return pd.DataFrame(rows, columns=NOTE_COLUMNS + extra)

    def missing(self, replay: Replay) -> list[dict[str, Any]]:
        """The notes whose cart or line the replay does not hold (kept, never dropped)."""
        oc = replay.outcomes
        have = set(zip(oc["cart_id"].astype(str), oc["line"].tolist(), strict=True))
        return [dict(n) for n in self._notes if (n["cart_id"], n["line"]) not in have]

    # -- changing --------------------------------------------------------------------------
    def add(self, cart_id: str, line: int, note: str = "",
            tags: Iterable[str] | str | None = None, **extra: Any) -> dict[str, Any]:
        """Add a note on the cart's line ``line`` (its number in the file); ``tags`` a list
        (or comma-separated text); ``extra`` keys (``mode="go"``, say) are stored too, their
        values nested at most :data:`MAX_DEPTH` levels. Returns the note, with its ``id``."""
        if not isinstance(cart_id, str) or not cart_id:
            raise NotesError(f"cart_id must be a cart id (text), not {cart_id!r}")
        line = _check_line(line)
        if not isinstance(note, str):
            raise NotesError(f"note must be text, not {type(note).__name__}")
        tags_ = _clean_tags(tags)
        if not note.strip() and not tags_:
            raise NotesError("an empty note: give some text or a tag")
        reserved = {*NOTE_COLUMNS, PREV_KEY, HASH_KEY} & set(extra)
        if reserved:
            raise NotesError(f"{sorted(reserved)} are set by Notes itself")
        if _too_deep(extra, MAX_DEPTH + 1):
            raise NotesError(f"a value of {sorted(extra)} nests deeper than {MAX_DEPTH} "
                             "levels: flatten it")
        now = _now()
        entry = {"id": uuid.uuid4().hex[:12], "cart_id": cart_id, "line": line, "tags": tags_,
                 "note": note, "author": self.author, "created": now, "updated": now, **extra}
        try:
            json.dumps(entry)  # an extra value JSON cannot hold fails here, before the file
        except (TypeError, ValueError) as e:
            raise NotesError(f"a value JSON cannot hold: {e}") from None
        self._change(lambda: (None, entry))
        return dict(entry)

    def update(self, note_id: str, note: str | None = None,
               tags: Iterable[str] | str | None = None) -> dict[str, Any]:
        """Change a note's text and/or tags. Returns the note."""
        if note is not None and not isinstance(note, str):
            raise NotesError(f"note must be text, not {type(note).__name__}")
        tags_ = _clean_tags(tags) if tags is not None else None
        done: dict[str, Any] = {}

        def change() -> tuple[dict[str, Any], dict[str, Any]]:
            old = self._by_id.get(note_id)
            if old is None:
                raise KeyError(f"no note {note_id!r}")
            new = dict(old)
            if note is not None:
                new["note"] = note
            if tags_ is not None:
                new["tags"] = tags_
            new["updated"] = _now()
            done.update(new)
            return old, new

        self._change(change)
        return done

    def remove(self, note_id: str) -> None:
        """Delete a note."""
        def change() -> tuple[dict[str, Any], None]:
            old = self._by_id.get(note_id)
            if old is None:
                raise KeyError(f"no note {note_id!r}")
            return old, None

        self._change(change)

    def _change(self, fn: Callable[[], tuple[dict[str, Any] | None, dict[str, Any] | None]]
                ) -> None:
        """``fn`` (run on the notes as they are now) says which note goes and which comes;
        the file gets one line for it (or is compacted), then the notes here follow."""
        with self._lock:
            if self.path is None:
                self._replace(*fn())
                return
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with _locked(self.path, exclusive=True) as fh:
                self._catch_up(fh)  # another writer's notes are kept
                old, new = fn()
                record = new if new is not None else {REMOVED_KEY: old["id"]}  # type: ignore
                if self._tip is None or \
                        self._records + 1 > 2 * len(self._notes) + _COMPACT_SLACK:
                    self._compact(fh, old, new)  # (new, array, unchained, or long)
                else:
                    self._append(fh, chained_line(record, self._tip))
                    self._replace(old, new)

    def _append(self, fh: IO[bytes], data: bytes) -> None:
        """One record at the end of the file, synced; on failure the file is cut back."""
        size = self._append_synced(fh.fileno(), data, self.path)
        self._offset = size + len(data)
        self._records += 1
        self._tip = record_hash(data)

    @staticmethod
    def _append_synced(fd: int, data: bytes, path: Path | None) -> int:
        """``data`` at the end of the open file ``fd``, synced; on failure the file is cut
        back to its size before, which is returned."""
        size = os.fstat(fd).st_size
        try:
            written = os.write(fd, data)
            if written != len(data):
                raise OSError(f"{path}: wrote {written} of {len(data)} bytes")
            os.fsync(fd)
        except BaseException:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, size)
            raise
        return size

    def _compact(self, fh: IO[bytes], old: dict[str, Any] | None,
                 new: dict[str, Any] | None) -> None:
        """Write the file again (one line per note, sorted), with the change applied, in one
        atomic step; a new generation tells other readers to read it whole. The records it
        replaces go to the history first, and its header follows the last of them."""
        assert self.path is not None
        notes = [n for n in self._notes if n is not old]
        if new is not None:
            notes.append(new)
        notes.sort(key=_order)
        self._keep_history(fh)
        generation = uuid.uuid4().hex[:12]
        lines = [chained_line({HEADER_KEY: FORMAT, "generation": generation}, self._tip)]
        for n in notes:
            lines.append(chained_line(n, record_hash(lines[-1])))
        data = b"".join(lines)
        write_atomic(self.path, data)
        self._set(notes, os.stat(self.path).st_ino, generation, len(data), len(notes) + 1,
                  False, record_hash(lines[-1]))

    def _keep_history(self, fh: IO[bytes]) -> None:
        """Append the file's records that the history does not hold yet to it (synced; cut
        back when that fails). A compaction that failed after this left the file's first
        records there already: they are not written twice. A file in the array format has
        no history: its notes are all in the file that replaces it."""
        assert self.path is not None
        if self._array:
            return
        fh.seek(0)
        old = fh.read().splitlines(keepends=True)
        if not old:
            return
        header = b'{"' + HEADER_KEY.encode()
        with open(history_path(self.path), "a+b") as h:
            h.seek(0)
            held = h.read().splitlines(keepends=True)
            skip = 0
            for i in range(len(held) - 1, -1, -1):  # the history's last header
                if held[i].startswith(header):
                    if held[i] == old[0] and held[i:] == old[:len(held) - i]:
                        skip = len(held) - i
                    break
            self._append_synced(h.fileno(), b"".join(old[skip:]), history_path(self.path))
