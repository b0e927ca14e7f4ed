"""Bad arguments exit 2 with one line ``cartforensics: ...`` (never argparse's usage block, never
a traceback); nothing a log holds reaches the terminal or report.md raw; ``--freq`` is bounded;
a FIFO is never opened; SIGTERM during repair leaves no temporary output."""

from __future__ import annotations

import errno
import glob
import gzip
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

import cartforensics.jobs.repair as repair_job
from cartforensics import replay
from cartforensics.analysis.metrics import MAX_WINDOWS, check_windows, rates, window_width
from cartforensics.cli.app import main
from cartforensics.present.report import write_report

ROOT = Path(__file__).resolve().parents[2]
ESC_NAME = "cart\x1b]0;pwned\x07\x1b[2J"


def line(ts: str | int, sku: str = "a") -> str:
    return json.dumps({"ts": ts, "type": "AddItem", "payload": {"quantity": 1, "sku": sku}})


@pytest.fixture
def logs(tmp_path: Path) -> Path:
    """Two carts over one day: ``c`` (string ts) and one whose name holds terminal escapes."""
    d = tmp_path / "logs"
    d.mkdir()
    (d / "c.events.log").write_text(
        line("2024-01-01T00:00:00Z") + "\n" + line("2024-01-02T00:00:00Z", "b") + "\n")
    (d / f"{ESC_NAME}.events.log").write_text(
        line("2024-01-01T06:00:00Z") + "\n" + line(1704096000, "n") + "\n")
    return d


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """``cartforensics ARGS`` in this process: exit status, stdout, stderr."""
    try:
        code = main(list(args))
    except SystemExit as e:
        code = e.code  # type: ignore[assignment]
    out, err = capsys.readouterr()
    return int(code), out, err


def run(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-m", "cartforensics", *args], capture_output=True,
                          text=True, env=env, timeout=timeout, cwd=ROOT)


def one_line(code: int, err: str) -> str:
    assert code == 2, err
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("cartforensics: "), err
    assert "Traceback" not in err and "usage:" not in err
    return lines[0]


# -- item 5: terminal escapes ---------------------------------------------------------------


def test_item5_escapes_in_a_file_name_never_reach_the_terminal(logs: Path, capsys):
    code, out, err = cli(capsys, "replay", str(logs), "--quiet")
    assert code == 0, err
    assert "\x1b" not in out and "\x07" not in out
    assert "cart\\x1b]0;pwned\\x07\\x1b[2J" in out  # shown, escaped
    code, out, err = cli(capsys, "state", str(logs), "--cart", "nope")
    msg = one_line(code, err)
    assert "\x1b" not in err and "\\x1b" in msg and "nope" in msg
    code, out, err = cli(capsys, "state", str(logs), "--cart", "nope\x1b[2J")
    assert "\x1b" not in one_line(code, err)


def test_item5_escapes_in_a_warning_never_reach_the_terminal(logs: Path):
    # a second, broken file of the same cart: read_events warns, naming both files
    (logs / f"{ESC_NAME}.events.log.gz").write_bytes(gzip.compress(b"x" * 100)[:-5])
    p = run("replay", str(logs), "--quiet")
    assert p.returncode == 0, p.stderr
    assert "broken gzip stream" in p.stderr and "has 2 files" in p.stderr
    assert "\x1b" not in p.stderr and "\x1b" not in p.stdout
    assert "cart\\x1b]0;pwned" in p.stderr


def test_item5_escapes_in_a_file_name_never_reach_report_md(logs: Path, tmp_path: Path,
                                                            capsys):
    code, out, err = cli(capsys, "report", str(logs), "--out", str(tmp_path / "rep"), "-q")
    assert code == 0, err
    assert "\x1b" not in out
    md = (tmp_path / "rep" / "report.md").read_bytes()
    assert b"\x1b" not in md and b"\x07" not in md
    assert b"pwned" in md  # the cart is named, escaped


# -- item 7: --freq -------------------------------------------------------------------------


@pytest.mark.parametrize("freq", ["100ms", "1ns", "500ms"])
def test_item7_freq_making_too_many_windows_is_refused(logs: Path, tmp_path: Path, capsys,
                                                       freq: str):
    code, out, err = cli(capsys, "report", str(logs), "--out", str(tmp_path / "r"), "--freq",
                         freq, "-q")
    msg = one_line(code, err)  # a day: 172,801 windows of 500 ms
    assert f"{MAX_WINDOWS:,}" in msg and "wider window" in msg and freq in msg


@pytest.mark.parametrize("freq", ["0h", "-1h", "soon", "", "0ns"])
def test_item7_non_positive_or_unparsable_freq_is_refused(logs: Path, tmp_path: Path, capsys,
                                                          freq: str):
    code, out, err = cli(capsys, "report", str(logs), "--out", str(tmp_path / "r"), "--freq",
                         freq, "-q")
    assert "--freq" in one_line(code, err)
    assert not (tmp_path / "r").exists()  # refused before anything is written


def test_item7_freq_within_the_bound_still_works(logs: Path, tmp_path: Path, capsys):
    code, out, err = cli(capsys, "report", str(logs), "--out", str(tmp_path / "r"), "--freq",
                         "1min", "-q")
    assert code == 0, err


def test_item7_the_library_raises_a_clear_value_error(logs: Path, tmp_path: Path):
    with pytest.raises(ValueError, match="not a positive time window"):
        write_report(logs, tmp_path / "r0", freq="0h", progress=False)
    with pytest.raises(ValueError, match="more than 100,000"):
        rates(replay(logs), freq="1ns")
    with pytest.raises(ValueError, match="not a time window"):
        window_width("soon")
    check_windows("1s", pd.Timedelta(seconds=MAX_WINDOWS - 1))  # exactly the most windows
    with pytest.raises(ValueError, match="100,001 windows"):
        check_windows("1s", pd.Timedelta(seconds=MAX_WINDOWS))
    assert window_width("MS") >= pd.Timedelta(days=28)  # a calendar window is accepted


# -- item 8: bad arguments ------------------------------------------------------------------


@pytest.mark.parametrize("args", [
    ["replay", ""],
    ["replay", "{logs}", ""],
    ["state", "", "--cart", "x"],
    ["report", "", "--out", "{tmp}/outB"],
    ["repair", "", "{tmp}/out"],
    ["state", "{logs}", "--cart", "c", "--at", "1677-01-01T00:00:00Z"],
    ["state", "{logs}", "--cart", "c", "--at", "2262-04-12T00:00:00Z"],
    ["state", "{logs}", "--cart", "c", "--at", "0001-01-01T00:00:00Z"],
    ["state", "{logs}", "--cart", "c", "--at", "yesterday-ish"],
    ["state", "{logs}", "--cart", "c", "--line", "-1"],
    ["state", "{logs}", "--cart", "c", "--line", "two"],
    ["sample"],
    ["sample", "{tmp}/s", "--carts", "0"],
    ["sample", "{tmp}/s", "--bogus"],
    ["sample", "{tmp}/s", "--incident", "nope"],
    ["replay", "{logs}", "--bogus"],
    ["bogus"],
    ["--frob"],
    [],
])
def test_item8_each_bad_argument_is_one_line_and_exit_2(logs: Path, tmp_path: Path, capsys,
                                                        args: list[str]):
    args = [a.format(logs=logs, tmp=tmp_path) for a in args]
    code, out, err = cli(capsys, *args)
    msg = one_line(code, err)
    assert out == ""
    assert "outB" not in msg  # report '' blames the empty SRC, not --out
    assert not (tmp_path / "s").exists() and not (tmp_path / "outB").exists()
    assert "-h)" in msg or "give" in msg  # says what to do


def test_item8_help_still_prints_the_usage(capsys):
    for args in (["--help"], ["sample", "--help"], ["state", "-h"]):
        code, out, err = cli(capsys, *args)
        assert code == 0 and out.startswith("usage: cartforensics") and err == ""


def test_item8_the_line_and_time_bounds_that_remain_valid(logs: Path, capsys):
    code, out, err = cli(capsys, "state", str(logs), "--cart", "c", "--line", "0")
    assert code == 0 and json.loads(out)["items"] == []  # 0 lines: the empty cart
    code, out, err = cli(capsys, "state", str(logs), "--cart", "c", "--at",
                         "2262-04-11T00:00:00Z")
    assert code == 0 and len(json.loads(out)["items"]) == 2


def test_item8_a_fifo_is_refused_before_anything_opens_it(logs: Path, tmp_path: Path):
    fifo = tmp_path / "x.events.log"
    os.mkfifo(fifo)
    for args in (["replay", str(fifo)], ["replay", str(logs), str(fifo)],
                 ["repair", str(fifo), str(tmp_path / "out")],
                 ["repair", str(logs), str(fifo)]):
        p = run(*args, timeout=60)  # opening the FIFO would block: the timeout would fail
        msg = one_line(p.returncode, p.stderr)
        assert "FIFO" in msg and str(fifo) in msg
    assert not (tmp_path / "out").exists()


def test_item8_disk_full_during_repair_names_the_output(logs: Path, tmp_path: Path, capsys,
                                                        monkeypatch):
    def full(*args: object, **kwargs: object) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))  # no file name, as write's

    monkeypatch.setattr(repair_job, "_write_reports", full)
    out = tmp_path / "OUT"
    code, _, err = cli(capsys, "repair", str(logs), str(out), "--quiet")
    msg = one_line(code, err)
    assert msg == f"cartforensics: repair: {out}: No space left on device"
    assert os.listdir(tmp_path) == ["logs"]  # no temporary output left


def test_item8_sigterm_during_repair_leaves_no_temporary(tmp_path: Path):
    src = tmp_path / "src"
    src.mkdir()
    body = "".join(line(1704067200 + i, f"s{i % 7}") + "\n" for i in range(400))
    for k in range(300):  # enough that repair is still at work when the signal comes
        (src / f"cart-{k}.events.log").write_text(body)
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    p = subprocess.Popen([sys.executable, "-m", "cartforensics", "repair", str(src),
                          str(tmp_path / "OUT"), "--quiet"], env=env, cwd=ROOT,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        while not glob.glob(str(tmp_path / ".OUT.repair-*")):  # repair has begun writing
            assert p.poll() is None, p.communicate()
            time.sleep(0.01)
        p.send_signal(signal.SIGTERM)
        _, err = p.communicate(timeout=120)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 128 + signal.SIGTERM, err
    assert "Traceback" not in err
    assert sorted(os.listdir(tmp_path)) == ["src"]  # no .OUT.repair-*, no OUT
