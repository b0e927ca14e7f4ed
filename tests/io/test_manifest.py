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
