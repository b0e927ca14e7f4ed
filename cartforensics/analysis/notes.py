"""Analyst notes: annotations on log lines, kept in one JSON file next to the logs.

The file is a JSON array of objects, one per note, sorted by cart and line::

    [{"id": "3f9c…", "cart_id": "cart-1164", "line": 4, "tags": ["root cause"],
      "note": "first numeric ts", "author": null, "created": "2025-…Z", "updated": "…Z"}]

Every change rewrites the whole file atomically (a temporary file in the same directory,
flushed and synced, then renamed over the old one), so a reader never sees half a file and a
crash never leaves one. Before each change the file is read again, so that two
:class:`Notes` on the same file (the scrubber's and a notebook cell's) do not overwrite each
other's notes. Keys a note carries beyond these are kept as they are.

Note text is the analyst's, but untrusted all the same: every view (widgets, report) escapes
it. A note may name a line that the logs no longer hold (a log rotated, a path changed): it is
kept, and :meth:`Notes.missing` lists such notes.

>>> notes = cf.Notes("notes.json")                                           # doctest: +SKIP
>>> notes.add("cart-1164", 4, "the writer's numeric ts", tags=["root cause"]) # doctest: +SKIP
>>> notes.to_frame()                                                         # doctest: +SKIP
"""

from __future__ import annotations

import datetime as dt
import json
import operator
import os
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from cartforensics._runtime.publish import write_atomic

if TYPE_CHECKING:
    from cartforensics.model.replay import Replay

__all__ = ["STANDARD_TAGS", "Notes", "NotesError"]

STANDARD_TAGS = ("evidence", "root cause", "question", "false positive")
NOTE_COLUMNS = ["id", "cart_id", "line", "tags", "note", "author", "created", "updated"]
MAX_TAG = 60


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


def _valid(entry: Any, k: int, where: str) -> dict[str, Any]:
    if not isinstance(entry, dict):
        raise NotesError(f"{where}: entry {k} is not an object")
    cart = entry.get("cart_id")
    line = entry.get("line")
    if not isinstance(cart, str) or not cart:
        raise NotesError(f"{where}: entry {k} has no cart_id (text)")
    if isinstance(line, bool) or not isinstance(line, int) or line < 1:
        raise NotesError(f"{where}: entry {k} has no line (a number, 1 or more)")
    note = entry.get("note", "")
    if not isinstance(note, str):
        raise NotesError(f"{where}: entry {k}: note is not text")
    tags = entry.get("tags", [])
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise NotesError(f"{where}: entry {k}: tags is not a list of text")
    out = dict(entry)
    out.setdefault("id", uuid.uuid4().hex[:12])
    out["id"] = str(out["id"])
    out["note"] = note
    out["tags"] = list(tags)
    return out


class Notes:
    """Notes on lines, stored in the JSON file ``path`` (created at the first change; None:
    kept in memory only). ``author``: written into every note added through this object.

    >>> notes = Notes("notes.json")                                     # doctest: +SKIP
    >>> n = notes.add("cart-1002", 5, "stale ChangeQuantity", tags=["evidence"])  # doctest: +SKIP
    >>> notes.on("cart-1002", 5)                                        # doctest: +SKIP
    """

    def __init__(self, path: str | os.PathLike[str] | None = None, author: str | None = None):
        self.path = Path(path) if path is not None else None
        self.author = author
        self._notes: list[dict[str, Any]] = []
        if self.path is not None and self.path.is_dir():
            raise NotesError(f"{self.path}: is a directory, not a notes file")
        self.reload()

    # -- reading ---------------------------------------------------------------------------
    def reload(self) -> None:
        """Read the file again (what another writer added shows up)."""
        self._notes = self._read()

    def _read(self) -> list[dict[str, Any]]:
        if self.path is None:
            return list(self._notes)
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return []
        except (OSError, UnicodeDecodeError) as e:
            raise NotesError(f"{self.path}: cannot read the notes file: {e}") from None
        if not text.strip():
            return []
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise NotesError(f"{self.path}: not JSON ({e}); fix or move the file") from None
        if not isinstance(data, list):
            raise NotesError(f"{self.path}: a notes file is a JSON array of notes")
        return [_valid(e, k, str(self.path)) for k, e in enumerate(data)]

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter([dict(n) for n in self._notes])

    def __len__(self) -> int:
        return len(self._notes)

    def __repr__(self) -> str:
        where = str(self.path) if self.path is not None else "in memory"
        return f"Notes({where!r}, {len(self)} notes)"

    def get(self, note_id: str) -> dict[str, Any]:
        """The note with this id (KeyError when there is none)."""
        for n in self._notes:
            if n["id"] == note_id:
                return dict(n)
        raise KeyError(f"no note {note_id!r}")

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
        (or comma-separated text); ``extra`` keys (``mode="go"``, say) are stored too.
        Returns the note, with its ``id``."""
        if not isinstance(cart_id, str) or not cart_id:
            raise NotesError(f"cart_id must be a cart id (text), not {cart_id!r}")
        line = _check_line(line)
        if not isinstance(note, str):
            raise NotesError(f"note must be text, not {type(note).__name__}")
        tags_ = _clean_tags(tags)
        if not note.strip() and not tags_:
            raise NotesError("an empty note: give some text or a tag")
        reserved = set(NOTE_COLUMNS) & set(extra)
        if reserved:
            raise NotesError(f"{sorted(reserved)} are set by Notes itself")
        now = _now()
        entry = {"id": uuid.uuid4().hex[:12], "cart_id": cart_id, "line": line, "tags": tags_,
                 "note": note, "author": self.author, "created": now, "updated": now, **extra}
        json.dumps(entry)  # an extra value JSON cannot hold fails here, before the file
        self._change(lambda notes: notes.append(entry))
        return dict(entry)

    def update(self, note_id: str, note: str | None = None,
               tags: Iterable[str] | str | None = None) -> dict[str, Any]:
        """Change a note's text and/or tags. Returns the note."""
        if note is not None and not isinstance(note, str):
            raise NotesError(f"note must be text, not {type(note).__name__}")
        tags_ = _clean_tags(tags) if tags is not None else None
        done: dict[str, Any] = {}

        def change(notes: list[dict[str, Any]]) -> None:
            for n in notes:
                if n["id"] == note_id:
                    if note is not None:
                        n["note"] = note
                    if tags_ is not None:
                        n["tags"] = tags_
                    n["updated"] = _now()
                    done.update(n)
                    return
            raise KeyError(f"no note {note_id!r}")

        self._change(change)
        return done

    def remove(self, note_id: str) -> None:
        """Delete a note."""
        def change(notes: list[dict[str, Any]]) -> None:
            for k, n in enumerate(notes):
                if n["id"] == note_id:
                    del notes[k]
                    return
            raise KeyError(f"no note {note_id!r}")

        self._change(change)

    def _change(self, fn: Any) -> None:
        notes = self._read()  # another writer's notes are kept
        fn(notes)
        notes.sort(key=lambda n: (n["cart_id"], n["line"], str(n.get("created", "")), n["id"]))
        if self.path is not None:
            _write_atomic(self.path, notes)
        self._notes = notes


def _write_atomic(path: Path, notes: list[dict[str, Any]]) -> None:
    try:
        text = json.dumps(notes, ensure_ascii=False, indent=1)
        data = (text + "\n").encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: JSON's \\u escapes hold it exactly
        data = (json.dumps(notes, ensure_ascii=True, indent=1) + "\n").encode("ascii")
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, data)
