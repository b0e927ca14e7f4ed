"""A dataset's manifest and fragments are untrusted (issue 21, item 2): the schema check of
cartforensics.io.manifest and the fragment listing of cartforensics.io.dataset; the listing
of special files by find_logs (item 9)."""

from __future__ import annotations

import copy
import os
import pickle
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cartforensics.io.dataset import (
    EVENTS_SCHEMA,
    DatasetError,
    fragment_files,
    read_manifest,
)
from cartforensics.io.logs import FileProblem, LogFile, LogList, find_logs
from cartforensics.io.manifest import ManifestError, check_manifest, parse_manifest

GOOD: dict[str, Any] = {
    "format": "cartforensics-dataset", "schema_version": 1, "go_version": "1.25", "run": 0,
    "runs": [{"run": 0, "reconverted": []}], "lines": 1,
    "files": [{
        "path": "a.events.log", "cart_id": "a", "compression": None, "size": 3,
        "sha256": "0" * 64, "content_size": 3, "content_sha256": "0" * 64,
        "converted_bytes": 3, "lines": 1, "newline_at_end": True, "problems": [], "run": 0,
        "fragments": ["carts/part-0000-00000.parquet",
                      "events/date=2024-01-01/part-0000-00000.parquet"],
    }],
}


def test_item2_a_good_manifest_passes() -> None:
    check_manifest(copy.deepcopy(GOOD), "m.json")


@pytest.mark.parametrize("field, value, words", [
    ("path", 7, "files[0].path is a number"),
    ("path", "../a.events.log", "not the relative path"),
    ("path", "/abs/a.events.log", "not the relative path"),
    ("path", "a.txt", "not the relative path"),
    ("path_bytes", "zz", "hex"),
    ("path_bytes", b"../a.events.log".hex(), "path_bytes is '../a.events.log', not the"),
    ("content_size", [1], "content_size is a list"),
    ("content_size", -1, "content_size is -1"),
    ("content_size", True, "content_size is a boolean"),
    ("compression", "gzip", "compression is 'gzip'"),
    ("sha256", "abc", "sha256 is 'abc'"),
    ("newline_at_end", "yes", "newline_at_end is a string"),
    ("problems", "x", "problems is a string"),
    ("fragments", ["/etc/passwd"], "fragments[0] is '/etc/passwd'"),
    ("fragments", ["../victim/events/date=2024-01-01/part-0000-00000.parquet"],
     "not a fragment of the dataset"),
    ("fragments", ["events/date=2024-01-01/../../x/part-0000-00000.parquet"],
     "not a fragment"),
])
def test_item2_each_bad_entry_field_is_one_line(field: str, value: Any, words: str) -> None:
    m = copy.deepcopy(GOOD)
    m["files"][0][field] = value
    with pytest.raises(ManifestError) as e:
        check_manifest(m, "m.json")
    text = str(e.value)
    assert text.startswith("m.json: ") and words in text and "\n" not in text, text


@pytest.mark.parametrize("change", [
    {"files": None}, {"files": {}}, {"files": "x"}, {"schema_version": "1"},
    {"go_version": "0.1"}, {"runs": {}}, {"runs": [1]}, {"lines": 1.5},
    {"files": [GOOD["files"][0], GOOD["files"][0]]},  # listed twice
])
def test_item2_each_bad_top_field_is_one_line(change: dict[str, Any]) -> None:
    with pytest.raises(ManifestError) as e:
        check_manifest({**copy.deepcopy(GOOD), **change}, "m.json")
    assert "\n" not in str(e.value)


def test_item2_only_format_is_refused() -> None:
    with pytest.raises(ManifestError, match="schema_version"):
        parse_manifest(b'{"format": "cartforensics-dataset"}', "m.json")


@pytest.mark.parametrize("depth", [20, 1000, 200_000])
def test_item2_deep_nesting_never_recurses(depth: int) -> None:
    data = (b'{"format": "cartforensics-dataset", "schema_version": 1, "files": [], "runs": '
            + b"[" * depth + b"]" * depth + b"}")
    try:
        assert parse_manifest(data, "m.json") is None  # beyond the parser's limit: not ours
    except ManifestError as e:
        assert "nested more than" in str(e)


def test_item2_other_json_is_not_a_dataset(tmp_path: Path) -> None:
    assert parse_manifest(b"[1, 2]", "m.json") is None
    assert parse_manifest(b'{"format": "sample"}', "m.json") is None
    os.mkfifo(tmp_path / "manifest.json")  # never blocks
    assert read_manifest(tmp_path) is None


def _dataset(tmp_path: Path, table: pa.Table) -> Path:
    root = tmp_path / "ds"
    (root / "events" / "date=2024-01-01").mkdir(parents=True)
    (root / "carts").mkdir()
    pq.write_table(table, root / "events" / "date=2024-01-01" / "part-0000-00000.parquet")
    return root


def test_item2_fragment_files_names_the_file_and_the_column(tmp_path: Path) -> None:
    good = EVENTS_SCHEMA.empty_table()
    root = _dataset(tmp_path, good)
    assert [p.name for p in fragment_files(root, "events")] == ["part-0000-00000.parquet"]
    frag = root / "events" / "date=2024-01-01" / "part-0000-00000.parquet"
    pq.write_table(good.drop_columns(["raw"]), frag)
    with pytest.raises(DatasetError) as e:
        fragment_files(root, "events")
    assert str(frag) in str(e.value) and "no column 'raw'" in str(e.value)
    assert "\n" not in str(e.value)
    i = good.schema.get_field_index("raw")
    pq.write_table(good.set_column(i, pa.field("raw", pa.string()),
                                   pa.array([], pa.string())), frag)
    with pytest.raises(DatasetError, match="column 'raw' is string, expected large_binary"):
        fragment_files(root, "events")
    frag.write_bytes(b"not parquet")
    with pytest.raises(DatasetError, match="not a readable Parquet file"):
        fragment_files(root, "events")


def test_item2_fragment_files_refuses_a_link_out(tmp_path: Path) -> None:
    root = _dataset(tmp_path, EVENTS_SCHEMA.empty_table())
    outside = tmp_path / "victim"
    outside.mkdir()
    pq.write_table(EVENTS_SCHEMA.empty_table(), outside / "part-0000-00001.parquet")
    (root / "events" / "date=2024-01-02").symlink_to(outside)
    with pytest.raises(DatasetError, match="outside the dataset"):
        fragment_files(root, "events")


def test_item9_find_logs_lists_special_files(tmp_path: Path) -> None:
    (tmp_path / "a.events.log").write_bytes(b"")
    os.mkfifo(tmp_path / "f.events.log")
    (tmp_path / "d.events.log").mkdir()
    (tmp_path / "l.events.log.gz").symlink_to(tmp_path / "gone")
    (tmp_path / "other.txt").mkdir()  # not named like a log: not a problem
    logs = find_logs(tmp_path)
    assert [f.cart_id for f in logs] == ["a"]
    assert [(p.cart_id, p.error.split(",")[0]) for p in logs.skipped] == [
        ("d", "a directory"), ("f", "a FIFO (named pipe)"),
        ("l", f"a dangling symbolic link (to {str(tmp_path / 'gone')!r})")]
    assert find_logs(logs).skipped == logs.skipped  # a listing is taken as listed


def test_item9_a_directory_of_only_special_files_says_what_they_are(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "f.events.log")
    with pytest.raises(FileNotFoundError, match="FIFO"):
        find_logs(tmp_path)
    with pytest.raises(FileNotFoundError, match="FIFO"):
        find_logs(tmp_path / "f.events.log")


def test_item9_a_log_list_keeps_its_problems_through_pickle() -> None:
    logs = LogList([LogFile(Path("a.events.log"), "a")],
                   [FileProblem("f.events.log", "f", "a FIFO")])
    back = pickle.loads(pickle.dumps(logs))
    assert back == logs and back.skipped == logs.skipped


# -- the columns check against the entry-by-entry one (issue 24) ----------------------------
def _reference_check(doc: dict[str, Any], where: str) -> None:
    """check_manifest as each entry alone decides it: every node walked for the depth, each
    entry through _check_entry, then the paths listed twice and the file-folder clashes."""
    from cartforensics.io import manifest as m

    m._depth_walked(doc, where)
    files = doc.get("files")
    m.check_manifest({**doc, "files": []} if isinstance(files, list) else doc, where)
    seen: set[str] = set()
    dirs: set[str] = set()
    for i, e in enumerate(files):  # type: ignore[arg-type]
        path = m._check_entry(e, f"files[{i}]", where)
        if path in seen:
            raise ManifestError(f"{where}: files[{i}].path {m._shown(path)} is listed twice; "
                                f"{m._FIX}")
        seen.add(path)
        parts = path.split("/")
        dirs.update("/".join(parts[:k]) for k in range(1, len(parts)))
    if seen & dirs:
        raise ManifestError(f"{where}: {m._shown(min(seen & dirs))} is both a file and a "
                            f"folder of other files; {m._FIX}")


def _outcome(check: Any, doc: dict[str, Any]) -> str | None:
    try:
        check(copy.deepcopy(doc), "m.json")
    except ManifestError as e:
        return str(e)
    return None


_TEXT = st.sampled_from([
    "a.events.log", "b/a.events.log", "b", "b/c.events.log.gz", "c.events.log.gz",
    ".events.log", "x/.events.log.gz", "./a.events.log", "a/./b.events.log", "../a.events.log",
    "a//b.events.log", "/a.events.log", "a\\b.events.log", "a\x00.events.log", "..a.events.log",
    "a/..b/c.events.log", "a.events.log\n", "gzip", "", "0" * 64, "0" * 63, "A" * 64,
    "f" * 64 + "\u00e9", "carts/part-0000-00000.parquet",
    "events/date=2024-01-01/part-0000-00000.parquet", "events/date=x/part-0000-00000.parquet",
    b"a.events.log".hex(), b"\xffa.events.log".hex(), "\\\"[[[", "a.events.log.gz",
]) | st.text(max_size=6)
_VALUE = st.recursive(
    st.none() | st.booleans() | st.integers(-2, 3) | st.just(1 << 62) | st.just((1 << 62) + 1)
    | st.floats(allow_nan=False) | _TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner,
                                                                max_size=2),
    max_leaves=6)
_ENTRY_KEYS = ["path", "path_bytes", "cart_id", "compression", "size", "sha256",
               "content_size", "content_sha256", "converted_bytes", "lines", "newline_at_end",
               "problems", "run", "fragments", "other"]


@st.composite
def _manifests(draw: Any) -> dict[str, Any]:
    """GOOD with a few entries (copies, renamed) and a few of their fields changed, some
    nested deep: near the schema's every edge."""
    doc = copy.deepcopy(GOOD)
    entry = doc["files"][0]
    names = draw(st.lists(_TEXT, min_size=0, max_size=4))
    doc["files"] = [dict(entry, path=n if draw(st.booleans()) else entry["path"].replace(
        "a", f"d{k}")) for k, n in enumerate(names)] or [entry]
    for _ in range(draw(st.integers(0, 4))):
        i = draw(st.integers(0, len(doc["files"]) - 1))
        key = draw(st.sampled_from(_ENTRY_KEYS))
        if draw(st.integers(0, 9)) == 0:
            doc["files"][i].pop(key, None)
        else:
            doc["files"][i][key] = draw(_VALUE)
    if draw(st.integers(0, 5)) == 0:
        doc["files"].append(draw(_VALUE))
    if draw(st.integers(0, 4)) == 0:
        depth = draw(st.integers(10, 20))
        nested: Any = draw(_VALUE)
        for _ in range(depth):
            nested = [nested] if draw(st.booleans()) else {"k": nested}
        doc["files" if draw(st.booleans()) else "layout"] = nested
    return doc


@settings(max_examples=400, deadline=None, derandomize=True)
@given(doc=_manifests())
def test_the_columns_check_decides_as_each_entry_does(doc: dict[str, Any]) -> None:
    """check_manifest reads the entries a field at a time (and the depth from the JSON text);
    it refuses exactly what the entry-by-entry reference refuses, with its message."""
    from cartforensics.io.manifest import check_manifest as checked

    assert _outcome(checked, doc) == _outcome(_reference_check, doc)


@pytest.mark.parametrize("depth", [14, 15, 16, 17, 40])
@pytest.mark.parametrize("text", ["", "]]]]", "\\", "\\\"[[[[[[[[[[[[[[[[[["])
def test_the_depth_read_from_the_text_is_the_walked_depth(depth: int, text: str) -> None:
    from cartforensics.io.manifest import _depth_walked

    nested: Any = text
    for k in range(depth):
        nested = {"k": nested} if k % 2 else [nested, text]
    doc = {**copy.deepcopy(GOOD), "layout": {"x": nested}}
    assert _outcome(check_manifest, doc) == _outcome(
        lambda d, w: (_depth_walked(d, w), check_manifest({**d, "layout": {}}, w)), doc)
