"""A dataset is untrusted input (issue 21, item 2): a tampered manifest or fragment makes
restore, report, replay and convert --incremental exit 2 with one line, never a traceback,
and nothing outside DST / OUT is ever written; a source directory's special files (item 9)
are problems, never opened."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cartforensics.cli.app import main
from cartforensics.jobs.convert import convert

ROOT = Path(__file__).resolve().parents[2]


def _line(ts: int, sku: str) -> bytes:
    return json.dumps({"ts": ts, "type": "AddItem",
                       "payload": {"sku": sku, "quantity": 1, "price": 100}},
                      separators=(",", ":")).encode() + b"\n"


def write_logs(d: Path) -> Path:
    d.mkdir(parents=True)
    (d / "a.events.log").write_bytes(_line(1700000000, "a1") + _line(1700000001, "a2"))
    (d / "b.events.log").write_bytes(_line(1700090000, "b1"))
    (d / "c.events.log.gz").write_bytes(gzip.compress(_line(1700000002, "c1"), mtime=0))
    return d


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """logs/ and their dataset ds/, converted once; each test copies it."""
    base = tmp_path_factory.mktemp("template")
    write_logs(base / "logs")
    assert convert(base / "logs", base / "ds", workers=1, progress=False).ok
    return base


@pytest.fixture
def tree(template: Path, tmp_path: Path) -> Path:
    """tmp_path/{logs, ds, victim}: victim/ holds a copy of the dataset (the files an escape
    from ds/ would reach)."""
    shutil.copytree(template / "logs", tmp_path / "logs")
    shutil.copytree(template / "ds", tmp_path / "ds")
    shutil.copytree(template / "ds", tmp_path / "victim")
    return tmp_path


def snapshot(root: Path, skip: tuple[Path, ...] = ()) -> dict[str, tuple[int, str]]:
    """(mtime_ns, sha256) of every file under ``root`` but those under ``skip``."""
    out = {}
    for dirpath, _dirs, files in os.walk(root):
        if any(Path(dirpath).is_relative_to(s) for s in skip):
            continue
        for f in files:
            p = Path(dirpath) / f
            if p.is_symlink() or not p.is_file():
                continue
            out[str(p)] = (p.stat().st_mtime_ns, hashlib.sha256(p.read_bytes()).hexdigest())
    return out


def run_cli(argv: list[str], capsys: pytest.CaptureFixture) -> tuple[int, str]:
    """main(argv) in-process: (exit status, stderr); an exception fails the test."""
    try:
        code = main(argv)
    except SystemExit as e:
        code = int(e.code or 0)
    return code, capsys.readouterr().err


def one_line(err: str) -> bool:
    return err.startswith("cartforensics: ") and err.count("\n") == 1 and "Traceback" not in err


def manifest_of(ds: Path) -> dict[str, Any]:
    return json.loads((ds / "manifest.json").read_text())


def write_manifest(ds: Path, m: Any) -> None:
    (ds / "manifest.json").write_text(json.dumps(m) if not isinstance(m, str) else m)


def commands(tree: Path, n: int = 0) -> dict[str, list[str]]:
    return {
        "restore": ["restore", str(tree / "ds"), str(tree / f"restored{n}")],
        "report": ["report", str(tree / "ds"), "--out", str(tree / f"report{n}"), "--quiet",
                   "--workers", "1"],
        "convert": ["convert", str(tree / "logs"), str(tree / "ds"), "--incremental",
                    "--quiet", "--workers", "1"],
        "replay": ["replay", str(tree / "ds"), "--quiet", "--format", "jsonl"],
    }


# -- item 2: the fragments-escape attack ------------------------------------------------------


@pytest.mark.parametrize("how", ["absolute", "dotdot"])
def test_item2_fragments_escape_leaves_the_victim_byte_identical(
        how: str, tree: Path, capsys: pytest.CaptureFixture) -> None:
    m = manifest_of(tree / "ds")
    frag = next(f for f in m["files"] if f["path"] == "a.events.log")["fragments"][0]
    victim = tree / "victim" / frag
    for f in m["files"]:
        if f["path"] == "a.events.log":
            f["fragments"] = [str(victim) if how == "absolute" else f"../victim/{frag}",
                              *f["fragments"]]
    write_manifest(tree / "ds", m)
    # a.events.log changed in its converted part: an unchecked run would rewrite (drop the
    # rows of) every fragment its old entry names
    (tree / "logs" / "a.events.log").write_bytes(_line(1700000000, "CHANGED"))
    before = snapshot(tree)
    code, err = run_cli(commands(tree)["convert"], capsys)
    assert code == 2 and one_line(err), err
    assert "fragments" in err
    assert snapshot(tree) == before  # the victim, and the dataset itself, untouched


def test_item2_a_symlinked_fragment_is_refused(tree: Path, capsys: pytest.CaptureFixture
                                               ) -> None:
    m = manifest_of(tree / "ds")
    frag = next(f for f in m["files"] if f["path"] == "a.events.log")["fragments"][-1]
    assert frag.startswith("events/")
    (tree / "ds" / frag).unlink()
    (tree / "ds" / frag).symlink_to(tree / "victim" / frag)
    (tree / "logs" / "a.events.log").write_bytes(_line(1700000000, "CHANGED"))
    before = snapshot(tree)
    for name, argv in commands(tree).items():
        code, err = run_cli(argv, capsys)
        assert code == 2 and one_line(err), (name, err)
        assert "symbolic link" in err, (name, err)
    assert snapshot(tree) == before


# -- item 2: each tampered field, each command ------------------------------------------------


def _set_first(field: str, value: Any):
    def tamper(m: dict[str, Any]) -> dict[str, Any]:
        m["files"][0][field] = value
        return m
    return tamper


def _deep(depth: int) -> Any:
    v: Any = 0
    for _ in range(depth):
        v = [v]
    return v


TAMPERED = {
    "files_null": lambda m: {**m, "files": None},
    "files_dict": lambda m: {**m, "files": {"a": 1}},
    "files_str": lambda m: {**m, "files": "a.events.log"},
    "path_int": _set_first("path", 7),
    "content_size_list": _set_first("content_size", [1]),
    "compression_gzip_on_plain": _set_first("compression", "gzip"),
    "only_format": lambda m: {"format": m["format"]},
    "nested_deeply": lambda m: json.dumps({**m, "runs": "DEEP"}).replace(
        '"DEEP"', "[" * 100_000 + "]" * 100_000),
    "nested_moderately": lambda m: {**m, "runs": [_deep(200)]},
    "path_dotdot": _set_first("path", "../victim/a.events.log"),
    "path_bytes_escape": _set_first("path_bytes", b"../x.events.log".hex()),
}


def _tamper_parquet(tree: Path, how: str) -> str:
    m = manifest_of(tree / "ds")
    frag = next(f for f in m["files"] if f["path"] == "a.events.log")["fragments"][-1]
    assert frag.startswith("events/")
    p = tree / "ds" / frag
    t = pq.read_table(p)
    if how == "raw_as_string":
        i = t.schema.get_field_index("raw")
        t = t.set_column(i, pa.field("raw", pa.string()),
                         pa.array([r.decode("utf-8", "replace") for r in
                                   t["raw"].to_pylist()], pa.string()))
    else:
        t = t.drop_columns(["offset"])
    pq.write_table(t, p)
    return frag


@pytest.mark.parametrize("command", ["restore", "report", "convert", "replay"])
@pytest.mark.parametrize("case", [*TAMPERED, "raw_as_string", "missing_column"])
def test_item2_tampered_field_exits_2_with_one_line(case: str, command: str, tree: Path,
                                                    capsys: pytest.CaptureFixture) -> None:
    if case in TAMPERED:
        write_manifest(tree / "ds", TAMPERED[case](manifest_of(tree / "ds")))
    else:
        frag = _tamper_parquet(tree, case)
    if command == "convert":  # a file changed: the run patches old fragments
        (tree / "logs" / "a.events.log").write_bytes(_line(1700000000, "CHANGED"))
    before = snapshot(tree)
    code, err = run_cli(commands(tree)[command], capsys)
    assert code == 2 and one_line(err), err
    if case not in TAMPERED:  # the file and the column, not an Arrow schema dump
        assert frag in err and ("'raw'" in err if case == "raw_as_string" else "'offset'" in err)
    assert snapshot(tree) == before
    assert not (tree / "restored0").exists() and not (tree / "report0" / "report.html").exists()


def test_item2_a_full_convert_replaces_a_damaged_dataset(tree: Path,
                                                         capsys: pytest.CaptureFixture) -> None:
    write_manifest(tree / "ds", TAMPERED["files_null"](manifest_of(tree / "ds")))
    argv = commands(tree)["convert"]
    argv.remove("--incremental")
    code, err = run_cli(argv, capsys)
    assert code == 0, err
    assert [f["path"] for f in manifest_of(tree / "ds")["files"]] == [
        "a.events.log", "b.events.log", "c.events.log.gz"]


def test_item2_huge_content_size_makes_no_huge_file(tree: Path,
                                                    capsys: pytest.CaptureFixture) -> None:
    m = manifest_of(tree / "ds")
    m["files"][0]["content_size"] = 8796093022208  # 8 TiB
    write_manifest(tree / "ds", m)
    code, err = run_cli(commands(tree)["restore"], capsys)
    assert code == 1 and "do not match" in err
    restored = tree / "restored0" / m["files"][0]["path"]
    assert restored.stat().st_size == (tree / "logs" / m["files"][0]["path"]).stat().st_size
    assert os.stat(restored).st_blocks * 512 < 1 << 20


# -- item 2: Hypothesis over manifests --------------------------------------------------------


_HOSTILE_TEXT = st.sampled_from([
    "../victim/events/date=2023-11-14/part-0000-00000.parquet", "/etc/passwd", "", ".", "..",
    "a/../../x.events.log", "x\x00.events.log", "events/date=2023-11-14/../../../victim",
    "carts/part-0000-00000.parquet", "b.events.log", "a.events.log.gz", "gzip", "1.99",
    "\u202e.events.log",
])
_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(1 << 70), 1 << 70) | st.floats(allow_nan=False)
    | _HOSTILE_TEXT | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner,
                                                                max_size=3),
    max_leaves=8,
)
# values a manifest of ours holds: edits that pass the schema and reach the work itself
_PLAUSIBLE = st.one_of(
    st.integers(0, 10**6), st.booleans(), st.just([]), st.none(),
    st.sampled_from(["a.events.log", "b.events.log", "c.events.log.gz", "gzip", "a", "b",
                     "1.25", "1.27", "0" * 64, hashlib.sha256(b"").hexdigest()]),
    st.lists(st.sampled_from(["events/date=2023-11-14/part-0000-00000.parquet",
                              "events/date=2023-11-15/part-0000-00000.parquet",
                              "events/date=2099-01-01/part-0007-00003.parquet",
                              "carts/part-0000-00000.parquet"]), max_size=3),
)
_FIELDS = ["path", "path_bytes", "cart_id", "compression", "size", "sha256", "content_size",
           "content_sha256", "converted_bytes", "lines", "newline_at_end", "problems", "run",
           "fragments"]
_TOP = ["files", "format", "schema_version", "go_version", "run", "runs", "lines", "layout"]
_EDIT = st.one_of(
    st.tuples(st.just("file"), st.integers(0, 2), st.sampled_from(_FIELDS), _VALUES),
    st.tuples(st.just("file"), st.integers(0, 2), st.sampled_from(_FIELDS), _PLAUSIBLE),
    st.tuples(st.just("file"), st.integers(0, 2), st.sampled_from(_FIELDS), _PLAUSIBLE),
    st.tuples(st.just("frag"), st.integers(0, 2), st.just("fragments"),
              st.lists(_HOSTILE_TEXT, min_size=1, max_size=3)),
    st.tuples(st.just("top"), st.just(0), st.sampled_from(_TOP), _VALUES),
    st.tuples(st.just("deep"), st.just(0), st.sampled_from(_TOP),
              st.integers(1, 3000).map(_deep)),
    st.tuples(st.just("drop"), st.integers(0, 2), st.sampled_from(_FIELDS + _TOP), st.none()),
)


def _apply(m: dict[str, Any], edits: list[tuple[str, int, str, Any]]) -> dict[str, Any]:
    for kind, i, key, value in edits:
        files = m.get("files")
        entry = files[i % len(files)] if isinstance(files, list) and files and \
            isinstance(files[i % len(files)], dict) else None
        if kind in ("file", "frag") and entry is not None:
            entry[key] = value
        elif kind in ("top", "deep"):
            m[key] = value
        elif kind == "drop":
            (entry if entry is not None and key in _FIELDS else m).pop(key, None)
    return m


@settings(max_examples=40, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.data_too_large])
@given(edits=st.lists(_EDIT, min_size=1, max_size=4))
def test_item2_hypothesis_tampered_manifests(edits: list[tuple[str, int, str, Any]],
                                            template: Path, tmp_path_factory:
                                            pytest.TempPathFactory,
                                            capsys: pytest.CaptureFixture) -> None:
    tree = tmp_path_factory.mktemp("h")
    shutil.copytree(template / "logs", tree / "logs")
    shutil.copytree(template / "ds", tree / "ds")
    shutil.copytree(template / "ds", tree / "victim")
    (tree / "logs" / "a.events.log").write_bytes(_line(1700000000, "CHANGED"))
    try:
        text = json.dumps(_apply(manifest_of(tree / "ds"), edits))
    except RecursionError:  # json.dumps of our own deep value: write it by hand
        text = "[" * 5000 + "]" * 5000
    (tree / "ds" / "manifest.json").write_text(text)
    for n, name in enumerate(("restore", "report", "convert")):
        outside = snapshot(tree, skip=(tree / "ds", tree / f"restored{n}", tree / f"report{n}"))
        code, err = run_cli(commands(tree, n)[name], capsys)
        assert "Traceback" not in err, (name, err)
        assert code in (0, 1, 2), (name, code, err)
        if code == 2:
            assert one_line(err), (name, err)
        assert snapshot(tree, skip=(tree / "ds", tree / f"restored{n}",
                                    tree / f"report{n}")) == outside, name
        # nothing beside DST / OUT: no temporary sibling left behind
        assert sorted(p.name for p in tree.iterdir()) == sorted(
            ["logs", "ds", "victim"] + [f"restored{k}" for k in range(n + 1)
                                        if (tree / f"restored{k}").exists()]
            + [f"report{k}" for k in range(n + 1) if (tree / f"report{k}").exists()])
    shutil.rmtree(tree)


# -- item 9: special files in SRC ---------------------------------------------------------------


@pytest.fixture
def special_src(tmp_path: Path) -> Path:
    src = write_logs(tmp_path / "src")
    os.mkfifo(src / "fifo.events.log")
    (src / "dangling.events.log").symlink_to(tmp_path / "nowhere")
    (src / "x.events.log").mkdir()
    return src


SPECIAL = {"fifo.events.log": "FIFO", "dangling.events.log": "dangling symbolic link",
           "x.events.log": "a directory"}


def _cf(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "cartforensics", *args], env=env,
                          capture_output=True, text=True, timeout=120)


def test_item9_special_files_are_convert_problems(special_src: Path, tmp_path: Path) -> None:
    r = _cf("convert", str(special_src), str(tmp_path / "ds"), "--quiet", "--workers", "1")
    assert r.returncode == 1, r.stderr  # problems with input files; the others converted
    m = manifest_of(tmp_path / "ds")
    problems = {f["path"]: f["problems"] for f in m["files"]}
    for name, kind in SPECIAL.items():
        assert any(kind in p for p in problems[name]), problems
        assert any(name in line and kind in line and "PROBLEM" in line
                   for line in r.stdout.splitlines()), r.stdout
    assert all(not problems[n] for n in ("a.events.log", "b.events.log", "c.events.log.gz"))
    # restore skips them: nothing was converted
    r = _cf("restore", str(tmp_path / "ds"), str(tmp_path / "out"))
    assert r.returncode == 0, r.stderr
    assert sorted(os.listdir(tmp_path / "out")) == ["a.events.log", "b.events.log",
                                                     "c.events.log.gz"]


def test_item9_special_files_are_replay_and_report_problems(special_src: Path,
                                                            tmp_path: Path) -> None:
    r = _cf("replay", str(special_src), "--quiet")
    assert r.returncode == 0, r.stderr
    for name, kind in SPECIAL.items():
        assert any(name in line and kind in line for line in r.stderr.splitlines()), r.stderr
    r = _cf("report", str(special_src), "--out", str(tmp_path / "rep"), "--quiet",
            "--workers", "1")
    assert r.returncode == 0, r.stderr
    md = (tmp_path / "rep" / "report.md").read_text()
    assert "3 files could not be read whole" in md, md
    for name in SPECIAL:
        assert name.split(".")[0] in md


def test_item9_find_logs_lists_what_each_special_file_is(special_src: Path) -> None:
    from cartforensics.io.logs import find_logs
    from cartforensics.io.sources import read_events, resolve_source

    logs = find_logs(special_src)
    assert [f.path.name for f in logs] == ["a.events.log", "b.events.log", "c.events.log.gz"]
    kinds = {Path(p.path).name: p.error for p in logs.skipped}
    assert kinds.keys() == SPECIAL.keys()
    for name, kind in SPECIAL.items():
        assert kind in kinds[name]
    with pytest.warns(UserWarning, match="FIFO"):
        df = read_events(resolve_source(special_src), progress=False)
    assert {Path(p["path"]).name for p in df.attrs["problems"]} == set(SPECIAL)
    assert sorted(df["cart_id"].unique()) == ["a", "b", "c"]
