"""The report command's reliability (issue 21, items 1 and 4): it finishes on every number
of chunks with the default workers, leaks no semaphore, and publishes atomically: a kill -9,
an error or a vanished log never leaves a mix of two reports, litter, or a file written
through a link planted in OUT. Reports that could hang run in a subprocess under a timeout
(a hang fails the test, not the run)."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from cartforensics.cli.app import main
from cartforensics.present import report_chunks
from cartforensics.present.report import REPORT_FILES, ReportError, write_report

ROOT = Path(__file__).resolve().parents[2]
LINE = (b'{"ts":"2025-10-27T09:34:11Z","type":"AddItem",'
        b'"payload":{"item_id":1,"quantity":1,"price":100,"sku":"a"}}\n')
# a report in a subprocess: write_report(SRC, OUT, chunk_files=K[, workers=W]) per argument
# triple SRC OUT K[:W], printing the lines of each
REPORTS = """
import sys
from cartforensics.present.report import write_report
for spec in sys.argv[1:]:
    src, out, k = spec.split("|")
    k, _, w = k.partition(":")
    r = write_report(src, out, progress=False, chunk_files=int(k),
                     workers=int(w) if w else None)
    print(r.lines, flush=True)
"""


def make_logs(d: Path, files: int, lines: int = 1) -> Path:
    d.mkdir(parents=True)
    for k in range(files):
        (d / f"cart-{k:05d}.events.log").write_bytes(LINE * lines)
    return d


def start_reports(*specs: str, marker: Path | None = None) -> subprocess.Popen:
    """The reports of ``specs`` in a subprocess; ``marker``: a path put on its PYTHONPATH,
    so that its processes (the pool's server and workers too) can be found."""
    path = [str(ROOT), *([str(marker)] if marker else []), os.environ.get("PYTHONPATH", "")]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(path))
    return subprocess.Popen([sys.executable, "-c", REPORTS, *specs], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)


def finish(p: subprocess.Popen) -> None:
    """Wait for a report subprocess that must succeed."""
    _, stderr = p.communicate(timeout=240)
    assert p.returncode == 0, stderr


def report_lines(out: Path) -> int:
    """The lines of the report in ``out``, checked: report.html, report.md and
    outcomes.parquet (a row per line and mode) agree, and OUT holds a report's files only."""
    names = {p.name for p in out.iterdir()}
    assert {"report.html", "report.md", "outcomes.parquet"} <= names <= REPORT_FILES
    html = (out / "report.html").read_text(encoding="utf-8")
    md = (out / "report.md").read_text(encoding="utf-8")
    in_html = re.search(r"([\d,]+) carts, ([\d,]+) lines, replayed", html)
    in_md = re.search(r"([\d,]+) carts, ([\d,]+) lines\.", md)
    assert in_html is not None and in_md is not None
    lines = int(in_html.group(2).replace(",", ""))
    assert int(in_md.group(2).replace(",", "")) == lines
    assert pq.ParquetFile(out / "outcomes.parquet").metadata.num_rows == 2 * lines
    return lines


def snapshot(d: Path) -> dict[str, tuple[str, int]]:
    return {p.name: (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
            for p in d.iterdir()}


def beside(out: Path) -> list[str]:
    """What is next to OUT besides OUT itself (a build left over would show here)."""
    return sorted(p.name for p in out.parent.iterdir() if p.name.startswith(f".{out.name}."))


# -- item 1: no hang ---------------------------------------------------------------------
def test_item1_report_finishes_on_17_18_33_50_chunks_with_the_default_workers(
        tmp_path: Path) -> None:
    # one file per chunk; 16k+1 chunks hung max_tasks_per_child=8 on two workers
    specs = []
    for n in (17, 18, 33, 50):
        specs.append(f"{make_logs(tmp_path / f'logs{n}', n)}|{tmp_path / f'out{n}'}|1")
    if os.cpu_count() != 2:  # the default is one worker per core: two as well, always
        specs.append(f"{tmp_path / 'logs18'}|{tmp_path / 'out18w2'}|1:2")
    p = start_reports(*specs)
    try:
        stdout, stderr = p.communicate(timeout=240)
    except subprocess.TimeoutExpired:
        p.kill()
        stdout, stderr = p.communicate()
        pytest.fail(f"the report hung; it had finished: {stdout.split()!r}")
    assert p.returncode == 0, stderr
    assert stdout.split() == ["17", "18", "33", "50"] + (["18"] if len(specs) > 4 else [])
    assert "leaked semaphore" not in stderr
    for n in (17, 18, 33, 50):
        assert report_lines(tmp_path / f"out{n}") == n
        assert beside(tmp_path / f"out{n}") == []


# -- item 4: atomic publish --------------------------------------------------------------
@pytest.fixture
def old_and_new(tmp_path: Path) -> dict[str, Path]:
    """An old report of 5 lines in OUT (a pristine copy beside it) and logs of 24 lines."""
    old_logs = make_logs(tmp_path / "old-logs", 5)
    new_logs = make_logs(tmp_path / "new-logs", 24)
    out = tmp_path / "out"
    write_report(old_logs, out, progress=False, workers=1)
    pristine = tmp_path / "pristine"
    shutil.copytree(out, pristine)
    return {"out": out, "pristine": pristine, "new": new_logs}


def _wait_until(p: subprocess.Popen, ready, poll: float = 0.002) -> None:
    """Until ``ready()`` or the process ends."""
    deadline = time.monotonic() + 120
    while not ready() and p.poll() is None and time.monotonic() < deadline:
        time.sleep(poll)


def processes_with(marker: Path) -> list[int]:
    """Live processes whose command line names ``marker`` (a forkserver's and its workers'
    name their sys.path)."""
    found = []
    for d in Path("/proc").iterdir():
        try:
            if d.name.isdigit() and str(marker).encode() in (d / "cmdline").read_bytes() and \
                    (d / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
                found.append(int(d.name))
        except OSError:
            continue
    return found


def _builds(out: Path) -> list[Path]:
    return [p for p in out.parent.iterdir() if p.name.startswith(f".{out.name}.report-")]


def test_item4_kill_9_at_any_moment_leaves_the_old_or_the_new_report(
        old_and_new: dict[str, Path], tmp_path: Path) -> None:
    out, pristine, new = old_and_new["out"], old_and_new["pristine"], old_and_new["new"]
    marker = tmp_path / "killed-reports"
    spec = f"{new}|{out}|2"  # 12 chunks, default workers

    def reset() -> None:
        shutil.rmtree(out)
        shutil.copytree(pristine, out)

    started = time.monotonic()  # to place the kills over a whole run (nothing is asserted)
    p = start_reports(spec)
    finish(p)
    whole = time.monotonic() - started
    assert report_lines(out) == 24 and beside(out) == []

    moments = {
        "building": lambda: bool(_builds(out)),
        "pages written": lambda: any((b / "report.md").exists() for b in _builds(out)),
    }
    seen = set()
    for name, ready in [*moments.items(), ("85%", None)]:
        reset()
        p = start_reports(spec, marker=marker)
        if ready is None:
            time.sleep(whole * int(name[:-1]) / 100)
        else:
            _wait_until(p, ready)
        p.send_signal(signal.SIGKILL)
        p.communicate(timeout=60)
        lines = report_lines(out)  # consistent, whichever it is
        assert lines in (5, 24), name
        seen.add(lines)
    assert 5 in seen  # (the new one may or may not have been published by a kill)
    # no process of the killed runs is left (their pools' workers end with them)
    deadline = time.monotonic() + 60
    while processes_with(marker) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert processes_with(marker) == []
    # what the killed runs left beside OUT, the next run removes
    p = start_reports(spec)
    finish(p)
    assert report_lines(out) == 24
    assert beside(out) == []


def test_item4_an_error_mid_run_leaves_the_old_report_and_no_litter(
        old_and_new: dict[str, Path]) -> None:
    out, new = old_and_new["out"], old_and_new["new"]
    before = snapshot(out)
    p = start_reports(f"{new}|{out}|1")  # 24 chunks, default workers

    def parts_dir() -> list[Path]:
        return [b / ".cartforensics-parts" for b in _builds(out)
                if (b / ".cartforensics-parts").is_dir()]

    _wait_until(p, lambda: bool(parts_dir()))
    for d in parts_dir():  # the chunks' parts can no longer be written: a real failure
        shutil.rmtree(d)
    _, stderr = p.communicate(timeout=240)
    assert p.returncode != 0 and "FileNotFoundError" in stderr, stderr
    assert snapshot(out) == before  # the old report, untouched
    assert beside(out) == []  # the build is gone
    assert "leaked semaphore" not in stderr


def test_item4_a_log_that_vanishes_or_cannot_be_read_is_a_problem_not_an_abort(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    logs = make_logs(tmp_path / "logs", 6)
    gone, unreadable = logs / "cart-00002.events.log", logs / "cart-00004.events.log"
    real_plan = report_chunks.plan_logs

    def plan_then_lose_two(*args, **kwargs):  # between listing and reading
        chunks = real_plan(*args, **kwargs)
        gone.unlink()
        unreadable.unlink()
        unreadable.mkdir()  # (a directory: unreadable as a file even for root)
        return chunks

    monkeypatch.setattr(report_chunks, "plan_logs", plan_then_lose_two)
    out = tmp_path / "out"
    assert main(["report", str(logs), "--out", str(out), "--quiet", "--workers", "1"]) == 0
    assert report_lines(out) == 4
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "cart-00002.events.log" in html and "No such file or directory" in html
    assert "cart-00004.events.log" in html and "a directory, not a regular file" in html


def test_item4_links_planted_in_out_are_never_followed(tmp_path: Path) -> None:
    logs = make_logs(tmp_path / "logs", 3)
    outside = tmp_path / "outside"
    outside.mkdir()
    out = tmp_path / "out"
    out.mkdir()
    for name in ("report.html", "report.md", "outcomes.parquet"):
        (outside / name).write_bytes(f"not a report: {name}".encode())
        (out / name).symlink_to(outside / name)
    # and a planted build name beside OUT, of a process that is gone, pointing outside too
    gone = subprocess.Popen(["true"])
    gone.wait()
    (tmp_path / f".out.report-{gone.pid}-0123456789ab").symlink_to(
        outside, target_is_directory=True)
    (outside / "keep").write_bytes(b"keep")
    before = snapshot(outside)
    write_report(logs, out, progress=False, workers=1)
    assert snapshot(outside) == before  # every target untouched, content and mtime
    assert not any(p.is_symlink() for p in out.iterdir())
    assert report_lines(out) == 3


def test_item4_out_holding_other_files_is_refused_untouched(tmp_path: Path) -> None:
    logs = make_logs(tmp_path / "logs", 2)
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_bytes(b"mine")
    before = snapshot(out)
    with pytest.raises(ReportError, match="not a report's"):
        write_report(logs, out, progress=False, workers=1)
    assert snapshot(out) == before and beside(out) == []


def test_item4_sigterm_mid_run_leaves_the_old_report_no_litter_and_no_leaked_semaphore(
        old_and_new: dict[str, Path], tmp_path: Path) -> None:
    out = old_and_new["out"]
    many = make_logs(tmp_path / "many", 2500)  # three chunks of the command's 1,000 files
    before = snapshot(out)
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    p = subprocess.Popen([sys.executable, "-m", "cartforensics", "report", str(many), "--out",
                          str(out), "-q"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, env=env)

    def a_chunk_done() -> bool:  # the pool is running: a chunk's part is written
        return any(any((b / ".cartforensics-parts").glob("*.arrow")) for b in _builds(out)
                   if (b / ".cartforensics-parts").is_dir())

    _wait_until(p, a_chunk_done)
    assert p.poll() is None, "the report ended before it could be stopped"
    p.terminate()
    _, stderr = p.communicate(timeout=240)
    assert p.returncode == 143, stderr
    assert "Traceback" not in stderr and "leaked semaphore" not in stderr
    assert snapshot(out) == before and beside(out) == []
