"""Memory grows with the bytes held, not with the lines: hostile shapes of input (a million
blank lines, a gzip bomb, one huge line) under RSS ceilings, and the bytes a replay keeps per
line.

The RSS tests run the command in a child process and read that child's own peak
(``os.wait4``'s ``ru_maxrss``) against its peak after a warm-up on a small file: the growth is
what the input cost. A gzip bomb read whole would be a row per newline (200M rows, tens of
GB); a per-line Python object costs hundreds of bytes a line: the ceilings catch either, with
room for run-to-run noise. No test here measures time.
"""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
import tracemalloc
import zlib
from pathlib import Path

import pyarrow as pa
import pytest

from cartforensics import read_events
from cartforensics.io.logs import GZ_MAX_RATIO, GZ_MIN_LIMIT, gunzip_limit
from cartforensics.model.replay import replay

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "sample_data" / "cart-1002.events.log"
MB = 1 << 20

def run_child(work: str, tmp: Path, warm_args: list[str]) -> tuple[int, str, int]:
    """(exit code, stdout + stderr, RSS growth in bytes) of the Python ``work`` run in a
    child process after ``cartforensics <warm_args>`` in the same process. The growth is the
    child's own high-water mark (``VmHWM``, which a fresh exec starts anew; ``ru_maxrss``
    would carry the forking test process's) at the end less the one after the warm-up."""
    marker = tmp / f"rss-{len(list(tmp.iterdir()))}.json"
    body = "".join("    " + line + "\n" for line in work.splitlines())
    script = (
        "import contextlib, io, json, sys\n"
        "from cartforensics.cli.app import main\n"
        "def hwm():\n"
        "    status = open('/proc/self/status').read()\n"
        "    return int(status.split('VmHWM:')[1].split()[0]) * 1024\n"
        "with contextlib.redirect_stdout(io.StringIO()), "
        "contextlib.redirect_stderr(io.StringIO()):\n"
        f"    main({warm_args!r})\n"
        "before = hwm()\n"
        "try:\n"
        + body +
        "finally:\n"
        f"    open({str(marker)!r}, 'w').write(json.dumps([before, hwm()]))\n"
    )
    out_path = tmp / f"{marker.stem}.out"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])}
    with open(out_path, "wb") as out:
        code = subprocess.run([sys.executable, "-c", script], stdout=out, stderr=out,
                              cwd=tmp, env=env, check=False).returncode
    text = out_path.read_text(errors="replace")
    assert marker.exists(), f"the child failed before its work:\n{text}"
    before, after = json.loads(marker.read_text())
    return code, text, after - before


def run_cli(args: list[str], tmp: Path, warm_args: list[str]) -> tuple[int, str, int]:
    """:func:`run_child` of the command line ``cartforensics <args>``."""
    return run_child(f"sys.exit(main({args!r}))", tmp, warm_args)


def warm_up(tmp: Path) -> list[str]:
    small = tmp / "warm"
    small.mkdir(exist_ok=True)
    (small / SAMPLE.name).write_bytes(SAMPLE.read_bytes())
    return ["replay", "--quiet", str(small)]


def test_a_million_blank_lines_cost_bytes_not_objects(tmp_path: Path) -> None:
    """1M blank lines read and replayed in both modes, with each replay's summary and
    metrics (what ``cartforensics replay`` prints): within 160 B a line of RSS, the events
    frame (55 B a line) and two replays (about 15 B each), a few arrays each and no Python
    object per line (measured: about 125 B; a per-line error text in each replay's outcomes
    and whole-batch temporaries in read_events came to 315 B, a Go-port call and a row copy
    per line to 470 B)."""
    n = 1_000_000
    path = tmp_path / "blank.events.log"
    path.write_bytes(b"\n" * n)
    work = (
        "from cartforensics import read_events, replay\n"
        f"events = read_events({str(path)!r}, progress=False)\n"
        "go, lenient = replay(events, mode='go'), replay(events, mode='lenient')\n"
        "rows = [r.summary().loc['blank'].tolist()[:3] for r in (go, lenient)]\n"
        "print(json.dumps({'rows': rows, 'failures': int(go.metrics()"
        "['cart_event_log_replay_failures_total'])}))\n"
    )
    code, text, grown = run_child(work, tmp_path, warm_up(tmp_path))
    assert code == 0, text
    got = json.loads(text.strip().splitlines()[-1])
    # lines, applied, malformed in each mode: every line has its outcome
    assert got == {"rows": [[n, 0, n], [n, 0, n]], "failures": n}
    assert grown / n <= 160, f"{grown / n:.0f} B a line of RSS for blank lines"


@pytest.mark.parametrize("line", [b"", b"{}", b"x"], ids=["blank", "braces", "x"])
def test_the_replay_command_grows_a_few_bytes_a_line(tmp_path: Path, line: bytes) -> None:
    """``cartforensics replay`` itself (read and replayed a piece at a time in both modes,
    the headline, the table and the metrics) on 1M and on 5M lines of ``line``: the 4M lines
    more cost within 8 B a line of RSS (measured: 2 to 5 B, the file's own bytes held while
    it is read, and heap noise; the whole events frame and two whole replays came to 130 B),
    and 1M lines within 100 MB (a piece of rows held: measured about 75 MB)."""
    warm = warm_up(tmp_path)
    grown = {}
    for n in (1_000_000, 5_000_000):
        path = tmp_path / f"lines{n}.events.log"
        path.write_bytes((line + b"\n") * n)
        code, text, grown[n] = run_cli(["replay", "--quiet", str(path)], tmp_path, warm)
        assert code == 0 and "Traceback" not in text, text
        path.unlink()
    per_line = (grown[5_000_000] - grown[1_000_000]) / 4_000_000
    assert per_line <= 8, f"{per_line:.1f} B a line of RSS for {line!r} lines"
    assert grown[1_000_000] <= 100 * MB, f"1M lines: RSS grew by {grown[1_000_000] / MB:.0f} MB"


def test_the_replay_command_streams_jsonl(tmp_path: Path) -> None:
    """``cartforensics replay --format jsonl`` (a record per line, written as each piece is
    replayed) on 1M and on 3M blank lines, its output to a file: the 2M lines more cost
    within 8 B a line of RSS (measured: about 1 B; the whole events frame and replay came to
    400 B)."""
    warm = warm_up(tmp_path)
    grown = {}
    for n in (1_000_000, 3_000_000):
        path = tmp_path / f"blank{n}.events.log"
        path.write_bytes(b"\n" * n)
        out = tmp_path / "out.jsonl"
        work = (f"with open({str(out)!r}, 'w') as f, contextlib.redirect_stdout(f):\n"
                f"    code = main({['replay', '--quiet', '--format', 'jsonl', str(path)]!r})\n"
                "sys.exit(code)\n")
        code, text, grown[n] = run_child(work, tmp_path, warm)
        assert code == 0 and "Traceback" not in text, text
        with open(out, "rb") as f:
            assert sum(1 for _ in f) == n + 1  # a record per line, then the cart's
        path.unlink()
    per_line = (grown[3_000_000] - grown[1_000_000]) / 2_000_000
    assert per_line <= 8, f"{per_line:.1f} B a line of RSS for jsonl"


def test_counts_never_build_the_outcomes_frame(tmp_path: Path) -> None:
    """A replay keeps codes per line; the outcomes frame (a row of six columns per line) is
    built on first use only: summary, metrics and outcome codes are counted without it."""
    r = replay(_events(tmp_path, b"\n\nx\n"), mode="go")
    (cart,) = r.cart_ids
    assert r.summary().loc[cart, "malformed"] == 3
    assert int(r.metrics()["cart_event_log_replay_failures_total"]) == 3
    assert r.outcome_codes(cart).tolist() == [1, 1, 1]  # OUTCOMES.index("malformed")
    assert r.history(cart)["outcome"].tolist() == ["malformed"] * 3
    assert r._outcomes is None  # none of the above built it
    assert r.outcomes["outcome"].tolist() == ["malformed"] * 3
    assert r._outcomes is not None


def gzip_bomb(path: Path, inflated: int = 192 * MB) -> int:
    """A .gz of ``inflated`` bytes of newlines (about 1 MB of gzip); returns its size."""
    comp = zlib.compressobj(1, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block = b"\n" * (8 * MB)
    with open(path, "wb") as f:
        for _ in range(inflated // len(block)):
            f.write(comp.compress(block))
        f.write(comp.flush())
    return path.stat().st_size


@pytest.fixture(scope="module")
def bomb_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    src = tmp_path_factory.mktemp("bomb") / "logs"
    src.mkdir()
    (src / SAMPLE.name).write_bytes(SAMPLE.read_bytes())
    size = gzip_bomb(src / "bomb.events.log.gz")
    assert 192 * MB > gunzip_limit(size)  # it is one by the rule
    return src


def test_the_bomb_rule_is_a_ratio_and_a_floor() -> None:
    assert gunzip_limit(1) == GZ_MIN_LIMIT
    assert gunzip_limit(10 * MB) == GZ_MAX_RATIO * 10 * MB


def test_read_events_lists_a_gzip_bomb_as_a_problem_and_reads_the_rest(bomb_dir: Path) -> None:
    with pytest.warns(UserWarning, match="gzip bomb"):
        ev = read_events(str(bomb_dir), progress=False)
    problems = {p["cart_id"]: p["error"] for p in ev.attrs["problems"]}
    assert problems["bomb"].startswith("cannot read: a gzip bomb")
    files = {f["cart_id"]: f for f in ev.attrs["files"]}
    assert files["bomb"]["lines"] == 0  # listed, none of its lines read
    assert (ev["cart_id"] == "cart-1002").sum() == SAMPLE.read_bytes().count(b"\n")


# a gzip bomb's peak: refused once it crosses the line, about 8 MiB in (measured growth
# about 10 MB), and the other file
BOMB_CEILING = 100 * MB


@pytest.mark.parametrize("command", ["replay", "report", "convert", "repair"])
def test_a_gzip_bomb_is_a_problem_not_a_crash(command: str, bomb_dir: Path,
                                              tmp_path: Path) -> None:
    out = tmp_path / "out"
    args = {
        "replay": ["replay", "--quiet", str(bomb_dir)],
        "report": ["report", "--quiet", str(bomb_dir), "--out", str(out)],
        "convert": ["convert", "--quiet", str(bomb_dir), str(out)],
        "repair": ["repair", "--quiet", str(bomb_dir), str(out)],
    }[command]
    code, text, grown = run_cli(args, tmp_path, warm_up(tmp_path))
    assert "Traceback" not in text and "MemoryError" not in text, text
    assert "gzip bomb" in text, text  # the problem is shown
    # convert exits 1 when an input file had a problem; the others finish as usual
    assert code == (1 if command == "convert" else 0), text
    assert grown <= BOMB_CEILING, f"{command}: RSS grew by {grown / MB:.0f} MB"
    if command == "repair":  # the cart is unrepairable and no empty log stands for it
        report = json.loads((out / "repair.json").read_text())
        assert report["carts"]["bomb"]["status"] == "unrepairable"
        assert not (out / "bomb.events.log").exists()
        assert (out / SAMPLE.name).exists()
    if command == "convert":
        manifest = json.loads((out / "manifest.json").read_text())
        entry = next(f for f in manifest["files"] if f["cart_id"] == "bomb")
        assert any("gzip bomb" in p for p in entry["problems"])


def test_one_huge_line_costs_a_bounded_multiple_of_its_size(tmp_path: Path) -> None:
    """A 50 MB line (a writer event whose name is 50 MB: too long for Go's scanner, applied
    by lenient mode) replayed in both modes: within 4x its size (measured: 3x; a copy of
    the payload column per replay came to 5x)."""
    size = 50 * MB
    path = tmp_path / "huge.events.log"
    path.write_bytes(b'{"ts":"2024-01-01T00:00:00Z","type":"AddItem","payload":{"sku":"a",'
                     b'"name":"' + b"n" * size + b'","quantity":1,"price":1}}\n')
    code, text, grown = run_cli(["replay", "--quiet", str(path)], tmp_path,
                                warm_up(tmp_path))
    assert code == 0, text
    assert "Traceback" not in text
    assert grown <= 4 * size, f"RSS grew by {grown / size:.1f}x the line"


def kept_per_line(make: callable, small: int = 10_000, big: int = 100_000) -> float:
    """Bytes a live Replay keeps (Python and numpy by tracemalloc, plus Arrow's pool) per
    line, from the difference between ``big`` and ``small`` lines (fixed costs cancel)."""
    kept = {}
    for n in (small, big):
        events = make(n)
        gc.collect()
        tracemalloc.start()
        arrow = pa.total_allocated_bytes()
        r = replay(events, mode="go")
        gc.collect()
        traced, _ = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        kept[n] = traced + pa.total_allocated_bytes() - arrow
        assert len(r.outcomes) == n  # every line has its outcome
        del r, events
    return (kept[big] - kept[small]) / (big - small)


def _events(tmp: Path, data: bytes):
    path = tmp / "c.events.log"
    path.write_bytes(data)
    return read_events(str(path), progress=False)


def test_a_replay_keeps_at_most_200_bytes_a_line_never_a_state(tmp_path: Path) -> None:
    """Issue 26: what a replay keeps stays within 200 B a line for lines that change the
    state (a state per line would be kilobytes; measured: 135 B, its checkpoints' states),
    and within 30 B for blank lines (measured: 17 B: codes, flags, an error index, rows and
    last-applied rows as int32; an error text per line came to 85 B)."""
    def adds(n: int):
        lines = [b'{"ts":"2024-01-01T00:00:%02dZ","type":"AddItem","payload":{"sku":"s%d",'
                 b'"quantity":1,"price":1}}' % (i % 60, i % 50) for i in range(n)]
        return _events(tmp_path, b"\n".join(lines) + b"\n")

    per_line = kept_per_line(adds)
    assert per_line <= 200, f"{per_line:.0f} B kept a line (writer lines)"
    per_line = kept_per_line(lambda n: _events(tmp_path, b"\n" * n))
    assert per_line <= 30, f"{per_line:.0f} B kept a line (blank lines)"


def test_a_report_chunk_never_builds_the_outcomes_frames(tmp_path: Path) -> None:
    """The report's reduction of a chunk (counts, findings, metrics, impact, its rows of
    outcomes.parquet) reads the replays' per-line codes column by column: neither replay's
    outcomes frame is built, and the rows written are the frame's, value for value."""
    from cartforensics.present.report import outcomes_frame
    from cartforensics.present.report_chunks import read_part, summarize_chunk

    data = SAMPLE.read_bytes() + b'\n\nx\n{"ts":"2024-01-01T00:00:00Z","type":"Nope"}\n'
    events = _events(tmp_path, data)
    go, lenient = replay(events, mode="go"), replay(events, mode="lenient")
    result = summarize_chunk(events, go, lenient, 0, str(tmp_path))
    assert go._outcomes is None and lenient._outcomes is None
    assert {p.kind for p in result.parts.values()} >= {"other_malformed", "unknown_type"}
    written = pa.concat_tables([read_part(result.outcomes[m]) for m in ("go", "lenient")])
    # the frames, built now, as outcomes.parquet holds them
    expected = pa.Table.from_pandas(outcomes_frame(go, lenient), preserve_index=False)
    assert written.num_rows == expected.num_rows == 2 * len(events)
    for name in written.column_names:
        assert written[name].to_pylist() == expected[name].to_pylist(), name


def test_the_report_command_on_a_million_blank_lines(tmp_path: Path) -> None:
    """``cartforensics report`` on 1M blank lines, after a small report (the charts' imports
    are fixed costs): within 550 B a line of RSS without the timelines (measured: about
    450 B: the events and replays, the findings' per-line arrays and the heap they leave,
    then one mode's rows of outcomes.parquet read whole to be copied; reading every
    replay's outcomes frame came to 565 B). The embedded timeline of a cart of 1M lines
    replays it again for its widget: that stage is not bounded here."""
    n = 1_000_000
    path = tmp_path / "blank.events.log"
    path.write_bytes(b"\n" * n)
    warm = ["report", "--quiet", warm_up(tmp_path)[-1], "--out", str(tmp_path / "warm")]
    out = tmp_path / "out"
    code, text, grown = run_cli(["report", "--quiet", str(path), "--out", str(out),
                                 "--timelines", "0"], tmp_path, warm)
    assert code == 0 and "Traceback" not in text, text
    assert "1,000,000 lines" in text
    import pyarrow.parquet as pq

    assert pq.read_metadata(out / "outcomes.parquet").num_rows == 2 * n
    assert grown / n <= 550, f"{grown / n:.0f} B a line of RSS for blank lines"
