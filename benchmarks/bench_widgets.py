"""Benchmark the TimelineScrubber's step latency (issue 7), run by hand, never by pytest.

    python benchmarks/bench_widgets.py [--lines 10000] [--steps 2000] [--jumps 500]
    python benchmarks/bench_widgets.py --only skip [--samples 40] [--against REV] [--profile]

One cart of ``--lines`` lines (the writer's own sessions from ``_common.generate_carts``, all
in one file, so one cart id; the first half with the writer's numeric ts, the second half
rewritten as RFC 3339 strings as after the fix deploy, so that both modes apply lines and the
two sides differ). Then, with both replays done once up front:

- open: building the scrubber on the cart (cart list, per-cart outcome columns, histories);
- step: ``step(+1)`` from line 0 for ``--steps`` lines, then ``step(-1)`` back: the slider
  moves, the observer redraws the line panel, both states with their diff, and the
  go/lenient banner (everything a step shows);
- jump: ``--jumps`` random positions set on the slider (a drag or a seek);
- next problem: ``next_problem()`` across the cart;
- skip: switching one line off (both modes replayed without it) and back on;
- strip (issue 15): the timeline strip redrawn whole (both modes' binned marks and the noted
  lines: what a skip or a new note redraws) and its cursor (what a step redraws), target
  ≤ 50 ms per step; then the blame read for the cart (the "show blame" button) and steps
  with the blame shown beside both states.

A step in JupyterLab also sends the changed HTML to the browser; its size is printed
(``payload``). Target: a step well under 100 ms (issue 7).

``--only skip`` (issue 11): ``toggle_skip`` end to end (both modes replayed without the line,
the strip, both sides and the rest of the view redrawn), switched on and then back off, at
``--samples`` lines each: a random line while it is shown (what the "skip this line" button
does), one of the first 100 lines while it is shown (a skip that never rejoins the replay
replays the whole rest of the cart), and a random line while the view shows the cart's end.
Target: <= 50 ms. ``--against REV`` runs the same measurement on the package as of git
revision ``REV`` (``git archive``, with this worktree's compiled core) in a child process,
interleaved with this code's run, so that both figures come from one run on one load;
``--profile`` prints a cProfile of this code's toggles instead.

``--only browser`` (issue 22): the same cart in a real JupyterLab (tests/present/browser/lab.py)
driven by Debian's Chromium: ``--samples`` clicks on the step-forward button, each timed in the
page from the click until the line panel shows the next line (kernel round trip and drawing
included), then ``--samples`` skips switched on and back off, each timed until the line panel
says so. Targets: step p95 <= 50 ms, skip p95 <= 100 ms. ``--against REV`` measures REV's
widget the same way first (its buttons carry the same classes), in the same sitting.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import _common  # noqa: E402

TARGET_MS = 100.0
STRIP_TARGET_MS = 50.0
SKIP_TARGET_MS = 50.0
_TS = re.compile(rb'^\{"ts":(\d+),', re.M)


def _rfc3339(match: re.Match[bytes]) -> bytes:
    text = dt.datetime.fromtimestamp(int(match.group(1)), dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return b'{"ts":"' + text.encode() + b'",'


def write_cart(n_lines: int, seed: int, out: Path) -> Path:
    data = b"".join(blob for _cid, blob in _common.generate_carts(n_lines, seed))
    lines = data.splitlines(keepends=True)
    half = len(lines) // 2
    tail = _TS.sub(_rfc3339, b"".join(lines[half:]))
    path = out / "bench-cart.events.log"
    path.write_bytes(b"".join(lines[:half]) + tail)
    return path


def timed(fn: Callable[[], object]) -> float:
    t = time.perf_counter()
    fn()
    return (time.perf_counter() - t) * 1000


def summary(label: str, ms: list[float]) -> tuple[str, float, float, float, float, int]:
    ms = sorted(ms)
    p95 = ms[min(len(ms) - 1, int(round(0.95 * (len(ms) - 1))))]
    return label, statistics.median(ms), p95, ms[-1], statistics.fmean(ms), len(ms)


def skip_positions(n: int, samples: int, seed: int) -> dict[str, list[tuple[int, int]]]:
    """(position shown, line toggled) per kind of skip (see the module docstring)."""
    rng = random.Random(seed)
    edge = min(100, n)
    shown = [rng.randint(1, n) for _ in range(samples)]
    start = [rng.randint(1, edge) for _ in range(samples)]
    at_end = [rng.randint(1, n) for _ in range(samples)]
    return {"random line": [(k, k) for k in shown],
            "first 100": [(k, k) for k in start],
            "at the end": [(n, k) for k in at_end]}


def skip_timings(args: argparse.Namespace) -> dict[str, dict[str, list[float]]]:
    """``toggle_skip`` on and back off, in ms, per kind (the code imported as cartforensics)."""
    import cartforensics as cf
    from cartforensics.present.widgets import TimelineScrubber

    if args.code_root and not Path(cf.__file__).resolve().is_relative_to(
            Path(args.code_root).resolve()):
        raise SystemExit(f"cartforensics imported from {cf.__file__}, not {args.code_root}")
    if cf.engine_info()["engine"] != "compiled":
        raise SystemExit(f"the compiled core is not running: {cf.engine_info()}")
    with tempfile.TemporaryDirectory(prefix="bench-widgets-") as tmp:
        path = write_cart(args.lines, args.seed, Path(tmp))
        events = cf.read_events(path)
        go = cf.replay(events)
        lenient = cf.replay(events, mode="lenient")
    cid = go.cart_ids[0]
    s = TimelineScrubber(go, cart_id=cid, lenient=lenient)
    out: dict[str, dict[str, list[float]]] = {}
    prof = None
    if args.profile:
        import cProfile

        prof = cProfile.Profile()
    for label, pairs in skip_positions(s.lines, args.samples, args.seed).items():
        on, off = [], []
        for p, k in pairs:
            s.seek(line=p)
            if prof is not None:
                prof.enable()
            on.append(timed(lambda k=k: s.toggle_skip(k)))
            off.append(timed(lambda k=k: s.toggle_skip(k)))
            if prof is not None:
                prof.disable()
        out[label] = {"on": on, "off": off}
    if prof is not None:
        import pstats

        pstats.Stats(prof).sort_stats("cumulative").print_stats(40)
    return out


def _revision_tree(rev: str) -> Path:
    """The package as of ``rev`` in a temporary directory, with this tree's compiled core."""
    import io
    import tarfile

    root = Path(__file__).resolve().parents[1]
    tar = subprocess.run(["git", "archive", "--format=tar", rev, "cartforensics"], cwd=root,
                         capture_output=True, check=True).stdout
    dest = Path(tempfile.mkdtemp(prefix="bench-widgets-rev-"))
    with tarfile.open(fileobj=io.BytesIO(tar)) as tf:
        tf.extractall(dest, filter="data")
    for so in (root / "cartforensics").glob("_*core*.so"):
        shutil.copy2(so, dest / "cartforensics" / so.name)
    return dest


def _child_timings(code_root: Path, args: argparse.Namespace) -> dict[str, dict[str, list[float]]]:

    env = dict(os.environ, PYTHONPATH=str(code_root))
    cmd = [sys.executable, __file__, "--only", "skip", "--json", "--code-root", str(code_root),
           "--lines", str(args.lines), "--samples", str(args.samples), "--seed", str(args.seed)]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True,
                          cwd=tempfile.gettempdir())
    return json.loads(done.stdout.strip().splitlines()[-1])


# in the page: click, then wait (each animation frame) until the line panel shows ``want``
_CLICK_UNTIL = """async ([button, want, gone]) => {
  const view = document.querySelector('.cf-scrubber:not(.cft-static)');
  const line = () => view.querySelector('.cf-line').innerText;
  const t0 = performance.now();
  view.querySelector(button).click();
  await new Promise(done => { const check = () => {
    const text = line();
    if (gone ? !text.includes(want) : text.includes(want)) done();
    else requestAnimationFrame(check);
  }; check(); });
  return performance.now() - t0;
}"""


def browser_timings(code_root: Path, args: argparse.Namespace, cart: Path
                    ) -> dict[str, list[float]]:
    """Step and skip timed in JupyterLab on the package in ``code_root``."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "present"))
    from browser.lab import JupyterLab, write_notebook
    from playwright.sync_api import sync_playwright

    start = args.lines // 2
    with tempfile.TemporaryDirectory(prefix="bench-widgets-lab-") as tmp:
        root, home = Path(tmp) / "root", Path(tmp) / "home"
        root.mkdir()
        home.mkdir()
        shutil.copy2(cart, root / cart.name)
        write_notebook(root / "bench.ipynb", [
            "import cartforensics as cf\n"
            f"ev = cf.read_events({cart.name!r}, progress=False)\n"
            "s = cf.TimelineScrubber(cf.replay(ev), lenient=cf.replay(ev, mode='lenient'))\n"
            f"s.seek(line={start})\ns"])
        old = os.environ.get("PYTHONPATH")
        os.environ["PYTHONPATH"] = str(code_root)
        try:
            with JupyterLab(root, home, timeout=120) as lab, sync_playwright() as pw:
                browser = pw.chromium.launch(
                    executable_path="/usr/bin/chromium", headless=True,
                    args=["--no-sandbox", "--disable-gpu", "--no-first-run"])
                page = browser.new_page(viewport={"width": 1280, "height": 900})
                page.goto(lab.url("lab/tree/bench.ipynb"), wait_until="domcontentloaded")
                from test_browser import _run_all

                _run_all(page, timeout=180)
                page.wait_for_function(
                    "s => { const v = document.querySelector('.cf-scrubber:not(.cft-static)"
                    " .cf-line'); return v && v.innerText.includes(s); }",
                    arg=f"Line {start:,} of", timeout=180_000)
                step = []
                for k in range(args.samples):
                    want = f"Line {start + k + 1:,} of"
                    step.append(page.evaluate(_CLICK_UNTIL, [".cf-step-forward", want, False]))
                on, off = [], []
                flag = "this line is switched off"
                for _ in range(args.samples // 2):
                    on.append(page.evaluate(_CLICK_UNTIL, [".cf-skip", flag, False]))
                    off.append(page.evaluate(_CLICK_UNTIL, [".cf-skip", flag, True]))
                browser.close()
        finally:
            if old is None:
                os.environ.pop("PYTHONPATH", None)
            else:
                os.environ["PYTHONPATH"] = old
    return {"step": step, "skip on": on, "skip off": off}


def browser_main(args: argparse.Namespace) -> int:
    """``--only browser``: step and skip timed in JupyterLab (and REV's widget first)."""
    for line in _common.machine_info():
        print(line)
    here = Path(__file__).resolve().parents[1]
    runs: dict[str, dict[str, list[float]]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-widgets-") as tmp:
        cart = write_cart(args.lines, args.seed, Path(tmp))
        if args.against:
            old = _revision_tree(args.against)
            try:
                runs[f"at {args.against}"] = browser_timings(old, args, cart)
            finally:
                shutil.rmtree(old, ignore_errors=True)
        runs["this code"] = browser_timings(here, args, cart)
    print(f"\nin JupyterLab (Chromium), one cart of {args.lines:,} lines, from the click until "
          "the line panel shows it (ms)")
    print(f"{'code':<16} {'what':<10} {'median':>8} {'p95':>8} {'max':>8} {'runs':>5}")
    for who, got in runs.items():
        for what, ms in got.items():
            _l, med, p95, mx, _mean, k = summary(what, ms)
            print(f"{who:<16} {what:<10} {med:>8.1f} {p95:>8.1f} {mx:>8.1f} {k:>5}")
    mine = runs["this code"]
    step_p95 = summary("", mine["step"])[2]
    skip_p95 = summary("", mine["skip on"] + mine["skip off"])[2]
    ok = step_p95 <= 50 and skip_p95 <= 100
    print(f"\nthis code: step p95 {step_p95:.1f} ms (target 50), skip p95 {skip_p95:.1f} ms "
          f"(target 100): {'PASS' if ok else 'MISS'}")
    return 0 if ok else 1


def skip_main(args: argparse.Namespace) -> int:
    """``--only skip``: the scrubber's skip end to end (and against ``--against REV``)."""

    if args.json:
        print(json.dumps(skip_timings(args)))
        return 0
    for line in _common.machine_info():
        print(line)
    runs: dict[str, list[dict[str, dict[str, list[float]]]]] = {}
    here = Path(__file__).resolve().parents[1]
    if args.against:
        old = _revision_tree(args.against)
        runs[f"at {args.against}"] = []
        runs["this code"] = []
        try:
            for _round in range(2):  # interleaved: both see the same load
                runs[f"at {args.against}"].append(_child_timings(old, args))
                runs["this code"].append(_child_timings(here, args))
        finally:
            shutil.rmtree(old, ignore_errors=True)
    elif args.profile:
        skip_timings(args)
        return 0
    else:
        runs["this code"] = [skip_timings(args)]
    print(f"\nscrubber.toggle_skip end to end on one cart of {args.lines:,} lines "
          f"({args.samples} lines per kind, on then off; ms)")
    print(f"{'code':<16} {'kind':<12} {'toggle':<4} {'median':>8} {'p95':>8} {'max':>8} "
          f"{'runs':>5}")
    worst = 0.0
    for who, got in runs.items():
        for label in got[0]:
            for way in ("on", "off"):
                ms = [x for g in got for x in g[label][way]]
                _l, med, p95, mx, _mean, k = summary(label, ms)
                if who == "this code":
                    worst = max(worst, p95)
                print(f"{who:<16} {label:<12} {way:<4} {med:>8.1f} {p95:>8.1f} {mx:>8.1f} "
                      f"{k:>5}")
    verdict = "PASS" if worst <= SKIP_TARGET_MS else "MISS"
    print(f"\nthis code's worst p95 {worst:.1f} ms against the {SKIP_TARGET_MS:.0f} ms "
          f"target: {verdict}")
    return 0 if verdict == "PASS" else 1


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lines", type=int, default=10_000)
    ap.add_argument("--steps", type=int, default=2_000)
    ap.add_argument("--jumps", type=int, default=500)
    ap.add_argument("--seed", type=int, default=_common.DEFAULT_SEED)
    ap.add_argument("--only", choices=["all", "skip", "browser"], default="all",
                    help="skip: only toggle_skip end to end (issue 11); browser: step and "
                         "skip timed in JupyterLab (issue 22)")
    ap.add_argument("--samples", type=int, default=40,
                    help="--only skip: lines toggled per kind of skip")
    ap.add_argument("--against", metavar="REV",
                    help="--only skip: also measure the package as of git revision REV")
    ap.add_argument("--profile", action="store_true",
                    help="--only skip: print a cProfile of this code's toggles")
    ap.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--code-root", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.code_root:  # a child measuring one revision: import the package from there
        sys.path.insert(0, args.code_root)
    if args.only == "skip":
        return skip_main(args)
    if args.only == "browser":
        return browser_main(args)

    import cartforensics as cf
    from cartforensics.present.widgets import TimelineScrubber, strip_cursor_html, strip_html

    for line in _common.machine_info():
        print(line)
    with tempfile.TemporaryDirectory(prefix="bench-widgets-") as tmp:
        path = write_cart(args.lines, args.seed, Path(tmp))
        t = time.perf_counter()
        events = cf.read_events(path)
        go = cf.replay(events)
        lenient = cf.replay(events, mode="lenient")
        setup = time.perf_counter() - t
    cid = go.cart_ids[0]
    n = len(go.rows_of(cid))
    oc = go.outcomes["outcome"].astype(str).value_counts().to_dict()
    lo = lenient.outcomes["outcome"].astype(str).value_counts().to_dict()
    final = lenient.final_state(cid)
    print(f"\ncart {cid}: {n:,} lines; go {oc}; lenient {lo}")
    print(f"lenient final state: {len(final['items'])} items, "
          f"{len(final['deliveries'])} deliveries")
    print(f"setup (read_events + both replays, not part of a step): {setup:.2f} s\n")

    s: TimelineScrubber | None = None

    def build() -> None:
        nonlocal s
        s = TimelineScrubber(go, cart_id=cid, lenient=lenient)

    open_ms = timed(build)
    assert s is not None and s.lines == n
    s.seek(line=0)
    steps = min(args.steps, n)
    fwd = [timed(lambda: s.step(1)) for _ in range(steps)]
    back = [timed(lambda: s.step(-1)) for _ in range(steps)]
    rng = random.Random(args.seed)
    targets = [rng.randint(0, n) for _ in range(args.jumps)]
    jumps = [timed(lambda p=p: s.seek(line=p)) for p in targets]
    s.seek(line=0)
    problems = []
    while True:
        before = s.position
        problems.append(timed(s.next_problem))
        if s.position == before or len(problems) >= 500:
            break
    s.seek(line=n // 2)
    payload = len(json.dumps(s.frame))
    skip_on = timed(lambda: s.toggle_skip(n // 4))
    skip_off = timed(lambda: s.toggle_skip(n // 4))

    rows = [summary("step +1", fwd), summary("step -1", back), summary("jump (random)", jumps),
            summary("next problem", problems)]
    print(f"open the cart: {open_ms:.1f} ms")
    print(f"{'what':<16} {'median ms':>10} {'p95 ms':>8} {'max ms':>8} {'mean ms':>8} "
          f"{'runs':>6}")
    for label, med, p95, mx, mean, k in rows:
        print(f"{label:<16} {med:>10.2f} {p95:>8.2f} {mx:>8.2f} {mean:>8.2f} {k:>6,}")
    print(f"data sent to the browser per step (at line {n // 2:,}): {payload / 1024:.1f} KiB")
    print(f"skip a line (both modes replayed without it): {skip_on:.0f} ms; "
          f"back on: {skip_off:.0f} ms")
    worst = max(r[2] for r in rows)
    verdict = "PASS" if worst < TARGET_MS else "MISS"
    print(f"\nstep p95 {worst:.2f} ms against the {TARGET_MS:.0f} ms target: {verdict}")

    # the timeline strip: redrawn whole with 50 noted lines, and its cursor alone
    outs = {m: s._sides[m].outcome for m in ("go", "lenient")}
    noted = {q: f"note {q}" for q in range(1, n + 1, max(n // 50, 1))}
    full = [timed(lambda: strip_html(outs, noted)) for _ in range(200)]
    cursor = [timed(lambda p=p: strip_cursor_html(p, n)) for p in targets[:200]]
    strip_bytes = len(strip_html(outs, noted))
    s.seek(line=0)
    with_strip = [timed(lambda: s.step(1)) for _ in range(min(200, n))]
    srows = [summary("strip, whole", full), summary("strip cursor", cursor),
             summary("step (all)", with_strip)]
    print(f"\n{'strip':<16} {'median ms':>10} {'p95 ms':>8} {'max ms':>8} {'mean ms':>8} "
          f"{'runs':>6}")
    for label, med, p95, mx, mean, k in srows:
        print(f"{label:<16} {med:>10.2f} {p95:>8.2f} {mx:>8.2f} {mean:>8.2f} {k:>6,}")
    print(f"strip HTML (whole): {strip_bytes / 1024:.1f} KiB; cursor: "
          f"{len(strip_cursor_html(n // 2, n))} bytes")
    strip_worst = srows[0][2] + srows[1][2]  # a step that redraws the whole strip, at p95
    strip_verdict = "PASS" if strip_worst <= STRIP_TARGET_MS else "MISS"
    print(f"strip redraw p95 (whole + cursor) {strip_worst:.2f} ms against the "
          f"{STRIP_TARGET_MS:.0f} ms target: {strip_verdict}")

    # blame: read once for the cart (both modes), then shown beside the states on each step
    s.seek(line=0)
    blame_ms = timed(lambda: (setattr(s, "request", {"n": 1, "do": "blame"}),
                              s.seek(line=n)))  # reads every line
    s.seek(line=n // 2)
    with_blame = [timed(lambda: s.step(1)) for _ in range(min(100, n // 4))]
    b = summary("step + blame", with_blame)
    print(f"\nblame read for the whole cart (both modes, {n:,} lines, then drawn at the "
          f"end): {blame_ms / 1000:.2f} s")
    print(f"step with blame shown: median {b[1]:.2f} ms, p95 {b[2]:.2f} ms, max {b[3]:.2f} ms")
    return 0 if verdict == "PASS" and strip_verdict == "PASS" else 1


if __name__ == "__main__":
    raise SystemExit(main())
