"""Analyst notes: a JSON Lines file appended to under a lock and compacted atomically, hostile
text kept exactly, notes on lines the logs no longer hold kept and listed."""

from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

import cartforensics as cf
from cartforensics import Notes, NotesError
from cartforensics.io.chain import HASH_KEY, PREV_KEY, chained_line, history_path

HOSTILE = '<img src=x onerror=alert(1)> "quoted" \u202e | `code` *bold* [link](x)\n\x00'


def test_round_trip(tmp_path: Path):
    path = tmp_path / "notes.json"
    notes = Notes(path, author="ana")
    assert len(notes) == 0 and not path.exists()  # nothing written before a change
    a = notes.add("cart-2", 7, "stale quantity", tags=["evidence", " root  cause ", "evidence"])
    b = notes.add("cart-1", 3, "first numeric ts", tags="question, my tag", mode="go")
    assert a["tags"] == ["evidence", "root cause"]
    assert b["tags"] == ["question", "my tag"] and b["mode"] == "go"
    records = [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines()]
    assert records[0]["cartforensics_notes"] == 1  # the header, then one line per change
    data = records[1:]
    assert [(n["cart_id"], n["line"]) for n in data] == [("cart-2", 7), ("cart-1", 3)]
    assert [(n["cart_id"], n["line"]) for n in notes] == [("cart-1", 3), ("cart-2", 7)]
    assert data[1]["author"] == "ana" and data[1]["created"].endswith("Z")
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


def test_a_failed_append_leaves_the_file_as_it_was(tmp_path: Path, monkeypatch):
    path = tmp_path / "notes.json"
    notes = Notes(path)
    notes.add("c", 1, "kept")
    before = path.read_bytes()

    def broken_fsync(fd):
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(OSError, match="disk full"):
        notes.add("c", 2, "lost")
    assert path.read_bytes() == before  # the line written is cut back off
    assert len(notes) == 1
    monkeypatch.undo()
    notes.add("c", 3, "written")
    assert [n["line"] for n in Notes(path)] == [1, 3]
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask  # not mkstemp's 0600


def test_compaction_is_atomic_and_keeps_every_note(tmp_path: Path, monkeypatch):
    path = tmp_path / "notes.json"
    notes = Notes(path)
    other = Notes(path)  # reads before the compaction, changes after it
    a = notes.add("c", 1, "edited")
    for k in range(200):
        notes.update(a["id"], note=f"edit {k}")
    lines = path.read_text().splitlines()
    assert len(lines) < 100  # compacted: not one line per change
    assert json.loads(lines[0])["cartforensics_notes"] == 1
    other.add("c", 2, "from other")  # reads the compacted file whole, then appends
    assert [(n["line"], n["note"]) for n in Notes(path)] == [(1, "edit 199"), (2, "from other")]
    before = path.read_bytes()
    inode = path.stat().st_ino

    _update_until_a_compaction_fails(notes, a["id"], monkeypatch)
    after = path.read_bytes()
    assert after.startswith(before) and path.stat().st_ino == inode  # appended, not replaced
    # no temporary left; the history holds what the compactions replaced
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.json",
                                                         "notes.json.history.jsonl"]
    assert len(Notes(path)) == 2


def _update_until_a_compaction_fails(notes: Notes, note_id: str, monkeypatch) -> None:
    """Update the note until a compaction is due; its rename fails (a full disk)."""
    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        for k in range(300):
            notes.update(note_id, note=f"again {k}")
    monkeypatch.undo()


def test_item3_two_processes_adding_keep_every_note(tmp_path: Path):
    path = tmp_path / "notes.json"
    ctx = multiprocessing.get_context("fork")
    go = ctx.Event()
    procs = [ctx.Process(target=_add_many, args=(str(path), f"p{k}", 200, go)) for k in (1, 2)]
    for p in procs:
        p.start()
    go.set()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    got = Notes(path)
    assert len(got) == 400
    assert got.verify() is None  # every writer followed the record before it
    assert {n["note"] for n in got} == {f"p{k} {i}" for k in (1, 2) for i in range(200)}


def _add_many(path: str, who: str, count: int, go) -> None:
    notes = Notes(path)
    go.wait(60)
    for i in range(count):
        notes.add("c", i + 1, f"{who} {i}")


def test_item3_two_threads_adding_keep_every_note(tmp_path: Path):
    for shared in (False, True):  # each thread its own Notes, or both one Notes
        path = tmp_path / f"notes-{shared}.json"
        one = Notes(path)
        start = threading.Barrier(2)

        def add(who: str, notes: Notes | None, path: Path, start: threading.Barrier) -> None:
            notes = notes if notes is not None else Notes(path)
            start.wait()
            for i in range(150):
                notes.add("c", i + 1, f"{who} {i}")

        threads = [threading.Thread(target=add, args=(w, one if shared else None, path, start))
                   for w in ("t1", "t2")]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(Notes(path)) == 300
        assert {n["note"] for n in Notes(path)} == {f"{w} {i}" for w in ("t1", "t2")
                                                    for i in range(150)}
        if shared:
            assert len(one) == 300
        assert one.verify() is None


def test_item3_add_on_a_50000_note_file_appends_one_line(tmp_path: Path):
    path = tmp_path / "notes.json"
    path.write_text(json.dumps([  # the array format of earlier versions
        {"id": f"n{k}", "cart_id": f"cart-{k % 97}", "line": k + 1, "tags": [], "note": "x",
         "author": None, "created": "2025-01-01T00:00:00Z", "updated": "2025-01-01T00:00:00Z"}
        for k in range(50_000)]))
    notes = Notes(path)
    other = Notes(path)
    assert len(notes) == 50_000
    notes.add("cart-1", 1, "first change: the file becomes JSON Lines")
    before = path.read_bytes()
    inode = path.stat().st_ino
    added = notes.add("cart-2", 2, "appended")
    after = path.read_bytes()
    assert path.stat().st_ino == inode  # the same file, not one renamed over it
    assert after[:len(before)] == before  # nothing before the end rewritten
    appended = json.loads(after[len(before):])  # one line added: the note, chained
    assert {k: v for k, v in appended.items() if k not in (PREV_KEY, HASH_KEY)} == added
    other.add("cart-3", 3, "from a reader of the old file")
    assert len(Notes(path)) == 50_003
    assert len(other) == 50_003 and other.get(added["id"])["note"] == "appended"


def test_item3_deep_nesting_is_a_clear_problem(tmp_path: Path):
    deep = "[" * 100_000 + "]" * 100_000
    path = tmp_path / "deep.json"
    for text in ('{"cart_id": "c", "line": 1, "x": ' + deep + "}\n",
                 '[{"cart_id": "c", "line": 1, "x": ' + deep + "}]",
                 '{"cart_id": "c", "line": 1, "x": ' + "[" * 40 + "]" * 40 + "}\n"):
        path.write_text(text)
        with pytest.raises(NotesError, match="deeper than 32 levels"):
            Notes(path)
    nested: list = []
    for _ in range(100_000):
        nested = [nested]
    notes = Notes(tmp_path / "notes.json")
    with pytest.raises(NotesError, match="deeper than 32 levels"):
        notes.add("c", 1, "x", detail=nested)
    assert len(notes) == 0 and not (tmp_path / "notes.json").exists()
    notes.add("c", 1, "x", detail=[[["fine"]]])
    assert Notes(tmp_path / "notes.json").on("c", 1)[0]["detail"] == [[["fine"]]]


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
    for text, words in (("{not json", "not JSON"), ('{"a": 1}', "line 1 has no cart_id"),
                        ("1", "not JSON Lines"),
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
    records = [json.loads(x) for x in keep.read_text().splitlines()]
    assert records[1]["reviewed"] is True  # unknown keys survive


def test_a_fifo_is_refused_without_opening_it(tmp_path: Path):
    fifo = tmp_path / "notes.json"
    os.mkfifo(fifo)
    code = ("import sys, cartforensics as cf\n"
            "try:\n    cf.Notes(sys.argv[1])\n"
            "except cf.NotesError as e:\n    print(e)\n")
    root = Path(__file__).resolve().parents[2]
    env = dict(os.environ, PYTHONPATH=str(root) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    p = subprocess.run([sys.executable, "-c", code, str(fifo)], capture_output=True, text=True,
                       timeout=60, env=env)  # opening the FIFO would block past the timeout
    assert p.returncode == 0, p.stderr
    assert "not a regular file" in p.stdout


# -- the hash chain ------------------------------------------------------------------------

def _record_lines(path: Path) -> list[tuple[Path, int, bytes]]:
    """(file, line number, bytes) of every record: the history's, then the file's."""
    out = []
    for f in (history_path(path), path):
        if f.is_file():
            out += [(f, k, raw) for k, raw in enumerate(f.read_bytes().splitlines(), start=1)]
    return out


def _flip(f: Path, line: int, at: int) -> bytes:
    """Change one byte of line ``line`` of ``f`` (``at``: its index in the line); returns the
    file's bytes before."""
    data = f.read_bytes()
    lines = data.split(b"\n")
    raw = bytearray(lines[line - 1])
    raw[at] = ord("b") if raw[at] != ord("b") else ord("c")
    lines[line - 1] = bytes(raw)
    f.write_bytes(b"\n".join(lines))
    return data


def test_chain_every_change_is_a_linked_record_and_an_update_keeps_the_old_text(tmp_path):
    path = tmp_path / "notes.json"
    notes = Notes(path, author="ana")
    a = notes.add("c", 1, "first text")
    notes.add("c", 2, "other")
    notes.update(a["id"], note="second text")
    notes.remove(a["id"])
    assert notes.verify() is None
    records = [json.loads(x) for x in path.read_text().splitlines()]
    assert [r[PREV_KEY] for r in records[1:]] == [r[HASH_KEY] for r in records[:-1]]
    assert records[0][PREV_KEY] is None
    assert [r.get("note") for r in records[1:]] == ["first text", "other", "second text", None]
    assert records[-1]["removed"] == a["id"]
    assert all(PREV_KEY not in n and HASH_KEY not in n for n in Notes(path))  # file's, not notes'
    with pytest.raises(NotesError, match="set by Notes itself"):
        notes.add("c", 3, "x", **{HASH_KEY: "mine"})


def test_chain_a_byte_edited_in_any_record_fails_naming_it(tmp_path):
    path = tmp_path / "notes.json"
    notes = Notes(path)
    a = notes.add("c", 1, "edited many times")
    for k in range(200):  # compacted: the history holds what was replaced
        notes.update(a["id"], note=f"edit {k}")
    for k in range(5):
        notes.add("d", k + 1, f"note {k}")
    assert history_path(path).is_file() and notes.verify() is None
    records = _record_lines(path)
    assert len(records) > 200
    for f, k, raw in records:
        for at in (raw.index(b'"') + 1, len(raw) // 2, len(raw) - 5):  # a key, the middle, the hash
            before = _flip(f, k, at)
            broken = notes.verify()
            f.write_bytes(before)
            assert broken is not None and (Path(broken.path), broken.line) == (f, k), (f, k, at)
            assert f"{f.name} line {k}" in str(broken)
    assert notes.verify() is None
    # an edit of the note's text names the note, also when the record is hashed again
    f, k, raw = next(r for r in records if r[0] == path and b'"note 2"' in r[2])
    note_id = json.loads(raw)["id"]
    text = path.read_bytes()
    path.write_bytes(text.replace(b'"note 2"', b'"note X"'))
    assert f"id {note_id!r}" in str(notes.verify())
    edited = json.loads(raw.replace(b'"note 2"', b'"note X"'))
    rehashed = chained_line(edited, edited[PREV_KEY]).rstrip(b"\n")
    path.write_bytes(text.replace(raw, rehashed))
    broken = notes.verify()
    assert broken is not None and broken.line == k + 1 and "does not follow" in broken.reason
    path.write_bytes(text)
    lines = text.splitlines(keepends=True)
    path.write_bytes(b"".join(lines[:3] + lines[4:]))  # a record removed
    assert notes.verify().line == 4


def test_chain_compaction_keeps_history_and_the_chain_whole(tmp_path, monkeypatch):
    path = tmp_path / "notes.json"
    notes = Notes(path)
    a = notes.add("c", 1, "v")
    for k in range(300):
        notes.update(a["id"], note=f"edit {k}")
    history = history_path(path).read_text()
    assert all(f'"edit {k}"' in history or f'"edit {k}"' in path.read_text()
               for k in range(300))  # every version kept
    assert notes.verify() is None

    _update_until_a_compaction_fails(notes, a["id"], monkeypatch)
    for k in range(300):  # the next compaction does not write the records twice
        notes.update(a["id"], note=f"after {k}")
    assert notes.verify() is None
    history = history_path(path).read_bytes()
    assert len(set(history.splitlines())) == len(history.splitlines())
    history_path(path).rename(tmp_path / "elsewhere")
    broken = notes.verify()
    assert broken is not None and broken.line == 1 and "history.jsonl is missing" in str(broken)


def test_chain_an_old_file_without_hashes_is_read_and_chained_at_its_next_change(tmp_path):
    path = tmp_path / "notes.json"
    old = [{"cartforensics_notes": 1, "generation": "g1"},
           {"id": "n1", "cart_id": "c", "line": 1, "tags": [], "note": "old text"},
           {"id": "n1", "cart_id": "c", "line": 1, "tags": [], "note": "newer text"}]
    path.write_text("".join(json.dumps(r) + "\n" for r in old))
    notes = Notes(path)
    assert [n["note"] for n in notes] == ["newer text"]
    assert notes.verify() is None  # nothing chained yet: nothing to check
    notes.add("c", 2, "the first change")
    assert history_path(path).read_text().splitlines()[1:] == [json.dumps(r) for r in old[1:]]
    assert all(HASH_KEY in json.loads(x) for x in path.read_text().splitlines())
    assert [n["note"] for n in Notes(path)] == ["newer text", "the first change"]
    assert notes.verify() is None
    _flip(path, 2, 10)
    assert notes.verify().line == 2
