"""Analyst notes: a JSON file written atomically, hostile text kept exactly, notes on lines the
logs no longer hold kept and listed."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

import cartforensics as cf
from cartforensics import Notes, NotesError

HOSTILE = '<img src=x onerror=alert(1)> "quoted" \u202e | `code` *bold* [link](x)\n\x00'


def test_round_trip(tmp_path: Path):
    path = tmp_path / "notes.json"
    notes = Notes(path, author="ana")
    assert len(notes) == 0 and not path.exists()  # nothing written before a change
    a = notes.add("cart-2", 7, "stale quantity", tags=["evidence", " root  cause ", "evidence"])
    b = notes.add("cart-1", 3, "first numeric ts", tags="question, my tag", mode="go")
    assert a["tags"] == ["evidence", "root cause"]
    assert b["tags"] == ["question", "my tag"] and b["mode"] == "go"
    data = json.loads(path.read_text(encoding="utf-8"))
    assert [(n["cart_id"], n["line"]) for n in data] == [("cart-1", 3), ("cart-2", 7)]
    assert data[0]["author"] == "ana" and data[0]["created"].endswith("Z")
    again = Notes(path)
    assert list(again) == list(notes)
    assert again.on("cart-2", 7)[0]["note"] == "stale quantity"
    assert again.lines("cart-1") == [3]
    notes.update(a["id"], note="stale ChangeQuantity", tags=["false positive"])
    notes.remove(b["id"])
    again.reload()
    assert [(n["note"], n["tags"]) for n in again] == [("stale ChangeQuantity",
                                                         ["false positive"])]
    frame = again.to_frame()
    assert frame.loc[0, "cart_id"] == "cart-2" and frame.loc[0, "line"] == 7


def test_two_writers_keep_each_others_notes(tmp_path: Path):
    path = tmp_path / "notes.json"
    one, two = Notes(path), Notes(path)
    one.add("c", 1, "from one")
    two.add("c", 2, "from two")  # two had not seen one's note: it is kept all the same
    assert [n["note"] for n in Notes(path)] == ["from one", "from two"]


def test_atomic_write_leaves_the_old_file_whole_on_failure(tmp_path: Path, monkeypatch):
    path = tmp_path / "notes.json"
    notes = Notes(path)
    notes.add("c", 1, "kept")
    before = path.read_bytes()
    inode = path.stat().st_ino

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        notes.add("c", 2, "lost")
    assert path.read_bytes() == before  # the old file, whole
    assert [p.name for p in tmp_path.iterdir()] == ["notes.json"]  # no temporary left
    monkeypatch.undo()
    notes.add("c", 3, "written")
    assert path.stat().st_ino != inode  # a new file renamed over the old one
    assert [n["line"] for n in Notes(path)] == [1, 3]
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask  # not mkstemp's 0600


def test_hostile_text_round_trips_exactly(tmp_path: Path):
    path = tmp_path / "notes.json"
    notes = Notes(path)
    notes.add("c<i>1", 1, HOSTILE, tags=["<b>tag</b>"])
    notes.add("c", 2, "lone surrogate \udcff stays")  # the file falls back to \\u escapes
    back = Notes(path)
    texts = {n["cart_id"]: n["note"] for n in back}
    assert texts["c<i>1"] == HOSTILE
    assert texts["c"] == "lone surrogate \udcff stays"
    assert back.on("c<i>1", 1)[0]["tags"] == ["<b>tag</b>"]


def test_notes_on_lines_past_the_end_are_kept_and_listed(tmp_path: Path):
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "c1.events.log").write_text(
        '{"ts":"2025-01-01T00:00:00Z","type":"AddItem","payload":{"quantity":1,"sku":"a"}}\n')
    go = cf.replay(logs)
    notes = Notes(tmp_path / "notes.json")
    notes.add("c1", 1, "fine")
    notes.add("c1", 5, "the log was longer when I wrote this")
    notes.add("gone", 1, "cart rotated away")
    assert [(n["cart_id"], n["line"]) for n in notes.missing(go)] == [("c1", 5), ("gone", 1)]
    assert len(Notes(tmp_path / "notes.json")) == 3


def test_bad_arguments_and_bad_files(tmp_path: Path):
    notes = Notes()  # in memory
    for cart, line in (("", 1), (None, 1), ("c", 0), ("c", -2), ("c", 1.5), ("c", True)):
        with pytest.raises(NotesError):
            notes.add(cart, line, "x")  # type: ignore[arg-type]
    with pytest.raises(NotesError):
        notes.add("c", 1, "  ")  # neither text nor tag
    with pytest.raises(NotesError):
        notes.add("c", 1, "x", id="mine")  # reserved
    with pytest.raises(KeyError):
        notes.remove("nope")
    assert len(notes) == 0
    bad = tmp_path / "bad.json"
    for text, words in (("{not json", "not JSON"), ('{"a": 1}', "array"),
                        ('[{"cart_id": "c"}]', "entry 0 has no line"),
                        ('[{"cart_id": "c", "line": 1, "tags": "x"}]', "tags")):
        bad.write_text(text)
        with pytest.raises(NotesError, match=words):
            Notes(bad)
    with pytest.raises(NotesError, match="directory"):
        Notes(tmp_path)
    keep = tmp_path / "extra.json"
    keep.write_text('[{"cart_id": "c", "line": 2, "note": "n", "reviewed": true}]')
    kept = Notes(keep)
    kept.add("c", 3, "new")
    assert json.loads(keep.read_text())[0]["reviewed"] is True  # unknown keys survive
