"""Hash-chained JSON Lines: every link checked, the history first, lines from before the chain
left alone, and the first record that fails named."""

from __future__ import annotations

import json
from pathlib import Path

from cartforensics.io.chain import (
    HASH_KEY,
    PREV_KEY,
    chained_line,
    check_chain,
    history_path,
    is_chained,
    record_hash,
)


def _chain(*objs: dict, prev: str | None = None) -> list[bytes]:
    lines = []
    for o in objs:
        lines.append(chained_line(o, prev))
        prev = record_hash(lines[-1])
    return lines


def test_a_whole_chain_holds_and_its_keys_come_last(tmp_path: Path):
    f = tmp_path / "n.jsonl"
    lines = _chain({"a": 1}, {"b": "ünï \udcff"}, {"c": [1, {"d": None}]})
    f.write_bytes(b"".join(lines))
    assert check_chain(f) is None and is_chained(f)
    rec = json.loads(lines[1])
    assert list(rec)[-2:] == [PREV_KEY, HASH_KEY] and rec[PREV_KEY] == record_hash(lines[0])
    assert rec["b"] == "ünï \udcff"


def test_removed_moved_cut_and_unhashed_records_are_named(tmp_path: Path):
    f = tmp_path / "n.jsonl"
    lines = _chain(*({"id": f"n{k}", "cart_id": "c", "line": k} for k in range(1, 5)))
    f.write_bytes(b"".join(lines[:1] + lines[2:]))  # the second removed
    assert check_chain(f).line == 2
    f.write_bytes(b"".join([lines[0], lines[2], lines[1], lines[3]]))  # two swapped
    assert check_chain(f).line == 2
    f.write_bytes(b"".join(lines)[:-1])  # the last newline cut
    assert "cut short" in check_chain(f).reason
    f.write_bytes(b"".join(lines[:3]) + b'{"id": "n9", "cart_id": "c", "line": 9}\n')
    broken = check_chain(f)
    assert broken.line == 4 and "no record_sha256" in broken.reason
    assert "note id 'n9', cart_id 'c', line 9" in str(broken)
    f.write_bytes(b"".join(lines[:2]) + b"\n" + b"".join(lines[2:]))  # an empty line inserted
    assert check_chain(f).line == 3


def test_lines_before_the_chain_are_not_checked_and_the_history_comes_first(tmp_path: Path):
    f = tmp_path / "notes.json"
    hist = history_path(f)
    assert hist.name == "notes.json.history.jsonl"
    old = b'{"note": "from an earlier version"}\n'
    first = _chain({"h": 1}, {"x": 1})
    rest = _chain({"h": 2}, {"x": 2}, prev=record_hash(first[-1]))
    hist.write_bytes(old + b"".join(first))
    f.write_bytes(b"".join(rest))
    assert check_chain(f) is None
    hist.write_bytes(old.replace(b"earlier", b"older") + b"".join(first))
    assert check_chain(f) is None  # before the chain: read, not checked
    hist.write_bytes(old + first[0])  # the history's last record lost
    broken = check_chain(f)
    assert (Path(broken.path), broken.line) == (f, 1) and "does not follow" in broken.reason
    hist.unlink()
    assert "notes.json.history.jsonl is missing" in str(check_chain(f))
    assert not is_chained(tmp_path / "absent") and not is_chained(tmp_path)
